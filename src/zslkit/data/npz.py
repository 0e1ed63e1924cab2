"""A plain ``.npz`` layout for users' own data (everything 0-based, samples in rows).

Required keys:

==================  ==========  ===============================================================
``features``        (N, D)      float features, one row per sample
``labels``          (N,)        int, 0-based global class ids (rows of ``class_embeddings``)
``class_embeddings`` (C, A)     float, one row per class (attributes, text embeddings, ...)
``trainval``        (n,)        int, 0-based sample indices of the seen-class training samples
``test_seen``       (n,)        int, 0-based sample indices of the seen-class test samples
``test_unseen``     (n,)        int, 0-based sample indices of the unseen-class test samples
==================  ==========  ===============================================================

Optional: ``train`` and ``val`` (together: a by-class validation split of the seen classes),
``class_names`` (C,) str, ``name`` () str, ``semantic_source`` () str, ``zslkit_provenance`` () str (the
record of :mod:`zslkit.data.provenance`: synthetic or real, sources; written by zslkit). Files are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from zslkit.data.dataset import ZSLDataset, check_float32_range
from zslkit.errors import DataError
from zslkit.runs import atomic_write_bytes

__all__ = ["REQUIRED_KEYS", "OPTIONAL_KEYS", "load_npz", "write_npz"]

REQUIRED_KEYS = ("features", "labels", "class_embeddings", "trainval", "test_seen", "test_unseen")
OPTIONAL_KEYS = ("train", "val", "class_names", "name", "semantic_source", "zslkit_provenance")


def load_npz(path: str | Path, *, name: str | None = None, semantic: str | None = None) -> ZSLDataset:
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "file not found")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            for key in REQUIRED_KEYS:
                if key not in keys:
                    raise DataError(str(path), key, f"required key is missing; keys present: {sorted(keys)}")
            for key in keys:
                try:
                    arrays[key] = npz[key]
                except ValueError as exc:
                    raise DataError(str(path), key, f"cannot read without pickle (object arrays are not "
                                                    f"allowed): {exc}") from None
                except Exception as exc:
                    raise DataError(str(path), key, f"cannot read (truncated or corrupted?): "
                                                    f"{type(exc).__name__}: {exc}") from None
    except DataError:
        raise
    except Exception as exc:
        raise DataError(str(path), None, f"not a readable .npz file (truncated or corrupted?): "
                                         f"{type(exc).__name__}: {exc}") from None
    unknown = sorted(set(arrays) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    notes = [f"ignored unknown keys {unknown}"] if unknown else []
    emb = arrays["class_embeddings"]
    names = arrays.get("class_names")
    if names is None:
        names = [f"class_{i:03d}" for i in range(emb.shape[0] if emb.ndim else 0)]
    else:
        if names.dtype.kind not in "US":
            raise DataError(str(path), "class_names", f"expected strings, got dtype {names.dtype}")
        names = [_decode(x) for x in np.asarray(names).reshape(-1)]
    if emb.ndim == 2 and len(names) != emb.shape[0]:
        raise DataError(str(path), "class_names", f"{len(names)} class names but {emb.shape[0]} class embeddings")
    splits = {k: arrays.get(k) for k in ("trainval", "train", "val", "test_seen", "test_unseen")}
    digest = hashlib.sha256()
    for k, v in splits.items():
        if v is not None:
            digest.update(k.encode() + np.ascontiguousarray(v).tobytes())
    ds_name = name or (_one_str(arrays["name"], path, "name") if "name" in arrays else path.stem)
    sem = semantic or (_one_str(arrays["semantic_source"], path, "semantic_source") if "semantic_source" in arrays
                       else "att")
    for key in ("features", "class_embeddings"):
        if arrays[key].dtype.kind not in "iufb":  # complex would silently lose its imaginary part
            raise DataError(str(path), key, f"expected real numbers, got dtype {arrays[key].dtype}")
        check_float32_range(arrays[key], path, key)
    if splits["train"] is None and splits["val"] is None:
        notes.append("no train/val keys: no validation split; validation classes will be derived when needed")
    notes.append("split_sha256 is the sha256 of the split index arrays in the .npz")
    from zslkit.data import provenance

    record = (provenance.parse(_one_str(arrays[provenance.NPZ_KEY], path, provenance.NPZ_KEY), str(path),
                               provenance.NPZ_KEY) if provenance.NPZ_KEY in arrays else None)
    ds = ZSLDataset(features=arrays["features"], labels=arrays["labels"], class_embeddings=emb,
                    class_names=tuple(names), splits=splits, name=ds_name, semantic_source=sem, synthetic=False,
                    source=str(path), split_sha256=digest.hexdigest(), notes=tuple(notes), source_files=(str(path),))
    return provenance.apply(ds, record, f"{path.name}: {provenance.NPZ_KEY}")


def _decode(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _one_str(value: np.ndarray, path: Path, key: str) -> str:
    value = np.asarray(value)
    if value.dtype.kind not in "US" or value.size != 1:
        raise DataError(str(path), key, f"expected one string, got shape {value.shape} dtype {value.dtype}")
    return _decode(value.reshape(-1)[0])


def write_npz(dataset: ZSLDataset, path: str | Path) -> Path:
    """Write ``dataset`` as a compressed ``.npz`` (atomically)."""
    path = Path(path)
    for key, values in (("class_names", dataset.class_names), ("name", [dataset.name]),
                        ("semantic_source", [dataset.semantic_source])):
        bad = [v for v in values if str(v).endswith("\x00")]
        if bad:  # numpy's fixed-width str arrays drop trailing NULs: refuse rather than lose them
            raise DataError(str(path), key, f"{bad[0]!r} ends with a NUL character, which the .npz format "
                                            f"cannot store")
    out = {
        "features": dataset.features,
        "labels": dataset.labels,
        "class_embeddings": dataset.class_embeddings,
        "class_names": np.array(dataset.class_names, dtype=str),
        "name": np.array(dataset.name),
        "semantic_source": np.array(dataset.semantic_source),
    }
    from zslkit.data.provenance import NPZ_KEY, npz_entry

    out[NPZ_KEY] = npz_entry(dataset)
    for key, idx in dataset.splits.items():
        if idx is not None:
            out[key] = np.asarray(idx, dtype=np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    return atomic_write_bytes(buf.getvalue(), path)


def is_npz(path: Path) -> bool:
    return Path(path).is_file() and zipfile.is_zipfile(path)
