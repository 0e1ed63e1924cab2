"""Run directories: resolved config, metrics, checkpoint, log and provenance, all written atomically.

Layout of ``RUN_DIR``::

    config.json       the resolved configuration (method, dataset, setting, selection, hyperparameters)
    metrics.json      final metrics (fractions in [0, 1]) and how they were selected
    history.json      the selection trace (metrics at every evaluation point of every candidate)
    provenance.json   dataset facts, split sha256, seed, git commit, package versions, device, wall time
    model.pt          the final model's checkpoint (rebuilds the model alone)
    log.txt           the run's log (the ``zslkit`` logger's records at its level: INFO under the CLI)
    .lock             held while a process writes into the directory

A finished run (``metrics.json`` present) is never overwritten unless ``overwrite=True``; two processes
never write into one directory at the same time (an exclusive lock is taken).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from zslkit.errors import RunDirError

FILES = ("config.json", "metrics.json", "history.json", "provenance.json", "model.pt", "log.txt")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(data: bytes, path: Path) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``. The file gets the
    permissions a plain ``open(path, "w")`` would (0666 less the umask), not the temporary file's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _json_default(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_write_json(obj: Any, path: Path) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=True)
    return atomic_write_bytes((text + "\n").encode("utf-8"), Path(path))


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """``torch.save`` through a temporary file + rename, so a crash never leaves a half-written file."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(buf.getvalue(), Path(path))


def read_json(path: Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc})") from None


def git_commit() -> str | None:
    """The commit of the zslkit source checkout, when it is one (else None)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=5)
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("zslkit", "torch", "numpy", "scipy", "h5py"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """One run's output folder. Use as a context manager: it takes the lock and sets up the log."""

    def __init__(self, path: str | Path, *, overwrite: bool = False, resume: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.resume = resume
        self._lock_fh = None
        self._log_handler: logging.Handler | None = None

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def finished(self) -> bool:
        return self.file("metrics.json").is_file()

    def __enter__(self) -> "RunDir":
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.file(".lock"), "a+")
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            self._lock_fh = None
            raise RunDirError(f"{self.path}: another zslkit process is writing into this run directory") from None
        if self.finished and not self.overwrite:
            self.__exit__(None, None, None)
            raise RunDirError(f"{self.path}: holds a finished run (metrics.json exists); choose another --out "
                              f"or pass --overwrite to replace it")
        if self.overwrite and not self.resume:
            for name in FILES:
                if self.file(name).exists():
                    self.file(name).unlink()
            ckpt_dir = self.file("checkpoints")
            if ckpt_dir.is_dir():
                shutil.rmtree(ckpt_dir)
        self._log_handler = logging.FileHandler(self.file("log.txt"), encoding="utf-8")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("zslkit").addHandler(self._log_handler)  # at the logger's level (the CLI sets INFO)
        return self

    def __exit__(self, exc_type=None, exc=None, tb=None) -> None:
        if self._log_handler is not None and exc_type is not None:
            self._log_failure(exc_type, exc)
        if self._log_handler is not None:
            logging.getLogger("zslkit").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_json(obj, self.file(name))

    def _log_failure(self, exc_type, exc) -> None:
        """The error that ended the run, into log.txt only (the command line prints it once itself)."""
        interrupted = issubclass(exc_type, KeyboardInterrupt) or exc_type.__name__ == "TrainingInterrupted"
        level = logging.WARNING if interrupted else logging.ERROR
        text = f"{exc}" if str(exc) else exc_type.__name__
        what = "run interrupted" if interrupted else f"run failed: {exc_type.__name__}"
        record = logging.getLogger("zslkit.runs").makeRecord("zslkit.runs", level, __file__, 0, "%s: %s",
                                                             (what, text), None)
        try:
            self._log_handler.handle(record)
        except Exception:  # noqa: BLE001 - the log is best effort; the error itself still reaches the caller
            pass



def provenance(dataset_summary: dict, *, seed: int | list[int], device: str, wall_time_s: float,
               extra: dict | None = None) -> dict:
    """The facts that say where a result came from."""
    out = {
        "dataset": dataset_summary,
        "seed": seed,
        "git_commit": git_commit(),
        "packages": package_versions(),
        "device": device,
        "platform": platform.platform(),
        "wall_time_s": round(float(wall_time_s), 3),
        "finished_at": now_iso(),
        "command": " ".join(sys.argv),
    }
    out.update(extra or {})
    return out


def open_finished_run(path: str | Path) -> dict:
    """Config, metrics and provenance of a finished run directory (clear error when incomplete)."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path}: run directory not found")
    missing = [n for n in ("config.json", "metrics.json", "model.pt") if not (path / n).is_file()]
    if missing:
        raise RunDirError(f"{path}: not a finished zslkit run (missing {', '.join(missing)})")
    return {"config": read_json(path / "config.json"), "metrics": read_json(path / "metrics.json"),
            "provenance": read_json(path / "provenance.json") if (path / "provenance.json").is_file() else {}}
