"""The xlsa17 layout (Xian et al., "Zero-Shot Learning - the Good, the Bad and the Ugly").

A dataset folder (``AWA1``, ``CUB``, ...) holds::

    res101.mat            features  (2048 x N, float)   labels (N x 1, 1-based class ids)
    att_splits.mat        att (A x C, L2-normalised columns), original_att (A x C), allclasses_names (C x 1 cell),
                          trainval_loc, train_loc, val_loc, test_seen_loc, test_unseen_loc (1-based column vectors)
    binaryAtt_splits.mat  (AWA2) the same splits, att = 0/1 attributes
    sent_splits.mat       (CUB) the same splits, att = 1024-d sentence embeddings (not normalised)
    trainclasses1.txt / valclasses1.txt ...  class lists (used to derive train/val when a copy lacks them)

Indices are converted to 0-based exactly once, here. Both MATLAB v5 and v7.3 files are read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zslkit.data.dataset import ZSLDataset, as_int64, check_float32_range
from zslkit.data.matio import cellstr, file_sha256, read_mat, write_mat
from zslkit.errors import DataError

__all__ = ["SEMANTICS", "SPLIT_FILES", "LOC_KEYS", "load_xlsa17", "write_xlsa17", "load_pair", "read_features"]

#: semantic source -> (split file, key holding the A x C matrix)
SEMANTICS: dict[str, tuple[str, str]] = {
    "att": ("att_splits.mat", "att"),
    "original_att": ("att_splits.mat", "original_att"),
    "binary_att": ("binaryAtt_splits.mat", "att"),
    "sent": ("sent_splits.mat", "att"),
}
SPLIT_FILES = ("att_splits.mat", "binaryAtt_splits.mat", "sent_splits.mat")
#: ZSLDataset split name -> key in the split file
LOC_KEYS = {"trainval": "trainval_loc", "train": "train_loc", "val": "val_loc",
            "test_seen": "test_seen_loc", "test_unseen": "test_unseen_loc"}
FEATURES_FILE = "res101.mat"


# ----- features file -------------------------------------------------------------------------------------

def read_features(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features N x D, 0-based labels, notes) from an xlsa17 ``res101.mat``."""
    notes: list[str] = []
    data = read_mat(path, ["features", "labels"])
    labels = np.asarray(data["labels"])
    if labels.dtype == object or labels.dtype.kind not in "iuf" or labels.size == 0:
        raise DataError(str(path), "labels", f"expected a non-empty numeric N x 1 vector, got dtype {labels.dtype} "
                                             f"shape {labels.shape}")
    if labels.ndim > 2 or (labels.ndim == 2 and min(labels.shape) != 1):
        raise DataError(str(path), "labels", f"expected an N x 1 vector, got shape {labels.shape}")
    labels = as_int64(labels.reshape(-1), path, "labels", "labels")
    if labels.min() == 0:
        raise DataError(str(path), "labels", "contains class id 0, but xlsa17 labels are 1-based (1..C); this "
                                             "file looks 0-based (written by a tool that did not add 1?)")
    if labels.min() < 0:
        raise DataError(str(path), "labels", f"negative class id {labels.min()}")
    n = labels.size
    feats = np.asarray(data["features"])
    if feats.ndim != 2 or feats.dtype.kind not in "iufb":
        raise DataError(str(path), "features", f"expected a 2-D real numeric matrix (D x N), got shape "
                                               f"{feats.shape} dtype {feats.dtype}")
    check_float32_range(feats, path, "features")
    if feats.shape[1] == n:
        feats = feats.T  # the xlsa17 convention: D x N (also taken when square)
    elif feats.shape[0] == n:
        notes.append(f"{path.name}: 'features' stored N x D ({feats.shape[0]} x {feats.shape[1]}), "
                     f"not the usual D x N; read as N x D")
    else:
        raise DataError(str(path), "features", f"shape {feats.shape} does not match the {n} labels "
                                               f"(expected D x {n})")
    if feats.dtype.kind in "iuf" and feats.dtype != np.float32:
        feats = feats.astype(np.float32)  # what ZSLDataset keeps; converting here saves a full-size copy
    return np.ascontiguousarray(feats), labels - 1, notes


# ----- split file ----------------------------------------------------------------------------------------

