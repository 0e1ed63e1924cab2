"""Periodic, atomic training checkpoints and clean Ctrl-C handling, so an interrupted run can resume.

A ``ProgressStore`` holds one file (``RUN_DIR/checkpoints/progress.pt``) with the protocol's position
(phase, candidate, selection trace) and the current fit's ``training_state()`` (networks, optimizers,
schedulers, generator and global RNG states, epoch). It is rewritten atomically every ``every``
epochs; a SIGKILL therefore loses at most ``every`` epochs, and ``zslkit train --resume RUN_DIR``
continues from the file to the same final result as an uninterrupted run (CPU, deterministic mode).

The first Ctrl-C (SIGINT) asks training to stop at the end of the current epoch: the store saves a
checkpoint there and raises ``TrainingInterrupted`` with the resume command; a second Ctrl-C aborts at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import signal
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from zslkit.errors import ConfigError, RunDirError, ZslkitError

log = logging.getLogger("zslkit.checkpointing")


class TrainingInterrupted(ZslkitError):
    """Training stopped on request (Ctrl-C) after saving a checkpoint."""


def capture_rng() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fingerprint(obj) -> str:
    """A stable hash of a JSON-able description of the run (config, data, seed)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class ProgressStore:
    """The resumable state of one protocol run (see the module docstring)."""

    def __init__(self, path: str | Path, *, every: int = 10, fingerprint: str = "", resume_hint: str = ""):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"checkpoint_every must be an integer >= 1 (epochs between checkpoints), got {every!r}")
        self.path = Path(path)
        self.every = int(every)
        self.fingerprint = fingerprint
        self.resume_hint = resume_hint
        self.stop_requested = False
        self.earlier_s = 0.0  # training time of the earlier sessions of a resumed run (up to their last checkpoint)
        self._t0 = time.perf_counter()

    def elapsed_s(self) -> float:
        """Training time of this run over all its sessions: the earlier ones' (stored in the checkpoint) + this."""
        return self.earlier_s + (time.perf_counter() - self._t0)

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise RunDirError(f"{self.path}: checkpoint unreadable ({type(exc).__name__}: {exc})") from None
        if state.get("fingerprint") != self.fingerprint:
            raise RunDirError(f"{self.path}: checkpoint belongs to a different configuration or dataset; "
                              f"start a new run directory (or --overwrite)")
        self.earlier_s = float(state.get("elapsed_s", 0.0))
        self._t0 = time.perf_counter()
        return state

    def save(self, state: dict) -> None:
        from zslkit.runs import atomic_torch_save

        atomic_torch_save(dict(state, fingerprint=self.fingerprint, elapsed_s=self.elapsed_s()), self.path)

    def clear(self) -> None:
        """Remove the checkpoint (and its folder when that is left empty)."""
        if self.path.is_file():
            self.path.unlink()
        try:
            self.path.parent.rmdir()
        except OSError:  # absent, or holds other files
            pass

    def hook(self, make_state: Callable[[int, object], dict]):
        """A checkpoint hook for ``ZSLMethod.fit``: saves every ``every`` epochs and on a stop request."""

        def checkpoint(epoch: int, model) -> None:
            if self.stop_requested or epoch % self.every == 0:
                self.save(make_state(epoch, model))
            if self.stop_requested:
                raise TrainingInterrupted(f"interrupted after epoch {epoch}; checkpoint saved to {self.path}. "
                                          f"Resume with: {self.resume_hint}")

        return checkpoint

    @contextlib.contextmanager
    def handle_sigint(self):
        """First Ctrl-C: stop after the current epoch with a checkpoint; second: abort immediately."""
        if not _main_thread():
            yield
            return

        def on_sigint(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            log.warning("stopping after the current epoch to save a checkpoint (Ctrl-C again to abort now)")

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# the order of a protocol's phases: a resumed run skips the fits before the stored (phase, fit index)
PHASE_ORDER = {"warmup": 0, "validation": 1, "final": 2, "oracle": 0, "fixed": 0}


class Resumer:
    """Where a resumed protocol stands: which (phase, fit index) fits are done, which one continues, and the hooks
    that checkpoint the fits of this session (``store`` None: no checkpoints, nothing to resume)."""

    def __init__(self, store: ProgressStore | None):
        self.store = store
        self.saved = store.load() if store is not None else None
        if self.saved:
            log.info("resuming from %s (phase %s, candidate %s)", store.path, self.saved["phase"],
                     self.saved["candidate"])

    def history(self) -> list[dict]:
        return list(self.saved["history"]) if self.saved else []

    def kept_state(self) -> dict | None:
        """The best point's state a resumed search kept (its checkpoints' ``extra``), else None."""
        return (self.saved.get("extra") or {}).get("best_state") if self.saved else None

    def done(self, phase: str, candidate: int) -> bool:
        if not self.saved:
            return False
        return (PHASE_ORDER[phase], candidate) < (PHASE_ORDER[self.saved["phase"]], self.saved["candidate"])

    def fit_kwargs(self, phase: str, candidate: int, history: list[dict], extra=None) -> dict:
        """``fit`` keywords of the fit at (``phase``, ``candidate``): its stored state when it is the one that
        continues (the global RNG restored), and a checkpoint hook that stores the position, ``history`` and
        ``extra()``."""
        kwargs = {}
        if self.saved and (self.saved["phase"], self.saved["candidate"]) == (phase, candidate):
            restore_rng(self.saved["rng"])
            kwargs["resume_state"] = self.saved["fit_state"]
        if self.store is not None:
            def make_state(epoch, model):
                return {"phase": phase, "candidate": candidate, "history": list(history), "rng": capture_rng(),
                        "fit_state": model.training_state(), "extra": extra() if extra else None}
            kwargs["checkpoint"] = self.store.hook(make_state)
        return kwargs
