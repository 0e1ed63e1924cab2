"""Loaders: layouts, orientation, derived splits, and the DataErrors for bad files."""

from __future__ import annotations

import os
import shutil

import h5py
import numpy as np
import pytest

from fakedata import tiny_dataset
from zslkit.data.cyclewgan_h5 import load_cyclewgan, write_cyclewgan
from zslkit.data.dem import load_dem, write_dem
from zslkit.data.layouts import detect_layout, load_from_root, write_layout
from zslkit.data.matio import read_mat, write_mat
from zslkit.data.npz import load_npz, write_npz
from zslkit.data.xlsa17 import features_file_arrays, load_xlsa17, split_file_arrays, write_xlsa17
from zslkit.errors import DataError


@pytest.fixture()
def tiny():
    return tiny_dataset()


def _folder(tmp_path, ds, *, feats=None, split=None, version="5"):
    """Write an xlsa17 folder with optional overrides of the raw arrays."""
    folder = tmp_path / "TINY"
    f = features_file_arrays(ds)
    s = split_file_arrays(ds)
    f.update(feats or {})
    s.update(split or {})
    write_mat(folder / "res101.mat", {k: v for k, v in f.items() if v is not None}, version=version)
    write_mat(folder / "att_splits.mat", {k: v for k, v in s.items() if v is not None}, version=version)
    return folder


def _err(excinfo, *parts):
    msg = str(excinfo.value)
    for part in parts:
        assert str(part) in msg, (part, msg)
    return msg


# ----- good files -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["5", "7.3"])
def test_xlsa17_loads_both_mat_versions(tmp_path, tiny, version):
    folder = _folder(tmp_path, tiny, version=version)
    d = load_xlsa17(folder)
    np.testing.assert_array_equal(d.features, tiny.features)
    np.testing.assert_array_equal(d.labels, tiny.labels)
    assert d.class_names == tiny.class_names and d.name == "TINY"
    assert d.split_sha256 and len(d.split_sha256) == 64 and not d.synthetic
    # loading a file inside the folder works too
    assert load_xlsa17(folder / "att_splits.mat").features.shape == tiny.features.shape
    assert load_xlsa17(folder / "res101.mat", name="X").name == "X"


def test_mat_v73_is_real_hdf5_with_matlab_header(tmp_path, tiny):
    folder = _folder(tmp_path, tiny, version="7.3")
    raw = (folder / "att_splits.mat").read_bytes()
    assert raw.startswith(b"MATLAB 7.3 MAT-file") and raw[126:128] == b"IM"
    with h5py.File(folder / "att_splits.mat", "r") as fh:
        assert fh["att"].shape == (tiny.num_classes, tiny.embedding_dim)  # transposed on disk
        assert fh["att"].attrs["MATLAB_class"] == b"double"
        assert fh["allclasses_names"].attrs["MATLAB_class"] == b"cell"
    v5 = read_mat(_folder(tmp_path / "v5", tiny) / "att_splits.mat")
    v73 = read_mat(folder / "att_splits.mat")
    assert set(v5) == set(v73)
    for key in v5:
        assert v5[key].shape == v73[key].shape, key
        np.testing.assert_array_equal(v5[key], v73[key])


def test_features_n_by_d_accepted_with_note(tmp_path, tiny):
    folder = _folder(tmp_path, tiny, feats={"features": tiny.features})  # N x D instead of D x N
    d = load_xlsa17(folder)
    np.testing.assert_array_equal(d.features, tiny.features)
    assert any("N x D" in n for n in d.notes)


def test_missing_train_val_without_class_lists(tmp_path, tiny):
    folder = _folder(tmp_path, tiny, split={"train_loc": None, "val_loc": None})
    d = load_xlsa17(folder)
    assert d.splits["train"] is None and any("will be derived" in n for n in d.notes)


def test_missing_train_val_derived_from_class_lists(tmp_path, tiny):
    folder = _folder(tmp_path, tiny, split={"train_loc": None, "val_loc": None})
    tr = sorted(set(tiny.labels[tiny.splits["train"]]))
    va = sorted(set(tiny.labels[tiny.splits["val"]]))
    (folder / "trainclasses1.txt").write_text("".join(tiny.class_names[i] + "\n" for i in tr))
    (folder / "valclasses1.txt").write_text("".join(tiny.class_names[i] + "\n" for i in va))
    d = load_xlsa17(folder)
    np.testing.assert_array_equal(d.splits["train"], np.sort(tiny.splits["train"]))
    np.testing.assert_array_equal(d.splits["val"], np.sort(tiny.splits["val"]))
    (folder / "valclasses1.txt").write_text("no_such_class\n")
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "valclasses1.txt", "no_such_class", "allclasses_names")


