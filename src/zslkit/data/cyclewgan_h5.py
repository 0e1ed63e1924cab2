"""cycle-WGAN's ``data.h5`` + ``knn.h5`` (rfelixmg/frwgan-eccv18), read and written.

``data.h5`` (one group per split; rows in the order of the xlsa17 ``*_loc`` array)::

    /train        <- trainval_loc   (NOTE: the group called "train" holds trainval)
    /train_val    <- train_loc      (optional)
    /val          <- val_loc        (optional)
    /test/seen    <- test_seen_loc
    /test/unseen  <- test_unseen_loc
    each group: X (n, D) features, Y (n,) 1-based class ids, y (n,) = Y - 1,
                A/continuous (n, a) per-image class embedding, A/binary (n, a) = (emb >= one scalar mean)
    /name         dataset name (string scalar);  /semantic (optional) embedding source

``knn.h5``: groups ``openset`` (all classes), ``openval`` (seen classes), ``zsl`` (unseen classes), each with
``data`` (k, a) class embeddings, ``ids`` (1-based), ``ys`` (0-based), ``labels`` (class names, bytes) and the
dict groups ``knn2id/<j>`` (int64), ``id2knn/<id>`` (string ``str(j)``), ``id2class/<id>`` (string name).

The loader rebuilds one :class:`ZSLDataset`: samples are ``/train`` then ``/test/seen`` then ``/test/unseen``
(so trainval/test_seen/test_unseen are consecutive index ranges); train/val come from ``/train_val`` and
``/val`` by matching their feature rows to those samples, or - when rows cannot be matched one-to-one -
by class (all trainval/test_seen samples of the classes in each group), with a note.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from zslkit.data.dataset import ZSLDataset, as_int64, check_float32_range
from zslkit.errors import DataError
from zslkit.runs import atomic_write_bytes

__all__ = ["load_cyclewgan", "write_cyclewgan", "DATA_FILE", "KNN_FILE"]

DATA_FILE = "data.h5"
KNN_FILE = "knn.h5"
_REQUIRED_GROUPS = (("trainval", "train"), ("test_seen", "test/seen"), ("test_unseen", "test/unseen"))


def _open(path: Path):
    import h5py

    if not path.is_file():
        raise DataError(str(path), None, "file not found (the cycle-WGAN layout needs data.h5 and knn.h5)")
    try:
        return h5py.File(str(path), "r")
    except Exception as exc:
        raise DataError(str(path), None, f"not a readable HDF5 file (truncated or corrupted?): "
                                         f"{type(exc).__name__}: {exc}") from None


def _has(fh, path: Path, key: str) -> bool:
    """``key in fh``, where a corrupted file's failure is a DataError naming the key."""
    try:
        return key in fh
    except Exception as exc:  # h5py raises RuntimeError/KeyError/OSError on damaged link tables
        raise DataError(str(path), key, f"cannot read (truncated or corrupted file?): {type(exc).__name__}: {exc}") \
            from None


def _get(fh, path: Path, key: str) -> np.ndarray:
    if not _has(fh, path, key):
        try:
            present = sorted(str(k) for k in fh.keys())
        except Exception:
            present = "(cannot list them: corrupted file?)"
        raise DataError(str(path), key, f"required dataset is missing; top-level keys present: {present}")
    try:
        return np.asarray(fh[key][()])
    except Exception as exc:
        raise DataError(str(path), key, f"cannot read (truncated or corrupted file?): {type(exc).__name__}: {exc}") \
            from None


