"""The model file (``model.pt``): a self-contained checkpoint of a fitted method, and its checks on reading.

A checkpoint is a dict: ``format`` / ``version`` (below), ``method`` (registry name), ``config`` (the resolved
config as a dict), ``seed``, ``dims`` (feature_dim, embedding_dim, num_train_classes), ``state`` (the method's
``state_dict()``) and ``extra`` (dataset name, class names). ``ZSLMethod.checkpoint`` writes it,
``ZSLMethod.from_checkpoint`` rebuilds the model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zslkit.errors import DataError

CHECKPOINT_FORMAT = "zslkit-checkpoint"
CHECKPOINT_VERSION = 1


def read_checkpoint(path: str | Path) -> dict:
    """Load and sanity-check a checkpoint file; clear errors for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for corrupt files
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise DataError(path, None, f"cannot read checkpoint, the file is damaged or not a torch file "
                        f"({type(exc).__name__}: {detail})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DataError(path, "format", "not a zslkit checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise DataError(path, "version", f"checkpoint version {ckpt.get('version')} is not supported "
                        f"(this zslkit reads version {CHECKPOINT_VERSION})")
    for key, kind in (("method", str), ("config", dict), ("dims", dict), ("state", dict)):
        if not isinstance(ckpt.get(key), kind):
            raise DataError(path, key, "incomplete checkpoint: this entry is missing or malformed")
    missing = {"feature_dim", "embedding_dim", "num_train_classes"} - set(ckpt["dims"])
    if missing:
        raise DataError(path, "dims", f"incomplete checkpoint: missing {', '.join(sorted(missing))}")
    return ckpt
