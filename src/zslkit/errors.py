"""The project's own exceptions: every user-facing failure is one of these, with a clear message."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


class ZslkitError(Exception):
    """Base class of every error zslkit raises on purpose."""


class DataError(ZslkitError, ValueError):
    """A data file or in-memory dataset is missing, malformed or inconsistent.

    The message always names the file (or ``<memory>``), the key and the problem.
    """

    def __init__(self, file: str | None, key: str | None, problem: str):
        self.file = str(file) if file is not None else "<memory>"
        self.key = key
        self.problem = problem
        where = self.file if key is None else f"{self.file}: key '{key}'"
        super().__init__(f"{where}: {problem}")


class ConfigError(ZslkitError, ValueError):
    """A configuration value, preset, method name or command-line option is invalid."""


class MissingDependencyError(ConfigError):
    """An optional package (an extra such as ``zslkit[vision]``) or a model file is not available."""


class NotFittedError(ZslkitError, _SklearnNotFittedError):
    """An estimator was used before ``fit`` (or ``load``); scikit-learn's ``NotFittedError`` too."""


class TrainingDivergedError(ZslkitError):
    """Training produced NaN/inf or an exploding loss; the message says what and where."""


class RunDirError(ZslkitError):
    """A run directory is missing, incomplete, locked or would be overwritten."""
