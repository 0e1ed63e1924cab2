"""One sweep trial, run inside a Ray worker: one ``experiment.execute`` run in its own run directory.

The run directory is named by (dataset, parameters, seed), never by Ray's trial id, so a trial that is
restarted (worker killed, sweep resumed) finds it again: a finished run (``metrics.json``) is reported
as it is, an unfinished one continues from its checkpoint exactly like ``zslkit train --resume``.
Every validation evaluation point is reported to Ray Tune (live table, ASHA); test numbers never are.
``sweep_trial.json`` in the run directory records the trial's parameters, attempts and validation numbers
(an early-stopped trial has no ``metrics.json``, so the summary reads it from there).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from zslkit.protocol.criteria import better, resolve_criterion
from zslkit.sweep import storage
from zslkit.sweep.space import safe_name, slug

RECORD = "sweep_trial.json"
VAL_KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "gzsl_cs_h")


def run_dir_for(root: str | Path, label: str, params: dict, seed: int) -> Path:
    return Path(root) / "runs" / safe_name(label) / slug(params) / f"seed{seed}"


def job_of(config: dict) -> dict:
    """The run a trial config stands for: {"spec": RunSpec fields, "run_dir", "params", "label"}.

    A reproduce job carries it whole (``config["job"]``); a sweep trial is built from the sweep's fixed
    part, its dataset case, its parameters and its seed (optuna: the repeat index picks the seed).
    """
    if "job" in config:
        return config["job"]
    sweep, case = config["sweep"], config["case"]
    params = dict(config.get("params") or case.get("params") or {})
    seed = config["seed"] if "seed" in config else sweep["seeds"][config["__trial_index__"]]
    spec = dict(sweep["spec"], dataset=case["dataset"], seed=int(seed),
                overrides={**sweep["spec"].get("overrides", {}), **params})
    run_dir = run_dir_for(sweep["root"], case["label"], params, seed)
    return {"spec": spec, "run_dir": str(run_dir), "params": params, "label": case["label"],
            "threads": sweep.get("threads", 1), "plots": sweep.get("plots", True), "remote": sweep.get("remote"),
            "rel": str(run_dir.relative_to(sweep["root"]))}


def read_record(run_dir: Path) -> dict:
    import json

    try:
        return json.loads((Path(run_dir) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def validation_numbers(row: dict | None) -> dict:
    return {k: float(row[k]) for k in VAL_KEYS if row and k in row}


def run_trial(config: dict) -> None:
    """The Ray Tune function trainable (see the module docstring)."""
    import logging

    import torch
    from ray import tune

    from zslkit.errors import ZslkitError
    from zslkit.experiment import RunSpec, execute
    from zslkit.runs import atomic_write_json, read_json

    started = time.perf_counter()
    logging.getLogger("zslkit").setLevel(logging.INFO)  # a worker process of the zslkit command: log.txt as in train
    job = job_of(config)
    torch.set_num_threads(max(1, int(job.get("threads", 1))))
    spec = RunSpec(**job["spec"])
    run_dir = Path(job["run_dir"])
    if not spec.criterion:  # None: the method's own default criterion, resolved as run_protocol does
        from zslkit.methods.registry import get_method

        spec.criterion = resolve_criterion(get_method(spec.method))
    crit = spec.criterion
    record = read_record(run_dir)
    record.update(dataset=job.get("label"), dataset_spec=spec.dataset, params=job.get("params", {}), seed=spec.seed,
                  criterion=crit, attempts=int(record.get("attempts", 0)) + 1, pid=os.getpid())
    record.setdefault("evaluations", 0)

    spent = float(record.get("trial_wall_s", 0.0))

    def save(status: str) -> None:
        record["status"] = status
        record["trial_wall_s"] = round(spent + time.perf_counter() - started, 3)  # all attempts, in the worker
        atomic_write_json(record, run_dir / RECORD)

    def report(row: dict | None, done: bool, latest: dict | None = None) -> None:
        """``val_score`` and ``val_*``: the best validation point so far (what selection keeps);
        ``val_latest``: the criterion at the newest point. Ray's own "done" is also set by ASHA."""
        val = validation_numbers(row)
        tune.report({"val_score": val.get(crit, float("nan")), **{f"val_{k}": v for k, v in val.items()},
                     "val_latest": float((latest or row or {}).get(crit, float("nan"))),
                     "evaluations": record["evaluations"], "run_finished": done})

    remote = storage.join(job["remote"], job["rel"]) if job.get("remote") else None
    if remote and not (run_dir / "config.json").is_file():  # a run begun on another node (or a fresh sweep)
        storage.download(remote, run_dir)
    synced = {"checkpoint": None}

    def sync(final: bool = False) -> None:
        """With a storage URI: upload the run directory at every new checkpoint and at the end."""
        if not remote:
            return
        ckpt = run_dir / "checkpoints" / "progress.pt"
        stamp = ckpt.stat().st_mtime_ns if ckpt.is_file() else None
        if final or stamp != synced["checkpoint"]:
            synced["checkpoint"] = stamp
            if final:
                storage.remove(storage.join(remote, "checkpoints"))
            storage.upload(run_dir, remote)
        else:
            storage.upload(run_dir / RECORD, storage.join(remote, RECORD))

    if (run_dir / "metrics.json").is_file():  # finished before (resumed sweep or retried trial)
        save("finished")
        if remote and not storage.exists(storage.join(remote, "metrics.json")):
            sync(final=True)
        report(read_json(run_dir / "metrics.json")["selection"].get("validation_metrics"), True)
        return

    def on_validation(event) -> None:  # an on_epoch callback (zslkit.tracking.EpochEvent)
        row = {**event.metrics, "epoch": event.epoch, "candidate": event.candidate}
        record["evaluations"] += 1
        record["latest"] = validation_numbers(row) | {"epoch": row["epoch"], "candidate": row["candidate"]}
        best = record.get("best")
        if better(row[crit], None if best is None else best[crit]):
            record["best"] = validation_numbers(row) | {"epoch": row["epoch"], "candidate": row["candidate"]}
        save("running")
        sync()
        report(record["best"], False, latest=row)

    resume = (run_dir / "config.json").is_file()
    run_dir.mkdir(parents=True, exist_ok=True)
    save("running")
    try:
        metrics = execute(spec, run_dir, progress=False, resume=resume, callbacks=[on_validation],
                          plots=job.get("plots", True))
    except ZslkitError as exc:  # a deterministic failure: retrying would fail the same way
        record["error"] = str(exc)
        save("failed")
        sync(final=True)
        report(None, True)
        return
    save("finished")
    sync(final=True)
    report(metrics["selection"].get("validation_metrics"), True)


def reproduce_job(spec, run_dir: str | Path, threads: int = 1) -> dict:
    """A trial config for one ``zslkit reproduce`` run (``reproduce --address``)."""
    return {"job": {"spec": dataclasses.asdict(spec), "run_dir": str(Path(run_dir).resolve()), "params": {},
                    "label": f"{spec.selection}-seed{spec.seed}", "threads": threads}}
