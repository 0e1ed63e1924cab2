"""Metrics on hand-made cases where the right answer is known."""

import numpy as np
import pytest

from zslkit.protocol import metrics as M


def test_per_class_accuracy_averages_classes_not_samples():
    # class 0: 3 of 4 right; class 1: 0 of 1 right -> (0.75 + 0) / 2, not 3/5
    y = np.array([0, 0, 0, 0, 1])
    p = np.array([0, 0, 0, 1, 0])
    assert M.per_class_accuracy(y, p) == pytest.approx(0.375)
    assert M.per_class_accuracies(y, p) == {0: 0.75, 1: 0.0}


def test_harmonic_mean():
    assert M.harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert M.harmonic_mean(0.2, 0.8) == pytest.approx(0.32)
    assert M.harmonic_mean(0.0, 0.0) == 0.0


def _gzsl_case():
    # classes (global ids) 10, 11 seen; 20, 21 unseen; columns in that order
    classes = np.array([10, 11, 20, 21])
    seen_mask = np.array([True, True, False, False])
    s_scores = np.array([[5.0, 1.0, 4.0, 0.0],    # true 10 -> 10 (margin 1 over unseen)
                         [0.0, 3.0, 3.5, 0.0]])   # true 11 -> 20 (wrong, needs gamma < -0.5)
    ys = np.array([10, 11])
    u_scores = np.array([[2.0, 0.0, 1.0, 0.0],    # true 20 -> 10 (seen bias of 1)
                         [0.0, 0.0, 0.0, 4.0]])   # true 21 -> 21
    yu = np.array([20, 21])
    return s_scores, ys, u_scores, yu, classes, seen_mask


def test_gzsl_and_zsl_on_hand_case():
    s, ys, u, yu, classes, mask = _gzsl_case()
    r = M.gzsl_accuracy(s, ys, u, yu, classes, mask)
    assert (r.s, r.u) == (0.5, 0.5)
    assert r.h == pytest.approx(0.5)
    # ZSL: unseen test among unseen columns only -> both right
    assert M.zsl_top1(u[:, 2:], yu, classes[2:]) == 1.0


def test_calibrated_stacking_subtracts_gamma_from_seen():
    s, ys, u, yu, classes, mask = _gzsl_case()
    r = M.gzsl_accuracy(s, ys, u, yu, classes, mask, gamma=1.5)
    # gamma 1.5: sample (true 20) flips to unseen 20 (1 > 0.5); (true 10) flips to 20 (4 > 3.5)
    assert (r.u, r.s) == (1.0, 0.0)
    r = M.gzsl_accuracy(s, ys, u, yu, classes, mask, gamma=-1.0)
    # negative gamma favours seen: (true 11) -> 11 since 4 > 3.5; (true 21) stays 21 (4 > 1)
    assert (r.u, r.s) == (0.5, 1.0)


def test_seen_unseen_curve_matches_direct_evaluation_and_ausuc():
    rng = np.random.default_rng(0)
    classes = np.arange(6)
    mask = np.array([1, 1, 1, 0, 0, 0], bool)
    s = rng.normal(size=(40, 6)); ys = rng.integers(0, 3, 40)
    u = rng.normal(size=(30, 6)); yu = rng.integers(3, 6, 30)
    curve = M.seen_unseen_curve(s, ys, u, yu, classes, mask)
    assert np.all(np.diff(curve["gamma"]) > 0)
    for g, sa, ua in list(zip(curve["gamma"], curve["seen"], curve["unseen"]))[::5]:
        r = M.gzsl_accuracy(s, ys, u, yu, classes, mask, gamma=g)
        assert (r.s, r.u) == pytest.approx((sa, ua))
    # extremes: everything seen, then everything unseen
    assert curve["unseen"][0] == pytest.approx(0.0) and curve["seen"][-1] == pytest.approx(0.0)
    area = M.ausuc(curve)
    assert 0.0 <= area <= 1.0


def test_ausuc_of_perfect_and_known_curves():
    # a perfect classifier: seen 1 until unseen 1 -> area 1
    assert M.ausuc({"seen": np.array([1.0, 1.0, 0.0]), "unseen": np.array([0.0, 1.0, 1.0]),
                    "gamma": np.array([0, 1, 2.0])}) == pytest.approx(1.0)
    # a straight trade-off from (0, 1) to (1, 0): area 0.5
    assert M.ausuc({"seen": np.array([1.0, 0.5, 0.0]), "unseen": np.array([0.0, 0.5, 1.0]),
                    "gamma": np.array([0, 1, 2.0])}) == pytest.approx(0.5)


def test_best_calibration_gamma_maximises_h():
    s, ys, u, yu, classes, mask = _gzsl_case()
    best = M.best_calibration_gamma(s, ys, u, yu, classes, mask)
    curve = M.seen_unseen_curve(s, ys, u, yu, classes, mask)
    hs = [M.harmonic_mean(a, b) for a, b in zip(curve["unseen"], curve["seen"])]
    assert best.h == pytest.approx(max(hs))
    r = M.gzsl_accuracy(s, ys, u, yu, classes, mask, gamma=best.gamma)
    assert r.h == pytest.approx(best.h)


def test_metrics_use_float64():
    y = np.zeros(3, dtype=np.int64)
    assert isinstance(M.per_class_accuracy(y, y), float)
