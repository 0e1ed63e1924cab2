"""Round trips: every writer, then the matching loader, gives identical arrays."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from fakedata import assert_same, shared_available, stage_real, tiny_dataset
from zslkit.data.cyclewgan_h5 import load_cyclewgan, write_cyclewgan
from zslkit.data.dem import load_dem, write_dem
from zslkit.data.layouts import load_from_root, write_layout
from zslkit.data.matio import read_mat, write_mat
from zslkit.data.npz import load_npz, write_npz
from zslkit.data.xlsa17 import load_xlsa17, write_xlsa17


@pytest.fixture(params=[True, False], ids=["with-val", "no-val"])
def tiny(request):
    return tiny_dataset(with_val=request.param)


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_matio_round_trip(tmp_path, version):
    data = {"a": np.arange(12, dtype=np.float64).reshape(3, 4), "b": np.arange(5, dtype=np.uint16).reshape(-1, 1),
            "c": np.ones((2, 3), np.float32), "names": ["x+y", "z", "ünï"], "s": "hello"}
    write_mat(tmp_path / "f.mat", data, version=version)
    back = read_mat(tmp_path / "f.mat")
    for key in ("a", "b", "c"):
        assert back[key].dtype == data[key].dtype and back[key].shape == data[key].shape
        np.testing.assert_array_equal(back[key], data[key])
    assert list(back["names"]) == data["names"] and back["s"] == "hello"


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_xlsa17_round_trip(tmp_path, tiny, version):
    write_xlsa17(tiny, tmp_path / "TINY", version=version)
    raw = read_mat(tmp_path / "TINY" / "att_splits.mat")
    assert raw["att"].shape == (tiny.embedding_dim, tiny.num_classes)  # attr_dim x C
    assert raw["trainval_loc"].shape == (len(tiny.splits["trainval"]), 1) and raw["trainval_loc"].min() >= 1
    feats = read_mat(tmp_path / "TINY" / "res101.mat")
    assert feats["features"].shape == (tiny.feature_dim, len(tiny.labels))  # D x N
    assert feats["labels"].shape == (len(tiny.labels), 1) and feats["labels"].min() == 1
    assert_same(tiny, load_xlsa17(tmp_path / "TINY"))


def test_dem_round_trip(tmp_path, tiny):
    write_dem(tiny, tmp_path / "SUN_data")
    raw = read_mat(tmp_path / "SUN_data" / "original_att_splits.mat")
    np.testing.assert_array_equal(raw["att"], raw["original_att"])
    assert_same(tiny, load_dem(tmp_path / "SUN_data"))


def test_npz_round_trip(tmp_path, tiny):
    write_npz(tiny, tmp_path / "t.npz")
    back = load_npz(tmp_path / "t.npz")
    assert_same(tiny, back)
    assert back.name == tiny.name and back.semantic_source == tiny.semantic_source


def test_cyclewgan_round_trip(tmp_path, tiny):
    write_cyclewgan(tiny, tmp_path)
    back = load_cyclewgan(tmp_path)
    # the layout stores samples group by group: trainval, test_seen, test_unseen
    order = np.concatenate([tiny.splits[k] for k in ("trainval", "test_seen", "test_unseen")])
    np.testing.assert_array_equal(back.features, tiny.features[order])
    np.testing.assert_array_equal(back.labels, tiny.labels[order])
    np.testing.assert_array_equal(back.class_embeddings, tiny.class_embeddings)
    assert back.class_names == tiny.class_names and back.name == tiny.name
    inverse = np.empty(len(order), np.int64)
    inverse[order] = np.arange(len(order))
    for key in ("trainval", "train", "val", "test_seen", "test_unseen"):
        if tiny.splits[key] is None:
            assert back.splits[key] is None
        else:
            np.testing.assert_array_equal(back.splits[key], inverse[tiny.splits[key]])
    # every field of the reference layout
    emb = tiny.class_embeddings.astype(np.float64)
    with h5py.File(tmp_path / "data.h5", "r") as fh:
        tv = tiny.splits["trainval"]
        np.testing.assert_array_equal(fh["train/X"][()], tiny.features[tv])
        np.testing.assert_array_equal(fh["train/Y"][()], tiny.labels[tv] + 1)
        np.testing.assert_array_equal(fh["train/y"][()], tiny.labels[tv])
        np.testing.assert_array_equal(fh["train/A/continuous"][()], emb[tiny.labels[tv]])
        np.testing.assert_array_equal(fh["train/A/binary"][()], (emb >= emb.mean())[tiny.labels[tv]].astype(float))
        assert ("train_val" in fh) == tiny.has_validation_split
        assert fh["name"][()].decode() == tiny.name
    with h5py.File(tmp_path / "knn.h5", "r") as fh:
        np.testing.assert_array_equal(fh["openval/ids"][()], tiny.seen_classes + 1)
        np.testing.assert_array_equal(fh["zsl/ys"][()], tiny.unseen_classes)
        np.testing.assert_array_equal(fh["zsl/data"][()], emb[tiny.unseen_classes])
        assert fh["openset/labels"][0].decode() == tiny.class_names[0]
        j = 2
        cid = int(fh["zsl/ids"][j])
        assert int(fh[f"zsl/knn2id/{j}"][()]) == cid
        assert fh[f"zsl/id2knn/{cid}"][()].decode() == str(j)
        assert fh[f"zsl/id2class/{cid}"][()].decode() == tiny.class_names[cid - 1]


@pytest.mark.parametrize("layout", ["xlsa17", "dem", "cyclewgan-h5", "npz"])
def test_write_layout_dispatch(tmp_path, layout):
    ds = tiny_dataset()
    out = write_layout(ds, layout, tmp_path / "out")
    back = load_from_root(out)
    assert back.features.shape == ds.features.shape and back.num_classes == ds.num_classes


def test_writes_are_atomic_no_temp_left(tmp_path):
    write_xlsa17(tiny_dataset(), tmp_path)
    write_cyclewgan(tiny_dataset(), tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(not shared_available(), reason="real split files (../shared/data/xlsa17) not available")
def test_real_split_round_trip_via_every_layout(tmp_path):
    """APY (derived train/val) through every writer and back."""
    d = load_xlsa17(stage_real("APY", tmp_path / "src", feature_dim=4))
    for layout in ("xlsa17", "dem", "npz"):
        back = load_from_root(write_layout(d, layout, tmp_path / layout))
        assert_same(d, back)
    back = load_from_root(write_layout(d, "cyclewgan-h5", tmp_path / "h5"))
    assert back.summary()["split_sizes"] == d.summary()["split_sizes"]