def _locs(split_path: Path, data: dict, n: int, features_path: Path) -> dict[str, np.ndarray | None]:
    out: dict[str, np.ndarray | None] = {}
    for split, key in LOC_KEYS.items():
        if key not in data:
            if split in ("trainval", "test_seen", "test_unseen"):
                present = sorted(data)
                raise DataError(str(split_path), key, f"required key is missing; keys present: {present}")
            out[split] = None
            continue
        arr = np.asarray(data[key])
        if arr.dtype == object or arr.dtype.kind not in "iuf":
            raise DataError(str(split_path), key, f"expected an integer index vector, got dtype {arr.dtype}")
        arr = arr.reshape(-1)
        if arr.size == 0:
            raise DataError(str(split_path), key, "index vector is empty")
        arr = as_int64(arr, split_path, key, "indices")
        if arr.min() == 0:
            raise DataError(str(split_path), key, "contains index 0, but xlsa17 indices are 1-based (1..N); this "
                                                  "file looks 0-based")
        if arr.min() < 0:
            raise DataError(str(split_path), key, f"negative index {arr.min()}")
        if arr.max() > n:
            raise DataError(str(split_path), key,
                            f"largest index is {arr.max()} but {features_path} has only {n} rows: the split file "
                            f"and the features file disagree (different datasets or a truncated res101.mat?)")
        out[split] = arr - 1
    return out


def _class_names(split_path: Path, data: dict, num_classes: int, notes: list[str]) -> list[str]:
    if "allclasses_names" in data:
        names = cellstr(data["allclasses_names"], file=split_path, key="allclasses_names")
        if len(names) != num_classes:
            raise DataError(str(split_path), "allclasses_names",
                            f"{len(names)} class names but the embedding matrix has {num_classes} columns")
        return names
    notes.append(f"{split_path.name} has no 'allclasses_names'; classes are named class_000..class_"
                 f"{num_classes - 1:03d} by column of the embedding matrix")
    return [f"class_{i:03d}" for i in range(num_classes)]


def read_class_list(path: Path, names: list[str], allowed=None,
                    unknown: str = "class name is not in the split file's 'allclasses_names'") -> np.ndarray:
    """The sorted class ids of an xlsa17 class list (``trainclasses1.txt`` ...), one name a line; a name outside
    ``names`` (or whose id is not in ``allowed``) is a DataError with the problem ``unknown``."""
    lookup = {name: i for i, name in enumerate(names)}
    ids = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        name = line.strip()
        if not name:
            continue
        if name not in lookup or (allowed is not None and lookup[name] not in allowed):
            raise DataError(str(path), name, unknown)
        ids.append(lookup[name])
    if not ids:
        raise DataError(str(path), None, "class list is empty")
    return np.array(sorted(set(ids)), dtype=np.int64)


def _derive_train_val(split_path: Path, split_data: dict, splits: dict, labels: np.ndarray,
                      names: list[str], has_names: bool, notes: list[str]) -> None:
    """Fill splits['train'/'val'] in place when the split file lacks them (see module doc)."""
    folder = split_path.parent
    # 1. a sibling split file of the same benchmark that has them (CUB: sent_splits.mat)
    for sibling_name in SPLIT_FILES:
        sibling = folder / sibling_name
        if sibling.resolve() == split_path.resolve() or not sibling.is_file():
            continue
        try:
            other = read_mat(sibling)
        except DataError:
            continue
        if not all(k in other for k in LOC_KEYS.values()):
            continue
        try:
            same = all(np.array_equal(as_int64(np.asarray(other[LOC_KEYS[s]]).reshape(-1), sibling, LOC_KEYS[s],
                                               "indices"), splits[s] + 1)
                       for s in ("trainval", "test_seen", "test_unseen"))
        except (DataError, TypeError, ValueError):
            same = False  # a sibling with unreadable index arrays is not "the same split"
        if not same:
            continue
        n = labels.size
        try:
            extra = _locs(sibling, {k: other[k] for k in ("train_loc", "val_loc", "trainval_loc", "test_seen_loc",
                                                         "test_unseen_loc")}, n, split_path)
        except DataError:
            continue
        splits["train"], splits["val"] = extra["train"], extra["val"]
        notes.append(f"{split_path.name} has no train_loc/val_loc; taken from {sibling_name} beside it "
                     f"(its trainval/test_seen/test_unseen arrays are identical)")
        return
    # 2. class lists trainclasses1.txt / valclasses1.txt
    tr_file, va_file = folder / "trainclasses1.txt", folder / "valclasses1.txt"
    if has_names and tr_file.is_file() and va_file.is_file():
        tr_cls = read_class_list(tr_file, names)
        va_cls = read_class_list(va_file, names)
        pool = np.sort(np.concatenate([splits["trainval"], splits["test_seen"]]))
        train = pool[np.isin(labels[pool], tr_cls)]
        val = pool[np.isin(labels[pool], va_cls)]
        if train.size == 0 or val.size == 0:
            raise DataError(str(va_file if val.size == 0 else tr_file), None,
                            "none of the trainval/test_seen images belong to these classes; cannot derive "
                            "train/val (class list of another dataset?)")
        splits["train"], splits["val"] = train, val
        notes.append(f"{split_path.name} has no train_loc/val_loc; derived from trainclasses1.txt/valclasses1.txt "
                     f"({len(tr_cls)}/{len(va_cls)} classes): all trainval and test_seen images of those classes, "
                     f"as in the original xlsa17 files")
        return
    notes.append(f"{split_path.name} has no train_loc/val_loc and no class lists beside it: no validation split; "
                 f"validation classes will be derived from the seen classes when needed")


