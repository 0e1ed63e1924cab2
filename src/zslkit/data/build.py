"""``zslkit data build``: extracted features + a class table + a class split -> a validated ZSL dataset.

The split has the structure of xlsa17's proposed splits: unseen classes (named, or a random fraction)
give test_unseen; of each seen class a random 20 % of the images is test_seen and the rest trainval;
a random fraction of the seen classes are validation classes (val = their trainval images, train = the
other trainval images). Class embeddings are L2-normalised (``att``; the table as given is kept as
``original_att`` in the xlsa17 layout).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zslkit.data.classtable import align, read_class_table
from zslkit.data.dataset import ZSLDataset
from zslkit.errors import ConfigError, DataError

TEST_SEEN_FRACTION = 0.2


def read_extracted(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str], Path]:
    """(features N x D, 0-based labels, class names, image files, file) from ``features extract`` output."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        candidates = [folder / "res101.mat", folder / "features.npz"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise DataError(folder, None, "no res101.mat or features.npz (the output of zslkit features extract)")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("features", "labels", "class_names") if k not in z]
            if missing:
                raise DataError(path, missing[0], "required key is missing (not written by zslkit features extract?)")
            feats, labels, names = z["features"], z["labels"].astype(np.int64), [str(n) for n in z["class_names"]]
            files = [str(f) for f in z["image_files"]] if "image_files" in z else []
        return feats.astype(np.float32), labels, names, files, path
    from zslkit.data.arrays import read_names
    from zslkit.data.matio import cellstr, read_mat
    from zslkit.data.xlsa17 import read_features

    feats, labels, _ = read_features(path)
    data = read_mat(path)
    files = cellstr(data["image_files"], file=path, key="image_files") if "image_files" in data else []
    names_path = folder / "classes.txt"
    if not names_path.is_file():
        raise DataError(names_path, None, "class names file not found (features extract writes it beside "
                                          "res101.mat; line k names label k)")
    names = read_names(names_path)
    if labels.max() >= len(names):
        raise DataError(path, "labels", f"label {labels.max() + 1} but {names_path.name} names only {len(names)} "
                                        f"classes")
    return feats, labels, names, files, path


def choose_unseen(names: list[str], unseen: list[str] | None, fraction: float | None,
                  rng: np.random.Generator) -> np.ndarray:
    """Global ids of the unseen classes: the named ones, or round(fraction * C) at random (1 .. C - 2)."""
    if unseen is not None:
        lookup = {n: i for i, n in enumerate(names)}
        unknown = [u for u in unseen if u not in lookup]
        if unknown:
            raise ConfigError(f"--unseen names classes that the features do not have: {unknown}; classes: {names}")
        ids = np.unique([lookup[u] for u in unseen])
    else:
        if fraction is None or not 0 < fraction < 1:
            raise ConfigError(f"--unseen-fraction must be in (0, 1), got {fraction}")
        k = min(max(1, int(round(fraction * len(names)))), len(names) - 2)
        ids = np.sort(rng.choice(len(names), size=k, replace=False))
    if len(names) - ids.size < 2:
        raise ConfigError(f"{ids.size} unseen of {len(names)} classes leaves fewer than 2 seen classes (need one for "
                          f"training and one for validation)")
    return ids


def make_splits(labels: np.ndarray, num_classes: int, unseen: np.ndarray, val_fraction: float,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The proposed-split structure (module doc) as 0-based sorted index arrays."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    seen = np.setdiff1d(np.arange(num_classes), unseen)
    trainval, test_seen = [], []
    for c in seen:
        idx = rng.permutation(np.flatnonzero(labels == c))
        if idx.size < 2:
            raise ConfigError(f"seen class {c} has {idx.size} image(s); each seen class needs at least 2 (trainval "
                              f"and test_seen)")
        n_test = max(1, int(round(TEST_SEEN_FRACTION * idx.size)))
        test_seen.append(idx[:n_test])
        trainval.append(idx[n_test:])
    trainval, test_seen = np.sort(np.concatenate(trainval)), np.sort(np.concatenate(test_seen))
    n_val = min(max(1, int(round(val_fraction * seen.size))), seen.size - 1)
    val_classes = rng.choice(seen, size=n_val, replace=False)
    in_val = np.isin(labels[trainval], val_classes)
    return {"trainval": trainval, "train": trainval[~in_val], "val": trainval[in_val], "test_seen": test_seen,
            "test_unseen": np.flatnonzero(np.isin(labels, unseen))}


def build_dataset(features: str | Path, classes: str | Path, *, unseen: list[str] | None = None,
                  unseen_fraction: float | None = None, val_fraction: float = 0.3, seed: int = 0,
                  name: str = "dataset") -> tuple[ZSLDataset, np.ndarray, list[str]]:
    """(validated dataset with L2-normalised class embeddings, the raw aligned table, image files)."""
    if (unseen is None) == (unseen_fraction is None):
        raise ConfigError("give the unseen classes by name (--unseen A,B,C) or as a fraction (--unseen-fraction F)")
    feats, labels, names, files, feat_path = read_extracted(features)
    table_names, matrix = read_class_table(classes)
    raw = align(names, table_names, matrix, table_file=classes, other=f"the features ({feat_path})")
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    if np.any(norms == 0):
        zero = [names[i] for i in np.flatnonzero(norms[:, 0] == 0)]
        raise DataError(classes, None, f"all-zero class vectors cannot be normalised: {zero}")
    rng = np.random.default_rng(seed)
    unseen_ids = choose_unseen(names, unseen, unseen_fraction, rng)
    splits = make_splits(labels, len(names), unseen_ids, val_fraction, rng)
    ds = ZSLDataset(features=feats, labels=labels, class_embeddings=(raw / norms).astype(np.float64),
                    class_names=tuple(names), splits=splits, name=name, semantic_source="att", synthetic=False,
                    source=f"{feat_path} + {classes}", source_files=(str(feat_path), str(classes)),
                    notes=(f"built by zslkit data build (seed {seed}): unseen {[names[i] for i in unseen_ids]}, "
                           f"{int(TEST_SEEN_FRACTION * 100)} % of each seen class as test_seen, validation classes "
                           f"{sorted(set(names[i] for i in labels[splits['val']]))}",))
    return ds, raw, files


def write_built(ds: ZSLDataset, raw: np.ndarray, files: list[str], out: str | Path, layout: str = "xlsa17") -> Path:
    """Write ``ds`` in ``layout``; xlsa17 adds ``original_att`` (the table as given) and ``image_files``."""
    out = Path(out)
    if layout != "xlsa17":
        from zslkit.data.layouts import write_layout

        return write_layout(ds, layout, out)
    from zslkit.data.matio import write_mat
    from zslkit.data.xlsa17 import features_file_arrays, split_file_arrays

    out.mkdir(parents=True, exist_ok=True)
    feats = features_file_arrays(ds) | ({"image_files": list(files)} if files else {})
    write_mat(out / "res101.mat", feats)
    write_mat(out / "att_splits.mat", split_file_arrays(ds) | {"original_att": np.asarray(raw, np.float64).T})
    from zslkit.data.provenance import write_sidecar

    write_sidecar(ds, out, "xlsa17")
    return out
