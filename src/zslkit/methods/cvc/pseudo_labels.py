"""Pseudo labels of the unlabeled unseen-class samples in transductive CVC-ZSL: the three filters of the
reference's ``trans_train.py`` (``updata_reliable_test_data``), by name.

All three read the same scores: every unlabeled sample (L2-normalised) against the classifiers generated for
the unseen classes, ``scale * (cos + bias)``. A filter returns one label per sample (an index into the unseen
classes) or -1 (not used until the next refresh). Each sample gets at most one label: the reference
concatenates lists and can list a sample twice, even with two labels (docs/methods/cvc_zsl.md).
"""

from __future__ import annotations

import torch

from zslkit.errors import ConfigError

# the reference's filter_type 'ratio', 'constant' and its fallback branch (the top third)
PSEUDO_FILTERS = ("ratio", "topk", "top-third")


def pseudo_label(scores: torch.Tensor, ratio: float = 1.2, topk: int = 5, *,
                 pseudo_filter: str = "ratio") -> torch.Tensor:
    """Pseudo labels (or -1) from ``scores`` (unlabeled samples x unseen classes) by the named filter:

    * ``"ratio"`` (the reference's default): samples whose |top-1| / |top-2| score ratio (magnitudes, as the
      reference computes it) exceeds ``ratio``, labelled with their argmax; plus, for every class, the ``topk``
      samples scoring highest for it (its column of ``scores``).
    * ``"topk"`` (the reference's ``constant``): only those per-class top-``topk`` samples.
    * ``"top-third"``: global, not per class: the ``n // 3`` samples with the highest top-1 score (the raw
      score, not the ratio), labelled with their argmax; ties go to the lower index.

    A confident sample keeps its argmax; a top-k sample that is not confident takes, among the classes whose
    top-k it is in, the one it scores highest.
    """
    n, k = scores.shape
    none = torch.zeros(n, dtype=torch.bool, device=scores.device)
    if pseudo_filter == "ratio":
        return _label(scores, _confident(scores, ratio), _class_topk(scores, topk))
    if pseudo_filter == "topk":
        return _label(scores, none, _class_topk(scores, topk))
    if pseudo_filter == "top-third":
        keep = torch.argsort(scores.max(1).values, descending=True, stable=True)[: n // 3]
        return _label(scores, none.index_fill(0, keep, True), torch.zeros_like(scores, dtype=torch.bool))
    raise ConfigError(f"pseudo_filter must be one of {', '.join(PSEUDO_FILTERS)}, got {pseudo_filter!r}")


def _confident(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Samples whose larger top-2 score magnitude exceeds ``ratio`` times the smaller (all, with one class)."""
    if scores.shape[1] < 2:
        return torch.ones(scores.shape[0], dtype=torch.bool, device=scores.device)
    top2 = scores.topk(2, dim=1).values.abs()
    return top2.max(1).values > ratio * top2.min(1).values


def _class_topk(scores: torch.Tensor, topk: int) -> torch.Tensor:
    """Mask (samples x classes): the sample is among the ``topk`` highest scores of that class."""
    n, k = scores.shape
    mask = torch.zeros_like(scores, dtype=torch.bool)
    kk = min(int(topk), n)
    if kk > 0:
        top_idx = scores.topk(kk, dim=0).indices  # kk x k
        mask[top_idx, torch.arange(k, device=scores.device).expand(kk, k)] = True
    return mask


def _label(scores: torch.Tensor, confident: torch.Tensor, topk_mask: torch.Tensor) -> torch.Tensor:
    """Confident samples: their argmax; others in ``topk_mask``: their best class there; the rest -1."""
    pred = scores.argmax(1)
    topk_label = scores.masked_fill(~topk_mask, float("-inf")).argmax(1)
    labels = torch.where(confident, pred, topk_label)
    return torch.where(confident | topk_mask.any(1), labels, torch.full_like(labels, -1))