def load_pair(features_path: Path, split_path: Path, *, embedding_key: str, semantic_source: str,
              name: str, extra_notes: list[str] | None = None, derive: bool = True) -> ZSLDataset:
    """Build a ZSLDataset from a ``res101.mat`` + split file pair (shared by the xlsa17 and DEM layouts)."""
    features_path, split_path = Path(features_path), Path(split_path)
    notes = list(extra_notes or [])
    feats, labels, fnotes = read_features(features_path)
    notes += fnotes
    split_data = read_mat(split_path)
    if embedding_key not in split_data:
        raise DataError(str(split_path), embedding_key,
                        f"required key is missing; keys present: {sorted(split_data)}")
    emb = np.asarray(split_data[embedding_key])
    if emb.ndim != 2 or emb.dtype == object or emb.dtype.kind not in "iufb":
        raise DataError(str(split_path), embedding_key, f"expected a numeric attr_dim x C matrix, got shape "
                                                        f"{emb.shape} dtype {emb.dtype}")
    check_float32_range(emb, split_path, embedding_key)
    emb = emb.T.astype(np.float64)
    splits = _locs(split_path, split_data, labels.size, features_path)
    used = np.unique(np.concatenate([v for v in splits.values() if v is not None]))
    if used.size < labels.size:
        notes.append(f"{features_path.name} has {labels.size} rows but the split file uses only {used.size} of them "
                     f"(largest index {int(used.max()) + 1}); the other rows are ignored - check that both files are "
                     f"from the same dataset")
    has_names = "allclasses_names" in split_data
    names = _class_names(split_path, split_data, emb.shape[0], notes)
    if embedding_key == "original_att":
        missing = int(np.sum(emb == -1))
        if missing:
            notes.append(f"original_att holds {missing} entries equal to -1 (missing values in the source); kept as is")
    if splits["train"] is None and derive:
        _derive_train_val(split_path, split_data, splits, labels, names, has_names, notes)
    norms = np.linalg.norm(emb, axis=1)
    if semantic_source != "binary_att" and norms.size and not np.allclose(norms, 1.0, atol=1e-4):
        notes.append(f"class embeddings ('{embedding_key}') are not L2-normalised (norms "
                     f"{norms.min():.3g}..{norms.max():.3g})")
    from zslkit.data import provenance

    ds = construct(features=feats, labels=labels, class_embeddings=emb, class_names=names, splits=splits,
                   name=name, semantic_source=semantic_source, source=f"{features_path} + {split_path}",
                   split_sha256=file_sha256(split_path), notes=tuple(notes),
                   source_files=(str(features_path), str(split_path)),
                   features_path=features_path, split_path=split_path, embedding_key=embedding_key)
    record, where = provenance.read_sidecar(split_path.parent)
    return provenance.apply(ds, record, where)