def test_dem_attribute_key(tmp_path, tiny):
    write_dem(tiny, tmp_path / "AwA2_data")
    d = load_dem(tmp_path / "AwA2_data")
    assert d.name == "AwA2" and d.semantic_source == "original_att"
    write_dem(tiny, tmp_path / "CUB_data")
    assert load_dem(tmp_path / "CUB_data").semantic_source == "att"
    assert load_dem(tmp_path / "CUB_data", semantic="original_att").semantic_source == "original_att"


def test_cyclewgan_train_val_by_class_when_rows_do_not_match(tmp_path, tiny):
    write_cyclewgan(tiny, tmp_path)
    with h5py.File(tmp_path / "data.h5", "r+") as fh:
        x = fh["val/X"][()]
        del fh["val/X"]
        fh["val/X"] = x + 1.0  # rows no longer equal any sample
    d = load_cyclewgan(tmp_path)
    assert any("derived by class" in n for n in d.notes)
    assert set(d.labels[d.splits["val"]]) == set(tiny.labels[tiny.splits["val"]])
    assert len(d.splits["val"]) == len(tiny.splits["val"])


def test_cyclewgan_without_optional_groups(tmp_path, tiny):
    write_cyclewgan(tiny, tmp_path)
    with h5py.File(tmp_path / "data.h5", "r+") as fh:
        for g in ("train_val", "val", "name"):
            del fh[g]
    (tmp_path / "knn.h5").unlink()
    d = load_cyclewgan(tmp_path)
    assert d.splits["train"] is None
    assert any("knn.h5 not found" in n for n in d.notes)
    np.testing.assert_allclose(d.class_embeddings, tiny.class_embeddings)


def test_detect_layout(tmp_path, tiny):
    assert detect_layout(write_xlsa17(tiny, tmp_path / "a")) == "xlsa17"
    assert detect_layout(write_dem(tiny, tmp_path / "b")) == "dem"
    assert detect_layout(tmp_path / "b" / "res101.mat") == "dem"
    assert detect_layout(write_cyclewgan(tiny, tmp_path / "c")) == "cyclewgan-h5"
    assert detect_layout(write_npz(tiny, tmp_path / "d" / "x.npz")) == "npz"
    assert detect_layout(tmp_path / "d") == "npz"
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "readme.txt").write_text("hi")
    with pytest.raises(DataError) as e:
        load_from_root(tmp_path / "e")
    _err(e, str(tmp_path / "e"), "att_splits.mat", "data.h5", ".npz", "original_att_splits.mat")


# ----- bad files ------------------------------------------------------------------------------------------

def test_missing_files(tmp_path, tiny):
    with pytest.raises(DataError) as e:
        load_xlsa17(tmp_path / "nope")
    _err(e, "nope", "no such file")
    folder = _folder(tmp_path, tiny)
    (folder / "res101.mat").unlink()
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "res101.mat", "not found")
    with pytest.raises(DataError) as e:
        load_xlsa17(folder, semantic="sent")
    _err(e, "sent_splits.mat", "not found")
    with pytest.raises(DataError) as e:
        load_xlsa17(folder, semantic="word2vec")
    _err(e, "semantic", "word2vec")


def test_not_a_mat_file(tmp_path, tiny):
    folder = _folder(tmp_path, tiny)
    (folder / "res101.mat").write_bytes(os.urandom(3000))
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "res101.mat", "not a readable MATLAB .mat file")


@pytest.mark.parametrize("version", ["5", "7.3"])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.9])
def test_truncated_features_file(tmp_path, tiny, version, fraction):
    folder = _folder(tmp_path, tiny, version=version)
    raw = (folder / "res101.mat").read_bytes()
    (folder / "res101.mat").write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    msg = _err(e, "res101.mat")
    assert "truncated" in msg or "missing" in msg


def test_corrupted_split_file(tmp_path, tiny):
    folder = _folder(tmp_path, tiny)
    raw = bytearray((folder / "att_splits.mat").read_bytes())
    for i in range(200, len(raw), 7):
        raw[i] ^= 0x5A
    (folder / "att_splits.mat").write_bytes(bytes(raw))
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "att_splits.mat")


