"""scikit-learn's contract: the methods as estimators (get_params / clone / NotFittedError) and the
``ZSLClassifier`` adapter under scikit-learn's own checks and model-selection tools."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from zslkit.classifier import ZSLClassifier
from zslkit.data.synthetic import make_synthetic
from zslkit.errors import ConfigError, DataError, NotFittedError
from zslkit.methods import get_method

# small settings that train each method in well under a second (the checks fit dozens of times) and still fit
# the checks' 2-d blobs (> 83 % training accuracy): CVC-ZSL at a high lr; cycle-WGAN's final softmax on the real
# seen features (merge, no synthetic seen rows), which is what classifies seen candidates
TINY = {
    # ESZSL's relative ridges (units of the mean eigenvalue) are too strong for 3 blobs in 2-d at the default
    # exponents (0.827 of the 0.83 needed; 0.87 with absolute ridges)
    "eszsl": {"relative_ridge": False},
    "cvc-zsl": {"hidden_dim": 16, "epochs": 10, "episodes": 5, "ways": 3, "shots": 4, "episode_overflow": "clip",
                "lr": 1e-2},
    "cycle-wgan": {"hidden_g": 16, "hidden_d": 16, "epochs": 1, "batch_size": 16, "regressor_epochs": 1,
                   "cls_epochs": 20, "cls_lr": 1e-2, "cls_batch": 64, "syn_per_unseen": 8, "syn_per_seen": 0,
                   "mode": "merge"},
}
METHODS = tuple(TINY)
EMBEDDINGS = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)


def tiny_method(name: str, **extra):
    return get_method(name)(seed=0, device="cpu", **{**TINY[name], **extra})


# Checks a ZSL estimator cannot pass, each with its reason. Labels must name rows of class_embeddings:
ZSL_LIMITS = {
    "check_classifiers_classes": "the check invents string labels ('one', 'two', ...) that have no class "
                                 "description; named classes are tested in test_named_classes",
}


COSINE_LIMITS = {
    "check_classifiers_train": "CVC-ZSL's cosine classifier L2-normalises the features, which on the checks' 2-d "
                               "blobs keeps only their angle (a logistic regression on the angles: 0.92); within the "
                               "checks' budget it reaches 0.71-0.77 of the required 0.83 training accuracy",
    "check_methods_subset_invariance": "CVC-ZSL scores in float32 at a cosine scale of about 10: the BLAS kernels "
                                       "block a batch differently from its subsets on some CPUs (differences up to "
                                       "3e-7, float32 rounding), above the check's absolute 1e-7; "
                                       "test_cvc_scores_do_not_depend_on_the_batch checks it at float32 precision",
}


def expected_failures(estimator) -> dict:
    method = estimator.method.name if hasattr(estimator.method, "name") else estimator.method
    return {**ZSL_LIMITS, **(COSINE_LIMITS if method == "cvc-zsl" else {})}


@parametrize_with_checks([ZSLClassifier(tiny_method(name), class_embeddings=EMBEDDINGS, candidates="seen")
                          for name in METHODS], expected_failed_checks=expected_failures)
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def test_cvc_scores_do_not_depend_on_the_batch():
    """Scores of a subset equal the full batch's rows to float32 precision (relative 1e-5), batch by batch."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 20)
    X = (EMBEDDINGS[y, :2] * 3 + rng.normal(size=(60, 2))).astype(np.float32)
    est = ZSLClassifier(tiny_method("cvc-zsl"), class_embeddings=EMBEDDINGS, candidates="seen").fit(X, y)
    full = est.decision_function(X)
    by_batch = np.concatenate([est.decision_function(X[i:i + 7]) for i in range(0, 60, 7)])
    assert full.shape == (60, 3)
    np.testing.assert_allclose(by_batch, full, rtol=1e-5, atol=1e-5 * np.abs(full).max())
    assert (est.predict(X[:13]) == est.predict(X)[:13]).all()


# ----- the methods themselves -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", METHODS)
def test_method_parameters_round_trip(name):
    model = get_method(name)(seed=3, device="cpu", **TINY[name])
    params = model.get_params()
    assert params["seed"] == 3 and params["device"] == "cpu" and params["config"] is None
    for key, value in TINY[name].items():
        assert params[key] == value  # stored exactly as given
    twin = clone(model)
    assert twin is not model and twin.get_params() == params
    twin.set_params(seed=4)
    assert twin.seed == 4 and model.seed == 3
    with pytest.raises(ConfigError, match="no setting"):
        get_method(name)(not_a_setting=1)


@pytest.mark.parametrize("name", METHODS)
def test_unfitted_method_says_so(name):
    model = get_method(name)()
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(model)
    with pytest.raises(NotFittedError):
        model.predict(np.zeros((2, 5), np.float32), EMBEDDINGS)


