"""Score a fitted model on a dataset's test (or validation-view test) splits: ZSL and GZSL from one model."""

from __future__ import annotations

import numpy as np

from zslkit.data.dataset import ZSLDataset
from zslkit.protocol import metrics as M

EVAL_BATCH = 8192


def batched_scores(classifier, X: np.ndarray, batch: int = EVAL_BATCH) -> np.ndarray:
    """Scores of ``X`` in batches (bounded memory on large test sets)."""
    if X.shape[0] <= batch:
        return classifier.decision_function(X)
    return np.concatenate([classifier.decision_function(X[i:i + batch]) for i in range(0, X.shape[0], batch)])


def seen_label_map(dataset: ZSLDataset) -> np.ndarray:
    """For every global class id: its position among the seen classes (the fit label), or -1."""
    lookup = np.full(dataset.num_classes, -1, dtype=np.int64)
    lookup[dataset.seen_classes] = np.arange(dataset.seen_classes.size)
    return lookup


class TestScores:
    """The raw scores of one model on one dataset's test splits (ZSL head and GZSL head). ``head``: head-space
    overrides handed to the model's ``build_classifier`` (None: its own config's head)."""

    def __init__(self, model, dataset: ZSLDataset, head: dict | None = None):
        self.dataset = dataset
        self.unseen = dataset.unseen_classes
        self.classes = np.concatenate([dataset.seen_classes, dataset.unseen_classes])
        self.seen_mask = np.concatenate([np.ones(dataset.seen_classes.size, bool),
                                         np.zeros(dataset.unseen_classes.size, bool)])
        E = dataset.class_embeddings
        Xs, self.ys = dataset.split("test_seen")
        Xu, self.yu = dataset.split("test_unseen")
        given = {"head": head} if head else {}
        zsl_head = model.build_classifier(E[self.unseen], **given)
        self.zsl = batched_scores(zsl_head, Xu)
        gzsl_head = model.build_classifier(E[self.classes], seen_label_map(dataset)[self.classes], **given)
        self.gzsl_seen = batched_scores(gzsl_head, Xs)
        self.gzsl_unseen = batched_scores(gzsl_head, Xu)

    def metrics(self, gamma: float | None = None, *, curve: bool = False) -> dict:
        """ZSL T1, GZSL U/S/H; with ``gamma``, calibrated-stacking U/S/H too; with ``curve``, AUSUC."""
        out = {"zsl_t1": M.zsl_top1(self.zsl, self.yu, self.unseen)}
        g = M.gzsl_accuracy(self.gzsl_seen, self.ys, self.gzsl_unseen, self.yu, self.classes, self.seen_mask)
        out.update(gzsl_u=g.u, gzsl_s=g.s, gzsl_h=g.h)
        if gamma is not None:
            c = M.gzsl_accuracy(self.gzsl_seen, self.ys, self.gzsl_unseen, self.yu, self.classes, self.seen_mask,
                                gamma)
            out.update(cs_gamma=float(gamma), gzsl_cs_u=c.u, gzsl_cs_s=c.s, gzsl_cs_h=c.h)
        if curve:
            out["ausuc"] = M.ausuc(self.curve())
        return out

    def unseen_prediction_rate(self) -> float:
        """Fraction of the unseen-class test samples that the GZSL head assigns to some unseen class."""
        pred = M.gzsl_predict(self.gzsl_unseen, self.seen_mask)
        return float(np.mean(~self.seen_mask[pred])) if pred.size else 0.0

    def best_gamma(self) -> float:
        """The calibration gamma maximising H here (use on validation data only)."""
        return M.best_calibration_gamma(self.gzsl_seen, self.ys, self.gzsl_unseen, self.yu, self.classes,
                                        self.seen_mask).gamma

    def curve(self) -> dict[str, np.ndarray]:
        return M.seen_unseen_curve(self.gzsl_seen, self.ys, self.gzsl_unseen, self.yu, self.classes, self.seen_mask)

    def per_class(self) -> dict:
        """Per-class accuracies (ZSL over unseen; GZSL over all), keyed by class name."""
        names = self.dataset.class_names
        zsl_pred = self.unseen[np.argmax(self.zsl, axis=1)]
        pred_s = self.classes[M.gzsl_predict(self.gzsl_seen, self.seen_mask)]
        pred_u = self.classes[M.gzsl_predict(self.gzsl_unseen, self.seen_mask)]
        return {
            "zsl": {names[c]: a for c, a in M.per_class_accuracies(self.yu, zsl_pred).items()},
            "gzsl_seen": {names[c]: a for c, a in M.per_class_accuracies(self.ys, pred_s).items()},
            "gzsl_unseen": {names[c]: a for c, a in M.per_class_accuracies(self.yu, pred_u).items()},
        }
