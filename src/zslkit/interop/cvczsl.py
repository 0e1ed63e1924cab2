"""kailigo/cvcZSL checkpoints -> zslkit CVC-ZSL models.

The reference saves a model with ``torch.save`` as a plain dict of tensors (facts from its ``train.py``,
``trans_train.py``, ``test.py``, ``trans_test.py``):

* ``w1`` (A x H), ``b1`` (H), ``w2`` (H x D), ``b2`` (D): the classifier generator
  ``g(a) = relu(relu(a w1 + b1) w2 + b2)`` (the reference fixes D = 2048, H defaults to 1600);
* ``scale_cls`` (1), ``bias`` (1): the cosine classifier ``scale_cls * (x_hat . g_hat + bias)``;
* transductive models also ``cls_weight_all`` ((S + U) x D): free classifier rows, the S seen classes first (in
  increasing class id), then the U unseen ones. Its GZSL head uses the first S rows for the seen classes and
  ``g`` for the unseen ones; its ZSL head uses ``g`` only.

zslkit's CVC-ZSL model has the same generator and classifier (``methods/cvc/``); the seen rows of a
transductive model become its ``"learned"`` GZSL rows (``seen_rows``), an inductive model keeps ``"generated"``.
Class order: zslkit's seen / unseen classes are sorted by class id, as the reference's ``np.unique``.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import torch

from zslkit.errors import DataError
from zslkit.methods.base import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, ZSLMethod, make_config
from zslkit.methods.registry import get_method

REFERENCE = "kailigo/cvcZSL"
METHOD = "cvc-zsl"
GENERATOR_KEYS = ("w1", "b1", "w2", "b2", "scale_cls", "bias")
TRANSDUCTIVE_KEY = "cls_weight_all"
SAVE_HINT = ("the reference saves torch.save({'w1': w1, 'b1': b1, 'w2': w2, 'b2': b2, 'scale_cls': scale_cls, "
             "'bias': bias[, 'cls_weight_all': ...]}, FILE)")


def read_reference_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a reference checkpoint file (CPU). Loaded with ``weights_only=True``: a file that holds
    pickled Python objects (e.g. a whole module) is refused with a clear error, never executed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(path, None, "holds pickled Python objects (e.g. a whole module), not a dict of tensors; "
                        f"{SAVE_HINT}. Re-save the tensors as such a dict") from None
    except Exception as exc:  # torch raises many types for damaged or foreign files
        detail = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DataError(path, None, f"cannot read it as a torch file, the file is damaged or not a checkpoint "
                        f"({type(exc).__name__}: {detail})") from None
    if not isinstance(obj, dict):
        raise DataError(path, None, f"holds a {type(obj).__name__}, not a dict of tensors; {SAVE_HINT}")
    return obj


def _tensor(tensors: dict, key: str, path, ndim: int) -> torch.Tensor:
    if key not in tensors:
        found = ", ".join(sorted(map(str, tensors))) or "nothing"
        raise DataError(path, key, f"missing (the file has: {found}); {SAVE_HINT}")
    value = tensors[key]
    if not isinstance(value, torch.Tensor):
        raise DataError(path, key, f"expected a tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise DataError(path, key, f"expected floating-point values, got {value.dtype}")
    if ndim == 0:  # scale_cls / bias: one number (the reference's shape is (1,))
        if value.numel() != 1:
            raise DataError(path, key, f"expected one number, got shape {tuple(value.shape)}")
        value = value.reshape(1)
    elif value.dim() != ndim:
        raise DataError(path, key, f"expected a {ndim}-D tensor, got shape {tuple(value.shape)}")
    value = value.detach().to("cpu", torch.float32).clone()
    if not bool(torch.isfinite(value).all()):
        raise DataError(path, key, "contains NaN or infinite values")
    return value


def _expect(path, key: str, what: str, got: int, want: int, fix: str) -> None:
    if got != want:
        raise DataError(path, key, f"{what} is {got}, but {want} {fix}")


def checkpoint_from_reference(tensors: dict, dataset, *, transductive: bool, source: str | Path | None = None,
                              extra: dict | None = None) -> dict:
    """A zslkit checkpoint dict (as ``ZSLMethod.checkpoint()`` writes it; load it with
    ``ZSLMethod.from_checkpoint``) from the reference's tensors, shape-checked against ``dataset``.

    ``transductive``: the file must hold ``cls_weight_all`` with one row per seen and unseen class of the dataset;
    without it the file must not (a transductive model imported as inductive would lose its seen rows).
    ``source`` names the file in errors."""
    path = source if source is not None else "<memory>"
    if not isinstance(tensors, dict):
        raise DataError(path, None, f"holds a {type(tensors).__name__}, not a dict of tensors; {SAVE_HINT}")
    if TRANSDUCTIVE_KEY in tensors and not transductive:
        raise DataError(path, TRANSDUCTIVE_KEY, "present: this is a transductive model (trans_train.py); import it "
                        "with --transductive")
    w1, b1 = _tensor(tensors, "w1", path, 2), _tensor(tensors, "b1", path, 1)
    w2, b2 = _tensor(tensors, "w2", path, 2), _tensor(tensors, "b2", path, 1)
    scale, bias = _tensor(tensors, "scale_cls", path, 0), _tensor(tensors, "bias", path, 0)
    A, H = w1.shape
    D = w2.shape[1]
    _expect(path, "w1", "the input width (rows)", A, dataset.embedding_dim,
            f"is the class-embedding dimension of {dataset.name}; was the model trained on another dataset or "
            f"semantic source (--semantic)?")
    _expect(path, "b1", "the length", b1.shape[0], H, "is the hidden width (columns of w1)")
    _expect(path, "w2", "the input width (rows)", w2.shape[0], H, "is the hidden width (columns of w1)")
    _expect(path, "w2", "the output width (columns)", D, dataset.feature_dim,
            f"is the feature dimension of {dataset.name}; was the model trained on other features?")
    _expect(path, "b2", "the length", b2.shape[0], D, "is the feature dimension (columns of w2)")
    S, U = int(dataset.seen_classes.size), int(dataset.unseen_classes.size)
    seen_rows = None
    if transductive:
        rows = _tensor(tensors, TRANSDUCTIVE_KEY, path, 2)
        _expect(path, TRANSDUCTIVE_KEY, "the number of rows", rows.shape[0], S + U,
                f"is the number of classes of {dataset.name} ({S} seen + {U} unseen)")
        _expect(path, TRANSDUCTIVE_KEY, "the row width", rows.shape[1], D, "is the feature dimension")
        seen_rows = rows[:S].clone()
    method = get_method(METHOD)
    config = make_config(method.config_class, None, {
        "hidden_dim": int(H), "gzsl_seen_classifiers": "learned" if transductive else "generated"})
    state = {
        "generator": {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "scale": scale, "bias": bias},
        "seen_rows": seen_rows,
        "seen_rows_source": f"imported from {REFERENCE} {TRANSDUCTIVE_KEY}[:{S}]" if transductive else None,
        "transductive": bool(transductive),
        "history": [],
    }
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "method": method.name,
        "config": dataclasses.asdict(config),
        "seed": 0,
        "dims": {"feature_dim": int(D), "embedding_dim": int(A), "num_train_classes": S},
        "state": state,
        "extra": dict(extra or {}),
    }


def load_reference_model(path: str | Path, dataset, *, transductive: bool = False, device="cpu"):
    """A fitted zslkit CVC-ZSL model from a reference checkpoint file (shape-checked against ``dataset``)."""
    ckpt = checkpoint_from_reference(read_reference_checkpoint(path), dataset, transductive=transductive,
                                     source=path)
    return ZSLMethod.from_checkpoint(ckpt, device=device)
