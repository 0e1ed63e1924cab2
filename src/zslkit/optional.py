"""Optional heavy dependencies (extras ``zslkit[vision]``, ``zslkit[text]``), imported on demand.

A missing package is one clear line naming the package and the extra to install. The PyPI wheel of
``torchvision`` is built against CUDA torch; with the CPU build of torch its compiled operators
(``torchvision::nms`` ...) cannot load and ``import torchvision`` fails. zslkit needs none of those
operators (only models and weights), so :func:`torchvision` declares their schemas and imports again.
"""

from __future__ import annotations

import importlib
import logging
import sys

from zslkit.errors import MissingDependencyError

log = logging.getLogger("zslkit")

#: import name -> (what to pip install, extra)
PACKAGES = {
    "torchvision": ("torchvision==0.28.0", "vision"),
    "timm": ("timm", "vision"),
    "open_clip": ("open_clip_torch", "vision"),
    "sentence_transformers": ("sentence-transformers", "text"),
    "PIL": ("pillow", "vision"),
    "tensorboard": ("tensorboard", "tensorboard"),  # zslkit train --log-to tensorboard (zslkit.tracking)
    "mlflow": ("mlflow", "mlflow"),  # zslkit train --log-to mlflow
}
_STUB_OPS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
             "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_stub_lib = None


def _missing(name: str, purpose: str, exc: BaseException | None = None) -> MissingDependencyError:
    pip, extra = PACKAGES[name]
    detail = f" ({exc})" if exc is not None and getattr(exc, "name", name) not in (None, name) else ""
    return MissingDependencyError(f"{purpose} needs the optional package '{pip}', which is not installed{detail}; "
                                  f"install it with: pip install 'zslkit[{extra}]'")


def torchvision(purpose: str = "this", required: bool = True):
    """``import torchvision`` (working around a CUDA-built wheel beside CPU torch); None if absent and optional."""
    global _stub_lib
    try:
        return importlib.import_module("torchvision")
    except ImportError as exc:
        if required:
            raise _missing("torchvision", purpose, exc) from None
        return None
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or _stub_lib is not None:
            raise
    import torch

    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[mod]
    _stub_lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _STUB_OPS:
        try:
            _stub_lib.define(schema)
        except RuntimeError:
            pass  # already declared
    log.info("torchvision's compiled operators do not load with this torch build (a CUDA wheel beside CPU "
             "torch?); models and weights still work, detection operators (nms) do not")
    return importlib.import_module("torchvision")


def require(name: str, purpose: str):
    """Import an optional package by its import name, or raise MissingDependencyError with the extra to install."""
    if name in ("timm", "open_clip", "sentence_transformers"):
        torchvision(purpose, required=name != "sentence_transformers")  # they import it themselves
    if name == "torchvision":
        return torchvision(purpose)
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise _missing(name, purpose, exc) from None


def available(name: str) -> bool:
    """Whether the optional package ``name`` imports (through :func:`require`, so torchvision's workaround applies)."""
    try:
        require(name, "check")
    except MissingDependencyError:
        return False
    return True
