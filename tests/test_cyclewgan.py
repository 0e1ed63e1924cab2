"""cycle-WGAN / f-CLSWGAN: losses, training behaviour, synthesis, persistence, presets (CPU, tiny data)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from zslkit.data.synthetic import make_synthetic
from zslkit.errors import ConfigError, TrainingDivergedError
from zslkit.methods import get_method
from zslkit.methods.base import ZSLMethod
from zslkit.methods.cyclewgan import CycleWGAN, gradient_penalty
from zslkit.pipeline import fit_on, run_protocol

# small but learnable: 128-wide networks, few epochs, CPU
TINY = dict(epochs=3, hidden_g=64, hidden_d=64, batch_size=32, lr_g=1e-3, lr_d=1e-3, regressor_epochs=5,
            pre_cls_epochs=5, pre_cls_batch=256, syn_per_unseen=30, cls_epochs=5, cls_batch=256)


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", seed=0, difficulty=0.2)


def _fit(ds, seed=0, **over):
    cfg = dict(TINY)
    cfg.update(over)
    return fit_on(CycleWGAN(cfg, seed=seed, device="cpu"), ds, False)


def test_registered():
    assert get_method("cycle-wgan") is CycleWGAN


def test_gradient_penalty_linear_critic_matches_hand_value():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(7, generator=g, requires_grad=True)
    v = torch.randn(3, generator=g)
    real, fake = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    cond = torch.randn(5, 3, generator=g)
    critic = lambda x, a: x @ w + a @ v  # noqa: E731  gradient wrt x is w for every sample
    gp = gradient_penalty(critic, real, fake, cond, lam=10.0, generator=g)
    expected = 10.0 * (w.detach().norm() - 1.0) ** 2
    assert torch.allclose(gp, expected, atol=1e-5)
    gp.backward()  # create_graph: the penalty back-propagates into the critic parameters
    wd = w.detach()
    assert torch.allclose(w.grad, 10.0 * 2 * (wd.norm() - 1) * wd / wd.norm(), atol=1e-5)


def test_gradient_penalty_zero_for_unit_gradient():
    w = torch.zeros(4)
    w[0] = 1.0
    x = torch.rand(6, 4)
    gp = gradient_penalty(lambda x, a: x @ w, x, x.flip(0), None, lam=10.0)
    assert float(gp) == pytest.approx(0.0, abs=1e-10)


def test_cycle_loss_falls(tiny):
    # the untrained G outputs ~0, which R maps to about the mean embedding (low MSE); once G makes feature-like
    # outputs the cycle loss peaks, then the cycle term pulls it down
    m = _fit(tiny, epochs=24, hidden_g=128, hidden_d=128, r_beta=1.0, regressor_epochs=30)
    cyc = [r["cycle"] for r in m.history_]
    peak = int(np.argmax(cyc[:6]))
    assert min(cyc[peak + 1:]) < 0.5 * cyc[peak]
    assert np.mean(cyc[-5:]) < cyc[peak]
    # the common history schema (methods/_epochs.py): loss = the critic loss, the other losses beside it
    assert {"stage", "epoch", "loss", "lr", "time_s", "wasserstein", "gp", "cycle", "cls", "g_loss", "lr_d"} \
        <= set(m.history_[0])
    assert [r["stage"] for r in m.history_] == ["gan"] * 24 and [r["epoch"] for r in m.history_] == list(range(1, 25))


def test_synthetic_features_learn_unseen_classes(tiny):
    cfg = dict(epochs=60, hidden_g=256, hidden_d=256, batch_size=32, lr_g=1e-3, lr_d=1e-3, regressor_epochs=30,
               syn_per_unseen=300, cls_epochs=50, cls_batch=256)
    res = run_protocol(CycleWGAN, tiny, config=cfg, selection="fixed", seed=0, device="cpu")
    met = res.metrics
    n_unseen, n_all = tiny.unseen_classes.size, tiny.num_classes
    assert met["zsl_t1"] > 2.5 / n_unseen, met  # chance 1/6
    assert met["gzsl_u"] > 3.0 / n_all, met  # chance 1/30
    assert met["gzsl_h"] > 0.2, met


@pytest.mark.parametrize("variant", ["cycle-wgan", "f-clswgan", "cycle-clswgan"])
def test_variants_run(tiny, variant):
    m = _fit(tiny, variant=variant, n_critic=2 if variant == "f-clswgan" else 1)
    h = m.history_[-1]
    assert len(m.history_) == 3 and np.isfinite(h["loss"])
    assert (h["cycle"] > 0) == (variant != "f-clswgan")
    assert (h["cls"] > 0) == (variant != "cycle-wgan")
    E = tiny.class_embeddings
    scores = m.decision_function(tiny.split("test_unseen")[0][:10], E[tiny.unseen_classes])
    assert scores.shape == (10, tiny.unseen_classes.size) and np.all(np.isfinite(scores))


def test_same_seed_same_metrics_and_epoch_prefix(tiny):
    a = run_protocol(CycleWGAN, tiny, config=TINY, selection="fixed", seed=3, device="cpu").metrics
    b = run_protocol(CycleWGAN, tiny, config=TINY, selection="fixed", seed=3, device="cpu").metrics
    for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "ausuc"):
        assert a[k] == b[k]
    # the first k GAN epochs of a longer run equal a k-epoch run (validation selection relies on it),
    # even when the longer run is monitored
    short = _fit(tiny, seed=1, epochs=2)
    calls = []
    long = fit_on(CycleWGAN(dict(TINY, epochs=4, eval_every=1), seed=1, device="cpu"), tiny, False,
                  monitor=lambda ep, m: calls.append(m.build_classifier(tiny.class_embeddings[:3])) or None)
    assert len(calls) == 4
    assert [r["loss"] for r in short.history_] == [r["loss"] for r in long.history_[:2]]


def test_save_load_identical_synthesis(tiny, tmp_path):
    m = _fit(tiny)
    path = m.save(tmp_path / "model.pt")
    m2 = ZSLMethod.load(path, device="cpu")
    assert isinstance(m2, CycleWGAN) and m2.history_ == m.history_
    E = tiny.class_embeddings[tiny.unseen_classes]
    x1, y1 = m.synthesize(E, 7, generator=11)
    x2, y2 = m2.synthesize(E, 7, generator=11)
    assert x1.shape == (7 * E.shape[0], tiny.feature_dim)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    noise = np.random.default_rng(0).normal(size=(E.shape[0], E.shape[1])).astype(np.float32)
    np.testing.assert_array_equal(m.generate(E, noise), m2.generate(E, noise))
    Xu = tiny.split("test_unseen")[0][:20]
    classes = np.concatenate([tiny.seen_classes, tiny.unseen_classes])
    seen_labels = np.concatenate([np.arange(tiny.seen_classes.size), -np.ones(tiny.unseen_classes.size, int)])
    np.testing.assert_array_equal(m.decision_function(Xu, tiny.class_embeddings[classes], seen_labels),
                                  m2.decision_function(Xu, tiny.class_embeddings[classes], seen_labels))


def test_classifier_cached_per_candidate_set(tiny):
    m = _fit(tiny, epochs=1)
    E = tiny.class_embeddings
    c1 = m.build_classifier(E[tiny.unseen_classes])
    assert m.build_classifier(E[tiny.unseen_classes]) is c1
    assert m.build_classifier(E[tiny.unseen_classes[:3]]) is not c1


def test_fit_head_is_the_explicit_final_classifier_step(tiny, caplog):
    m = CycleWGAN(dict(TINY, epochs=1), seed=0, device="cpu")
    assert not [k for k in vars(m) if k.endswith("_")]  # nothing learned in __init__ (scikit-learn's contract)
    fit_on(m, tiny, False)
    E = tiny.class_embeddings[tiny.unseen_classes]
    assert len(m.head_) == 0  # fit trains no final classifier
    with caplog.at_level("INFO", logger="zslkit.methods.cyclewgan"):
        head = m.fit_head(E)
    assert "training the final classifier for 6 candidates (180 synthetic + 0 real features" in caplog.text
    assert len(m.head_) == 1 and m.build_classifier(E) is head  # predict / decision_function use the cached head
    X = tiny.split("test_unseen")[0][:7]
    np.testing.assert_array_equal(m.decision_function(X, E), head.decision_function(X))
    assert len(m.head_) == 1


def test_every_supervised_stage_uses_the_one_training_loop(tiny, monkeypatch):
    from zslkit.methods.cyclewgan import softmax as _softmax
    from zslkit.methods.cyclewgan import stages

    calls = []
    real = _softmax.train_minibatches

    def spy(*a, **k):
        calls.append(k["epochs"])
        return real(*a, **k)

    monkeypatch.setattr(_softmax, "train_minibatches", spy)
    monkeypatch.setattr(stages, "train_minibatches", spy)
    m = _fit(tiny, epochs=1, variant="cycle-clswgan", regressor_epochs=2, pre_cls_epochs=3, cls_epochs=4)
    m.fit_head(tiny.class_embeddings[tiny.unseen_classes])
    assert calls == [2, 3, 4]  # regressor, auxiliary classifier, final classifier


def test_replace_mode_and_seen_synthesis(tiny):
    m = _fit(tiny, epochs=1, mode="replace", syn_per_seen=10)
    met = run_protocol(CycleWGAN, tiny, config=dict(TINY, epochs=1, mode="replace"), selection="fixed",
                       device="cpu").metrics
    assert 0.0 <= met["gzsl_h"] <= 1.0
    assert m.build_classifier(tiny.class_embeddings[:4], np.array([0, 1, -1, -1])) is not None


def test_divergence_raises_clear_error(tiny):
    m = CycleWGAN(dict(TINY, epochs=5, max_critic_loss=1e-9), seed=0, device="cpu")
    with pytest.raises(TrainingDivergedError, match="gan training diverged in epoch 1: .*max_critic_loss.*last good "
                                                    "epoch \\(0\\)"):
        fit_on(m, tiny, False)
    assert not m.history_ and not m.__sklearn_is_fitted__()
    m = CycleWGAN(dict(TINY, epochs=20, lr_d=1e9, lr_g=1e9), seed=0, device="cpu")
    with pytest.raises(TrainingDivergedError, match="diverged"):
        fit_on(m, tiny, False)
    # the last good state is kept: finite generator weights
    assert all(torch.isfinite(p).all() for p in m.G_.parameters())


def test_presets_and_defaults(tiny):
    cub_sent = dataclasses.replace(tiny, name="CUB", semantic_source="sent")
    cfg = CycleWGAN.default_config(cub_sent)
    assert (cfg.epochs, cfg.hidden_g, cfg.syn_per_unseen, cfg.mode, cfg.cls_epochs) == (926, 4096, 200, "merge", 80)
    flo = dataclasses.replace(tiny, name="FLO")
    f = CycleWGAN.default_config(flo, variant="f-clswgan")
    assert (f.variant, f.c_beta, f.n_critic, f.syn_per_unseen) == ("f-clswgan", 0.1, 5, 1200)
    assert CycleWGAN.default_config(flo).mode == "replace"
    both = CycleWGAN.default_config(flo, variant="cycle-clswgan")
    assert both.variant == "cycle-clswgan" and both.epochs == 926  # the reference's generation savepoint
    assert CycleWGAN.default_config(tiny).hidden_g == 256  # the synthetic-tiny preset
    other = dataclasses.replace(tiny, name="my-data")
    # 64-d features, 24-d embeddings: wide where it is cheap (issue 18: 128 units never learned digits-7seg)
    assert CycleWGAN.default_config(other).hidden_g == 4096
    assert CycleWGAN.search_space(dataclasses.replace(cfg, syn_grid=(100, 200, 400))) == [{}]


def test_bad_config_fails_at_fit_with_the_field_named(tiny):
    X, y = tiny.split("trainval")
    E = tiny.class_embeddings[tiny.seen_classes]
    for params, field in (({"variant": "f-gan"}, "variant"), ({"mode": "mix"}, "mode"),
                          ({"mode_grid": ("merge", "mix")}, "mode_grid"), ({"train_fraction": 1.5}, "train_fraction")):
        model = CycleWGAN(**params)  # scikit-learn: the constructor stores, fit checks
        with pytest.raises(ConfigError, match=field):
            model.fit(X, np.searchsorted(tiny.seen_classes, y), E)


def test_validation_selection_picks_gan_epoch(tiny):
    res = run_protocol(CycleWGAN, tiny, config=dict(TINY, epochs=4, eval_every=2), selection="validation",
                       seed=0, device="cpu", progress=True)
    assert [row["epoch"] for row in res.history] == [2, 4]
    assert res.config.epochs in (2, 4) and len(res.model.history_) == res.config.epochs


@pytest.mark.parametrize("g_ema", [0.0, 0.9])
def test_resume_continues_exactly(tiny, g_ema):
    full = _fit(tiny, seed=2, epochs=4, g_ema=g_ema, savepoints=(1, 3))

    class Stop(Exception):
        pass

    saved = {}

    def hook(epoch, model):
        if epoch == 2:
            saved["state"] = model.training_state()
            raise Stop

    with pytest.raises(Stop):
        fit_on(CycleWGAN(dict(TINY, epochs=4, g_ema=g_ema, savepoints=(1, 3)), seed=2, device="cpu"), tiny, False,
               checkpoint=hook)
    resumed = fit_on(CycleWGAN(dict(TINY, epochs=4, g_ema=g_ema, savepoints=(1, 3)), seed=2, device="cpu"), tiny,
                     False, resume_state=saved["state"])
    strip = lambda h: [{k: v for k, v in r.items() if k != "time_s"} for r in h]  # noqa: E731
    assert strip(resumed.history_) == strip(full.history_)
    for p, q in zip(resumed._synth_net().parameters(), full._synth_net().parameters()):
        assert torch.equal(p, q)
    assert sorted(resumed.snapshots_) == [1, 3]  # the savepoint before the stop travels in the training state
    for e in (1, 3):
        assert all(torch.equal(resumed.snapshots_[e][k], full.snapshots_[e][k]) for k in full.snapshots_[e])


def test_feature_norm_max_keeps_original_units(tiny, tmp_path):
    m = _fit(tiny, feature_norm="max")
    top = float(tiny.split("trainval")[0].max())
    assert 1.0 / m.scaler_.inv_scale == pytest.approx(top)
    assert float(m.train_X_.max()) == pytest.approx(1.0)
    x, _ = m.synthesize(tiny.class_embeddings[:3], 50, seed=0)
    assert x.max() > 0.1 * top  # returned in the data's units, not the model's
    m2 = ZSLMethod.load(m.save(tmp_path / "m.pt"), device="cpu")
    np.testing.assert_array_equal(m2.synthesize(tiny.class_embeddings[:3], 50, seed=0)[0], x)
    Xu = tiny.split("test_unseen")[0]
    acc = m2.score(Xu, np.searchsorted(tiny.unseen_classes, tiny.split("test_unseen")[1]),
                   tiny.class_embeddings[tiny.unseen_classes])
    assert 0.0 <= acc <= 1.0


def test_checkpoint_keeps_the_trained_final_classifiers(tmp_path):
    """A reloaded model scores the candidates it was evaluated on with the same classifier, on any
    device, instead of retraining it from device-dependent synthesis noise."""
    from zslkit.methods import ZSLMethod

    ds = make_synthetic("synthetic-tiny", seed=0, difficulty=0.2)
    res = run_protocol(get_method("cycle-wgan"), ds, config=dict(TINY, epochs=2), selection="fixed", device="cpu")
    path = res.model.save(tmp_path / "m.pt")
    loaded = ZSLMethod.load(path, device="cpu")
    assert len(loaded.head_) >= 2  # the ZSL head and the GZSL head of the test evaluation
    X = ds.split("test_unseen")[0]
    E = ds.class_embeddings[ds.unseen_classes]
    assert np.array_equal(res.model.decision_function(X, E), loaded.decision_function(X, E))


def test_f_clswgan_without_its_own_preset_uses_five_critic_steps():
    ds = make_synthetic("synthetic-tiny", seed=0)
    assert CycleWGAN.default_config(ds, variant="f-clswgan").n_critic == 5
    assert CycleWGAN.default_config(ds).n_critic == 1


# ---------------------------------------------------------------------------------------------------------------
# faithfulness to the cycle-WGAN reference (rfelixmg/frwgan-eccv18), issue 10

def _named(ds, name):
    return dataclasses.replace(ds, name=name)


def test_reference_presets_carry_the_reference_facts(tiny):
    awa1 = CycleWGAN.default_config(_named(tiny, "AWA1"))
    # TensorFlow's Adam defaults, inverse-time decays of the JSONs, ReLU head, per-element GP, Glorot init, 90 %
    assert awa1.betas_g == awa1.betas_d == awa1.cls_betas == awa1.pre_cls_betas == (0.9, 0.999)
    assert (awa1.regressor_lr_decay, awa1.cls_lr_decay) == (2.645e-4, 2.84e-3)
    assert (awa1.cls_head, awa1.gp_alpha, awa1.gan_init, awa1.train_fraction) == ("relu", "element", "xavier", 0.9)
    assert awa1.epochs == 285  # --savepoints [30,40,285]: the generator checkpoint that generates
    assert CycleWGAN.default_config(_named(tiny, "FLO")).epochs == 926
    sun = CycleWGAN.default_config(_named(tiny, "SUN"))
    assert (sun.lr_decay_g, sun.lr_decay_d, sun.pre_cls_lr_decay) == (0.018, 2.53e-3, 0.0445)
    f = CycleWGAN.default_config(_named(tiny, "CUB"), variant="f-clswgan")  # f-CLSWGAN keeps its own choices
    assert (f.betas_g, f.gp_alpha, f.gan_init, f.cls_head, f.feature_norm) == (
        (0.5, 0.999), "sample", "normal", "linear", "minmax")
    assert CycleWGAN.head_space(awa1) == [{}]  # reference presets are scored as given


def test_adam_betas_reach_the_optimizers(tiny):
    m = _fit(tiny, epochs=1, betas_g=(0.9, 0.999), betas_d=(0.8, 0.99))
    assert m.opt_g_.param_groups[0]["betas"] == (0.9, 0.999)
    assert m.opt_d_.param_groups[0]["betas"] == (0.8, 0.99)


def test_gan_inverse_time_decay_advances_once_per_epoch(tiny):
    seen = []
    fit_on(CycleWGAN(dict(TINY, epochs=3, eval_every=1, lr_g=1e-3, lr_d=2e-3, lr_decay_g=1.0, lr_decay_d=0.5),
                     seed=0, device="cpu"), tiny, False,
           monitor=lambda ep, m: seen.append((m.opt_g_.param_groups[0]["lr"], m.opt_d_.param_groups[0]["lr"])))
    # the rate used during epoch e (1-based) is lr / (1 + decay * (e - 1))
    assert seen == pytest.approx([(1e-3, 2e-3), (1e-3 / 2, 2e-3 / 1.5), (1e-3 / 3, 2e-3 / 2)])


def test_softmax_decay_is_per_epoch_not_per_batch(monkeypatch):
    from zslkit.methods.cyclewgan import softmax as _softmax

    calls = []
    real = _softmax.set_lr
    monkeypatch.setattr(_softmax, "set_lr", lambda opt, lr: calls.append(lr) or real(opt, lr))
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(40, 5, generator=g), torch.arange(40) % 3
    _softmax.train_softmax(X, y, 3, epochs=4, lr=0.1, batch_size=8, lr_decay=0.25, generator=g)
    assert calls == pytest.approx([0.1 / (1 + 0.25 * e) for e in range(4)])  # 4 epochs x 5 batches: 4 updates


def test_relu_head_initialisation_and_scores():
    from zslkit.methods.cyclewgan.softmax import SoftmaxClassifier, train_softmax

    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(30, 50, generator=g), torch.arange(30) % 4
    layer = train_softmax(X, y, 4, epochs=0, lr=1e-3, batch_size=8, head="relu", generator=g)
    w = layer.weight
    assert float(w.abs().max()) <= 0.02 and 0.007 < float(w.std()) < 0.01  # truncated N(0, 0.01)
    assert torch.all(layer.bias == 0.9999)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([-3.0, -1.0, 0.5, 2.0]))
    scores = SoftmaxClassifier(layer, torch.device("cpu"), head="relu").decision_function(np.ones((2, 50), np.float32))
    expected = torch.log_softmax(torch.tensor([0.0, 0.0, 0.5, 2.0]), 0).numpy()  # negative logits clipped at 0
    np.testing.assert_allclose(scores[0], expected, rtol=1e-6)
    linear = SoftmaxClassifier(layer, torch.device("cpu")).decision_function(np.ones((1, 50), np.float32))
    assert linear[0, 0] < scores[0, 0]


def test_gradient_penalty_per_element_interpolation():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(6, 5, generator=g), torch.rand(6, 5, generator=g)
    critic = lambda x, a: 0.5 * (x ** 2).sum(1)  # noqa: E731  gradient = the interpolate itself
    for per_element, shape in ((True, (6, 5)), (False, (6, 1))):
        alpha = torch.rand(shape, generator=torch.Generator().manual_seed(3))
        x_hat = alpha * real + (1 - alpha) * fake
        expected = 10.0 * ((x_hat.norm(dim=1) - 1) ** 2).mean()
        got = gradient_penalty(critic, real, fake, None, per_element=per_element,
                               generator=torch.Generator().manual_seed(3))
        assert torch.allclose(got, expected, atol=1e-6)


def test_gan_uses_the_configured_interpolation_and_fraction(tiny, monkeypatch):
    from zslkit.methods.cyclewgan import gan

    shapes, rows = set(), []
    real_gp = gan.gradient_penalty
    monkeypatch.setattr(gan, "gradient_penalty",
                        lambda *a, **k: shapes.add(tuple(k["alpha"].shape[1:])) or real_gp(*a, **k))
    real_batches = gan.epoch_batches
    monkeypatch.setattr(gan, "epoch_batches", lambda n, *a: rows.append(n) or real_batches(n, *a))
    m = _fit(tiny, epochs=1, gp_alpha="element", train_fraction=0.5)
    n = tiny.splits["trainval"].size
    assert shapes == {(tiny.feature_dim,)} and rows == [round(0.5 * n)]
    assert m.train_X_.shape[0] == n  # the final classifier still sees every real seen feature (merge)


def test_xavier_init_uses_the_joint_fan_in():
    from zslkit.methods.cyclewgan.networks import Critic

    c = Critic(300, 100, 256)
    c.init(torch.Generator().manual_seed(0), "xavier")
    c.requires_grad_(False)
    bound = (6.0 / (400 + 256)) ** 0.5
    assert float(c.fc_x.weight.abs().max()) <= bound and float(c.fc_x.weight.abs().max()) > 0.9 * bound
    assert float(c.fc_a.weight.abs().max()) <= bound and torch.all(c.fc_x.bias == 0)


def test_minmax_feature_norm_round_trips(tiny):
    m = _fit(tiny, epochs=1, feature_norm="minmax")
    assert float(m.train_X_.min()) == pytest.approx(0.0) and float(m.train_X_.max()) == pytest.approx(1.0)
    x, _ = m.synthesize(tiny.class_embeddings[:2], 5, seed=0)
    noise = np.zeros((2, tiny.embedding_dim), np.float32)
    raw = m.G_(torch.as_tensor(tiny.class_embeddings[:2]), torch.as_tensor(noise))
    np.testing.assert_allclose(m.generate(tiny.class_embeddings[:2], noise),
                               m.scaler_.inverse(raw).detach().numpy(), rtol=1e-6)
    assert x.shape == (10, tiny.feature_dim)


# ---------------------------------------------------------------------------------------------------------------
# honest auto-tuning: head_space and keeping the validated model

def test_head_space_is_the_grid_product_and_bounded(tiny):
    cfg = CycleWGAN.default_config(_named(tiny, "my-data"))
    # the default: seen-class synthetic count 4 x classifier lr 2 (replace only)
    assert len(CycleWGAN.head_space(cfg)) == 8
    with pytest.raises(ConfigError, match="head grid"):  # 2 x 4 x 2 = 16 heads > MAX_HEADS
        CycleWGAN.head_space(dataclasses.replace(cfg, mode_grid=("merge", "replace")))
    fcls = CycleWGAN.default_config(_named(tiny, "my-data"), variant="f-clswgan")
    assert fcls.mode_grid == ("merge", "replace") and len(CycleWGAN.head_space(fcls)) == 8  # the cls-loss variants
    n = fcls.syn_per_unseen  # merge / replace x n, 2n unseen x 0, n/4 seen rows (0: real only / as unseen) x lr 1e-2
    assert (fcls.syn_grid, fcls.syn_seen_grid, fcls.cls_lr_grid) == ((n, 2 * n), (0, n // 4), (1e-2,))
    cfg = dataclasses.replace(cfg, mode_grid=(), syn_grid=(100, 400), syn_seen_grid=(), cls_epochs_grid=(10,),
                              cls_lr_grid=(1e-3, 1e-2))
    heads = CycleWGAN.head_space(cfg)
    assert len(heads) == 4 and {"syn_per_unseen": 400, "cls_epochs": 10, "cls_lr": 1e-2} in heads
    with pytest.raises(ConfigError, match="head grid"):
        CycleWGAN.head_space(dataclasses.replace(cfg, syn_grid=tuple(range(1, 8))))


def test_fewer_synthetic_seen_rows_lower_the_seen_prior(tiny):
    """The seen-share axis of the default head grid: in replace mode syn_per_seen rows per seen class; fewer rows
    move GZSL predictions of the same features towards the unseen classes (the classifier's prior)."""
    m = _fit(tiny, epochs=2)
    seen, unseen = tiny.seen_classes, tiny.unseen_classes
    E = tiny.class_embeddings[np.concatenate([seen, unseen])]
    labels = np.concatenate([np.arange(seen.size), np.full(unseen.size, -1)])
    X = np.concatenate([tiny.split("test_seen")[0], tiny.split("test_unseen")[0]])
    base = dataclasses.replace(m.config_, mode="replace", syn_per_unseen=80)
    shares = []
    for per_seen in (80, 10):
        m.config_ = dataclasses.replace(base, syn_per_seen=per_seen)
        shares.append(float(np.mean(m.fit_head(E, labels).decision_function(X).argmax(1) >= seen.size)))
    assert shares[1] > shares[0], shares


def test_classifier_cache_follows_the_head_config(tiny):
    m = _fit(tiny, epochs=1)
    E = tiny.class_embeddings[tiny.unseen_classes]
    base = m.config_
    c1 = m.build_classifier(E)
    m.config_ = dataclasses.replace(base, cls_epochs=base.cls_epochs + 3)
    c2 = m.build_classifier(E)
    assert c2 is not c1 and m.build_classifier(E) is c2
    m.config_ = base
    assert m.build_classifier(E) is c1


def test_adopt_seen_classes_keeps_the_generator(tiny):
    from zslkit.protocol.selection import validation_view

    view = validation_view(tiny)
    m = fit_on(CycleWGAN(TINY, seed=0, device="cpu"), view, False)
    k_view = m.num_train_classes_
    E_unseen = tiny.class_embeddings[tiny.unseen_classes]
    m.build_classifier(E_unseen)
    g_before = [p.clone() for p in m.G_.parameters()]
    X, labels = tiny.split("trainval")
    seen = tiny.seen_classes
    m.adopt_seen_classes(X, np.searchsorted(seen, labels), tiny.class_embeddings[seen])
    assert k_view < m.num_train_classes_ == seen.size and m.train_X_.shape[0] == X.shape[0]
    assert not m.head_ and all(torch.equal(p, q) for p, q in zip(g_before, m.G_.parameters()))
    classes = np.concatenate([seen, tiny.unseen_classes])
    seen_labels = np.concatenate([np.arange(seen.size), -np.ones(tiny.unseen_classes.size, int)])
    assert m.decision_function(X[:5], tiny.class_embeddings[classes], seen_labels).shape == (5, classes.size)


def test_validation_retrains_by_default(tiny):
    cfg = dict(TINY, epochs=4, eval_every=2, syn_grid=(20, 40))
    res = run_protocol(CycleWGAN, tiny, config=cfg, selection="validation", seed=0, device="cpu")
    assert res.metrics["selection"]["validation_metrics"]["final_model"] == "retrained on trainval"
    assert res.model.num_train_classes_ == tiny.seen_classes.size
    assert len(res.model.history_) == res.config.epochs == res.metrics["selection"]["chosen"]["epochs"]


def test_validation_can_keep_the_validated_model(tiny, monkeypatch):
    """With keeps_validated_model (the pipeline side of adopt_seen_classes), the tested GAN is the one scored on
    validation: its validation score is recomputed from the saved state."""
    from zslkit.protocol.evaluate import TestScores
    from zslkit.protocol.selection import validation_view

    monkeypatch.setattr(CycleWGAN, "keeps_validated_model", True)
    cfg = dict(TINY, epochs=4, eval_every=2, syn_grid=(20, 40))
    res = run_protocol(CycleWGAN, tiny, config=cfg, selection="validation", seed=0, device="cpu")
    assert len(res.history) == 4  # 2 evaluation points x 2 heads
    chosen = res.metrics["selection"]["chosen"]
    assert res.metrics["selection"]["validation_metrics"]["final_model"] == "kept from validation"
    assert res.model.epochs_trained_ == chosen["epochs"] and res.model.config_.syn_per_unseen == chosen["syn_per_unseen"]
    view = validation_view(tiny)
    again = CycleWGAN(res.config, seed=0, device="cpu")
    again._prepare()
    again.feature_dim_, again.embedding_dim_ = tiny.feature_dim, tiny.embedding_dim
    again.num_train_classes_ = int(np.unique(view.labels[view.splits["trainval"]]).size)
    state = res.model.state_dict()
    state.update(train_features=None, train_labels=None, final_classifiers={})
    again.load_state_dict(state)
    again.fitted_ = True
    fit_X, fit_labels = view.split("trainval")
    again.adopt_seen_classes(fit_X, np.searchsorted(np.unique(fit_labels), fit_labels),
                             view.class_embeddings[np.unique(fit_labels)])
    ts = TestScores(again, view)
    best = max(res.history, key=lambda r: r["gzsl_h"])
    assert ts.metrics()["gzsl_h"] == pytest.approx(best["gzsl_h"])


# ---------------------------------------------------------------------------------------------------------------
# a small real case: a slice of fashion-zsl (real EfficientNet features, hand-written attributes)

FASHION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fashion-zsl"


@pytest.fixture(scope="module")
def fashion_slice():
    """9 classes x 100 real samples of fashion-zsl fold 0: 6 train classes, 1 validation class (sandal) and 2
    unseen classes (dress, sneaker); 80 / 20 trainval / test_seen per seen class."""
    if not (FASHION / "res101.mat").is_file():
        pytest.skip(f"fashion-zsl not found in {FASHION} (CI provides ../shared)")
    from zslkit.data.layouts import load_from_root

    full = load_from_root(FASHION)
    names = list(full.class_names)
    pick = lambda *cls: [names.index(c) for c in cls]  # noqa: E731
    train = pick("t-shirt_top", "trouser", "coat", "shirt", "bag", "ankle_boot")
    val, unseen = pick("sandal"), pick("dress", "sneaker")
    rng = np.random.default_rng(0)
    idx = {c: rng.choice(np.flatnonzero(full.labels == c), 100, replace=False) for c in train + val + unseen}
    cat = lambda parts: np.sort(np.concatenate(parts))  # noqa: E731
    splits = {"train": cat([idx[c][:80] for c in train]), "val": cat([idx[c][:80] for c in val]),
              "test_seen": cat([idx[c][80:] for c in train + val]), "test_unseen": cat([idx[c] for c in unseen])}
    splits["trainval"] = cat([splits["train"], splits["val"]])
    return dataclasses.replace(full, splits=splits, name="fashion-slice", split_sha256=None)


@pytest.mark.parametrize("variant, epochs", [("cycle-wgan", 25), ("f-clswgan", 8)])
def test_defaults_learn_a_small_real_dataset(fashion_slice, variant, epochs):
    ds = fashion_slice
    cfg = CycleWGAN.default_config(ds, variant=None if variant == "cycle-wgan" else variant)
    assert cfg.hidden_g == 512 and cfg.mode == "replace"
    assert len(CycleWGAN.head_space(cfg)) == 8  # cycle-wgan: seen share x lr; cls-loss variants: mode x count x lr
    cfg = dataclasses.replace(cfg, epochs=epochs)  # a small GAN budget; everything else as defaulted
    met = run_protocol(CycleWGAN, ds, config=cfg, selection="fixed", seed=0, device="cpu").metrics
    assert met["zsl_t1"] > 0.75, met  # 2 unseen classes: chance 0.5
    assert met["gzsl_u"] > 0.02 and met["gzsl_h"] > 0.02, met


def test_default_classifier_cost_does_not_grow_with_the_class_count(tiny):
    many = make_synthetic("synthetic-cub-sent", seed=0)  # 200 classes, ~47 real samples per seen class
    cfg = CycleWGAN.default_config(many)
    assert (cfg.syn_per_unseen, cfg.syn_grid, cfg.syn_seen_grid) == (100, (100,), (100, 50, 25, 12))
    assert cfg.cls_epochs == 6  # 2 x 100 x 200 rows in batches of 512: 79 steps an epoch, ~500 steps in all
    assert CycleWGAN.default_config(_named(tiny, "my-data")).cls_epochs == 25


# ---------------------------------------------------------------------------------------------------------------
# the reference's interfaces (issue 14): savepoints, stages run / skipped / reused

def test_savepoints_keep_the_generators_of_those_epochs(tiny, tmp_path):
    m = _fit(tiny, seed=1, epochs=3, savepoints=(1, 2, 7))
    assert sorted(m.snapshots_) == [1, 2] and m.generator_epoch_ == 3  # 7 was never reached
    E = tiny.class_embeddings[tiny.unseen_classes]
    last = m.synthesize(E, 4, seed=0)[0]
    m.fit_head(E)
    m.use_snapshot(1)
    assert len(m.head_) == 0  # heads trained from another generator are dropped
    one_epoch = _fit(tiny, seed=1, epochs=1)  # the first k epochs of a run equal a k-epoch run
    np.testing.assert_array_equal(m.synthesize(E, 4, seed=0)[0], one_epoch.synthesize(E, 4, seed=0)[0])
    loaded = ZSLMethod.load(m.save(tmp_path / "m.pt"), device="cpu")  # snapshots travel in the checkpoint
    loaded.use_snapshot(3)
    np.testing.assert_array_equal(loaded.synthesize(E, 4, seed=0)[0], last)
    with pytest.raises(ConfigError, match="no generator of GAN epoch 5 .* keeps epochs 1, 2, 3"):
        loaded.use_snapshot(5)
    with pytest.raises(ConfigError, match="savepoints"):
        fit_on(CycleWGAN(dict(TINY, checkpoint_metric="zsl_t1"), device="cpu"), tiny, False)


def test_checkpoint_metric_chooses_among_the_savepoints(tiny):
    res = run_protocol(CycleWGAN, tiny, config=dict(TINY, epochs=4, savepoints=(1, 3), checkpoint_metric="zsl_t1"),
                       selection="validation", criterion="zsl_t1", seed=0, device="cpu")
    assert sorted({r["epoch"] for r in res.history}) == [1, 3]  # validation scored the savepoints only
    best = max(res.history, key=lambda r: r["zsl_t1"])
    assert res.metrics["selection"]["chosen"]["epochs"] == best["epoch"] == res.model.epochs_trained_
    # without a checkpoint metric the savepoints are evaluation points beside the usual ones
    plain = dataclasses.replace(CycleWGAN(TINY).resolved_config(), epochs=4, eval_every=4, savepoints=(1,))
    from zslkit.methods.cyclewgan.gan import evaluation_point
    assert [e for e in range(1, 5) if evaluation_point(plain, e)] == [1, 4]


@pytest.fixture(scope="module")
def source_run(tiny, tmp_path_factory):
    """A cycle-clswgan run (regressor and seen-class classifier) saved as a run directory would hold it."""
    d = tmp_path_factory.mktemp("source")
    res = run_protocol(CycleWGAN, tiny, config=dict(TINY, epochs=2, variant="cycle-clswgan", savepoints=(1,)),
                       selection="fixed", seed=0, device="cpu")
    res.model.save(d / "model.pt", extra={"dataset": tiny.name})
    return d, res


def test_a_reused_regressor_and_classifier_are_the_source_runs(tiny, source_run):
    import hashlib

    d, src = source_run
    m = _fit(tiny, epochs=1, variant="cycle-clswgan", regressor_stage=str(d), aux_classifier_stage=str(d / "model.pt"))
    assert torch.equal(m.R_.weight, src.model.R_.weight) and torch.equal(m.C_.weight, src.model.C_.weight)
    sha = hashlib.sha256((d / "model.pt").read_bytes()).hexdigest()
    assert m.reused_stages_["regressor"] == {"source": str((d / "model.pt").resolve()), "sha256": sha,
                                             "method": "cycle-wgan", "variant": "cycle-clswgan", "dataset": tiny.name}
    assert set(m.reused_stages_) == {"regressor", "aux_classifier"} and m.history_[0]["cycle"] > 0
    # skipped stages: their loss terms are off
    s = _fit(tiny, epochs=1, variant="cycle-clswgan", regressor_stage="skip", aux_classifier_stage="skip")
    assert s.R_ is None and s.C_ is None and s.history_[0]["cycle"] == s.history_[0]["cls"] == 0.0
    assert ZSLMethod.load(s.save(d / "skipped.pt"), device="cpu").R_ is None


def test_reusing_the_gan_and_final_classifiers_reproduces_the_run(tiny, source_run):
    d, src = source_run
    res = run_protocol(CycleWGAN, tiny, config=dict(TINY, epochs=9, variant="cycle-clswgan", gan_stage=str(d),
                                                    final_classifier_stage=str(d)), selection="fixed", device="cpu")
    for key in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "ausuc"):
        assert res.metrics[key] == src.metrics[key], key
    m = res.model
    assert m.epochs_trained_ == 2 and len(m.history_) == 2 and sorted(m.snapshots_) == [1]  # no GAN epochs here
    assert set(m.reused_stages_) == {"gan", "final_classifier"}
    # the GAN alone with another head: a new final classifier from the same generator
    other = run_protocol(CycleWGAN, tiny, config=dict(TINY, variant="cycle-clswgan", gan_stage=str(d), cls_epochs=9),
                         selection="fixed", device="cpu")
    assert all(torch.equal(p, q) for p, q in zip(other.model.G_.parameters(), src.model.G_.parameters()))


