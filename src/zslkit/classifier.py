"""``ZSLClassifier``: any zslkit method as a plain scikit-learn classifier, ``fit(X, y)`` / ``predict(X)``.

The class descriptions are a constructor parameter: ``class_embeddings`` (C x A, one row per class, seen or
not) with ``classes`` (the label of each row; default 0..C-1). ``fit`` trains the method on the classes that
occur in ``y``; ``predict`` chooses among ``candidates``: ``"all"`` rows (generalized ZSL), the ``"unseen"``
ones (rows whose label did not occur in ``y``: conventional ZSL), the ``"seen"`` ones, or a list of labels.
So scikit-learn's own tools do ZSL validation: a class-disjoint splitter (``GroupKFold`` with the labels as
groups) makes every test fold's classes unseen, and ``score`` is the per-class mean accuracy of the ZSL
protocol. See docs/sklearn.md.

    clf = ZSLClassifier(ESZSL(), class_embeddings=E, candidates="unseen")
    cross_val_score(clf, X, y, groups=y, cv=GroupKFold(4))
    GridSearchCV(clf, {"method__gamma_exp": [-1, 0, 1]}, cv=GroupKFold(3)).fit(X, y, groups=y)
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from zslkit.errors import ConfigError, DataError
from zslkit.methods.base import ZSLMethod
from zslkit.methods.registry import get_method
from zslkit.protocol.metrics import per_class_accuracy

CANDIDATE_SETS = ("all", "unseen", "seen")


class ZSLClassifier(ClassifierMixin, BaseEstimator):
    """A zslkit method (a name or a ``ZSLMethod`` instance, whose parameters are then reachable as
    ``method__<name>``) behind scikit-learn's two-argument classifier API.

    ``calibration``: calibrated stacking, subtracted from the seen classes' scores when both seen and unseen
    classes are candidates (0: none). Fitted attributes: ``method_`` (the fitted method), ``classes_`` (the
    candidate labels, in ``predict_proba`` column order), ``seen_classes_``, ``n_features_in_``.
    """

    def __init__(self, method="eszsl", class_embeddings=None, *, classes=None, candidates="all",
                 calibration: float = 0.0):
        self.method = method
        self.class_embeddings = class_embeddings
        self.classes = classes
        self.candidates = candidates
        self.calibration = calibration

    # ----- fitting ------------------------------------------------------------------------------------
    def fit(self, X, y, **fit_params):
        """Train the method on the classes present in ``y``; ``fit_params`` go to the method's ``fit``."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        E, labels = self._embeddings()
        rows = self._rows_of(y, labels, "y")
        seen_rows = np.unique(rows)
        method = self._method_instance()
        method.fit(X, np.searchsorted(seen_rows, rows), E[seen_rows], **fit_params)
        self.method_ = method
        self.embeddings_, self.labels_ = E, labels
        self.seen_rows_ = seen_rows
        self.seen_classes_ = labels[seen_rows]
        self.candidate_rows_ = self._candidate_rows(labels, seen_rows)
        self.classes_ = labels[self.candidate_rows_]
        return self

    def _method_instance(self) -> ZSLMethod:
        if isinstance(self.method, ZSLMethod):
            return clone(self.method)
        if isinstance(self.method, str):
            return get_method(self.method)()
        raise ConfigError(f"ZSLClassifier: method must be a method name or a ZSLMethod, got {type(self.method).__name__}")

    def _embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        if self.class_embeddings is None:
            raise ConfigError("ZSLClassifier: class_embeddings is required (one row per class, seen or unseen)")
        E = np.asarray(self.class_embeddings, dtype=np.float32)
        if E.ndim != 2 or E.shape[0] == 0:
            raise DataError(None, "class_embeddings", f"expected a non-empty 2-D array, got shape {E.shape}")
        labels = np.arange(E.shape[0]) if self.classes is None else np.asarray(self.classes)
        if labels.shape != (E.shape[0],):
            raise DataError(None, "classes", f"{labels.size} labels for {E.shape[0]} class embeddings")
        if np.unique(labels).size != labels.size:
            raise DataError(None, "classes", "class labels must be unique")
        return E, labels

    @staticmethod
    def _rows_of(y, labels: np.ndarray, name: str) -> np.ndarray:
        """The row of each label of ``y`` in the class table (a DataError naming labels it does not have)."""
        order = np.argsort(labels, kind="stable")
        try:
            pos = np.searchsorted(labels[order], y)
        except TypeError:
            raise DataError(None, name, f"labels of type {np.asarray(y).dtype} cannot match the class labels "
                            f"(type {labels.dtype})") from None
        pos = np.clip(pos, 0, labels.size - 1)
        rows = order[pos]
        missing = np.asarray(labels[rows] != y)
        if missing.any():
            unknown = np.unique(np.asarray(y)[missing])[:5]
            raise DataError(None, name, f"labels {list(unknown)} have no class embedding (the classes are "
                            f"{'0..' + str(labels.size - 1) if labels.dtype.kind in 'iu' else 'given by classes'})")
        return rows

    def _candidate_rows(self, labels: np.ndarray, seen_rows: np.ndarray) -> np.ndarray:
        everything = np.arange(labels.size)
        if isinstance(self.candidates, str):
            if self.candidates not in CANDIDATE_SETS:
                raise ConfigError(f"ZSLClassifier: candidates must be one of {', '.join(CANDIDATE_SETS)} or a list "
                                  f"of labels, got {self.candidates!r}")
            seen = np.isin(everything, seen_rows)
            rows = {"all": everything, "unseen": everything[~seen], "seen": everything[seen]}[self.candidates]
        else:
            rows = np.unique(self._rows_of(np.asarray(self.candidates), labels, "candidates"))
        if rows.size == 0:
            raise DataError(None, "candidates", f"no {self.candidates} classes to choose from (the training labels "
                            f"cover every class embedding)")
        return rows

    # ----- prediction ---------------------------------------------------------------------------------
    def _scores(self, X) -> np.ndarray:
        """(N x K) scores against the candidates (``classes_`` order), seen scores lowered by ``calibration``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        rows = self.candidate_rows_
        is_seen = np.isin(rows, self.seen_rows_)
        seen_labels = np.where(is_seen, np.searchsorted(self.seen_rows_, rows), -1)
        scores = self.method_.decision_function(X, self.embeddings_[rows], seen_labels)
        if self.calibration and is_seen.any() and not is_seen.all():
            scores = scores - float(self.calibration) * is_seen[None, :]
        return scores

    def decision_function(self, X) -> np.ndarray:
        """Scores against the candidates, (N x K) in ``classes_`` order; with two candidates, scikit-learn's
        binary convention: one column, the second class's score minus the first's."""
        s = self._scores(X)
        return s[:, 1] - s[:, 0] if s.shape[1] == 2 else s

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the scores, columns in ``classes_`` order."""
        s = self._scores(X).astype(np.float64)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        return s / s.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        best = np.argmax(self._scores(X), axis=1)
        return self.classes_[best]

    def score(self, X, y, sample_weight=None) -> float:
        """Per-class mean top-1 accuracy (the ZSL protocol's measure; ``sample_weight`` is not supported)."""
        if sample_weight is not None:
            raise ConfigError("ZSLClassifier.score: sample_weight is not supported (per-class mean accuracy)")
        return per_class_accuracy(y, self.predict(X))

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        parts = [f"method={self.method!r}"]
        if self.class_embeddings is not None:
            parts.append(f"class_embeddings=<{'x'.join(map(str, np.shape(self.class_embeddings)))} array>")
        for key, default in (("classes", None), ("candidates", "all"), ("calibration", 0.0)):
            value = getattr(self, key)
            if not (value is default or (isinstance(value, (str, float)) and value == default)):
                parts.append(f"{key}={value!r}")
        return f"ZSLClassifier({', '.join(parts)})"[:N_CHAR_MAX]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_label = False
        tags.non_deterministic = False
        return tags


__all__ = ["ZSLClassifier", "CANDIDATE_SETS"]
