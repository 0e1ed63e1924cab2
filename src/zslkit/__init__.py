"""zslkit: zero-shot learning from pre-extracted visual features and class embeddings.

The public API (docs/api.md)::

    from zslkit import load_dataset, get_method, run_protocol, ZSLClassifier, load

    data = load_dataset("synthetic-tiny")                 # a synthetic preset, or a path in any layout
    result = run_protocol(get_method("eszsl"), data, selection="validation", seed=0)
    result.metrics["gzsl_h"]; result.model.save("model.pt")
    model = load("model.pt")                              # or a run directory: RUN_DIR/model.pt

Names are imported on first use, so ``import zslkit`` stays light (no torch or scikit-learn until a name needs them).
"""

from __future__ import annotations

import importlib
from pathlib import Path

__version__ = "0.1.0"

# public name -> (module, attribute); imported on first access (PEP 562)
_LAZY = {
    "load_dataset": ("zslkit.data.catalog", "open_dataset"),
    "make_synthetic": ("zslkit.data.synthetic", "make_synthetic"),
    "ZSLDataset": ("zslkit.data.dataset", "ZSLDataset"),
    "available_methods": ("zslkit.methods.registry", "available_methods"),
    "get_method": ("zslkit.methods.registry", "get_method"),
    "ZSLMethod": ("zslkit.methods.base", "ZSLMethod"),
    "run_protocol": ("zslkit.pipeline", "run_protocol"),
    "ZSLClassifier": ("zslkit.classifier", "ZSLClassifier"),
    "RunSpec": ("zslkit.experiment", "RunSpec"),
    "execute": ("zslkit.experiment", "execute"),
}

__all__ = ["__version__", *_LAZY, "load", "load_run_file"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'zslkit' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def load(path, device="auto"):
    """A fitted model from a checkpoint file, or from a run directory (its ``model.pt``)."""
    from zslkit.methods.base import ZSLMethod  # here, not at the top: `import zslkit` stays light (no torch, scikit-learn)

    path = Path(path)
    return ZSLMethod.load(path / "model.pt" if path.is_dir() else path, device=device)


def load_run_file(path):
    """The ``RunSpec`` of a run file (``RUN_DIR/run.yaml`` or one written by hand; docs/api.md), checked; run it
    with ``execute(spec, out)``."""
    from zslkit.errors import ConfigError  # here, not at the top: `import zslkit` stays light (no torch, scikit-learn)
    from zslkit.experiment import RunSpec  # (the same reason)
    from zslkit.runfile import read_run_file  # (the same reason)

    fields = read_run_file(path)
    if "method" not in fields:
        raise ConfigError(f"{path}: key 'method': missing (the command line defaults it; a RunSpec needs it)")
    return RunSpec(**fields)