def construct(*, features_path: Path, split_path: Path, embedding_key: str, **kwargs) -> ZSLDataset:
    """ZSLDataset(...) whose validation errors name the actual file and key."""
    try:
        return ZSLDataset(synthetic=False, **kwargs)
    except DataError as exc:
        key = exc.key
        if key in ("features", "labels"):
            raise DataError(str(features_path), key, exc.problem) from None
        if key == "class_embeddings":
            raise DataError(str(split_path), embedding_key, exc.problem) from None
        if key == "class_names":
            raise DataError(str(split_path), "allclasses_names", exc.problem) from None
        if key in LOC_KEYS:
            hint = ""
            if "in both" in exc.problem or "unseen classes" in exc.problem or "test_seen classes" in exc.problem:
                hint = "; if the split file was written with 0-based indices, every index is off by one"
            raise DataError(str(split_path), LOC_KEYS[key],
                            f"{exc.problem} (labels from {features_path}){hint}") from None
        raise


# ----- public loader / writer ----------------------------------------------------------------------------

def _resolve(folder_or_file: str | Path, semantic: str, features_file) -> tuple[Path, Path]:
    path = Path(folder_or_file)
    if not path.exists():
        raise DataError(str(path), None, "no such file or folder")
    split_name = SEMANTICS[semantic][0]
    if path.is_dir():
        folder, split_path = path, path / split_name
    elif path.name in SPLIT_FILES or path.name.endswith("_splits.mat"):
        folder, split_path = path.parent, path
    else:
        folder, split_path = path.parent, path.parent / split_name
        features_file = features_file or path
    features_path = Path(features_file) if features_file else folder / FEATURES_FILE
    if not split_path.is_file():
        present = sorted(p.name for p in folder.glob("*.mat"))
        raise DataError(str(split_path), None, f"split file not found (semantic '{semantic}' needs {split_name}); "
                                               f".mat files in {folder}: {present}")
    if not features_path.is_file():
        raise DataError(str(features_path), None, "features file not found (xlsa17 needs res101.mat beside the "
                                                  "split file, or pass features_file=)")
    return features_path, split_path


def load_xlsa17(folder_or_file: str | Path, semantic: str = "att", features_file: str | Path | None = None,
                name: str | None = None) -> ZSLDataset:
    """Load an xlsa17 dataset folder (or one of its files) as a :class:`ZSLDataset`.

    ``semantic``: ``att`` (att_splits.mat ``att``), ``original_att`` (att_splits.mat ``original_att``),
    ``binary_att`` (binaryAtt_splits.mat) or ``sent`` (sent_splits.mat, CUB sentences).
    """
    semantic = semantic or "att"
    if semantic not in SEMANTICS:
        raise DataError(str(folder_or_file), "semantic", f"unknown semantic source {semantic!r}; "
                                                         f"choose one of {list(SEMANTICS)}")
    features_path, split_path = _resolve(folder_or_file, semantic, features_file)
    if name is None:
        name = split_path.parent.name or "dataset"
    key = SEMANTICS[semantic][1]
    return load_pair(features_path, split_path, embedding_key=key, semantic_source=semantic, name=name)


def index_dtype(n: int):
    return np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32


def split_file_arrays(dataset: ZSLDataset, embedding_keys=("att",)) -> dict:
    """The arrays of an xlsa17-style split file for ``dataset`` (1-based column vectors)."""
    n = dataset.features.shape[0]
    out: dict = {"allclasses_names": list(dataset.class_names)}
    emb = np.asarray(dataset.class_embeddings, dtype=np.float64).T
    for key in embedding_keys:
        out[key] = emb
    for split, key in LOC_KEYS.items():
        idx = dataset.splits.get(split)
        if idx is not None:
            out[key] = (np.asarray(idx, dtype=np.int64) + 1).astype(index_dtype(n)).reshape(-1, 1)
    return out


def features_file_arrays(dataset: ZSLDataset) -> dict:
    return {"features": np.ascontiguousarray(dataset.features.T),
            "labels": (dataset.labels.astype(np.float64) + 1).reshape(-1, 1)}


def write_xlsa17(dataset: ZSLDataset, folder: str | Path, *, version: str = "5",
                 split_file: str = "att_splits.mat") -> Path:
    """Write ``res101.mat`` + ``att_splits.mat`` (v5 by default, ``version="7.3"`` for HDF5) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_mat(folder / FEATURES_FILE, features_file_arrays(dataset), version=version)
    write_mat(folder / split_file, split_file_arrays(dataset), version=version)
    from zslkit.data.provenance import write_sidecar

    write_sidecar(dataset, folder, "xlsa17")
    return folder
