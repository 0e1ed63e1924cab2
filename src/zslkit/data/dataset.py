"""The one validated in-memory dataset type that every loader produces and every method consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from zslkit.errors import DataError

SPLIT_NAMES = ("trainval", "train", "val", "test_seen", "test_unseen")
REQUIRED_SPLITS = ("trainval", "test_seen", "test_unseen")


@dataclass(frozen=True, eq=False)
class ZSLDataset:
    """Features, labels, class embeddings and the 0-based split index sets of one benchmark.

    ``labels`` are global class ids, i.e. row indices of ``class_embeddings`` and ``class_names``.
    ``train``/``val`` (the validation-class split of the seen classes) may be ``None`` when the source
    has none; :func:`zslkit.protocol.selection.validation_view` then derives one and says so.
    Construction validates everything; a failure raises :class:`DataError` naming ``source``.
    """

    features: np.ndarray
    labels: np.ndarray
    class_embeddings: np.ndarray
    class_names: tuple[str, ...]
    splits: Mapping[str, np.ndarray | None]
    name: str = "dataset"
    semantic_source: str = "att"
    synthetic: bool = False
    source: str = "<memory>"
    split_sha256: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    source_files: tuple[str, ...] = ()  # the files read (their sha256 goes into what zslkit writes)
    origin: Mapping | None = None  # the provenance record of data written by zslkit (zslkit.data.provenance)

    def __post_init__(self) -> None:
        checked = validate_arrays(self.features, self.labels, self.class_embeddings, self.class_names,
                                  self.splits, source=self.source)
        for key, value in checked.items():
            object.__setattr__(self, key, value)

    # ----- derived facts -------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(self.class_embeddings.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def embedding_dim(self) -> int:
        return int(self.class_embeddings.shape[1])

    @property
    def seen_classes(self) -> np.ndarray:
        """Sorted global ids of the classes with training (trainval) samples."""
        return np.unique(self.labels[self.splits["trainval"]])

    @property
    def unseen_classes(self) -> np.ndarray:
        """Sorted global ids of the classes of the test_unseen samples."""
        return np.unique(self.labels[self.splits["test_unseen"]])

    @property
    def has_validation_split(self) -> bool:
        return self.splits.get("train") is not None and self.splits.get("val") is not None

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, global labels) of one split."""
        idx = self.splits.get(name)
        if idx is None:
            raise DataError(self.source, name, f"split '{name}' is not available in this dataset")
        return self.features[idx], self.labels[idx]

    def with_splits(self, **splits: np.ndarray | None) -> "ZSLDataset":
        """A copy with some index sets replaced (validated again)."""
        new = dict(self.splits)
        new.update(splits)
        return replace(self, splits=new)

    def summary(self) -> dict:
        """Plain-JSON facts about the dataset, for provenance and ``zslkit data info``."""
        sizes = {k: (None if v is None else int(len(v))) for k, v in self.splits.items()}
        out = {
            "name": self.name,
            "synthetic": bool(self.synthetic),
            "source": self.source,
            "semantic_source": self.semantic_source,
            "num_samples": int(self.features.shape[0]),
            "feature_dim": self.feature_dim,
            "embedding_dim": self.embedding_dim,
            "num_classes": self.num_classes,
            "num_seen": int(len(self.seen_classes)),
            "num_unseen": int(len(self.unseen_classes)),
            "split_sizes": sizes,
            "split_sha256": self.split_sha256,
            "split_classes_sha256": self.split_classes_sha256(),
            "notes": list(self.notes),
        }
        if self.origin:
            out["origin"] = dict(self.origin)
        if self.has_validation_split:
            out["num_val_train_classes"] = int(len(np.unique(self.labels[self.splits["train"]])))
            out["num_val_classes"] = int(len(np.unique(self.labels[self.splits["val"]])))
        return out

    def split_classes_sha256(self) -> str:
        """sha256 of the class names of each split (which classes are seen, unseen, validation), so two datasets
        with the same index files but other labels are told apart."""
        import hashlib

        h = hashlib.sha256()
        for key in SPLIT_NAMES:
            idx = self.splits.get(key)
            if idx is not None:
                names = sorted(self.class_names[i] for i in np.unique(self.labels[idx]))
                h.update((key + "\0" + "\0".join(names) + "\n").encode("utf-8"))
        return h.hexdigest()

    def __repr__(self) -> str:
        kind = "synthetic" if self.synthetic else "real"
        return (f"ZSLDataset({self.name!r}, {kind}, N={self.features.shape[0]}, D={self.feature_dim}, "
                f"C={self.num_classes} ({len(self.seen_classes)} seen / {len(self.unseen_classes)} unseen), "
                f"semantic={self.semantic_source!r}, A={self.embedding_dim})")


