"""User callbacks of a run and the experiment trackers built on them (``zslkit train --log-to``).

``run_protocol(..., callbacks=[...])`` and ``experiment.execute(..., callbacks=...)`` call every callback's
``on_epoch(event)`` at each monitored evaluation point (validation selection: the warm-up and validation
stages; oracle selection: the test-scored points) and ``on_end(metrics)`` once with the final metrics. A
plain function is taken as an ``on_epoch``. The final retraining on trainval (and a ``fixed`` run) is not
monitored: scoring it during training would need the test set.

Trackers (optional extras): ``TensorBoardTracker`` (``pip install 'zslkit[tensorboard]'``) writes event files
under ``RUN_DIR/tensorboard``; ``MLflowTracker`` (``pip install 'zslkit[mlflow]'``) logs to
``MLFLOW_TRACKING_URI`` if set, else to a local ``file:`` store in ``RUN_DIR/mlruns``. The run directory
stays the record: trackers only mirror what it holds.
"""

from __future__ import annotations

import logging
import numbers
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from zslkit.errors import ConfigError
from zslkit.optional import require

log = logging.getLogger("zslkit.tracking")


@dataclass(frozen=True)
class EpochEvent:
    """One monitored evaluation point."""

    stage: str  # "warmup" | "validation" (scored on validation classes) | "oracle" (scored on test)
    candidate: int  # index in the method's search space
    epoch: int
    metrics: dict  # zsl_t1, gzsl_u, gzsl_s, gzsl_h, cs_gamma, gzsl_cs_h, ... (fractions)
    overrides: dict = field(default_factory=dict)  # the candidate's and the head's config overrides
    head: int = 0  # index in the method's head space (several heads are scored at one epoch)

    @property
    def key(self) -> str:
        """``stage/cN`` (``stage/cNhM`` for a head after the first): a name for this point's series."""
        return f"{self.stage}/c{self.candidate}" + (f"h{self.head}" if self.head else "")


class Callback:
    """Base class of user callbacks; override what you need."""

    def on_epoch(self, event: EpochEvent) -> None:
        """Called at every monitored evaluation point."""

    def on_end(self, metrics: dict) -> None:
        """Called once with the final metrics (the content of metrics.json, without the wall time)."""


class _FunctionCallback(Callback):
    def __init__(self, fn):
        self.fn = fn

    def on_epoch(self, event: EpochEvent) -> None:
        self.fn(event)


class CallbackList(Callback):
    """Several callbacks as one (a plain function becomes an ``on_epoch`` callback)."""

    def __init__(self, callbacks=None):
        if isinstance(callbacks, CallbackList):
            callbacks = callbacks.items
        self.items = []
        for c in callbacks or ():
            if callable(getattr(c, "on_epoch", None)) or callable(getattr(c, "on_end", None)):
                self.items.append(c)
            elif callable(c):
                self.items.append(_FunctionCallback(c))
            else:
                raise ConfigError(f"callback {c!r} is neither a function nor an object with on_epoch / on_end")

    def on_epoch(self, event: EpochEvent) -> None:
        for c in self.items:
            if hasattr(c, "on_epoch"):
                c.on_epoch(event)

    def on_end(self, metrics: dict) -> None:
        for c in self.items:
            if hasattr(c, "on_end"):
                c.on_end(metrics)


