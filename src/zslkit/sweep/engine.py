"""The Ray side of a sweep on the driver: start or join Ray, build or restore the Tuner, show progress.

Without an address Ray starts on this machine (``num_cpus`` = the machine's CPUs, no dashboard, no usage
statistics); ``auto`` or ``HOST:PORT`` or ``ray://HOST:PORT`` joins a running cluster. Ray Tune keeps
its experiment state in ``SWEEP_DIR/<experiment>/`` (``Tuner.restore`` resumes from there).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import logging
import time
from pathlib import Path

from zslkit.sweep import SweepError, require_ray
from zslkit.sweep.space import SweepPlan
from zslkit.sweep.storage import download, is_uri, join, upload

log = logging.getLogger("zslkit.sweep")

METRIC = "val_score"  # the validation criterion (best point so far) every trial reports


def connect(address: str | None, *, need_cpus: float = 1, need_gpus: float = 0) -> None:
    """Start Ray locally (no address) or join ``address``; check the cluster can hold one trial."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: Ray Tune prints nothing, zslkit its table
    ray = require_ray()
    if address is not None:
        _check_reachable(address)
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ... depending on the address
                raise SweepError(f"--address {address}: cannot join the Ray cluster ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
    res = ray.cluster_resources()
    if need_gpus > res.get("GPU", 0):
        raise SweepError(f"--gpus-per-trial {need_gpus:g}: the Ray cluster has {res.get('GPU', 0):g} GPU(s)")
    if need_cpus > res.get("CPU", 0):
        raise SweepError(f"--cpus-per-trial {need_cpus:g}: the Ray cluster has {res.get('CPU', 0):g} CPU(s)")


def _check_reachable(address: str) -> None:
    """Fail in seconds with a clear line when HOST:PORT does not answer (Ray itself retries for minutes)."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        from zslkit.errors import ConfigError

        raise ConfigError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise SweepError(f"--address {address}: cannot reach {host}:{port} ({exc.strerror or exc}); is the Ray "
                         f"head running there (ray start --head)?") from None


class TrialWatcher:
    """A Ray Tune callback on the driver: passes the table of trials to ``show(text)`` (at most every
    ``interval`` seconds; None: not shown) and marks trials the scheduler stopped early in their
    ``sweep_trial.json``."""

    def __new__(cls, *args, **kwargs):
        from ray import tune

        class _Watcher(tune.Callback):
            def __init__(self, show=None, interval: float = 15.0):
                self.show_table, self.interval, self.last = show, interval, 0.0
                self.latest = {}  # trial id -> newest result (Ray updates trial.last_result after callbacks)

            def on_trial_result(self, iteration, trials, trial, result, **info):
                self.latest[trial.trial_id] = result
                self.show(trials)

            def on_trial_complete(self, iteration, trials, trial, **info):
                if not (trial.last_result or {}).get("run_finished"):
                    mark_stopped(trial.config)
                self.show(trials)

            def on_experiment_end(self, trials, **info):
                self.show(trials, force=True)

            def show(self, trials, force: bool = False) -> None:
                now = time.monotonic()
                if not self.show_table or (not force and now - self.last < self.interval):
                    return
                self.last = now
                try:
                    self.show_table(progress_text(trials, self.latest))
                except Exception as exc:  # the table is a display: it must never stop the sweep
                    log.warning("progress table: %s: %s", type(exc).__name__, exc)

        return _Watcher(*args, **kwargs)


def mark_stopped(config: dict) -> None:
    """Record in the trial's run directory that the scheduler (ASHA) stopped it before the end."""
    import tempfile

    from zslkit.runs import atomic_write_json
    from zslkit.sweep.trial import RECORD, job_of, read_record

    try:
        job = job_of(config)
    except (KeyError, IndexError, TypeError):
        return
    if job.get("remote"):  # the trial's copy at the storage URI
        with tempfile.TemporaryDirectory() as tmp:
            uri = join(join(job["remote"], job["rel"]), RECORD)
            if download(uri, Path(tmp) / RECORD):
                record = read_record(Path(tmp))
                if record.get("status") == "running":
                    atomic_write_json(dict(record, status="stopped early"), Path(tmp) / RECORD)
                    upload(Path(tmp) / RECORD, uri)
    run_dir = Path(job["run_dir"])
    record = read_record(run_dir)
    if record and record.get("status") == "running":
        atomic_write_json(dict(record, status="stopped early"), run_dir / RECORD)


def progress_text(trials, newest: dict | None = None) -> str:
    """One line per trial: run-directory name, Ray status, validation points so far, best validation value."""
    from zslkit.sweep.space import slug
    from zslkit.sweep.trial import job_of

    rows = []
    for t in trials:
        try:
            job = job_of(t.config)
            name = f"{job['label']}/{slug(job['params'])}/seed{job['spec']['seed']}"
        except (KeyError, IndexError, TypeError):  # optuna: not yet proposed
            name = t.trial_id
        r = (newest or {}).get(t.trial_id) or t.last_result or {}
        best, latest = (r.get(k) for k in (METRIC, "val_latest"))
        rows.append((name, t.status, r.get("evaluations", 0), "" if latest is None else f"{100 * latest:.2f}",
                     "" if best is None else f"{100 * best:.2f}"))
    width = max([5] + [len(r[0]) for r in rows])
    lines = [f"{'trial':<{width}}  {'status':<10} {'evals':>5} {'validation (latest)':>19} "
             f"{'validation (best so far)':>24}"]
    lines += [f"{n:<{width}}  {s:<10} {e:>5} {la:>19} {b:>24}" for n, s, e, la, b in rows]
    return "\n".join(lines)


def trial_name(trial) -> str:
    """Short Ray trial folder names (the run directories carry the readable names)."""
    return f"trial_{trial.trial_id}"


def build_tuner(root: Path | str, name: str, param_space: dict, plan: SweepPlan, *, search_alg=None,
                num_samples: int = 1, progress=None):
    """A Tuner whose experiment state goes to ``root/name`` (``root``: a local path or a storage URI);
    ``progress(text)`` shows the live table of trials (None: no table)."""
    from ray import tune

    from zslkit.sweep.trial import run_trial

    scheduler = None
    if plan.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=10**6, grace_period=1, reduction_factor=3)
    trainable = tune.with_resources(run_trial, {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial})
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", search_alg=search_alg, scheduler=scheduler,
                                    num_samples=num_samples, reuse_actors=True, trial_name_creator=trial_name,
                                    trial_dirname_creator=trial_name),
        run_config=tune.RunConfig(name=name, storage_path=root if is_uri(root) else str(Path(root).resolve()),
                                  verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=plan.max_failures),
                                  callbacks=[TrialWatcher(show=progress)]))


