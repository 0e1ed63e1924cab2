"""ESZSL end to end through the protocol: selection modes, labels, determinism, save/load."""

import numpy as np
import pytest
import torch

from zslkit.data.synthetic import make_synthetic
from zslkit.errors import ConfigError, DataError, NotFittedError
from zslkit.methods import ZSLMethod, get_method
from zslkit.pipeline import run_protocol
from zslkit.protocol.selection import validation_view


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", 0)


def test_validation_view_uses_no_test_sample(tiny):
    view = validation_view(tiny)
    test = np.concatenate([tiny.splits["test_seen"], tiny.splits["test_unseen"]])
    for name in ("trainval", "test_seen", "test_unseen"):
        assert not np.intersect1d(view.splits[name], test).size
    # the view's unseen classes are the dataset's validation classes
    assert set(view.unseen_classes) == set(np.unique(tiny.labels[tiny.splits["val"]]))
    assert not set(view.unseen_classes) & set(view.seen_classes)


def test_validation_view_derives_classes_when_no_split(tiny):
    bare = tiny.with_splits(train=None, val=None)
    view = validation_view(bare)
    assert "DERIVED" in view.notes[-1]
    assert len(view.unseen_classes) == round(0.2 * len(tiny.seen_classes))


def test_eszsl_well_above_chance_and_labelled(tiny):
    res = run_protocol(get_method("eszsl"), tiny, selection="validation", device="cpu")
    m = res.metrics
    chance = 1.0 / len(tiny.unseen_classes)
    assert m["zsl_t1"] > 1.5 * chance
    assert m["gzsl_h"] > 0.1
    for key in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "gzsl_cs_h", "ausuc"):
        assert 0.0 <= m[key] <= 1.0
    assert m["selection"]["mode"] == "validation" and m["synthetic"] is True
    assert set(m["selection"]["chosen"]) == {"gamma_exp", "lambda_exp"}
    # the paper's grid, 7 gammas x 7 lambdas (lambda_min_exp = -inf)
    assert len({row["candidate"] for row in res.history}) == 7 * 7


def test_oracle_is_labelled_and_not_worse_on_test(tiny):
    cfg = {"grid": (-1.0, 0.0, 1.0)}
    val = run_protocol(get_method("eszsl"), tiny, config=cfg, selection="validation", device="cpu").metrics
    orc = run_protocol(get_method("eszsl"), tiny, config=cfg, selection="oracle", device="cpu").metrics
    assert "ORACLE" in orc["selection"]["description"]
    # the oracle maximises the criterion (calibrated H, its gamma on test too) over the same grid on test
    assert orc["selection"]["criterion"] == "gzsl_cs_h"
    assert orc["gzsl_cs_h"] >= val["gzsl_cs_h"] - 1e-12


def test_same_seed_same_metrics_and_save_load(tiny, tmp_path):
    a = run_protocol(get_method("eszsl"), tiny, selection="fixed", device="cpu")
    b = run_protocol(get_method("eszsl"), tiny, selection="fixed", device="cpu")
    untimed = lambda m: {k: v for k, v in m.items() if k != "time_s"}  # noqa: E731 (wall times differ)
    assert untimed(a.metrics) == untimed(b.metrics)
    path = a.model.save(tmp_path / "m.pt")
    loaded = ZSLMethod.load(path, device="cpu")
    X = tiny.features[:50]
    E = tiny.class_embeddings
    assert np.array_equal(a.model.predict(X, E), loaded.predict(X, E))
    assert np.allclose(a.model.predict_proba(X, E).sum(1), 1.0)


def test_estimator_errors(tiny):
    model = get_method("eszsl")(device="cpu")
    with pytest.raises(NotFittedError):
        model.predict(tiny.features[:3], tiny.class_embeddings)
    X, y = tiny.split("trainval")
    model.fit(X, np.searchsorted(tiny.seen_classes, y), tiny.class_embeddings[tiny.seen_classes])
    with pytest.raises(DataError, match="embedding dimension mismatch"):
        model.predict(X[:3], np.ones((4, tiny.embedding_dim + 1)))
    with pytest.raises(DataError, match="feature dimension mismatch"):
        model.predict(np.ones((2, 3)), tiny.class_embeddings)
    with pytest.raises(ConfigError, match="did you mean gamma_exp"):
        get_method("eszsl")(gama_exp=1)
    with pytest.raises(ConfigError, match="Did you mean: eszsl"):
        get_method("esszl")


def test_unsupported_setting_is_rejected(tiny):
    with pytest.raises(ConfigError, match="transductive"):
        run_protocol(get_method("eszsl"), tiny, setting="transductive")