def scalars(metrics: dict) -> dict[str, float]:
    """The numeric entries of a metrics dict (booleans and nested entries left out)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}


def run_params(metrics: dict) -> dict[str, str]:
    """What identifies a finished run, as tracker parameters (method, variant, dataset, setting, selection...)."""
    sel = metrics.get("selection") or {}
    params = {k: metrics.get(k) for k in ("method", "variant", "dataset", "setting", "seed", "semantic_source")}
    params.update(selection=sel.get("mode"), criterion=sel.get("criterion"), synthetic=metrics.get("synthetic"))
    params.update({f"chosen.{k}": v for k, v in (sel.get("chosen") or {}).items()})
    return {k: str(v) for k, v in params.items() if v is not None}


class TensorBoardTracker(Callback):
    """Event files under ``log_dir`` (default ``RUN_DIR/tensorboard``): one scalar series per stage, candidate
    and metric (``validation/c0/gzsl_h`` ...), the final metrics as ``test/...``. With ``fresh`` (a new or
    overwritten run, not a resume), event files left by an earlier run are removed at the first write."""

    def __init__(self, run_dir: str | Path, log_dir: str | Path | None = None, fresh: bool = True):
        self.log_dir = Path(log_dir) if log_dir else Path(run_dir) / "tensorboard"
        self.fresh = fresh
        self._writer = None
        require("tensorboard", "--log-to tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self._summary_writer = SummaryWriter

    def _open(self):
        if self._writer is None:
            if self.fresh and self.log_dir.is_dir():
                shutil.rmtree(self.log_dir)
            self._writer = self._summary_writer(log_dir=str(self.log_dir))
        return self._writer

    def on_epoch(self, event: EpochEvent) -> None:
        w = self._open()
        for name, value in scalars(event.metrics).items():
            w.add_scalar(f"{event.key}/{name}", value, global_step=event.epoch)
        w.flush()

    def on_end(self, metrics: dict) -> None:
        w = self._open()
        for name, value in scalars(metrics).items():
            w.add_scalar(f"test/{name}", value, global_step=0)
        w.add_text("run", ", ".join(f"{k}={v}" for k, v in run_params(metrics).items()), global_step=0)
        self.close()

    @property
    def where(self) -> str:
        return f"TensorBoard: {self.log_dir} (view with: tensorboard --logdir {self.log_dir})"

    def close(self, failed: bool = False) -> None:
        """Flush and close the event file (also after a failed or interrupted run)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class MLflowTracker(Callback):
    """One MLflow run per zslkit run: the monitored points as metrics ``<stage>/c<N>/<metric>`` with the epoch
    as step, the final metrics as ``test/<metric>``, the run's identity as parameters. Tracking URI:
    ``MLFLOW_TRACKING_URI`` if set, else ``file:RUN_DIR/mlruns``."""

    def __init__(self, run_dir: str | Path, experiment: str = "zslkit", run_name: str | None = None):
        self.mlflow = require("mlflow", "--log-to mlflow")
        self.run_dir = Path(run_dir)
        self.experiment = experiment
        self.run_name = run_name or self.run_dir.name
        self._active = None

    @property
    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or (self.run_dir / "mlruns").resolve().as_uri()

    def _start(self):
        if self._active is None:
            self.mlflow.set_tracking_uri(self.tracking_uri)
            self.mlflow.set_experiment(self.experiment)
            self._active = self.mlflow.start_run(run_name=self.run_name)
            self.mlflow.set_tag("zslkit.run_dir", str(self.run_dir.resolve()))
        return self._active

    def on_epoch(self, event: EpochEvent) -> None:
        self._start()
        self.mlflow.log_metrics({f"{event.key}/{k}": v for k, v in scalars(event.metrics).items()},
                                step=event.epoch)

    def on_end(self, metrics: dict) -> None:
        self._start()
        self.mlflow.log_params(run_params(metrics))
        self.mlflow.log_metrics({f"test/{k}": v for k, v in scalars(metrics).items()})
        self.close()

    @property
    def where(self) -> str:
        return f"MLflow: {self.tracking_uri}, experiment {self.experiment!r}, run {self.run_name!r}"

    def close(self, failed: bool = False) -> None:
        """End the MLflow run (FAILED after a failed or interrupted run)."""
        if self._active is not None:
            self.mlflow.end_run(status="FAILED" if failed else "FINISHED")
            self._active = None


#: ``--log-to`` name -> tracker class
TRACKERS = {"tensorboard": TensorBoardTracker, "mlflow": MLflowTracker}


def make_trackers(names: list[str], run_dir: str | Path, *, resume: bool = False) -> list[Callback]:
    """The trackers named by ``--log-to`` for ``run_dir`` (each name once)."""
    out = []
    for name in dict.fromkeys(names):
        if name not in TRACKERS:
            raise ConfigError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKERS)}")
        # a resumed run appends to its TensorBoard events; MLflow gets a new run for the resumed part
        out.append(TensorBoardTracker(run_dir, fresh=not resume) if name == "tensorboard" else TRACKERS[name](run_dir))
    return out

