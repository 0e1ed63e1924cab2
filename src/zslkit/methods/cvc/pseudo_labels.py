"""Pseudo labels of the unlabeled unseen-class samples in transductive CVC-ZSL."""

from __future__ import annotations

import torch


def pseudo_label(scores: torch.Tensor, ratio: float, topk: int) -> torch.Tensor:
    """Pseudo labels (or -1) of unlabeled samples from their scores against the unseen classes.

    Kept: samples whose top-1/top-2 score ratio (of magnitudes, as the reference computes it) exceeds
    ``ratio``, labelled with their argmax; plus, for every class, the ``topk`` samples scoring highest
    for it. A sample in both sets keeps its argmax; a sample among the top-k of several classes (and not
    confident) takes the one it scores highest. Each sample is used at most once.
    """
    n, k = scores.shape
    pred = scores.argmax(1)
    if k >= 2:
        top2 = scores.topk(2, dim=1).values.abs()
        hi, lo = top2.max(1).values, top2.min(1).values
        confident = hi > ratio * lo
    else:
        confident = torch.ones(n, dtype=torch.bool, device=scores.device)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    kk = min(int(topk), n)
    if kk > 0:
        top_idx = scores.topk(kk, dim=0).indices  # kk x k
        mask[top_idx, torch.arange(k, device=scores.device).expand(kk, k)] = True
    in_topk = mask.any(1)
    topk_label = scores.masked_fill(~mask, float("-inf")).argmax(1)
    labels = torch.where(confident, pred, topk_label)
    return torch.where(confident | in_topk, labels, torch.full_like(labels, -1))
