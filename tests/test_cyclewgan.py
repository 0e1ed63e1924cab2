"""cycle-WGAN / f-CLSWGAN: losses, training behaviour, synthesis, persistence, presets (CPU, tiny data)."""

from __future__ import annotations

import dataclasses

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
    assert {"critic_loss", "wasserstein", "gp", "cycle", "cls", "g_loss"} <= set(m.history_[0])


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
    assert len(m.history_) == 3 and np.isfinite(h["critic_loss"])
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
    assert [r["critic_loss"] for r in short.history_] == [r["critic_loss"] for r in long.history_[:2]]


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


def test_replace_mode_and_seen_synthesis(tiny):
    m = _fit(tiny, epochs=1, mode="replace", syn_per_seen=10)
    met = run_protocol(CycleWGAN, tiny, config=dict(TINY, epochs=1, mode="replace"), selection="fixed",
                       device="cpu").metrics
    assert 0.0 <= met["gzsl_h"] <= 1.0
    assert m.build_classifier(tiny.class_embeddings[:4], np.array([0, 1, -1, -1])) is not None


def test_divergence_raises_clear_error(tiny):
    m = CycleWGAN(dict(TINY, epochs=5, max_critic_loss=1e-9), seed=0, device="cpu")
    with pytest.raises(TrainingDivergedError, match="diverged in GAN epoch 1/5.*max_critic_loss"):
        fit_on(m, tiny, False)
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
    assert both.variant == "cycle-clswgan" and both.epochs == 1000
    assert CycleWGAN.default_config(tiny).hidden_g == 256  # the synthetic-tiny preset
    other = dataclasses.replace(tiny, name="my-data")
    assert CycleWGAN.default_config(other).hidden_g <= 1024
    assert CycleWGAN.search_space(dataclasses.replace(cfg, syn_grid=(100, 200, 400))) == [
        {}, {"syn_per_unseen": 100}, {"syn_per_unseen": 400}]


def test_bad_config():
    with pytest.raises(ConfigError, match="variant"):
        CycleWGAN(variant="f-gan")
    with pytest.raises(ConfigError, match="mode"):
        CycleWGAN(mode="mix")


def test_validation_selection_picks_gan_epoch(tiny):
    res = run_protocol(CycleWGAN, tiny, config=dict(TINY, epochs=4, eval_every=2), selection="validation",
                       seed=0, device="cpu", progress=True)
    assert [row["epoch"] for row in res.history] == [2, 4]
    assert res.config.epochs in (2, 4) and len(res.model.history_) == res.config.epochs


def test_resume_continues_exactly(tiny):
    full = _fit(tiny, seed=2, epochs=4)

    class Stop(Exception):
        pass

    saved = {}

    def hook(epoch, model):
        if epoch == 2:
            saved["state"] = model.training_state()
            raise Stop

    with pytest.raises(Stop):
        fit_on(CycleWGAN(dict(TINY, epochs=4), seed=2, device="cpu"), tiny, False, checkpoint=hook)
    resumed = fit_on(CycleWGAN(dict(TINY, epochs=4), seed=2, device="cpu"), tiny, False,
                     resume_state=saved["state"])
    strip = lambda h: [{k: v for k, v in r.items() if k != "time_s"} for r in h]  # noqa: E731
    assert strip(resumed.history_) == strip(full.history_)
    for p, q in zip(resumed.G_.parameters(), full.G_.parameters()):
        assert torch.equal(p, q)


def test_feature_norm_max_keeps_original_units(tiny, tmp_path):
    m = _fit(tiny, feature_norm="max")
    top = float(tiny.split("trainval")[0].max())
    assert m.feature_scale_ == pytest.approx(top)
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
    assert len(loaded._cache) >= 2  # the ZSL head and the GZSL head of the test evaluation
    X = ds.split("test_unseen")[0]
    E = ds.class_embeddings[ds.unseen_classes]
    assert np.array_equal(res.model.decision_function(X, E), loaded.decision_function(X, E))


def test_f_clswgan_without_its_own_preset_uses_five_critic_steps():
    ds = make_synthetic("synthetic-tiny", seed=0)
    assert CycleWGAN.default_config(ds, variant="f-clswgan").n_critic == 5
    assert CycleWGAN.default_config(ds).n_critic == 1