def _matrix(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    """A 2-D real numeric array (features / embeddings), or a DataError."""
    if arr.ndim != 2 or arr.dtype.kind not in "iufb":
        raise DataError(str(path), key, f"expected a 2-D real numeric matrix, got shape {arr.shape} dtype {arr.dtype}")
    check_float32_range(arr, path, key)
    return arr


def _get_str(fh, path: Path, key: str, default: str) -> str:
    if not _has(fh, path, key):
        return default
    value = _get(fh, path, key)
    if value.dtype.kind not in "OSU" or value.size != 1:
        raise DataError(str(path), key, f"expected one string, got shape {value.shape} dtype {value.dtype}")
    return _str(value)


def _ids(arr: np.ndarray, path: Path, key: str) -> np.ndarray:
    arr = np.asarray(arr).reshape(-1)
    if arr.dtype.kind not in "iuf":
        raise DataError(str(path), key, f"expected integer class ids, got dtype {arr.dtype}")
    arr = as_int64(arr, path, key, "class ids")
    if arr.size and arr.min() < 1:
        raise DataError(str(path), key, f"class id {arr.min()} found, but Y/ids are 1-based (1..C); this file "
                                        f"looks 0-based")
    return arr


def _str(value) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    return str(value)


def _match_rows(sub: np.ndarray, feats: np.ndarray, pool: np.ndarray) -> np.ndarray | None:
    """Indices into ``feats`` (restricted to ``pool``) whose rows equal ``sub``'s rows, or None."""
    if sub.shape[1] != feats.shape[1]:
        return None
    rng = np.random.default_rng(12345)
    proj = rng.standard_normal(feats.shape[1])
    pool_keys = feats[pool].astype(np.float64) @ proj
    order = np.argsort(pool_keys, kind="stable")
    sorted_keys = pool_keys[order]
    if np.unique(sorted_keys).size != sorted_keys.size:
        return None
    sub_keys = sub.astype(np.float64) @ proj
    pos = np.searchsorted(sorted_keys, sub_keys)
    if np.any(pos >= sorted_keys.size):
        return None
    cand = pool[order[pos]]
    if not np.array_equal(feats[cand], sub.astype(feats.dtype)):
        return None
    if np.unique(cand).size != cand.size:
        return None
    return cand


def load_cyclewgan(folder_or_file: str | Path, *, name: str | None = None) -> ZSLDataset:
    """Load a cycle-WGAN dataset folder (``data.h5`` + ``knn.h5``) or its ``data.h5``."""
    path = Path(folder_or_file)
    if not path.exists():
        raise DataError(str(path), None, "no such file or folder")
    folder = path if path.is_dir() else path.parent
    data_path = path if path.is_file() else folder / DATA_FILE
    knn_path = folder / KNN_FILE
    notes: list[str] = []
    fh = _open(data_path)
    try:
        with fh:
            feats, labels, sizes = [], [], []
            for _split, group in _REQUIRED_GROUPS:
                x = _matrix(_get(fh, data_path, f"{group}/X"), data_path, f"{group}/X")
                y = _ids(_get(fh, data_path, f"{group}/Y"), data_path, f"{group}/Y")
                if x.shape[0] != y.size:
                    raise DataError(str(data_path), f"{group}/X", f"shape {x.shape} does not match {y.size} labels "
                                                                 f"in {group}/Y")
                if y.size == 0:
                    raise DataError(str(data_path), f"{group}/Y", "group is empty (no samples)")
                feats.append(x)
                labels.append(y - 1)
                sizes.append(y.size)
            extra = {}
            for split, group in (("train", "train_val"), ("val", "val")):
                if _has(fh, data_path, f"{group}/X") and _has(fh, data_path, f"{group}/Y"):
                    ex = _matrix(_get(fh, data_path, f"{group}/X"), data_path, f"{group}/X")
                    ey = _ids(_get(fh, data_path, f"{group}/Y"), data_path, f"{group}/Y") - 1
                    if ex.shape[0] != ey.size:
                        raise DataError(str(data_path), f"{group}/X", f"shape {ex.shape} does not match {ey.size} "
                                                                     f"labels in {group}/Y")
                    extra[split] = (ex, ey)
            ds_name = name or _get_str(fh, data_path, "name", folder.name)
            semantic = _get_str(fh, data_path, "semantic", "att")
            sample_emb = [(_get(fh, data_path, f"{g}/A/continuous") if _has(fh, data_path, f"{g}/A/continuous")
                           else None) for _, g in _REQUIRED_GROUPS]
    except DataError:
        raise
    except Exception as exc:  # closing a damaged file, or h5py failing somewhere unexpected
        raise DataError(str(data_path), None, f"not a readable HDF5 file (truncated or corrupted?): "
                                              f"{type(exc).__name__}: {exc}") from None
    if len({f.shape[1] for f in feats}) != 1:
        raise DataError(str(data_path), "test/unseen/X", f"feature dims differ between groups: "
                                                         f"{[f.shape[1] for f in feats]}")
    features = np.concatenate(feats, axis=0)
    lab = np.concatenate(labels)
    bounds = np.cumsum([0] + sizes)
    splits: dict = {s: np.arange(bounds[i], bounds[i + 1]) for i, (s, _) in enumerate(_REQUIRED_GROUPS)}

    if knn_path.is_file():
        kh = _open(knn_path)
        try:
            with kh:
                ids = _ids(_get(kh, knn_path, "openset/ids"), knn_path, "openset/ids")
                data = _matrix(_get(kh, knn_path, "openset/data"), knn_path, "openset/data")
                raw_names = (_get(kh, knn_path, "openset/labels") if _has(kh, knn_path, "openset/labels")
                             else None)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(str(knn_path), None, f"not a readable HDF5 file (truncated or corrupted?): "
                                                 f"{type(exc).__name__}: {exc}") from None
        if ids.size == 0:
            raise DataError(str(knn_path), "openset/ids", "no class ids (empty)")
        if data.shape[0] != ids.size:
            raise DataError(str(knn_path), "openset/data", f"shape {data.shape} does not match {ids.size} ids")
        num_classes = int(ids.max())
        if np.unique(ids).size != ids.size or num_classes != ids.size:
            raise DataError(str(knn_path), "openset/ids", f"expected each class id 1..{ids.size} once, got ids "
                                                          f"spanning [{ids.min()}, {ids.max()}]")
        emb = np.empty_like(data, dtype=np.float64)
        emb[ids - 1] = data
        if raw_names is not None and raw_names.size == ids.size:
            names = [""] * ids.size
            for i, v in zip(ids, raw_names.reshape(-1)):
                names[i - 1] = _str(v)
        else:
            names = [f"class_{i:03d}" for i in range(ids.size)]
            notes.append(f"{knn_path.name} has no openset/labels; classes named class_000...")
        source = f"{data_path} + {knn_path}"
    else:
        if any(e is None for e in sample_emb):
            raise DataError(str(knn_path), "openset/data", "knn.h5 not found and data.h5 has no A/continuous to "
                                                           "rebuild the class embeddings from")
        for (_, g), e, size in zip(_REQUIRED_GROUPS, sample_emb, sizes):
            _matrix(e, data_path, f"{g}/A/continuous")
            if e.shape[0] != size:
                raise DataError(str(data_path), f"{g}/A/continuous", f"{e.shape[0]} rows but {size} samples in {g}")
        if len({e.shape[1] for e in sample_emb}) != 1:
            raise DataError(str(data_path), "test/unseen/A/continuous", f"embedding dims differ between groups: "
                                                                        f"{[e.shape[1] for e in sample_emb]}")
        a = np.concatenate(sample_emb, axis=0).astype(np.float64)
        num_classes = int(lab.max()) + 1
        emb = np.zeros((num_classes, a.shape[1]))
        emb[lab] = a
        with np.errstate(invalid="ignore"):
            differ = ~np.all((a == emb[lab]) | (np.isnan(a) & np.isnan(emb[lab])), axis=1)
        if np.any(differ):
            cls = int(lab[np.flatnonzero(differ)[0]])
            raise DataError(str(data_path), "A/continuous", f"knn.h5 not found, and the per-image class embeddings "
                                                            f"of class id {cls + 1} differ between images, so the "
                                                            f"class embedding cannot be rebuilt")
        absent = np.setdiff1d(np.arange(num_classes), lab)
        names = [f"class_{i:03d}" for i in range(num_classes)]
        notes.append("knn.h5 not found: class embeddings rebuilt from the per-image A/continuous rows")
        if absent.size:
            notes.append(f"{absent.size} class ids below the largest have no samples; their embeddings are zeros")
        source = str(data_path)

    if "train" in extra and "val" in extra:
        pool = np.concatenate([splits["trainval"], splits["test_seen"]])
        matched = {s: _match_rows(extra[s][0], features, pool) for s in ("train", "val")}
        if all(m is not None for m in matched.values()) and all(
                np.array_equal(lab[matched[s]], extra[s][1]) for s in matched):
            splits["train"], splits["val"] = matched["train"], matched["val"]
        else:
            for s in ("train", "val"):
                classes = np.unique(extra[s][1])
                splits[s] = np.sort(pool[np.isin(lab[pool], classes)])
            notes.append("train/val rows of /train_val and /val could not be matched one-to-one to samples; "
                         "derived by class (all trainval/test_seen samples of their classes)")
    else:
        notes.append("data.h5 has no /train_val and /val groups: no validation split; validation classes will "
                     "be derived from the seen classes when needed")
    import hashlib

    digest = hashlib.sha256()
    for s in ("trainval", "train", "val", "test_seen", "test_unseen"):
        if splits.get(s) is not None:
            digest.update(s.encode() + np.asarray(splits[s], np.int64).tobytes() + lab[splits[s]].tobytes())
    notes.append("split_sha256 is the sha256 of the split index/label arrays (this layout has no split file)")
    try:
        ds = ZSLDataset(features=features, labels=lab, class_embeddings=emb, class_names=tuple(names),
                        splits=splits, name=ds_name, semantic_source=semantic, synthetic=False, source=source,
                        split_sha256=digest.hexdigest(), notes=tuple(notes),
                        source_files=tuple(str(p) for p in (data_path, knn_path) if p.is_file()))
    except DataError as exc:
        group = {"trainval": "train", "test_seen": "test/seen", "test_unseen": "test/unseen", "train": "train_val",
                 "val": "val", "features": "X", "labels": "Y"}.get(exc.key or "")
        if group is not None:
            raise DataError(str(data_path), group, exc.problem) from None
        if exc.key == "class_embeddings":
            raise DataError(str(knn_path), "openset/data", exc.problem) from None
        raise
    from zslkit.data import provenance

    record, where = provenance.read_sidecar(folder)
    return provenance.apply(ds, record, where)


# ----- writer ---------------------------------------------------------------------------------------------

def _h5_to_bytes(fill) -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as fh:
        fill(fh)
    return buf.getvalue()


def write_cyclewgan(dataset: ZSLDataset, folder: str | Path) -> Path:
    """Write ``data.h5`` and ``knn.h5`` into ``folder`` with every field of the reference layout."""
    import h5py

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    emb = np.asarray(dataset.class_embeddings, dtype=np.float64)
    threshold = emb.mean()  # ONE scalar threshold over the whole class x dim matrix, as in the reference
    binary = (emb >= threshold).astype(np.float64)
    string = h5py.string_dtype("utf-8")
    groups = {"train": "trainval", "train_val": "train", "val": "val", "test/seen": "test_seen",
              "test/unseen": "test_unseen"}

    def fill_data(fh) -> None:
        for group, split in groups.items():
            idx = dataset.splits.get(split)
            if idx is None:
                continue
            y = dataset.labels[idx]
            g = fh.create_group(group)
            g.create_dataset("X", data=dataset.features[idx])
            g.create_dataset("Y", data=(y + 1).astype(np.int64))
            g.create_dataset("y", data=y.astype(np.int64))
            g.create_dataset("A/continuous", data=emb[y])
            g.create_dataset("A/binary", data=binary[y])
        fh.create_dataset("name", data=dataset.name, dtype=string)
        fh.create_dataset("semantic", data=dataset.semantic_source, dtype=string)

    def fill_knn(fh) -> None:
        domains = {"openset": np.arange(dataset.num_classes), "openval": dataset.seen_classes,
                   "zsl": dataset.unseen_classes}
        for group, ys in domains.items():
            ys = np.asarray(ys, dtype=np.int64)
            g = fh.create_group(group)
            g.create_dataset("data", data=emb[ys])
            g.create_dataset("ids", data=ys + 1)
            g.create_dataset("ys", data=ys)
            g.create_dataset("labels", data=np.array([dataset.class_names[i].encode("utf-8") for i in ys]))
            for j, cid in enumerate(ys + 1):
                g.create_dataset(f"knn2id/{j}", data=np.int64(cid))
                g.create_dataset(f"id2knn/{cid}", data=str(j), dtype=string)
                g.create_dataset(f"id2class/{cid}", data=dataset.class_names[cid - 1], dtype=string)

    atomic_write_bytes(_h5_to_bytes(fill_data), folder / DATA_FILE)
    atomic_write_bytes(_h5_to_bytes(fill_knn), folder / KNN_FILE)
    from zslkit.data.provenance import write_sidecar

    write_sidecar(dataset, folder, "cyclewgan-h5")
    return folder