def test_fit_resolves_parameters_without_changing_them():
    data = make_synthetic("synthetic-tiny", seed=0)
    X, y = data.split("trainval")
    model = get_method("eszsl")(config={"lambda_exp": 2.0}, gamma_exp="1", device="cpu")
    model.fit(X, np.searchsorted(data.seen_classes, y), data.class_embeddings[data.seen_classes])
    assert model.gamma_exp == "1" and model.config == {"lambda_exp": 2.0}  # parameters untouched
    assert (model.config_.gamma_exp, model.config_.lambda_exp) == (1.0, 2.0)  # resolved copy
    check_is_fitted(model)
    bad = get_method("eszsl")(normalize_features="maybe")
    with pytest.raises(ConfigError, match="normalize_features"):
        bad.fit(X, np.searchsorted(data.seen_classes, y), data.class_embeddings[data.seen_classes])


def test_errors_are_value_errors():
    assert issubclass(DataError, ValueError) and issubclass(ConfigError, ValueError)
    assert issubclass(NotFittedError, SklearnNotFittedError)


# ----- ZSL validation with scikit-learn's own tools ------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", seed=0)


def test_zsl_on_unseen_classes_beats_chance(tiny):
    X, y = tiny.split("trainval")
    clf = ZSLClassifier("eszsl", class_embeddings=tiny.class_embeddings, candidates="unseen").fit(X, y)
    assert set(clf.classes_) == set(tiny.unseen_classes)
    Xu, yu = tiny.split("test_unseen")
    chance = 1.0 / tiny.unseen_classes.size
    assert clf.score(Xu, yu) > 2 * chance


def test_grid_search_over_eszsl_gamma_matches_a_manual_search(tiny):
    X, y = tiny.split("trainval")
    grid = [-1.0, 0.0, 1.0]
    cv = GroupKFold(n_splits=3)
    clf = ZSLClassifier(get_method("eszsl")(device="cpu"), class_embeddings=tiny.class_embeddings,
                        candidates="unseen")
    search = GridSearchCV(clf, {"method__gamma_exp": grid}, cv=cv).fit(X, y, groups=y)
    manual = [cross_val_score(clone(clf).set_params(method__gamma_exp=g), X, y, groups=y, cv=cv).mean() for g in grid]
    assert search.best_params_["method__gamma_exp"] == grid[int(np.argmax(manual))]
    assert np.allclose(search.cv_results_["mean_test_score"], manual)
    for train, test in cv.split(X, y, groups=y):  # class-disjoint folds: every test class is unseen
        assert not set(y[train]) & set(y[test])
    Xu, yu = tiny.split("test_unseen")
    assert search.score(Xu, yu) > 2.0 / tiny.unseen_classes.size  # refit on all trainval, scored on new classes


def test_pipeline_with_a_scaler(tiny):
    X, y = tiny.split("trainval")
    pipe = make_pipeline(StandardScaler(), ZSLClassifier("eszsl", class_embeddings=tiny.class_embeddings,
                                                         candidates="unseen"))
    scores = cross_val_score(pipe, X, y, groups=y, cv=GroupKFold(n_splits=3))
    assert scores.shape == (3,) and np.all(scores > 0)


def test_named_classes_and_candidate_lists(tiny):
    names = np.array([f"class-{c}" for c in range(tiny.num_classes)])
    X, y = tiny.split("trainval")
    clf = ZSLClassifier("eszsl", class_embeddings=tiny.class_embeddings, classes=names,
                        candidates=list(names[tiny.unseen_classes[:2]])).fit(X, names[y])
    assert list(clf.classes_) == sorted(names[tiny.unseen_classes[:2]])
    assert set(clf.predict(tiny.split("test_unseen")[0])) <= set(clf.classes_)
    with pytest.raises(DataError, match="no class embedding"):
        clf.fit(X, np.array(["nope"] * len(y)))


def test_calibration_moves_predictions_to_unseen_classes(tiny):
    X, y = tiny.split("trainval")
    clf = ZSLClassifier("eszsl", class_embeddings=tiny.class_embeddings, candidates="all").fit(X, y)
    Xt = np.concatenate([tiny.split("test_seen")[0], tiny.split("test_unseen")[0]])
    unseen_share = lambda c: np.isin(c.predict(Xt), tiny.unseen_classes).mean()  # noqa: E731
    calibrated = clone(clf).set_params(calibration=1e6).fit(X, y)
    assert unseen_share(calibrated) == 1.0 and unseen_share(clf) < 1.0
    assert clf.predict_proba(Xt).shape == (len(Xt), tiny.num_classes)
    assert np.allclose(clf.predict_proba(Xt).sum(axis=1), 1.0)


def test_bad_adapter_settings_are_clear(tiny):
    X, y = tiny.split("trainval")
    with pytest.raises(ConfigError, match="class_embeddings is required"):
        ZSLClassifier("eszsl").fit(X, y)
    with pytest.raises(ConfigError, match="candidates must be"):
        ZSLClassifier("eszsl", class_embeddings=tiny.class_embeddings, candidates="new").fit(X, y)
    with pytest.raises(ConfigError, match="method must be"):
        ZSLClassifier(42, class_embeddings=tiny.class_embeddings).fit(X, y)
    with pytest.raises(DataError, match="classes"):
        ZSLClassifier("eszsl", class_embeddings=tiny.class_embeddings, classes=[1, 2]).fit(X, y)


def test_sklearn_version_has_the_checks_we_use():
    assert tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 6)
