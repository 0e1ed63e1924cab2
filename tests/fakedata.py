"""Test helpers: generated feature files (``res101.mat``) consistent with the real xlsa17 split files,
and small in-memory datasets for writer round trips. Nothing here is real image data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from zslkit.data.dataset import ZSLDataset
from zslkit.data.matio import cellstr, read_mat, write_mat

SHARED_XLSA17 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xlsa17"
SPLIT_FILES = ("att_splits.mat", "binaryAtt_splits.mat", "sent_splits.mat")


def shared_available() -> bool:
    return (SHARED_XLSA17 / "AWA1" / "att_splits.mat").is_file()


def _class_ids(path: Path, names: list[str]) -> np.ndarray:
    lookup = {n: i for i, n in enumerate(names)}
    return np.array(sorted(lookup[line.strip()] for line in path.read_text().splitlines() if line.strip()))


def _round_robin(classes: np.ndarray, count: int) -> np.ndarray:
    return np.asarray(classes)[np.arange(count) % len(classes)]


def consistent_labels(folder: Path) -> np.ndarray:
    """1-based labels (N,) for the split files in ``folder``: trainval/test_seen images get seen classes,
    test_unseen images unseen classes, train_loc/val_loc images (from any split file there) train/val classes."""
    folder = Path(folder)
    files = [folder / f for f in SPLIT_FILES if (folder / f).is_file()]
    data = read_mat(files[0])
    locs = {k: np.asarray(data[k]).reshape(-1).astype(np.int64) - 1
            for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc")}
    train = val = None
    for f in files:
        d = read_mat(f)
        if "train_loc" in d and "val_loc" in d:
            train = np.asarray(d["train_loc"]).reshape(-1).astype(np.int64) - 1
            val = np.asarray(d["val_loc"]).reshape(-1).astype(np.int64) - 1
            break
    num_classes = np.asarray(data["att"]).shape[1]
    n = int(max(v.max() for v in locs.values())) + 1
    if "allclasses_names" in data and (folder / "testclasses.txt").is_file():
        names = cellstr(data["allclasses_names"])
        unseen = _class_ids(folder / "testclasses.txt", names)
        seen = np.setdiff1d(np.arange(num_classes), unseen)
        tr_cls = _class_ids(folder / "trainclasses1.txt", names)
        va_cls = _class_ids(folder / "valclasses1.txt", names)
    else:  # FLO: no names, no class lists -> standard counts (C/5 unseen, as many val classes)
        n_unseen = max(1, num_classes // 5)
        unseen = np.arange(num_classes - n_unseen, num_classes)
        seen = np.arange(num_classes - n_unseen)
        tr_cls, va_cls = seen[:-n_unseen], seen[-n_unseen:]
    labels = np.full(n, -1, dtype=np.int64)
    labels[locs["test_unseen_loc"]] = _round_robin(unseen, len(locs["test_unseen_loc"]))
    seen_pool = np.concatenate([locs["trainval_loc"], locs["test_seen_loc"]])
    if train is not None:
        for part, classes in ((train, tr_cls), (val, va_cls)):
            for sub in (np.intersect1d(part, locs["trainval_loc"]), np.intersect1d(part, locs["test_seen_loc"])):
                labels[sub] = _round_robin(classes, len(sub))
    for sub in (locs["trainval_loc"], locs["test_seen_loc"]):
        rest = sub[labels[sub] < 0]
        labels[rest] = _round_robin(seen, len(rest))
    assert np.all(labels[seen_pool] >= 0) and np.all(labels >= 0)
    return labels + 1


def write_res101(path: Path, labels_1based: np.ndarray, *, feature_dim: int = 16, seed: int = 0,
                 version: str = "5", layout: str = "DxN", dtype=np.float32) -> Path:
    """A generated res101.mat: random non-negative features (feature_dim x N) and the given labels."""
    rng = np.random.default_rng(seed)
    n = len(labels_1based)
    feats = rng.random((feature_dim, n), dtype=np.float32).astype(dtype)
    if layout == "NxD":
        feats = np.ascontiguousarray(feats.T)
    write_mat(path, {"features": feats, "labels": np.asarray(labels_1based, np.float64).reshape(-1, 1)},
              version=version)
    return Path(path)


def stage_real(dataset: str, dest: Path, *, feature_dim: int = 16, version: str = "5", seed: int = 0) -> Path:
    """Copy the real split/class-list files of ``dataset`` into ``dest/<dataset>`` and write a matching
    generated res101.mat with the real N. Returns the folder."""
    folder = Path(dest) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    for f in (SHARED_XLSA17 / dataset).iterdir():
        shutil.copyfile(f, folder / f.name)
    write_res101(folder / "res101.mat", consistent_labels(folder), feature_dim=feature_dim, version=version,
                 seed=seed)
    return folder


def tiny_dataset(*, n_per_class: int = 6, n_seen: int = 6, n_unseen: int = 3, feature_dim: int = 8,
                 emb_dim: int = 5, with_val: bool = True, seed: int = 0, name: str = "TINY") -> ZSLDataset:
    """A small consistent in-memory dataset (float32-exact values so round trips compare exactly)."""
    rng = np.random.default_rng(seed)
    c = n_seen + n_unseen
    labels = np.repeat(np.arange(c), n_per_class)
    feats = rng.random((labels.size, feature_dim)).astype(np.float32)
    emb = rng.random((c, emb_dim)).astype(np.float32)
    idx = np.arange(labels.size)
    seen_idx = idx[labels < n_seen]
    test_seen = seen_idx[seen_idx % n_per_class == 0]
    trainval = np.setdiff1d(seen_idx, test_seen)
    test_unseen = idx[labels >= n_seen]
    splits = {"trainval": trainval, "test_seen": test_seen, "test_unseen": test_unseen}
    if with_val:
        pool = np.sort(np.concatenate([trainval, test_seen]))
        n_val = max(1, n_seen // 3)
        splits["train"] = pool[labels[pool] < n_seen - n_val]
        splits["val"] = pool[labels[pool] >= n_seen - n_val]
    names = tuple(f"cls{i}+x" for i in range(c))
    return ZSLDataset(features=feats, labels=labels, class_embeddings=emb, class_names=names, splits=splits,
                      name=name, semantic_source="att", source="<tiny>")


def assert_same(a: ZSLDataset, b: ZSLDataset, *, names: bool = True) -> None:
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.class_embeddings, b.class_embeddings)
    for key in ("trainval", "train", "val", "test_seen", "test_unseen"):
        x, y = a.splits.get(key), b.splits.get(key)
        assert (x is None) == (y is None), key
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=key)
    if names:
        assert a.class_names == b.class_names
