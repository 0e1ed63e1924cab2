"""Images -> features, batched and resumable, written in the xlsa17 ``res101.mat`` layout (or npz).

Work is cut into chunks of whole batches; each finished chunk is written atomically to
``OUT/.partial/chunk_NNNNN.npz`` beside ``job.json`` (the job's fingerprint: image list, backbone, weights,
preprocessing). A rerun of the same job skips the finished chunks, so an interrupted extraction resumes
and gives the same files. When all chunks are done the outputs are assembled and ``.partial`` removed:

* ``res101.mat``: ``features`` (D x N, float32), ``labels`` (N x 1, 1-based), ``image_files`` (N x 1 cell)
  (``--format npz``: ``features.npz`` with ``features`` N x D, 0-based ``labels``, ``image_files``,
  ``class_names``)
* ``classes.txt``: one class name per line, line k = label k (1-based in res101.mat)
* ``provenance.json``: backbone, weights and their sha256, preprocessing, image counts, skipped images
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from zslkit.errors import DataError
from zslkit.features.backbones import Backbone
from zslkit.features.sources import ImageFiles, ImageList, collate
from zslkit.runs import atomic_write_bytes

FORMATS = {"mat": "res101.mat", "npz": "features.npz"}


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _job(images: ImageList, backbone: Backbone, chunk: int) -> dict:
    job = {"images_sha256": images.sha256(), "num_images": len(images), "backbone": backbone.spec,
           "weights": backbone.weights, "weights_sha256": backbone.weights_sha256,
           "preprocess": backbone.preprocess.describe(), "chunk_size": chunk}
    return json.loads(json.dumps(job))  # as it reads back from job.json (tuples become lists)


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes((json.dumps(obj, indent=2) + "\n").encode("utf-8"), path)


def _write_npz(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(buf.getvalue(), path)


def extract_features(images: ImageList, backbone: Backbone, out: str | Path, *, batch_size: int = 64,
                     workers: int | None = None, device: torch.device | str = "cpu", fmt: str = "mat",
                     skip_bad: bool = False, chunk_size: int = 2048, progress: bool = True,
                     overwrite: bool = False, on_chunk=None) -> dict:
    """Extract features of ``images`` with ``backbone`` into the folder ``out``; returns the provenance.

    A finished ``out`` of the same job is left as it is (``provenance["up_to_date"]``); one of another job
    is an error unless ``overwrite``. ``on_chunk(k)`` is called after chunk ``k`` is on disk.
    """
    if fmt not in FORMATS:
        raise DataError(out, "format", f"unknown output format {fmt!r}; choose one of {list(FORMATS)}")
    out, device = Path(out), torch.device(device)
    chunk = max(1, -(-chunk_size // batch_size)) * batch_size  # whole batches: a resumed run batches the same way
    partial = out / ".partial"
    job = _job(images, backbone, chunk)
    if overwrite:
        shutil.rmtree(partial, ignore_errors=True)
    else:
        finished = _finished(out, job, fmt)
        if finished is not None:
            return finished
    if partial.is_dir() and (partial / "job.json").is_file():
        old = json.loads((partial / "job.json").read_text())
        if old != job:
            changed = sorted(k for k in job if old.get(k) != job[k])
            raise DataError(partial / "job.json", None, f"an unfinished extraction of another job is in {out} "
                                                        f"(differs in {changed}); delete {partial} or choose "
                                                        f"another --out")
    partial.mkdir(parents=True, exist_ok=True)
    _write_json(partial / "job.json", job)
    n_chunks = -(-len(images) // chunk)
    todo = [k for k in range(n_chunks) if not (partial / f"chunk_{k:05d}.npz").is_file()]
    done_images = len(images) - sum(min(chunk, len(images) - k * chunk) for k in todo)
    started = time.perf_counter()
    if todo:
        _run_chunks(images, backbone, partial, todo, chunk, batch_size=batch_size,
                    workers=default_workers() if workers is None else workers, device=device, skip_bad=skip_bad,
                    progress=progress, done=done_images, on_chunk=on_chunk)
    seconds = time.perf_counter() - started
    return _assemble(images, backbone, out, partial, n_chunks, fmt=fmt, job=job, seconds=seconds,
                     resumed_images=done_images, device=device, batch_size=batch_size)


def _finished(out: Path, job: dict, fmt: str) -> dict | None:
    """The provenance of a finished extraction in ``out`` if it is this job, None if there is none."""
    prov_path = out / "provenance.json"
    if not prov_path.is_file() or not (out / FORMATS[fmt]).is_file():
        return None
    prov = json.loads(prov_path.read_text())
    same = all(prov.get(k) == job[k] for k in ("images_sha256", "backbone", "weights", "weights_sha256",
                                               "preprocess")) and prov.get("format") == fmt
    if not same:
        raise DataError(out, None, "already holds extracted features of another job (other images, backbone, "
                                   "weights or preprocessing); pass --overwrite to replace them, or choose another "
                                   "--out")
    return prov | {"up_to_date": True}


def _run_chunks(images, backbone, partial, todo, chunk, *, batch_size, workers, device, skip_bad, progress, done,
                on_chunk) -> None:
    from tqdm.auto import tqdm

    indices = [i for k in todo for i in range(k * chunk, min((k + 1) * chunk, len(images)))]
    loader = torch.utils.data.DataLoader(
        ImageFiles(images.paths, indices, backbone.preprocess), batch_size=batch_size, shuffle=False,
        num_workers=workers, collate_fn=collate, pin_memory=device.type == "cuda",
        persistent_workers=False, prefetch_factor=4 if workers else None)
    module = backbone.module.to(device).eval()
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else torch.autocast(
        "cpu", enabled=False)
    bar = tqdm(total=len(images), initial=done, unit="img", desc="features", disable=not progress,
               dynamic_ncols=True, smoothing=0.1)
    feats, idx, bad = [], [], []
    current = todo[0]
    try:
        with torch.inference_mode(), autocast:
            for batch, good, failed in loader:
                for i, err in failed:
                    if not skip_bad:
                        raise DataError(images.paths[i], None, f"cannot read this image ({err}); fix or remove it, "
                                                               f"or pass --skip-bad to skip unreadable images")
                    bad.append((i, err))
                if batch is not None:
                    x = batch.to(device, non_blocking=True)
                    if device.type == "cuda":
                        x = x.contiguous(memory_format=torch.channels_last)
                    feats.append(module(x).float().reshape(x.shape[0], -1).cpu())
                    idx += good
                bar.update(len(good) + len(failed))
                last = max(good + [i for i, _ in failed])
                if last == min((current + 1) * chunk, len(images)) - 1:  # chunk complete
                    _write_chunk(partial, current, feats, idx, bad, backbone.dim)
                    if on_chunk:
                        on_chunk(current)
                    feats, idx, bad = [], [], []
                    current = todo[todo.index(current) + 1] if current != todo[-1] else None
    finally:
        bar.close()


def _write_chunk(partial: Path, k: int, feats, idx, bad, dim: int) -> None:
    arr = torch.cat(feats).numpy().astype(np.float32) if feats else np.zeros((0, dim), np.float32)
    _write_npz(partial / f"chunk_{k:05d}.npz", features=arr, indices=np.asarray(idx, dtype=np.int64),
               bad_indices=np.asarray([i for i, _ in bad], dtype=np.int64),
               bad_errors=np.asarray([e for _, e in bad], dtype=str))


def _assemble(images, backbone, out, partial, n_chunks, *, fmt, job, seconds, resumed_images, device,
              batch_size) -> dict:
    from zslkit.data.matio import write_mat

    feats, idx, bad = [], [], []
    for k in range(n_chunks):
        with np.load(partial / f"chunk_{k:05d}.npz", allow_pickle=False) as z:
            feats.append(z["features"])
            idx.append(z["indices"])
            bad += [(int(i), str(e)) for i, e in zip(z["bad_indices"], z["bad_errors"])]
    features = np.concatenate(feats).astype(np.float32)
    keep = np.concatenate(idx)
    if features.shape[0] == 0:
        raise DataError(images.source, None, "no image could be read (every image was skipped)")
    labels = images.labels[keep]
    files = [images.names[i] for i in keep]
    if fmt == "mat":
        write_mat(out / FORMATS["mat"], {"features": np.ascontiguousarray(features.T),
                                         "labels": (labels + 1).astype(np.float64).reshape(-1, 1),
                                         "image_files": files})
    else:
        _write_npz(out / FORMATS["npz"], features=features, labels=labels, image_files=np.asarray(files, dtype=str),
                   class_names=np.asarray(images.class_names, dtype=str))
    atomic_write_bytes(("\n".join(images.class_names) + "\n").encode("utf-8"), out / "classes.txt")
    counts = np.bincount(labels, minlength=len(images.class_names))
    prov = {**backbone.describe(), "preprocess": job["preprocess"], "source": images.source,
            "images_sha256": job["images_sha256"], "num_images": len(images), "num_features": int(features.shape[0]),
            "num_classes": len(images.class_names), "images_per_class": dict(zip(images.class_names,
                                                                                 map(int, counts))),
            "skipped": [{"file": images.names[i], "error": e} for i, e in sorted(bad)],
            "format": fmt, "file": FORMATS[fmt], "device": str(device), "batch_size": batch_size,
            "seconds_this_run": round(seconds, 3), "images_from_earlier_runs": resumed_images,
            "torch": torch.__version__}
    _write_json(out / "provenance.json", prov)
    shutil.rmtree(partial, ignore_errors=True)
    return prov
