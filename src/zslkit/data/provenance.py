"""Where a dataset written by zslkit came from, stored with it in every layout and read back by every loader.

A record (JSON) says whether the data are synthetic, their source (a synthetic preset and seed, or files with
their sha256), the sha256 of the arrays themselves (independent of the layout and of the sample order) and,
when the data had been written by zslkit before, the earlier record (``derived_from``). Folder layouts (xlsa17,
DEM, cycle-WGAN h5) keep it in ``zslkit_provenance.json`` beside the data files; an ``.npz`` keeps it in its key
``zslkit_provenance`` (a JSON string). A loader that finds one labels the dataset as the record says, so a
converted synthetic dataset stays synthetic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from zslkit.data.dataset import SPLIT_NAMES, ZSLDataset
from zslkit.errors import DataError

PROVENANCE_FILE = "zslkit_provenance.json"
NPZ_KEY = "zslkit_provenance"
FORMAT = "zslkit-dataset-provenance/1"


def content_sha256(ds: ZSLDataset) -> str:
    """sha256 of the arrays (float32 features, labels, float32 class embeddings, class names, splits), the same
    whatever the layout and the order of the samples inside each split."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ds.class_embeddings, np.float32).tobytes())
    h.update("\n".join(ds.class_names).encode("utf-8"))
    feats = np.ascontiguousarray(ds.features, np.float32)
    for name in SPLIT_NAMES:
        idx = ds.splits.get(name)
        if idx is None:
            continue
        rows = np.concatenate([ds.labels[idx].astype("<i8").reshape(-1, 1).view(np.uint8),
                               feats[idx].view(np.uint8).reshape(len(idx), -1)], axis=1)
        rows = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).reshape(-1)
        h.update(name.encode() + np.sort(rows).tobytes())
    return h.hexdigest()


def _file_sha256(path: str) -> str | None:
    from zslkit.data.matio import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None


def make_record(ds: ZSLDataset, layout: str) -> dict:
    """The record written with ``ds`` in ``layout``."""
    from zslkit import __version__
    from zslkit.runs import now_iso

    return {"format": FORMAT, "synthetic": bool(ds.synthetic), "name": ds.name, "source": ds.source,
            "source_sha256": {f: _file_sha256(f) for f in ds.source_files},
            "semantic_source": ds.semantic_source, "data_sha256": content_sha256(ds), "layout": layout,
            "written_by": f"zslkit {__version__}", "written_at": now_iso(),
            "notes": [n for n in ds.notes if n.startswith("SYNTHETIC")],
            "derived_from": dict(ds.origin) if ds.origin else None}


def write_sidecar(ds: ZSLDataset, folder: str | Path, layout: str) -> Path:
    from zslkit.runs import atomic_write_json

    return atomic_write_json(make_record(ds, layout), Path(folder) / PROVENANCE_FILE)


def npz_entry(ds: ZSLDataset) -> np.ndarray:
    return np.array(json.dumps(make_record(ds, "npz"), sort_keys=True))


def parse(text: str, file: str, key: str | None = None) -> dict:
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(file, key, f"provenance record is not valid JSON ({exc})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or not isinstance(rec.get("synthetic"), bool):
        raise DataError(file, key, f"not a zslkit provenance record (expected format {FORMAT!r} and a true/false "
                                   f"'synthetic')")
    return rec


def read_sidecar(folder: str | Path) -> tuple[dict | None, str]:
    path = Path(folder) / PROVENANCE_FILE
    if not path.is_file():
        return None, str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(str(path), None, f"cannot read the provenance record ({exc})") from None
    record = parse(text, str(path))
    if not text.endswith("\n"):  # zslkit ends the file with a newline: a cut one can still be valid JSON
        raise DataError(str(path), None, "provenance record is truncated (zslkit writes it with a final newline)")
    return record, str(path)


def apply(ds: ZSLDataset, rec: dict | None, where: str) -> ZSLDataset:
    """``ds`` labelled as ``rec`` says (synthetic or real, its origin), with a note; unchanged when ``rec`` is
    None. Arrays that no longer match the record keep its label (a synthetic dataset is never relabelled real)
    and a note says they changed."""
    if rec is None:
        return ds
    kind = "SYNTHETIC" if rec["synthetic"] else "real"
    notes = [f"provenance ({where}): {kind} data, written by {rec.get('written_by', 'zslkit')} from "
             f"{rec.get('source')}"]
    notes += [n for n in rec.get("notes") or [] if n not in ds.notes]
    if rec.get("data_sha256") and rec["data_sha256"] != content_sha256(ds):
        notes.append(f"the arrays differ from the ones the provenance record ({where}) was written for (changed "
                     f"after zslkit wrote them?); its label ({kind}) is kept")
    return dataclasses.replace(ds, synthetic=bool(rec["synthetic"] or ds.synthetic), origin=rec,
                               notes=tuple(ds.notes) + tuple(notes))
