"""Evaluation metrics of the GBU protocol (Xian et al.), all computed in float64.

* per-class mean top-1 accuracy;
* ZSL T1: unseen test samples classified among the unseen classes only;
* GZSL U and S: test samples classified among all classes; H = 2US / (U + S);
* calibrated stacking (Chao et al. 2016): a constant gamma subtracted from the seen-class scores;
* the seen-unseen accuracy curve over gamma and the area under it (AUSUC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def per_class_accuracy(y_true, y_pred, classes=None) -> float:
    """Mean over classes of the fraction of that class's samples predicted correctly.

    ``classes`` defaults to the classes present in ``y_true``; a listed class with no samples is skipped.
    """
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} entries but y_pred has {y_pred.size}")
    if y_true.size == 0:
        return float("nan")
    present, inverse = np.unique(y_true, return_inverse=True)
    correct = np.bincount(inverse, weights=(y_true == y_pred).astype(np.float64), minlength=present.size)
    counts = np.bincount(inverse, minlength=present.size).astype(np.float64)
    acc = correct / counts
    if classes is not None:
        keep = np.isin(present, np.asarray(classes))
        acc = acc[keep]
        if acc.size == 0:
            return float("nan")
    return float(np.mean(acc, dtype=np.float64))


def per_class_accuracies(y_true, y_pred) -> dict[int, float]:
    """Accuracy of every class present in ``y_true`` (for bar charts and per-class reports)."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    return {int(c): float(np.mean(y_pred[y_true == c] == c, dtype=np.float64)) for c in np.unique(y_true)}


def harmonic_mean(u: float, s: float) -> float:
    """H = 2US/(U+S); 0 when both are 0."""
    u, s = float(u), float(s)
    return 0.0 if u + s == 0 else 2.0 * u * s / (u + s)


def zsl_top1(scores_unseen, y_true, unseen_classes) -> float:
    """ZSL T1: ``scores_unseen`` is (N x U) over ``unseen_classes`` (global ids, column order)."""
    unseen_classes = np.asarray(unseen_classes)
    pred = unseen_classes[np.argmax(np.asarray(scores_unseen), axis=1)]
    return per_class_accuracy(y_true, pred)


def gzsl_predict(scores, seen_mask, gamma: float = 0.0) -> np.ndarray:
    """Column index of the best class after subtracting ``gamma`` from the seen columns."""
    scores = np.asarray(scores, dtype=np.float64)
    if gamma:
        scores = scores - gamma * np.asarray(seen_mask, dtype=np.float64)[None, :]
    return np.argmax(scores, axis=1)


@dataclass(frozen=True)
class GZSLResult:
    u: float
    s: float
    h: float
    gamma: float = 0.0


def gzsl_accuracy(scores_seen_test, y_seen_test, scores_unseen_test, y_unseen_test, classes, seen_mask,
                  gamma: float = 0.0) -> GZSLResult:
    """GZSL U, S, H. Scores are (N x C) over ``classes`` (global ids in column order)."""
    classes = np.asarray(classes)
    pred_s = classes[gzsl_predict(scores_seen_test, seen_mask, gamma)]
    pred_u = classes[gzsl_predict(scores_unseen_test, seen_mask, gamma)]
    s = per_class_accuracy(y_seen_test, pred_s)
    u = per_class_accuracy(y_unseen_test, pred_u)
    return GZSLResult(u=u, s=s, h=harmonic_mean(u, s), gamma=float(gamma))


