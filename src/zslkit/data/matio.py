"""Read and write MATLAB ``.mat`` files, v5 (scipy) and v7.3 (HDF5 / h5py), with one orientation.

:func:`read_mat` returns a dict ``name -> numpy array`` in **MATLAB orientation** whatever the file
version: a v7.3 file stores arrays transposed (column-major), so they are transposed back here, and
``features`` of ``res101.mat`` is ``2048 x N`` from both versions. Cell arrays of strings become 1-D
``object`` arrays of ``str`` (from v5 nested arrays and from v7.3 object references alike), MATLAB
char arrays become ``str``.

:func:`write_mat` writes v5 (``scipy.io.savemat``) or v7.3 (h5py with the 512-byte MATLAB header in
the HDF5 user block, ``MATLAB_class`` attributes, cell arrays as references into ``#refs#``), atomically.

Every failure is a :class:`~zslkit.errors.DataError` naming the file and, where known, the key.
"""

from __future__ import annotations

import datetime as _dt
import io
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from zslkit.errors import DataError
from zslkit.runs import atomic_write_bytes

__all__ = ["read_mat", "write_mat", "mat_version", "require_keys", "variable_names", "cellstr"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

_MATLAB_CLASS = {
    np.dtype(np.float64): "double", np.dtype(np.float32): "single",
    np.dtype(np.int8): "int8", np.dtype(np.int16): "int16", np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64", np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16",
    np.dtype(np.uint32): "uint32", np.dtype(np.uint64): "uint64", np.dtype(bool): "logical",
}


def mat_version(path: str | Path) -> str:
    """``"7.3"`` for an HDF5-based MAT file, ``"5"`` for a v5 (or v4/v6/v7) file, else DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), None, "file not found")
    if path.is_dir():
        raise DataError(str(path), None, "is a folder, expected a .mat file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError as exc:
        raise DataError(str(path), None, f"cannot read the file ({type(exc).__name__}: {exc})") from None
    if len(head) < 128:
        raise DataError(str(path), None, f"not a MATLAB .mat file: only {len(head)} bytes (truncated or empty)")
    if head[512:520] == _HDF5_SIGNATURE or head[:8] == _HDF5_SIGNATURE or head.startswith(b"MATLAB 7.3"):
        return "7.3"
    return "5"


def require_keys(data: Mapping, keys: Iterable[str], file: str | Path, present: Iterable[str] | None = None) -> None:
    """DataError naming the first missing key and listing the keys that are present (``present``: every variable
    of the file, when ``data`` holds only some of them)."""
    for key in keys:
        if key not in data:
            names = sorted(k for k in (data if present is None else present) if not k.startswith("__"))
            raise DataError(str(file), key, f"required key is missing; keys present: {names}")


def variable_names(path: str | Path) -> list[str]:
    """The names of the variables in a .mat file (v5 or v7.3), without reading them ([] when unreadable)."""
    path = Path(path)
    try:
        if mat_version(path) == "7.3":
            import h5py

            with h5py.File(str(path), "r") as fh:
                return sorted(k for k in fh.keys() if not k.startswith("#"))
        import scipy.io

        return sorted(w[0] for w in scipy.io.whosmat(str(path)))
    except Exception:  # noqa: BLE001 - only for an error message; the read itself reports the damage
        return []


def cellstr(value, *, file: str | Path = "<memory>", key: str = "?") -> list[str]:
    """A MATLAB cell array of strings (as returned by :func:`read_mat`, or raw loadmat) -> list of str."""
    arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    out: list[str] = []
    for item in arr.reshape(-1):
        while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
            item = item.reshape(-1)[0]
        if isinstance(item, np.ndarray):
            if item.dtype.kind in "US":
                item = "".join(str(x) for x in item.reshape(-1))
            elif item.size == 0:
                item = ""
            else:
                raise DataError(str(file), key, f"expected a cell array of strings, found an element of dtype "
                                f"{item.dtype}")
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        out.append(str(item).strip())
    return out


# ----- reading -----------------------------------------------------------------------------------------

def read_mat(path: str | Path, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Read a .mat file (v5 or v7.3) into ``{name: array}`` in MATLAB orientation.

    ``keys``: read only these (missing ones -> DataError listing what is present).
    """
    path = Path(path)
    version = mat_version(path)
    keys = list(keys) if keys is not None else None
    data = _read_h5(path, keys) if version == "7.3" else _read_v5(path, keys)
    if keys is not None and any(k not in data for k in keys):
        require_keys(data, keys, path, present=variable_names(path))  # name every variable, not only those read
    return data


def _read_v5(path: Path, keys: list[str] | None) -> dict[str, np.ndarray]:
    import scipy.io

    try:
        raw = scipy.io.loadmat(str(path), variable_names=keys)
    except Exception as exc:  # scipy raises many kinds here: ValueError, TypeError, zlib.error, OSError...
        raise _v5_failure(path, keys, exc) from None
    out: dict[str, np.ndarray] = {}
    for key, value in raw.items():
        if key.startswith("__"):
            continue
        out[key] = _clean_v5(value, path, key)
    return out


def _v5_failure(path: Path, keys: list[str] | None, exc: Exception) -> DataError:
    """Find which variable fails to read, to name it in the error."""
    import scipy.io

    problem = f"not a readable MATLAB .mat file (truncated or corrupted?): {type(exc).__name__}: {exc}"
    try:
        names = [w[0] for w in scipy.io.whosmat(str(path))]
    except Exception:
        return DataError(str(path), None, problem)
    for name in (keys or names):
        if name not in names:
            continue
        try:
            scipy.io.loadmat(str(path), variable_names=[name])
        except Exception as exc2:
            return DataError(str(path), name, f"cannot read this variable (truncated or corrupted file?): "
                                              f"{type(exc2).__name__}: {exc2}")
    return DataError(str(path), None, problem)


def _clean_v5(value, path: Path, key: str):
    if isinstance(value, np.ndarray) and value.dtype == object:
        try:
            return np.array(cellstr(value, file=path, key=key), dtype=object)
        except DataError:
            return value
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size == 1:
        return str(value.reshape(-1)[0])
    return value


def _read_h5(path: Path, keys: list[str] | None) -> dict[str, np.ndarray]:
    import h5py

    try:
        fh = h5py.File(str(path), "r")
    except Exception as exc:
        raise DataError(str(path), None, f"not a readable MATLAB v7.3 (HDF5) file (truncated or corrupted?): "
                                         f"{type(exc).__name__}: {exc}") from None
    out: dict[str, np.ndarray] = {}
    try:
        with fh:
            try:
                names = [str(k) for k in fh.keys() if not str(k).startswith("#")]
            except Exception as exc:  # a corrupted root group: h5py raises RuntimeError, KeyError, TypeError...
                raise DataError(str(path), None, f"not a readable MATLAB v7.3 (HDF5) file (truncated or "
                                                 f"corrupted?): cannot list its variables: "
                                                 f"{type(exc).__name__}: {exc}") from None
            for name in names:
                if keys is not None and name not in keys:
                    continue
                try:
                    out[name] = _h5_value(fh, fh[name], path, name)
                except DataError:
                    raise
                except Exception as exc:
                    raise DataError(str(path), name, f"cannot read this variable (truncated or corrupted file?): "
                                                     f"{type(exc).__name__}: {exc}") from None
    except DataError:
        raise
    except Exception as exc:  # closing a corrupted file can fail too
        raise DataError(str(path), None, f"not a readable MATLAB v7.3 (HDF5) file (truncated or corrupted?): "
                                         f"{type(exc).__name__}: {exc}") from None
    return out


def _h5_value(fh, node, path: Path, key: str):
    import h5py

    if isinstance(node, h5py.Group):
        raise DataError(str(path), key, "MATLAB structs are not supported here (expected an array)")
    mclass = node.attrs.get("MATLAB_class", b"")
    if isinstance(mclass, bytes):
        mclass = mclass.decode()
    if node.attrs.get("MATLAB_empty", 0):
        return "" if mclass == "char" else np.zeros((0, 0))
    raw = node[()]
    if h5py.check_dtype(ref=node.dtype) is not None or mclass == "cell":
        items = []
        for ref in np.asarray(raw).reshape(-1):  # h5 C-order of the transposed array = MATLAB linear order
            items.append(_h5_value(fh, fh[ref], path, key))
        if all(isinstance(x, str) for x in items):
            return np.array(items, dtype=object)
        cell = np.empty(len(items), dtype=object)
        cell[:] = items
        return cell
    arr = np.asarray(raw)
    if mclass == "char":
        return "".join(chr(int(c)) for c in arr.T.reshape(-1) if int(c) != 0)
    if arr.ndim >= 2:
        arr = arr.T
    if mclass == "logical":
        arr = arr.astype(bool)
    return arr


# ----- writing -----------------------------------------------------------------------------------------

def write_mat(path: str | Path, data: Mapping[str, object], *, version: str = "5") -> Path:
    """Write ``data`` (arrays in MATLAB orientation; lists/tuples of str become cell arrays) atomically.

    ``version``: ``"5"`` (scipy.io.savemat, compressed) or ``"7.3"`` (HDF5 with the MATLAB user block).
    """
    path = Path(path)
    if version in ("5", "v5", "7"):
        return atomic_write_bytes(_v5_bytes(data), path)
    if version in ("7.3", "v7.3", "73"):
        return atomic_write_bytes(_h5_bytes(data), path)
    raise ValueError(f"unknown MAT version {version!r}; use '5' or '7.3'")


def _is_str_list(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(isinstance(x, str) for x in value)
    return isinstance(value, np.ndarray) and value.dtype == object and all(isinstance(x, str) for x in value.flat)


def _v5_bytes(data: Mapping[str, object]) -> bytes:
    import scipy.io

    prepared = {}
    for key, value in data.items():
        if _is_str_list(value):
            items = list(np.asarray(value, dtype=object).reshape(-1))
            cell = np.empty((len(items), 1), dtype=object)
            for i, s in enumerate(items):
                cell[i, 0] = np.array([s])
            prepared[key] = cell
        else:
            prepared[key] = value
    buf = io.BytesIO()
    scipy.io.savemat(buf, prepared, do_compression=True, oned_as="column")
    return buf.getvalue()


def _matlab_header() -> bytes:
    stamp = _dt.datetime.now().strftime("%a %b %d %H:%M:%S %Y")
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 .".encode("ascii")
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    return header.ljust(512, b"\x00")


def _h5_bytes(data: Mapping[str, object]) -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w", userblock_size=512, libver="earliest") as fh:
        refs = None
        for key, value in data.items():
            if _is_str_list(value):
                if refs is None:
                    refs = fh.create_group("#refs#")
                items = [str(s) for s in np.asarray(value, dtype=object).reshape(-1)]
                ref_arr = np.empty((1, len(items)), dtype=h5py.ref_dtype)  # MATLAB (n,1) stored transposed
                for i, s in enumerate(items):
                    codes = np.array([[ord(c) for c in s]], dtype=np.uint16).T if s else np.zeros(2, np.uint64)
                    ds = refs.create_dataset(f"{key}_{i}", data=codes)
                    ds.attrs["MATLAB_class"] = np.bytes_("char")
                    if s:
                        ds.attrs["MATLAB_int_decode"] = np.int32(2)
                    else:
                        ds.attrs["MATLAB_empty"] = np.uint8(1)
                    ref_arr[0, i] = ds.ref
                dset = fh.create_dataset(key, data=ref_arr, dtype=h5py.ref_dtype)
                dset.attrs["MATLAB_class"] = np.bytes_("cell")
                continue
            if isinstance(value, str):
                codes = np.array([[ord(c) for c in value]], dtype=np.uint16).T
                dset = fh.create_dataset(key, data=codes)
                dset.attrs["MATLAB_class"] = np.bytes_("char")
                dset.attrs["MATLAB_int_decode"] = np.int32(2)
                continue
            arr = np.asarray(value)
            if arr.dtype not in _MATLAB_CLASS:
                raise ValueError(f"cannot write key {key!r} of dtype {arr.dtype} to a v7.3 MAT file")
            if arr.ndim == 0:
                arr = arr.reshape(1, 1)
            elif arr.ndim == 1:
                arr = arr.reshape(-1, 1)
            stored = arr.astype(np.uint8) if arr.dtype == bool else arr
            dset = fh.create_dataset(key, data=np.ascontiguousarray(stored.T))
            dset.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASS[arr.dtype])
    raw = bytearray(buf.getvalue())
    raw[:512] = _matlab_header()
    return bytes(raw)


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes (streamed)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