def sweep_tuners(root: Path | str, plan: SweepPlan, fixed: dict, progress=None):
    """(experiment name, Tuner) pairs; one per dataset for optuna, else one over every trial."""
    from ray import tune

    if plan.search != "optuna":
        cases = [{"dataset": d.spec, "label": d.name, "params": p} for d in plan.datasets
                 for p in _configs(plan)]
        space = {"sweep": fixed, "case": tune.grid_search(cases), "seed": tune.grid_search(plan.seeds)}
        return [(plan.experiments()[0], build_tuner(root, plan.experiments()[0], space, plan, progress=progress))]
    from ray.tune.search import Repeater
    from ray.tune.search.optuna import OptunaSearch

    out = []
    for d, name in zip(plan.datasets, plan.experiments()):
        space = {"sweep": fixed, "case": {"dataset": d.spec, "label": d.name},
                 "params": {k: tune.choice(v) for k, v in plan.params.items()}}
        searcher = Repeater(OptunaSearch(seed=0), repeat=len(plan.seeds), set_index=True)
        out.append((name, build_tuner(root, name, space, plan, search_alg=searcher, progress=progress,
                                      num_samples=(plan.samples or 10) * len(plan.seeds))))
    return out


def _configs(plan: SweepPlan) -> list[dict]:
    from zslkit.sweep.space import configurations

    return configurations(plan.params, plan.search, plan.samples)


def fit_all(pairs, root: Path | str, plan: SweepPlan, *, resume: bool = False) -> tuple[list, bool]:
    """Run (or, with ``resume``, restore and continue) every experiment; returns Ray's ResultGrids and
    whether Ctrl-C stopped the sweep (later experiments then start on --resume)."""
    from ray import tune

    from zslkit.sweep.trial import run_trial

    results = []
    for name, tuner in pairs:
        path = join(root, name) if is_uri(root) else str((Path(root) / name).resolve())
        if resume and tune.Tuner.can_restore(path):
            trainable = tune.with_resources(run_trial, {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial})
            tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
        grid, stopped = fit_watching_sigint(tuner)
        results.append(grid)
        if stopped:
            return results, True
    return results, False


def fit_watching_sigint(tuner):
    """``tuner.fit()`` and whether Ctrl-C stopped it. Ray Tune catches the first SIGINT, saves its state,
    ends the run and puts back the handler it found; a sentinel installed before shows that happened."""
    if threading.current_thread() is not threading.main_thread():
        return tuner.fit(), False

    def sentinel(signum, frame):
        raise KeyboardInterrupt

    from ray.exceptions import RayError
    from ray.tune import TuneError

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, sentinel)
    try:
        grid = tuner.fit()
        stopped = signal.getsignal(signal.SIGINT) is sentinel
    except (RayError, TuneError) as exc:  # e.g. the cluster went away
        raise SweepError(f"Ray Tune stopped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                         f"continue with zslkit sweep --resume") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    return grid, stopped


def run_specs(specs_dirs: list, *, address: str | None, root: Path, progress=None) -> None:
    """Run (RunSpec, run directory) pairs as one Ray Tune experiment (``zslkit reproduce --address``); a run
    directory left unfinished by an earlier attempt continues from its checkpoint."""
    from zslkit.sweep.trial import reproduce_job

    if not specs_dirs:
        return
    gpus = 1.0 if str(specs_dirs[0][0].device).startswith("cuda") else 0.0
    connect(address, need_cpus=1, need_gpus=gpus)
    from ray import tune

    plan = SweepPlan(method="", datasets=[], setting="", seeds=[], params={}, gpus_per_trial=gpus)
    space = {"job": tune.grid_search([reproduce_job(spec, d)["job"] for spec, d in specs_dirs])}
    name = f"tune-reproduce-{time.strftime('%Y%m%d-%H%M%S')}"
    _, stopped = fit_watching_sigint(build_tuner(Path(root), name, space, plan, progress=progress))
    if stopped:
        raise KeyboardInterrupt
    missing = [str(d) for _, d in specs_dirs if not (Path(d) / "metrics.json").is_file()]
    if missing:
        raise SweepError(f"{len(missing)} run(s) did not finish on the cluster ({', '.join(missing)}); see their "
                         f"sweep_trial.json and run the command again to continue them")
