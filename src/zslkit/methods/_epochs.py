"""One shape for the end of a training epoch, shared by every method with an epoch loop.

``EpochReporter.end_epoch`` does, in order: the finite check of the epoch's losses (``TrainingDivergedError``
naming the stage, epoch and loss), one history row in the common schema, the progress bar, and
``ZSLMethod._epoch_done`` (validation monitor at evaluation points, then the checkpoint hook).

History rows (``model.history_``, written to ``curves.json`` "training"): ``stage`` (e.g. "inductive",
"transductive", "gan"), ``epoch`` (1-based within the stage), ``loss`` (the stage's main training loss),
``lr``, ``time_s``, then method-specific numbers; ``monitor`` holds the validation metrics of evaluation
points.

Progress: on a terminal a tqdm bar; otherwise (a log file, a pipe, a scheduler's capture) plain lines, one about
every tenth of the fit and one at its end, never ``\r`` frames. Either names the stage that the protocol set
with :func:`progress_stage` ("validation candidate 2 of 4", "final fit").
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import time
from typing import Callable

from zslkit.errors import TrainingDivergedError

SHOWN_METRICS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")
_STAGE: contextvars.ContextVar[str | None] = contextvars.ContextVar("zslkit_progress_stage", default=None)


@contextlib.contextmanager
def progress_stage(label: str):
    """Name the protocol stage that the fits inside run for (shown by their progress output)."""
    token = _STAGE.set(label)
    try:
        yield
    finally:
        _STAGE.reset(token)


def current_stage() -> str | None:
    return _STAGE.get()


class PlainProgress:
    """tqdm's few methods used here, as plain lines on stderr: about ``lines`` of them per fit plus the last."""

    def __init__(self, *, total: int, initial: int = 0, unit: str = "it", desc: str = "", lines: int = 10):
        self.total, self.n, self.unit, self.desc = int(total), int(initial), unit, desc
        self.step = max(1, math.ceil(self.total / lines)) if self.total else 1
        self.postfix = ""
        self._last = self.n

    def set_postfix(self, values: dict, refresh: bool = False) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n - self._last >= self.step or (self.total and self.n >= self.total):
            self._last = self.n
            of = f"/{self.total}" if self.total else ""
            line = f"{self.desc}: {self.n}{of} {self.unit}" + (f" ({self.postfix})" if self.postfix else "")
            sys.stderr.write(line + "\n")  # progress output, as tqdm's bar would be (only with progress=True)
            sys.stderr.flush()

    def close(self) -> None:
        pass


def make_progress(*, total: int, initial: int, unit: str, desc: str):
    """A tqdm bar on a terminal, plain lines elsewhere (stderr as it is now)."""
    stream = sys.stderr
    if getattr(stream, "isatty", None) and stream.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True, leave=False,
                    file=stream)
    return PlainProgress(total=total, initial=initial, unit=unit, desc=desc)


class EpochReporter:
    """The progress bar, history and epoch-end calls of one ``fit``."""

    def __init__(self, model, *, total: int, unit: str, initial: int = 0, desc: str | None = None):
        self.model = model
        self.last_metrics: dict | None = None
        self.shown: dict = {}  # more values for the bar's postfix (cycle-wgan: the generator's fidelity and spread)
        self._t0 = time.perf_counter()
        self.bar = None
        if model.progress:
            stage = current_stage()
            label = desc or model.name
            self.bar = make_progress(total=total, initial=initial, unit=unit,
                                     desc=f"{label} [{stage}]" if stage else label)

    def end_epoch(self, context, *, stage: str, epoch: int, loss: float, lr: float | None = None,
                  evaluate: bool, advance: int = 1, watch: dict | None = None,
                  on_diverge: Callable[[str], str] | None = None, **extra) -> dict | None:
        """Finish epoch ``epoch`` of ``stage``: check ``loss`` and ``watch`` (more numbers that must be finite),
        append the history row (``loss``, ``lr``, ``extra``), advance the bar by ``advance`` and call the monitor
        (when ``evaluate``) and checkpoint hook. ``on_diverge(what)`` runs before the error is raised (e.g. to
        restore the last good state) and returns text appended to the message. Returns the monitor's metrics."""
        numbers = {"loss": loss, **(watch or {})}
        bad = [k for k, v in numbers.items() if not math.isfinite(float(v))]
        if bad:
            what = f"non-finite {', '.join(bad)}"
            hint = on_diverge(what) if on_diverge is not None else "lower the learning rate"
            values = ", ".join(f"{k} {float(v):.4g}" for k, v in numbers.items())
            raise self.diverged(stage, epoch, f"{what} ({values})", hint)
        now = time.perf_counter()
        row = {"stage": stage, "epoch": int(epoch), "loss": float(loss), "lr": None if lr is None else float(lr),
               "time_s": now - self._t0, **{k: float(v) for k, v in (watch or {}).items()}, **extra}
        self._t0 = now
        self.model.history_.append(row)
        if self.bar is not None:
            post = {"stage": stage, "epoch": epoch, "loss": f"{loss:.4f}"}
            for key in SHOWN_METRICS:
                if self.last_metrics and key in self.last_metrics:
                    post[f"val_{key}"] = f"{self.last_metrics[key]:.3f}"
            self.bar.set_postfix({**post, **self.shown}, refresh=False)
            self.bar.update(advance)
        met = self.model._call_monitor(context, epoch) if evaluate and context.monitor is not None else None
        if met:
            self.last_metrics = {k: float(v) for k, v in met.items()
                                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
            row["monitor"] = self.last_metrics
        # the checkpoint hook last: a training state taken there holds the complete row (a resumed fit's history
        # then equals the uninterrupted one's)
        self.model._epoch_done(epoch, context, evaluate=False)
        return met

    def diverged(self, stage: str, epoch: int, what: str, hint: str) -> TrainingDivergedError:
        """The error for a divergence found by the method itself (e.g. an exploding critic loss)."""
        return TrainingDivergedError(f"{self.model.name} {stage} training diverged in epoch {epoch}: {what}; {hint}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