def _flip_terms(scores, y_true, classes, seen_mask):
    """Per sample: the gamma where its prediction flips from the best seen to the best unseen class,
    whether each of the two predictions is right, and its weight in the per-class mean."""
    scores = np.asarray(scores, dtype=np.float64)
    seen_mask = np.asarray(seen_mask, dtype=bool)
    classes = np.asarray(classes)
    seen_cols = np.flatnonzero(seen_mask)
    unseen_cols = np.flatnonzero(~seen_mask)
    best_s = seen_cols[np.argmax(scores[:, seen_cols], axis=1)]
    best_u = unseen_cols[np.argmax(scores[:, unseen_cols], axis=1)]
    rows = np.arange(scores.shape[0])
    crit = scores[rows, best_s] - scores[rows, best_u]
    y_true = np.asarray(y_true).reshape(-1)
    right_if_seen = (classes[best_s] == y_true).astype(np.float64)
    right_if_unseen = (classes[best_u] == y_true).astype(np.float64)
    _, inverse, counts = np.unique(y_true, return_inverse=True, return_counts=True)
    weight = 1.0 / (counts[inverse] * counts.size)
    return crit, right_if_seen, right_if_unseen, weight


def _accuracy_at(gammas, crit, right_if_seen, right_if_unseen, weight) -> np.ndarray:
    """Per-class accuracy at each gamma: a sample keeps its seen prediction while gamma < its flip point."""
    order = np.argsort(crit)
    crit, delta = crit[order], (weight * (right_if_seen - right_if_unseen))[order]
    base = float(np.sum(weight * right_if_unseen))
    # sum of delta over samples with crit > g  ==  total - cumsum up to searchsorted(crit, g, 'right')
    tail = np.concatenate([[0.0], np.cumsum(delta)])
    k = np.searchsorted(crit, gammas, side="right")
    return np.clip(base + (tail[-1] - tail[k]), 0.0, 1.0)


def seen_unseen_curve(scores_seen_test, y_seen_test, scores_unseen_test, y_unseen_test, classes, seen_mask,
                      ) -> dict[str, np.ndarray]:
    """Seen/unseen per-class accuracy pairs over every calibration gamma at which a prediction flips.

    Returns ``{"gamma", "seen", "unseen"}`` sorted by increasing gamma (seen accuracy falling, unseen
    rising), from "every sample predicted seen" to "every sample predicted unseen". Exact and vectorised.
    """
    ts = _flip_terms(scores_seen_test, y_seen_test, classes, seen_mask)
    tu = _flip_terms(scores_unseen_test, y_unseen_test, classes, seen_mask)
    crit = np.unique(np.concatenate([ts[0], tu[0]]))
    span = max(1.0, float(np.abs(crit).max()))
    mids = (crit[:-1] + crit[1:]) / 2.0
    gammas = np.concatenate([[crit[0] - span], mids, [crit[-1] + span]])
    return {"gamma": gammas, "seen": _accuracy_at(gammas, *ts), "unseen": _accuracy_at(gammas, *tu)}


def ausuc(curve: dict[str, np.ndarray]) -> float:
    """Area under the seen-unseen curve (unseen accuracy on x, seen accuracy on y), by the trapezoid rule.

    The curve is closed at both ends, (0, max seen) and (max unseen, 0) as in Chao et al.
    """
    u = np.asarray(curve["unseen"], dtype=np.float64)
    s = np.asarray(curve["seen"], dtype=np.float64)
    order = np.lexsort((-s, u))
    u, s = u[order], s[order]
    u = np.concatenate([[0.0], u, [u[-1]]])
    s = np.concatenate([[s[0]], s, [0.0]])
    return float(np.sum((u[1:] - u[:-1]) * (s[1:] + s[:-1]) / 2.0))


def best_calibration_gamma(scores_seen_test, y_seen_test, scores_unseen_test, y_unseen_test, classes,
                           seen_mask) -> GZSLResult:
    """The gamma maximising H on the given (validation) data; use it on test, never tune on test."""
    curve = seen_unseen_curve(scores_seen_test, y_seen_test, scores_unseen_test, y_unseen_test, classes, seen_mask)
    h = np.array([harmonic_mean(u, s) for u, s in zip(curve["unseen"], curve["seen"])])
    i = int(np.argmax(h))
    return GZSLResult(u=float(curve["unseen"][i]), s=float(curve["seen"][i]), h=float(h[i]),
                      gamma=float(curve["gamma"][i]))
