"""Local checkpoint files: read a state dict, load it by name or, for another implementation of the same
architecture (same tensors in the same order, other key names), by position with every shape checked."""

from __future__ import annotations

from pathlib import Path

import torch

from zslkit.data.matio import file_sha256  # noqa: F401 (re-exported for backbones)
from zslkit.errors import DataError

_CONTAINERS = ("state_dict", "model", "model_state", "model_state_dict", "net", "module")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth``/``.pt``/``.bin`` (torch, weights only) or ``.safetensors`` file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip/safetensors errors of many kinds
        raise DataError(path, None, f"cannot read the weights file (not a torch/safetensors checkpoint, or "
                                    f"truncated?) ({type(exc).__name__}: {exc})") from None
    for key in _CONTAINERS:  # {"state_dict": {...}} and friends
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise DataError(path, None, f"expected a dict of tensors (a state dict), got {type(obj).__name__}")
    state = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            state[key[len("module."):] if key.startswith("module.") else key] = value
    if not state:
        raise DataError(path, None, "the checkpoint holds no tensors")
    return state


def _entries(state: dict) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def load_weights(model: torch.nn.Module, path: str | Path, *, arch: str, head_keys=()) -> dict:
    """Load ``path`` into ``model``: by name when the key names agree, else by position (shape-checked).

    ``head_keys``: the model's classifier tensors, which a checkpoint without its head may lack.
    Returns what was done: ``{"mode": "by name" | "by position", "tensors": n, "unused": [...]}``.
    """
    path = Path(path)
    state = read_state_dict(path)
    target = model.state_dict()
    mine, theirs = _entries(target), _entries(state)
    if {k for k, _ in theirs} == {k for k, _ in mine} or (
            {k for k, _ in theirs} == {k for k, _ in mine if k not in head_keys}):
        for k, v in theirs:
            if tuple(v.shape) != tuple(target[k].shape):
                raise DataError(path, k, f"has shape {tuple(v.shape)} but {arch} needs {tuple(target[k].shape)}")
        model.load_state_dict({k: v for k, v in theirs}, strict=False)
        return {"mode": "by name", "tensors": len(theirs), "unused": []}
    body = [(k, v) for k, v in mine if k not in head_keys]
    if len(theirs) == len(mine):
        pairs = list(zip(theirs, mine))
    elif len(theirs) == len(body):
        pairs = list(zip(theirs, body))
    else:
        raise DataError(path, None, f"holds {len(theirs)} tensors but {arch} has {len(mine)} ({len(body)} without "
                                    f"its classifier), and the key names differ: not a checkpoint of this "
                                    f"architecture (first keys: file {[k for k, _ in theirs[:3]]}, model "
                                    f"{[k for k, _ in mine[:3]]})")
    for n, ((ck, cv), (mk, mv)) in enumerate(pairs):
        if tuple(cv.shape) != tuple(mv.shape):
            raise DataError(path, ck, f"tensor #{n} has shape {tuple(cv.shape)} but {arch}'s tensor #{n} '{mk}' "
                                      f"needs {tuple(mv.shape)}: the key names differ, so tensors are matched by "
                                      f"position, and this checkpoint is not {arch} (or holds its tensors in "
                                      f"another order)")
    model.load_state_dict({mk: cv.to(mv.dtype) for (_, cv), (mk, mv) in pairs}, strict=False)
    return {"mode": "by position", "tensors": len(pairs), "unused": []}
