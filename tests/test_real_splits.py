"""Every real xlsa17 split file in ../shared/data/xlsa17, loaded with a generated res101.mat of the real N,
checked against the README's split statistics table."""

from __future__ import annotations

import numpy as np
import pytest

from fakedata import SHARED_XLSA17, shared_available, stage_real
from zslkit.data.matio import file_sha256
from zslkit.data.xlsa17 import load_xlsa17

pytestmark = pytest.mark.skipif(not shared_available(),
                                reason=f"real split files not found in {SHARED_XLSA17} (CI provides ../shared)")

# dataset, semantic, split file: classes all/seen/unseen, emb dim, trainval, test_seen, test_unseen, train, val,
# N, val-fold classes train/val (None: not given by the table)
TABLE = [
    ("AWA1", "att", "att_splits.mat", (50, 40, 10), 85, 19832, 4958, 5685, 16864, 7926, 30475, (27, 13)),
    ("AWA1", "original_att", "att_splits.mat", (50, 40, 10), 85, 19832, 4958, 5685, 16864, 7926, 30475, (27, 13)),
    ("AWA2", "att", "att_splits.mat", (50, 40, 10), 85, 23527, 5882, 7913, 20218, 9191, 37322, (27, 13)),
    ("AWA2", "binary_att", "binaryAtt_splits.mat", (50, 40, 10), 85, 23527, 5882, 7913, 20218, 9191, 37322,
     (27, 13)),
    ("CUB", "att", "att_splits.mat", (200, 150, 50), 312, 7057, 1764, 2967, 5875, 2946, 11788, (100, 50)),
    ("CUB", "sent", "sent_splits.mat", (200, 150, 50), 1024, 7057, 1764, 2967, 5875, 2946, 11788, (100, 50)),
    ("SUN", "att", "att_splits.mat", (717, 645, 72), 102, 10320, 2580, 1440, 11600, 1300, 14340, (580, 65)),
    ("APY", "att", "att_splits.mat", (32, 20, 12), 64, 5932, 1483, 7924, None, None, 15339, (15, 5)),
    ("FLO", "att", "att_splits.mat", (102, 82, 20), 1024, 5631, 1403, 1155, 5878, 1156, 8189, (62, 20)),
]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    return {ds: stage_real(ds, root, feature_dim=8) for ds in ("AWA1", "AWA2", "CUB", "SUN", "APY", "FLO")}


@pytest.mark.parametrize("row", TABLE, ids=[f"{r[0]}-{r[1]}" for r in TABLE])
def test_counts_match_readme(staged, row):
    ds, sem, split_file, (c_all, c_seen, c_unseen), a_dim, tv, ts, tu, tr, va, n, (vf_tr, vf_va) = row
    d = load_xlsa17(staged[ds], sem)
    assert d.name == ds and not d.synthetic and d.semantic_source == sem
    assert d.features.shape == (n, 8)
    assert (d.num_classes, len(d.seen_classes), len(d.unseen_classes)) == (c_all, c_seen, c_unseen)
    assert d.embedding_dim == a_dim
    sizes = {k: (None if v is None else len(v)) for k, v in d.splits.items()}
    assert (sizes["trainval"], sizes["test_seen"], sizes["test_unseen"]) == (tv, ts, tu)
    if tr is not None:
        assert (sizes["train"], sizes["val"]) == (tr, va)
    assert d.has_validation_split  # APY/CUB-att: derived
    s = d.summary()
    assert (s["num_val_train_classes"], s["num_val_classes"]) == (vf_tr, vf_va)
    assert d.split_sha256 == file_sha256(SHARED_XLSA17 / ds / split_file)
    # 0-based conversion: union of the three splits is exactly 0..N-1
    allidx = np.sort(np.concatenate([d.splits[k] for k in ("trainval", "test_seen", "test_unseen")]))
    np.testing.assert_array_equal(allidx, np.arange(n))
    # train/val split the seen-class images (trainval + test_seen) as in the original xlsa17 files
    pool = np.union1d(d.splits["trainval"], d.splits["test_seen"])
    np.testing.assert_array_equal(np.union1d(d.splits["train"], d.splits["val"]), pool)


def test_readme_checksums_of_staged_files():
    expected = {"AWA1/att_splits.mat": "752e0fad7b01b0ad966d7f5d5650817e85fb3008848d5c603b437b4d9219d664",
                "CUB/att_splits.mat": "4562b1f6306e21dca05071b9b070ce2b15ec659826c8cb87e5ea796b3770df21",
                "APY/att_splits.mat": "1fb6c3c031342e1a2bd964e1633ba01b546bac9bc027d7a69d1d01562de27611"}
    for rel, sha in expected.items():
        assert file_sha256(SHARED_XLSA17 / rel) == sha, rel


def test_notes_on_quirks(staged):
    awa_orig = load_xlsa17(staged["AWA1"], "original_att")
    assert any("-1" in n for n in awa_orig.notes)
    assert (awa_orig.class_embeddings == -1).sum() == 4  # kept as is
    cub = load_xlsa17(staged["CUB"], "att")
    assert any("sent_splits.mat" in n for n in cub.notes)
    apy = load_xlsa17(staged["APY"], "att")
    assert any("trainclasses1.txt" in n for n in apy.notes)
    flo = load_xlsa17(staged["FLO"], "att")
    assert flo.class_names[0] == "class_000" and any("allclasses_names" in n for n in flo.notes)
    awa = load_xlsa17(staged["AWA1"], "att")
    assert "grizzly+bear" in awa.class_names and awa.notes == ()


def test_cub_att_derivations_agree(staged, tmp_path):
    """CUB: train/val from sent_splits.mat equal the ones derived from the fold-1 class lists."""
    import shutil

    from_sent = load_xlsa17(staged["CUB"], "att")
    folder = tmp_path / "CUB"
    shutil.copytree(staged["CUB"], folder)
    (folder / "sent_splits.mat").unlink()
    from_lists = load_xlsa17(folder, "att")
    assert any("trainclasses1.txt" in n for n in from_lists.notes)
    for key in ("train", "val"):
        np.testing.assert_array_equal(np.sort(from_sent.splits[key]), from_lists.splits[key])
    for f in folder.glob("*classes*.txt"):
        f.unlink()
    bare = load_xlsa17(folder, "att")
    assert bare.splits["train"] is None and any("will be derived" in n for n in bare.notes)


def test_real_n_full_feature_dim_one_dataset(tmp_path):
    """One dataset with the real 2048-d features (FLO, the smallest), stored as in xlsa17 (2048 x N),
    in a MATLAB v7.3 (HDF5) res101.mat."""
    folder = stage_real("FLO", tmp_path, feature_dim=2048, version="7.3")
    d = load_xlsa17(folder)
    assert d.features.shape == (8189, 2048)
