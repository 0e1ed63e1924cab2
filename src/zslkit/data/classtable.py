"""Class tables: one row of numbers per named class (attributes or text embeddings), on disk and aligned.

Formats (read and written):

* ``.csv`` / ``.tsv``: a header row (``class`` then one name per column, e.g. the attribute names), then one
  row per class: the class name in the first column, then its values.
* ``.npy``: the C x A matrix, with the class names in ``<stem>.classes.txt`` beside it (one per line).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from zslkit.data.arrays import check_float_matrix
from zslkit.data.dataset import ZSLDataset
from zslkit.errors import DataError
from zslkit.runs import atomic_write_bytes

SUFFIXES = (".csv", ".tsv", ".npy")


def names_file(path: Path) -> Path:
    return path.with_name(path.stem + ".classes.txt")


def read_class_table(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(class names, C x A float32 matrix) from a class table file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "class table file not found")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        from zslkit.data.arrays import read_matrix, read_names

        matrix = read_matrix(path)
        side = names_file(path)
        if not side.is_file():
            raise DataError(path, None, f"a .npy class table needs its class names in {side.name} beside it (one "
                                        f"per line, row order)")
        names = read_names(side)
        if len(names) != matrix.shape[0]:
            raise DataError(side, None, f"{len(names)} class names but {path.name} has {matrix.shape[0]} rows")
    elif suffix in (".csv", ".tsv"):
        names, matrix = _read_csv(path, "\t" if suffix == ".tsv" else ",")
    else:
        raise DataError(path, None, f"unsupported class table type {suffix!r}; use .csv, .tsv or .npy (+ .classes.txt)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(path, None, f"class names appear more than once: {dupes}")
    return names, matrix


def _read_csv(path: Path, delimiter: str) -> tuple[list[str], np.ndarray]:
    try:
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter=delimiter)
                if r and "".join(r).strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read as UTF-8 text ({exc})") from None
    if len(rows) < 2:
        raise DataError(path, None, "expected a header row (class, then one name per column) and one row per class")
    width = len(rows[0])
    if width < 2:
        raise DataError(path, "line 1", f"the header names no value columns (delimiter {delimiter!r})")
    names, values = [], []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise DataError(path, f"line {lineno}", f"{len(row)} fields but the header has {width}")
        try:
            values.append([float(v) for v in row[1:]])
        except ValueError:
            bad = next(v for v in row[1:] if not _is_float(v))
            raise DataError(path, f"line {lineno}", f"class {row[0].strip()!r}: {bad!r} is not a number") from None
        names.append(row[0].strip())
    return names, check_float_matrix(np.asarray(values), path, None)


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def write_class_table(path: str | Path, names, matrix: np.ndarray, columns=None) -> Path:
    """Write ``matrix`` (C x A) with its class ``names`` as .csv/.tsv (header: ``class`` + ``columns``) or .npy."""
    path = Path(path)
    matrix = np.asarray(matrix, dtype=np.float32)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, matrix)
        atomic_write_bytes(buf.getvalue(), path)
        atomic_write_bytes(("\n".join(names) + "\n").encode("utf-8"), names_file(path))
        return path
    if suffix not in (".csv", ".tsv"):
        raise DataError(path, None, f"unsupported output type {suffix!r}; use .npy, .csv or .tsv")
    columns = list(columns) if columns is not None else [f"d{j}" for j in range(matrix.shape[1])]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t" if suffix == ".tsv" else ",", lineterminator="\n")
    writer.writerow(["class", *columns])
    for name, row in zip(names, matrix):
        writer.writerow([name, *(repr(float(v)) for v in row)])
    atomic_write_bytes(buf.getvalue().encode("utf-8"), path)
    return path


def align(names, table_names, matrix: np.ndarray, *, table_file, other: str) -> np.ndarray:
    """Rows of ``matrix`` reordered to ``names``; any difference between the two name sets is one error listing it."""
    lookup = {n: i for i, n in enumerate(table_names)}
    missing = [n for n in names if n not in lookup]
    extra = [n for n in table_names if n not in set(names)]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"classes of {other} missing from the table: {missing}")
        if extra:
            parts.append(f"classes in the table but not in {other}: {extra}")
        raise DataError(table_file, None, "class names do not match: " + "; ".join(parts))
    return matrix[[lookup[n] for n in names]]


def with_class_table(dataset: ZSLDataset, path: str | Path) -> ZSLDataset:
    """``dataset`` with its class embeddings replaced by the table in ``path``, aligned by class name."""
    from dataclasses import replace

    table_names, matrix = read_class_table(path)
    emb = align(list(dataset.class_names), table_names, matrix, table_file=path, other=f"dataset {dataset.name}")
    return replace(dataset, class_embeddings=emb.astype(np.float64), semantic_source=f"file:{Path(path).name}",
                   notes=dataset.notes + (f"class embeddings replaced by {path} ({emb.shape[1]}-d), aligned by "
                                          f"class name",))
