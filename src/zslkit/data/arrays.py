"""Read a plain matrix (features or class embeddings) from .npy, .npz, .csv/.txt or .mat for the CLI."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from zslkit.data.dataset import as_real_float32, require_finite
from zslkit.errors import DataError


def read_matrix(path: str | Path, key: str | None = None) -> np.ndarray:
    """A 2-D float array from ``path``; ``key`` picks the array in .npz/.mat files (else the only one).

    A 1-D array is read as one row. Errors name the file, the key and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, key, "file not found")
    suffix = path.suffix.lower()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. loadtxt's "input contained no data": we say so below
            arr, key = _read_any(path, suffix, key)
    except DataError:
        raise
    except MemoryError:
        raise DataError(path, key, "not enough memory to read the file (corrupted header claiming a huge array?)") \
            from None
    except Exception as exc:  # numpy/zipfile/scipy raise many kinds here: ValueError, BadZipFile, EOFError...
        raise DataError(path, key, f"cannot read the file (truncated or corrupted?) ({type(exc).__name__}: {exc})") \
            from None
    return check_float_matrix(arr, path, key)


def check_float_matrix(arr, path, key) -> np.ndarray:
    """``arr`` as a finite, non-empty 2-D float32 matrix (a 1-D array is one row), or a DataError."""
    arr = np.asarray(arr)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(path, key, f"expected a non-empty 2-D array, got shape {arr.shape}")
    arr = as_real_float32(arr, path, key, "values")
    require_finite(arr, path, key)
    return arr


def _read_any(path: Path, suffix: str, key: str | None):
    if suffix == ".npy":
        obj = np.load(path, allow_pickle=False)
        if not isinstance(obj, np.ndarray):
            obj.close()
            raise DataError(path, key, "is a .npz archive, not a .npy array (rename it to .npz)")
        return obj, key
    if suffix == ".npz":
        obj = np.load(path, allow_pickle=False)
        if isinstance(obj, np.ndarray):
            return obj, key  # a .npy file named .npz: one array
        with obj as z:
            key = _pick_key(path, key, list(z.keys()))
            try:
                return z[key], key
            except ValueError as exc:
                raise DataError(path, key, f"cannot read without pickle (object arrays are not allowed): {exc}") \
                    from None
    if suffix in (".csv", ".txt", ".tsv"):
        delimiter = "," if suffix == ".csv" else None
        return np.loadtxt(path, delimiter=delimiter, dtype=np.float64, ndmin=2), key
    if suffix == ".mat":
        from zslkit.data.matio import read_mat

        data = read_mat(path)
        key = _pick_key(path, key, [k for k in data if not k.startswith("__")])
        return data[key], key
    raise DataError(path, None, f"unsupported file type {suffix!r}; use .npy, .npz, .csv, .txt or .mat")


def read_names(path: str | Path) -> list[str]:
    """One class name per non-empty line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "class-name file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read the class-name file as UTF-8 text ({type(exc).__name__}: {exc})") \
            from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _pick_key(path: Path, key: str | None, names: list[str]) -> str:
    """The array to read from a multi-array file: the named one, or the only one."""
    if key is None:
        if len(names) != 1:
            raise DataError(path, None, f"holds {len(names)} arrays {names}; name one with a key")
        return names[0]
    if key not in names:
        raise DataError(path, key, f"no such array; the file holds {names}")
    return key
