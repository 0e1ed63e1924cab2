"""Read a plain matrix (features or class embeddings) from .npy, .npz, .csv/.txt or .mat for the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.keys())
                if key is None:
                    if len(names) != 1:
                        raise DataError(path, None, f"holds {len(names)} arrays {names}; name one with a key")
                    key = names[0]
                if key not in names:
                    raise DataError(path, key, f"no such array; the file holds {names}")
                arr = z[key]
        elif suffix in (".csv", ".txt", ".tsv"):
            delimiter = "," if suffix == ".csv" else None
            arr = np.loadtxt(path, delimiter=delimiter, dtype=np.float64, ndmin=2)
        elif suffix == ".mat":
            from zslkit.data.matio import read_mat

            data = read_mat(path)
            names = [k for k in data if not k.startswith("__")]
            if key is None:
                if len(names) != 1:
                    raise DataError(path, None, f"holds {len(names)} arrays {names}; name one with a key")
                key = names[0]
            if key not in data:
                raise DataError(path, key, f"no such array; the file holds {names}")
            arr = data[key]
        else:
            raise DataError(path, None, f"unsupported file type {suffix!r}; use .npy, .npz, .csv, .txt or .mat")
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(path, key, f"cannot read the file ({type(exc).__name__}: {exc})") from None
    arr = np.asarray(arr)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(path, key, f"expected a non-empty 2-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(path, key, f"expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise DataError(path, key, "contains NaN or inf values")
    return arr


def read_names(path: str | Path) -> list[str]:
    """One class name per non-empty line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "class-name file not found")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