_INT64_MAX = float(np.iinfo(np.int64).max)


def _asarray(source: str, key: str, value) -> np.ndarray:
    """np.asarray that reports ragged or otherwise unconvertible input as a DataError."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise DataError(source, key, f"cannot be read as an array ({exc})") from None


def check_float32_range(arr, source, key: str) -> None:
    """DataError when finite values would overflow to inf as float32 (|x| > 3.4e38)."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and arr.size:
        with np.errstate(all="ignore"):
            big = np.isfinite(arr) & (np.abs(arr) > np.finfo(np.float32).max)  # NaN/inf are reported elsewhere
        if np.any(big):
            pos = tuple(int(i) for i in np.argwhere(big)[0])
            raise DataError(source, key, f"value {float(arr[pos]):.6g} at index {list(pos)} is too large for "
                            f"float32 (|x| > {np.finfo(np.float32).max:.3g})")


def as_real_float32(arr, source, key: str, what: str) -> np.ndarray:
    """Real numbers (bool/int/float) as contiguous float32; complex, text, dates and values beyond the
    float32 range are DataErrors naming ``source`` and ``key``. Shared by the validator and the loaders."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise DataError(source, key, f"{what} must be real numbers, got dtype {arr.dtype}")
    check_float32_range(arr, source, key)
    return np.ascontiguousarray(arr, dtype=np.float32)


def require_finite(arr: np.ndarray, source, key: str, axes: tuple[str, str] = ("row", "column")) -> None:
    """DataError at the first NaN/inf, naming its position along ``axes``."""
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = ", ".join(f"{a} {int(i)}" for a, i in zip(axes, bad))
        raise DataError(source, key, f"NaN or inf values (first at {where})")


def as_int64(arr, source, key: str, what: str) -> np.ndarray:
    """Integer-valued numbers as int64, or a DataError naming ``source`` and ``key`` (text, NaN/inf,
    non-integers, or values beyond the int64 range). Shared by the validator and the loaders."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "iuf":
        raise DataError(source, key, f"{what} must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind in "uf" and arr.size:
        if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))):
            raise DataError(source, key, f"{what} hold NaN, inf or non-integer values")
        largest = float(np.max(np.abs(arr.astype(np.float64))))
        if largest >= _INT64_MAX:
            raise DataError(source, key, f"{what} hold values beyond the int64 range (largest |value| "
                            f"{largest:.6g})")
    return arr.astype(np.int64)


def _as_index(source: str, key: str, value, n: int) -> np.ndarray:
    arr = _asarray(source, key, value)
    if arr.dtype == bool:
        if arr.ndim != 1 or arr.shape[0] != n:
            raise DataError(source, key, f"a boolean mask must have one entry per sample ({n}), got shape {arr.shape}")
        arr = np.flatnonzero(arr)
    arr = as_int64(arr.reshape(-1), source, key, "index set")
    if arr.size == 0:
        raise DataError(source, key, "split is empty")
    if arr.min() < 0 or arr.max() >= n:
        raise DataError(source, key,
                        f"indices out of range: found [{arr.min()}, {arr.max()}] but there are {n} samples "
                        f"(valid 0-based range 0..{n - 1})")
    if np.unique(arr).size != arr.size:
        raise DataError(source, key, f"{arr.size - np.unique(arr).size} duplicated indices")
    return arr