def test_search_space_keeps_lambdas_from_lambda_min_exp():
    cfg = get_method("eszsl").default_config()
    space = get_method("eszsl").search_space(cfg)
    assert len(space) == 49  # the default floor is -inf: the whole grid
    assert sorted({c["gamma_exp"] for c in space}) == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    floor = get_method("eszsl").search_space(get_method("eszsl")(lambda_min_exp=-1.0).resolved_config())
    assert sorted({c["lambda_exp"] for c in floor}) == [-1.0, 0.0, 1.0, 2.0, 3.0] and len(floor) == 35
    high = get_method("eszsl").search_space(get_method("eszsl")(lambda_min_exp=9.0).resolved_config())
    assert {c["lambda_exp"] for c in high} == {3.0}  # nothing above the floor: the largest exponent


def _fit(tiny, X, **kw):
    _, y = tiny.split("trainval")
    model = get_method("eszsl")(device="cpu", **kw)
    return model.fit(X, np.searchsorted(tiny.seen_classes, y), tiny.class_embeddings[tiny.seen_classes])


def test_centring_makes_scores_shift_invariant(tiny):
    X, _ = tiny.split("trainval")
    Xu, _ = tiny.split("test_unseen")
    shift = np.full(X.shape[1], 3.0, dtype=np.float32)
    E = tiny.class_embeddings
    a = _fit(tiny, X).decision_function(Xu, E)
    b = _fit(tiny, X + shift).decision_function(Xu + shift, E)
    assert np.allclose(a, b, atol=1e-4)
    assert np.allclose(_fit(tiny, X).mean_.numpy(), X.astype(np.float64).mean(0))
    c = _fit(tiny, X, center_features=False).decision_function(Xu, E)
    assert not np.allclose(a, c, atol=1e-4)


def test_relative_ridge_makes_the_fit_scale_invariant(tiny):
    X, _ = tiny.split("trainval")
    Xu, _ = tiny.split("test_unseen")
    E = tiny.class_embeddings
    kw = {"normalize_features": False, "gamma_exp": 0.0}
    a = _fit(tiny, X, **kw).predict(Xu, E)
    assert np.array_equal(a, _fit(tiny, 100 * X, **kw).predict(100 * Xu, E))
    absolute = _fit(tiny, 100 * X, relative_ridge=False, **kw).V_ * 100
    assert not np.allclose(absolute.numpy(), _fit(tiny, X, relative_ridge=False, **kw).V_.numpy(), rtol=1e-3)


def test_checkpoint_without_mean_still_loads(tiny, tmp_path):
    X, _ = tiny.split("trainval")
    model = _fit(tiny, X, center_features=False)
    fresh = get_method("eszsl")(device="cpu", center_features=False)
    fresh._prepare()
    fresh.load_state_dict({"V": model.V_})  # an ESZSL checkpoint from before centring: V only
    assert np.count_nonzero(fresh.mean_.numpy()) == 0


def test_normalized_scores_are_cosines_of_the_class_weights(tiny):
    X, _ = tiny.split("trainval")
    Xu, _ = tiny.split("test_unseen")
    E = tiny.class_embeddings[tiny.unseen_classes].astype(np.float64)
    model = _fit(tiny, X)
    W = model.V_.numpy() @ E.T
    x = model._features(torch.as_tensor(Xu)).numpy()
    assert np.allclose(model.decision_function(Xu, E), x @ (W / np.linalg.norm(W, axis=0)), atol=1e-5)
    # so a class's scores do not depend on its embedding's length (raw scores scale with it)
    longer = E.copy()
    longer[0] *= 5.0
    assert np.allclose(model.decision_function(Xu, longer), model.decision_function(Xu, E), atol=1e-5)
    raw = _fit(tiny, X, normalize_scores=False)
    assert np.allclose(raw.decision_function(Xu, longer)[:, 0], 5 * raw.decision_function(Xu, E)[:, 0], atol=1e-4)
    assert np.allclose(raw.decision_function(Xu, E), x @ W, atol=1e-5)


def test_checkpoint_from_before_normalized_scores_scores_raw(tiny, tmp_path):
    X, _ = tiny.split("trainval")
    Xu, _ = tiny.split("test_unseen")
    E = tiny.class_embeddings
    raw = _fit(tiny, X, normalize_scores=False)
    path = raw.save(tmp_path / "old.pt")
    ckpt = torch.load(path, weights_only=False)
    del ckpt["state"]["normalize_scores"], ckpt["config"]["normalize_scores"]  # as written before the field
    torch.save(ckpt, path)
    old = ZSLMethod.load(path, device="cpu")  # the config's default (normalised) yields to the checkpoint
    assert old.config_.normalize_scores is False
    assert np.allclose(old.decision_function(Xu, E), raw.decision_function(Xu, E))
    new = ZSLMethod.load(_fit(tiny, X).save(tmp_path / "new.pt"), device="cpu")
    assert new.config_.normalize_scores is True