def test_stage_settings_that_cannot_work_are_config_errors(tiny, source_run, tmp_path):
    from zslkit.methods import get_method

    d, _ = source_run
    other_classes = make_synthetic("synthetic-tiny", seed=1)
    eszsl = fit_on(get_method("eszsl")(device="cpu"), tiny, False).save(tmp_path / "eszsl.pt")
    cases = [
        (dict(gan_stage="skip"), tiny, "gan_stage=skip: the gan stage cannot be skipped"),
        (dict(final_classifier_stage=str(d)), tiny, "final_classifier_stage: .*reuse the GAN of the same run"),
        (dict(regressor_stage=str(tmp_path / "nothing")), tiny, "regressor_stage=.*does not exist"),
        (dict(regressor_stage=str(eszsl)), tiny, "regressor_stage: .*eszsl.pt: a eszsl model"),
        (dict(variant="f-clswgan", regressor_stage=str(d)), tiny, "variant f-clswgan has no cycle loss"),
        (dict(regressor_stage=str(d)), other_classes, "trained on other classes: 24 of the 24 training classes"),
        (dict(gan_stage=str(d), hidden_g=TINY["hidden_g"] * 2), tiny, "hidden_g 64 there, 128 here"),
        (dict(feature_norm="max", regressor_stage=str(d)), tiny, "feature_norm none there, max here"),
    ]
    for over, ds, words in cases:
        with pytest.raises(ConfigError, match=words):
            _fit(ds, epochs=1, **over)
    with pytest.raises(ConfigError, match="gan_stage: .*seen their features"):  # the validation view: honest selection
        run_protocol(CycleWGAN, tiny, config=dict(TINY, gan_stage=str(d)), selection="validation", device="cpu")