def test_missing_key_lists_present_keys(tmp_path, tiny):
    folder = _folder(tmp_path, tiny, split={"test_unseen_loc": None})
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "att_splits.mat", "test_unseen_loc", "keys present", "trainval_loc")
    folder = _folder(tmp_path / "b", tiny, feats={"labels": None})
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "res101.mat", "'labels'", "keys present", "features")
    with pytest.raises(DataError) as e:
        load_xlsa17(_folder(tmp_path / "c", tiny), semantic="original_att")
    _err(e, "att_splits.mat", "original_att", "keys present")


def test_row_count_mismatch_names_both_files(tmp_path, tiny):
    keep = tiny.features.shape[0] - 5
    folder = _folder(tmp_path, tiny, feats={"features": tiny.features[:keep].T,
                                            "labels": (tiny.labels[:keep] + 1.0).reshape(-1, 1)})
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "att_splits.mat", "res101.mat", "_loc", f"only {keep} rows")


def test_zero_based_confusion(tmp_path, tiny):
    s = split_file_arrays(tiny)
    shifted = {k: v - 1 for k, v in s.items() if k.endswith("_loc")}  # a file written with 0-based indices
    folder = _folder(tmp_path, tiny, split=shifted)
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "att_splits.mat", "_loc'", "contains index 0", "0-based")
    folder = _folder(tmp_path / "b", tiny, feats={"labels": tiny.labels.reshape(-1, 1).astype(float)})
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "res101.mat", "labels", "0-based")


def test_overlapping_splits(tmp_path, tiny):
    s = split_file_arrays(tiny)
    overlap = np.concatenate([s["test_seen_loc"], s["trainval_loc"][:2]])
    folder = _folder(tmp_path, tiny, split={"test_seen_loc": overlap})
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "att_splits.mat", "test_seen_loc", "both")


def test_nan_features(tmp_path, tiny):
    f = tiny.features.T.copy()
    f[3, 4] = np.nan
    folder = _folder(tmp_path, tiny, feats={"features": f})
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "res101.mat", "'features'", "NaN")


def test_embeddings_wrong_shape(tmp_path, tiny):
    folder = _folder(tmp_path, tiny, split={"att": np.ones((5, tiny.num_classes - 1))})
    with pytest.raises(DataError) as e:
        load_xlsa17(folder)
    _err(e, "att_splits.mat", "allclasses_names")


def test_npz_errors(tmp_path, tiny):
    p = write_npz(tiny, tmp_path / "d.npz")
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files if k != "test_unseen"}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as e:
        load_npz(tmp_path / "bad.npz")
    _err(e, "bad.npz", "test_unseen", "keys present")
    (tmp_path / "cut.npz").write_bytes(p.read_bytes()[:200])
    with pytest.raises(DataError) as e:
        load_from_root(tmp_path / "cut.npz")
    _err(e, "cut.npz")
    arrays = {k: v for k, v in arrays.items()}
    arrays["test_unseen"] = tiny.splits["test_unseen"]
    arrays["features"] = arrays["features"].copy()
    arrays["features"][0, 0] = np.inf
    np.savez(tmp_path / "inf.npz", **arrays)
    with pytest.raises(DataError) as e:
        load_npz(tmp_path / "inf.npz")
    _err(e, "inf.npz", "features", "NaN or inf")


def test_cyclewgan_errors(tmp_path, tiny):
    write_cyclewgan(tiny, tmp_path)
    shutil.copy(tmp_path / "data.h5", tmp_path / "orig.h5")
    with h5py.File(tmp_path / "data.h5", "r+") as fh:  # Y written 0-based everywhere
        for g in ("train", "train_val", "val", "test/seen", "test/unseen"):
            y = fh[f"{g}/Y"][()]
            del fh[f"{g}/Y"]
            fh[f"{g}/Y"] = y - 1
    with pytest.raises(DataError) as e:
        load_cyclewgan(tmp_path)
    _err(e, "data.h5", "train/Y", "0-based")
    shutil.copy(tmp_path / "orig.h5", tmp_path / "data.h5")
    with h5py.File(tmp_path / "data.h5", "r+") as fh:
        del fh["test/unseen"]
    with pytest.raises(DataError) as e:
        load_cyclewgan(tmp_path)
    _err(e, "data.h5", "test/unseen/X", "missing")
    raw = (tmp_path / "orig.h5").read_bytes()
    (tmp_path / "data.h5").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as e:
        load_cyclewgan(tmp_path)
    _err(e, "data.h5", "truncated")


def test_write_layout_unknown(tmp_path, tiny):
    with pytest.raises(DataError):
        write_layout(tiny, "parquet", tmp_path)