def validate_arrays(features, labels, class_embeddings, class_names, splits, *, source: str = "<memory>") -> dict:
    """Check every invariant of a dataset; return the normalised arrays (float32 / int64 / tuple).

    Raises :class:`DataError` naming ``source``, the offending key and the problem.
    """
    feats = _asarray(source, "features", features)
    if feats.ndim != 2:
        raise DataError(source, "features", f"expected a 2-D (samples x dims) array, got shape {feats.shape}")
    if feats.shape[0] == 0 or feats.shape[1] == 0:
        raise DataError(source, "features", f"empty feature matrix of shape {feats.shape}")
    feats = as_real_float32(feats, source, "features", "features")
    require_finite(feats, source, "features")
    n = feats.shape[0]

    emb = _asarray(source, "class_embeddings", class_embeddings)
    if emb.ndim != 2 or emb.shape[0] == 0 or emb.shape[1] == 0:
        raise DataError(source, "class_embeddings",
                        f"expected a non-empty 2-D (classes x dims) array, got shape {emb.shape}")
    emb = as_real_float32(emb, source, "class_embeddings", "embeddings")
    require_finite(emb, source, "class_embeddings", axes=("class", "dim"))
    num_classes = emb.shape[0]

    lab = _asarray(source, "labels", labels).reshape(-1)
    if lab.shape[0] != n:
        raise DataError(source, "labels", f"{lab.shape[0]} labels but {n} feature rows")
    lab = as_int64(lab, source, "labels", "labels")
    if lab.min() < 0 or lab.max() >= num_classes:
        raise DataError(source, "labels",
                        f"label ids span [{lab.min()}, {lab.max()}] but there are {num_classes} class embeddings "
                        f"(expected 0-based ids 0..{num_classes - 1})")

    if class_names is None:
        class_names = range(num_classes)
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__") or (
            isinstance(class_names, np.ndarray) and class_names.ndim != 1):
        raise DataError(source, "class_names", f"expected a list of names, got {type(class_names).__name__}")
    names = tuple(str(x) for x in class_names)
    if len(names) != num_classes:
        raise DataError(source, "class_names", f"{len(names)} class names but {num_classes} class embeddings")
    if len(set(names)) != len(names):  # per-class results are keyed by name: two classes would merge
        seen_names: set[str] = set()
        dupes = sorted({x for x in names if x in seen_names or seen_names.add(x)})
        raise DataError(source, "class_names", f"class names appear more than once: {dupes[:5]}"
                                               f"{' ...' if len(dupes) > 5 else ''} (each class needs its own name)")

    if not isinstance(splits, Mapping):
        raise DataError(source, "splits", "splits must be a mapping of name -> index array")
    unknown = set(splits) - set(SPLIT_NAMES)
    if unknown:
        raise DataError(source, "splits", f"unknown split names {sorted(unknown)}; allowed: {list(SPLIT_NAMES)}")
    checked: dict[str, np.ndarray | None] = {}
    for key in SPLIT_NAMES:
        value = splits.get(key)
        if value is None:
            if key in REQUIRED_SPLITS:
                raise DataError(source, key, "required split is missing")
            checked[key] = None
            continue
        checked[key] = _as_index(source, key, value, n)
    if (checked["train"] is None) != (checked["val"] is None):
        missing = "train" if checked["train"] is None else "val"
        raise DataError(source, missing, "'train' and 'val' must be given together (or both left out)")

    for a, b in (("trainval", "test_seen"), ("trainval", "test_unseen"), ("test_seen", "test_unseen")):
        common = np.intersect1d(checked[a], checked[b])
        if common.size:
            raise DataError(source, b, f"{common.size} samples are in both '{a}' and '{b}' (e.g. index {common[0]})")

    seen = np.unique(lab[checked["trainval"]])
    unseen = np.unique(lab[checked["test_unseen"]])
    leaked = np.intersect1d(seen, unseen)
    if leaked.size:
        raise DataError(source, "trainval",
                        f"{leaked.size} unseen classes (test_unseen labels) have training samples in trainval, "
                        f"e.g. class {leaked[0]} ({names[leaked[0]]!r})")
    ts_classes = np.unique(lab[checked["test_seen"]])
    stray = np.setdiff1d(ts_classes, seen)
    if stray.size:
        raise DataError(source, "test_seen",
                        f"{stray.size} test_seen classes have no trainval samples, e.g. class {stray[0]} "
                        f"({names[stray[0]]!r})")
    if checked["train"] is not None:
        common = np.intersect1d(checked["train"], checked["val"])
        if common.size:
            raise DataError(source, "val", f"{common.size} samples are in both 'train' and 'val'")
        tr_cls = np.unique(lab[checked["train"]])
        va_cls = np.unique(lab[checked["val"]])
        both = np.intersect1d(tr_cls, va_cls)
        if both.size:
            raise DataError(source, "val", f"{both.size} classes appear in both 'train' and 'val'; the validation "
                            f"split must be by class (e.g. class {both[0]})")
        outside = np.setdiff1d(np.concatenate([tr_cls, va_cls]), seen)
        if outside.size:
            raise DataError(source, "val", f"{outside.size} train/val classes are not seen classes, e.g. class "
                            f"{outside[0]} ({names[outside[0]]!r}); train/val must split the seen classes")
    for arr in (lab, *[v for v in checked.values() if v is not None]):
        arr.flags.writeable = False  # labels and splits cannot be changed behind the checks' back
    return {"features": feats, "labels": lab, "class_embeddings": emb, "class_names": names,
            "splits": MappingProxyType(checked)}
