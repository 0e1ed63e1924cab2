"""CVC-ZSL (zslkit.methods.cvc): learning on synthetic data, GCE, determinism, resumability, persistence."""

from __future__ import annotations

import dataclasses
import logging
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zslkit.data.synthetic import make_synthetic
from zslkit.errors import ConfigError
from zslkit.methods import ZSLMethod, get_method
from zslkit.methods.cvc import CVCConfig, CVCZSL, generalized_cross_entropy, pseudo_label, scaled_defaults
from zslkit.pipeline import fit_on, run_protocol
from zslkit.presets import list_presets

# small but learnable: hidden 256 instead of 1600 keeps every fit to a second or two on a CPU
SMALL = dict(ways=12, shots=4, lr=3e-4, weight_decay=1e-4, step_size=10, epochs=8, episodes=60, hidden_dim=256,
             inductive_epochs=8, trans_ways=12, trans_shots=2, trans_lr=1e-4, trans_weight_decay=1e-5, refresh=2,
             finetune_episodes=60)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def easy():
    return make_synthetic("synthetic-tiny", 0, difficulty=0.5)


@pytest.fixture(scope="module")
def inductive_result(easy):
    return run_protocol(CVCZSL, easy, config=dict(SMALL), setting="inductive", selection="fixed", seed=0,
                        device="cpu")


def test_registered():
    assert get_method("cvc-zsl") is CVCZSL
    assert CVCZSL.settings == ("inductive", "transductive")


# ----- losses and pseudo labels -------------------------------------------------------------------


def test_gce_tends_to_cross_entropy_as_q_goes_to_zero():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g) * 3
    target = torch.randint(0, 7, (50,), generator=g)
    ce = F.cross_entropy(logits, target)
    gaps = [abs(float(generalized_cross_entropy(logits, target, q) - ce)) for q in (0.5, 0.1, 1e-2, 1e-4)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3 * float(ce)
    assert torch.allclose(generalized_cross_entropy(logits, target, 0.0), ce)
    # q = 1: the mean absolute error-like 1 - p_y
    p = torch.softmax(logits, 1).gather(1, target.view(-1, 1)).squeeze(1)
    assert torch.allclose(generalized_cross_entropy(logits, target, 1.0), (1 - p).mean(), atol=1e-6)


def test_gce_gradients_flow():
    logits = torch.randn(4, 3, requires_grad=True)
    generalized_cross_entropy(logits, torch.tensor([0, 1, 2, 0]), 0.5).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_pseudo_label_filter():
    scores = torch.tensor([[5.0, 1.0],    # |top1|/|top2| = 5 > 1.2: confident -> its argmax, 0
                           [3.0, 2.9],    # ambiguous, but the highest score of class 1 -> 1
                           [1.0, 1.05],   # ambiguous and nobody's top-1 -> dropped
                           [2.0, 2.1]])   # ambiguous and nobody's top-1 -> dropped
    assert pseudo_label(scores, ratio=1.2, topk=1).tolist() == [0, 1, -1, -1]
    assert pseudo_label(scores, ratio=1.2, topk=0).tolist() == [0, -1, -1, -1]
    # k = 2: sample 1 is among the top-2 of both classes and takes the one it scores higher (0)
    assert pseudo_label(scores, ratio=1.2, topk=2).tolist() == [0, 0, -1, 1]


# the filters by name (issue 14: the reference's trans_train.py has ratio, constant (topk) and top-third)
FILTER_SCORES = torch.tensor([[5.0, 1.0],    # confident (5 > 1.2): ratio keeps it; class 0's best
                              [3.0, 2.9],    # not confident; class 1's best, class 0's second
                              [1.0, 1.05],   # nobody's top 2
                              [2.0, 2.1],    # class 1's second
                              [0.5, 0.1]])   # confident, but nobody's top 2: only the ratio filter keeps it


def test_pseudo_filter_ratio_is_the_default_and_adds_confident_samples_to_the_top_k():
    assert pseudo_label(FILTER_SCORES, 1.2, 1, pseudo_filter="ratio").tolist() == [0, 1, -1, -1, 0]
    assert pseudo_label(FILTER_SCORES, 1.2, 1).tolist() == [0, 1, -1, -1, 0]
    assert CVCConfig().pseudo_filter == "ratio"


def test_pseudo_filter_topk_keeps_only_each_class_top_k():
    assert pseudo_label(FILTER_SCORES, 1.2, 1, pseudo_filter="topk").tolist() == [0, 1, -1, -1, -1]
    # k = 2: sample 1 is in the top 2 of both classes and takes the one it scores higher (0)
    assert pseudo_label(FILTER_SCORES, 1.2, 2, pseudo_filter="topk").tolist() == [0, 0, -1, 1, -1]
    assert pseudo_label(FILTER_SCORES, 99.0, 2, pseudo_filter="topk").tolist() == [0, 0, -1, 1, -1]  # no ratio
    assert pseudo_label(FILTER_SCORES, 1.2, 0, pseudo_filter="topk").tolist() == [-1] * 5


def test_pseudo_filter_top_third_is_global_by_the_raw_top_1_score():
    scores = torch.tensor([[4.0, 3.9],     # top-1 4.0 (not confident by ratio: 4.0 / 3.9 < 1.2)
                           [3.5, 0.1],     # 3.5
                           [0.3, 3.0],     # 3.0: the best of class 1, but the third best overall
                           [1.0, 0.1],
                           [-5.0, -6.0],   # large magnitudes, low scores
                           [0.5, 2.5]])
    # 6 samples -> the 2 with the highest top-1 score, both of class 0: class 1 gets none (not per class)
    assert pseudo_label(scores, 1.2, 5, pseudo_filter="top-third").tolist() == [0, 0, -1, -1, -1, -1]
    assert pseudo_label(scores[:5], 1.2, 5, pseudo_filter="top-third").tolist() == [0, -1, -1, -1, -1]  # 5 // 3
    assert pseudo_label(scores[:2], 1.2, 5, pseudo_filter="top-third").tolist() == [-1, -1]
    g = torch.Generator().manual_seed(1)
    many = torch.randn(300, 7, generator=g)
    labels = pseudo_label(many, 1.2, 5, pseudo_filter="top-third")
    kept = torch.nonzero(labels >= 0).flatten()
    assert kept.numel() == 100 and torch.equal(labels[kept], many[kept].argmax(1))
    best = many.max(1).values
    assert best[kept].min() > best[labels < 0].max()


@pytest.mark.parametrize("name", ["topk", "top-third"])
def test_transductive_fit_uses_the_named_filter(easy, name):
    cfg = dict(SMALL, epochs=1, inductive_epochs=2, topk_per_class=1, pseudo_filter=name)
    model = fit_on(CVCZSL(cfg, seed=0, device="cpu"), easy, True)
    n_unlabeled, n_unseen = easy.split("test_unseen")[0].shape[0], easy.unseen_classes.size
    if name == "top-third":
        assert model.pseudo_label_count_ == n_unlabeled // 3
    else:  # one best sample per class; a sample that is the best of two classes counts once
        assert 1 <= model.pseudo_label_count_ <= n_unseen
    assert model.history_[-1]["pseudo_labels"] == model.pseudo_label_count_


def test_pseudo_share_caps_the_pseudo_labelled_classes_of_an_episode():
    from zslkit.methods.cvc.episodes import EpisodeSampler
    from zslkit.methods.cvc.stages import mixed_episodes, pseudo_classes_per_episode

    assert pseudo_classes_per_episode(72, 32, 4, 4, 0.0) == 72  # no cap: the reference
    assert pseudo_classes_per_episode(72, 32, 4, 4, 0.5) == 32  # 128 seen samples, at most 128 pseudo-labelled
    assert pseudo_classes_per_episode(3, 7, 4, 4, 0.5) == 3  # a cap that does not bind changes nothing
    assert pseudo_classes_per_episode(72, 1, 1, 4, 0.5) == 1  # at least one class
    gen = torch.Generator().manual_seed(0)
    seen = EpisodeSampler(torch.arange(20) % 4, 4)
    labels = torch.arange(60) % 6  # 6 pseudo-labelled classes, sample j of class j % 6
    pool = EpisodeSampler(labels, 6)
    draw = mixed_episodes(seen, 2, 2, pool, torch.arange(60) + 100, torch.arange(6), 2, gen, per_episode=2, offset=4)
    idx, ui, targets = draw(50)
    assert idx.shape == (50, 4) and ui.shape == (50, 4) and targets.shape == (50, 4)
    assert torch.equal(targets, (ui - 100) % 6 + 4)  # each sample's target is its own class
    assert torch.equal(targets[:, 0], targets[:, 1]) and bool((targets[:, 0] != targets[:, 2]).all())
    assert set(targets.flatten().tolist()) == set(range(4, 10))  # every class gets its turn


def test_a_binding_pseudo_share_trains_and_changes_the_fit(easy):
    base = dict(SMALL, epochs=2, inductive_epochs=4)
    capped = fit_on(CVCZSL(dict(base, pseudo_share=0.2), seed=0, device="cpu"), easy, True)  # 6 of 24: 3 classes
    assert easy.unseen_classes.size > 3
    plain = fit_on(CVCZSL(base, seed=0, device="cpu"), easy, True)
    assert capped.history_[-1]["loss"] != plain.history_[-1]["loss"]
    chance = 1 / easy.unseen_classes.size
    from zslkit.protocol.evaluate import TestScores
    assert TestScores(capped, easy).metrics()["zsl_t1"] > 2 * chance


def test_pseudo_filter_names_and_an_empty_topk_are_config_errors(easy):
    with pytest.raises(ConfigError, match="pseudo_filter must be one of ratio, topk, top-third"):
        fit_on(CVCZSL(dict(SMALL, epochs=1, pseudo_filter="constant"), seed=0, device="cpu"), easy, True)
    with pytest.raises(ConfigError, match="topk_per_class is 0"):
        fit_on(CVCZSL(dict(SMALL, epochs=1, pseudo_filter="topk", topk_per_class=0), seed=0, device="cpu"), easy, True)
    with pytest.raises(ConfigError, match="pseudo_filter must be one of"):
        pseudo_label(FILTER_SCORES, pseudo_filter="constant")


# ----- learning ----------------------------------------------------------------------------------


def test_inductive_learns_well_above_chance(inductive_result, easy):
    m = inductive_result.metrics
    chance_zsl = 1 / easy.unseen_classes.size
    assert m["zsl_t1"] > 2.5 * chance_zsl
    assert m["gzsl_h"] > 4 / easy.num_classes
    assert m["gzsl_u"] > 0 and m["gzsl_s"] > 0.4


def test_transductive_at_least_as_good_as_inductive_on_clustered_unseen(easy, inductive_result):
    res = run_protocol(CVCZSL, easy, config=dict(SMALL), setting="transductive", selection="fixed", seed=0,
                       device="cpu")
    # same seed and inductive stage (SMALL: inductive_epochs == epochs), then self-training on the unseen
    assert res.metrics["transductive"] is True
    assert res.metrics["zsl_t1"] >= inductive_result.metrics["zsl_t1"] - 1e-9
    assert res.metrics["gzsl_h"] > 4 / easy.num_classes
    assert res.model.pseudo_label_count_ > 0


def test_same_seed_same_metrics(easy, inductive_result):
    again = run_protocol(CVCZSL, easy, config=dict(SMALL), setting="inductive", selection="fixed", seed=0,
                         device="cpu")
    keys = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")
    assert [again.metrics[k] for k in keys] == [inductive_result.metrics[k] for k in keys]
    other = run_protocol(CVCZSL, easy, config=dict(SMALL, epochs=2), setting="inductive", selection="fixed",
                         seed=1, device="cpu")
    assert other.metrics["zsl_t1"] != inductive_result.metrics["zsl_t1"]


def test_tf32_is_a_no_op_on_the_cpu(easy, inductive_result):
    tf32 = run_protocol(CVCZSL, easy, config=dict(SMALL, tf32=True), setting="inductive", selection="fixed", seed=0,
                        device="cpu")
    keys = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")
    assert [tf32.metrics[k] for k in keys] == [inductive_result.metrics[k] for k in keys]


def test_first_k_epochs_equal_a_k_epoch_run(easy):
    """Resumable by construction: validation selection retrains with epochs=best_epoch."""
    states = {}

    def monitor(epoch, model):
        states[epoch] = {k: v.clone() for k, v in model.state_dict()["generator"].items()}
        return None

    fit_on(CVCZSL(dict(SMALL, epochs=4, eval_every=2), seed=3, device="cpu"), easy, False, monitor)
    assert sorted(states) == [2, 4]
    short = fit_on(CVCZSL(dict(SMALL, epochs=2), seed=3, device="cpu"), easy, False)
    for k, v in short.state_dict()["generator"].items():
        assert torch.equal(v, states[2][k]), k


def test_validation_selection_runs_both_settings(easy):
    for setting in ("inductive", "transductive"):
        cfg = dict(SMALL, epochs=4, inductive_epochs=4, eval_every=2)
        res = run_protocol(CVCZSL, easy, config=cfg, setting=setting, selection="validation", seed=0, device="cpu")
        assert {row["epoch"] for row in res.history if row["stage"] != "validation"} <= {2, 4}
        # transductive: epoch 0 (the warm-up model, no self-training) is a validation point too
        assert {row["epoch"] for row in res.history if row["stage"] == "validation"} == (
            {0, 2, 4} if setting == "transductive" else {2, 4})
        assert res.config.epochs in ((0, 2, 4) if setting == "transductive" else (2, 4))
        assert 0 <= res.metrics["zsl_t1"] <= 1


def test_validation_chooses_no_self_training_when_it_hurts(easy):
    """A self-training rate that wrecks the model loses to epoch 0 on validation; the final model is then the
    warm-up model itself: the same ZSL predictions as an inductive fit of the chosen warm-up."""
    cfg = dict(SMALL, epochs=2, inductive_epochs=4, eval_every=2, trans_lr=0.5)
    res = run_protocol(CVCZSL, easy, config=cfg, setting="transductive", selection="validation", seed=0,
                       device="cpu")
    val = [r for r in res.history if r["stage"] == "validation" and r.get("split", "mean") == "mean"]
    assert [r["epoch"] for r in val] == [0, 2] and val[0]["gzsl_h"] > val[1]["gzsl_h"]
    assert res.config.epochs == 0
    ind = run_protocol(CVCZSL, easy, config=dict(SMALL, epochs=res.config.inductive_epochs, lr=res.config.lr),
                       setting="inductive", selection="fixed", seed=0, device="cpu")
    assert res.metrics["zsl_t1"] == pytest.approx(ind.metrics["zsl_t1"], abs=1e-9)


# ----- GZSL readings, persistence ----------------------------------------------------------------


def _predictions(model, ds):
    from zslkit.protocol.evaluate import seen_label_map

    classes = np.concatenate([ds.seen_classes, ds.unseen_classes])
    E = ds.class_embeddings
    Xu = ds.split("test_unseen")[0]
    return (model.decision_function(Xu, E[ds.unseen_classes]),
            model.decision_function(Xu, E[classes], seen_label_map(ds)[classes]))


@pytest.mark.parametrize("setting,mode", [("inductive", "generated"), ("inductive", "learned"),
                                          ("transductive", "learned")])
def test_save_load_gives_identical_predictions(easy, tmp_path, setting, mode):
    cfg = dict(SMALL, epochs=2, inductive_epochs=2, gzsl_seen_classifiers=mode)
    model = fit_on(CVCZSL(cfg, seed=0, device="cpu"), easy, setting == "transductive")
    path = model.save(tmp_path / "cvc.pt")
    loaded = ZSLMethod.load(path, device="cpu")
    assert isinstance(loaded, CVCZSL) and loaded.config_ == model.config_
    for a, b in zip(_predictions(model, easy), _predictions(loaded, easy)):
        assert np.array_equal(a, b)
    if mode == "learned":
        assert loaded.seen_rows_ is not None


def test_learned_seen_rows_change_only_the_seen_candidates(easy):
    gen = fit_on(CVCZSL(dict(SMALL, epochs=2), seed=0, device="cpu"), easy, False)
    lrn = fit_on(CVCZSL(dict(SMALL, epochs=2, gzsl_seen_classifiers="learned"), seed=0, device="cpu"), easy, False)
    zsl_g, gzsl_g = _predictions(gen, easy)
    zsl_l, gzsl_l = _predictions(lrn, easy)
    assert np.array_equal(zsl_g, zsl_l)  # the generator is the same: ZSL unchanged
    S = easy.seen_classes.size
    assert np.array_equal(gzsl_g[:, S:], gzsl_l[:, S:])  # unseen rows generated in both
    assert not np.array_equal(gzsl_g[:, :S], gzsl_l[:, :S])  # seen rows learned


def test_transductive_can_start_from_a_saved_inductive_model(easy, tmp_path):
    ind = fit_on(CVCZSL(dict(SMALL, epochs=2), seed=0, device="cpu"), easy, False)
    path = ind.save(tmp_path / "ind.pt")
    tr = CVCZSL(dict(SMALL, epochs=1, inductive_checkpoint=str(path)), seed=0, device="cpu")
    fit_on(tr, easy, True)
    assert tr.transductive_ and tr.seen_rows_ is not None


# ----- configuration -----------------------------------------------------------------------------


def test_impossible_episodes_raise(easy):
    with pytest.raises(ConfigError, match="distinct classes"):
        fit_on(CVCZSL(dict(SMALL, ways=100), seed=0, device="cpu"), easy, False)
    with pytest.raises(ConfigError, match="smallest training class"):
        fit_on(CVCZSL(dict(SMALL, shots=10_000), seed=0, device="cpu"), easy, False)
    with pytest.raises(ConfigError, match="gzsl_seen_classifiers"):
        fit_on(CVCZSL(dict(SMALL, gzsl_seen_classifiers="both"), seed=0, device="cpu"), easy, False)


def test_clip_mode_clips_with_a_warning(easy, caplog):
    with caplog.at_level(logging.WARNING, logger="zslkit.methods.cvc"):
        fit_on(CVCZSL(dict(SMALL, ways=100, epochs=1, episodes=5, episode_overflow="clip"), seed=0, device="cpu"),
               easy, False)
    assert "clipped to 24 x 4" in caplog.text


def test_presets_cite_sources_and_load():
    presets = list_presets("cvc-zsl")
    assert presets and all(p.source.strip() for p in presets)
    names = {(p.name.lower(), p.setting, p.variant) for p in presets}
    for ds in ("synthetic-awa1", "synthetic-awa2", "synthetic-cub", "synthetic-sun", "synthetic-apy", "synthetic-flo",
               "synthetic-cub-sent", "synthetic-tiny"):
        for setting in ("inductive", "transductive"):
            assert (ds, setting, None) in names, (ds, setting)
    for ds in ("awa1", "awa2", "cub", "sun", "apy", "flo"):  # real data: the scaled rules (no untuned entry) ...
        assert not any(n == ds and v is None for n, _, v in names), ds
    assert ("awa2", "inductive", "reference") in names  # ... and the reference protocol (AwA2: original_att)
    for p in presets:  # every entry builds a valid config
        CVCConfig(**{**dataclasses.asdict(CVCConfig()), **p.params})


def test_default_config_uses_presets_and_scales_otherwise(easy):
    tiny = CVCZSL.default_config(easy, "inductive")
    assert tiny.episodes * tiny.epochs <= 20_000
    ref = CVCZSL.default_config(easy, "inductive", variant="reference")
    assert (ref.epochs, ref.episodes, ref.ways, ref.shots, ref.lr) == (1000, 1000, 32, 4, 1e-5)
    awa1_ref = CVCZSL.default_config(type("D", (), {"name": "AWA1"})(), "transductive", variant="reference")
    assert (awa1_ref.trans_ways, awa1_ref.trans_shots, awa1_ref.trans_lr, awa1_ref.gce_q) == (16, 1, 1e-4, 0.5)
    renamed = dataclasses.replace(easy, name="my-own-data")
    cfg = CVCZSL.default_config(renamed, "inductive")
    assert cfg == scaled_defaults(renamed, "inductive")
    assert cfg.ways <= easy.seen_classes.size and cfg.episode_overflow == "clip"
    assert CVCZSL.search_space(cfg) == [{"lr": 1e-4}, {"lr": 1e-3}]  # the scaled defaults search the lr
    assert CVCZSL.search_space(dataclasses.replace(cfg, lr_grid=())) == [{}]
    assert CVCZSL.search_space(dataclasses.replace(cfg, lr_grid=(1e-4, 3e-4))) == [{"lr": 1e-4}, {"lr": 3e-4}]


def test_scaled_transductive_defaults_balance_the_pseudo_labels_and_keep_half_of_each_episode_seen(easy):
    """Data without a preset: each unseen class gets its own top n // (3 x unseen classes) pseudo labels (at
    least 5) and at most half of a self-training episode is pseudo-labelled; the presets keep the reference's."""
    renamed = dataclasses.replace(easy, name="my-own-data")
    cfg = CVCZSL.default_config(renamed, "transductive")
    n, k = easy.splits["test_unseen"].size, easy.unseen_classes.size
    assert cfg.pseudo_filter == "topk" and cfg.topk_per_class == max(5, n // (3 * k))
    assert cfg.pseudo_share == 0.5  # at least half of every self-training episode is labelled seen samples
    assert scaled_defaults(renamed, "inductive").pseudo_filter == "ratio"
    assert scaled_defaults(None, "transductive").topk_per_class == 5
    ref = CVCZSL.default_config(renamed, "transductive", variant="reference")
    assert (ref.pseudo_filter, ref.topk_per_class, ref.ratio_threshold, ref.pseudo_share) == ("ratio", 5, 1.2, 0.0)


def test_progress_bar_shows_validation_numbers(easy, capsys, monkeypatch):
    """The bar's text after each epoch (recorded where it is set: a redraw depends on tqdm's timing)."""
    import tqdm.auto

    seen, posts = [], []

    class Recording(tqdm.auto.tqdm):
        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            posts.append(dict(ordered_dict or {}, **kwargs))
            super().set_postfix(ordered_dict, refresh, **kwargs)

    def monitor(epoch, model):
        seen.append(epoch)
        return {"zsl_t1": 0.5, "gzsl_h": 0.25}

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)  # a terminal: the tqdm bar
    fit_on(CVCZSL(dict(SMALL, epochs=2, episodes=5), seed=0, device="cpu", progress=True), easy, False, monitor)
    assert seen == [1, 2]
    assert [(p["stage"], p["epoch"]) for p in posts] == [("inductive", 1), ("inductive", 2)]
    assert "val_zsl_t1" not in posts[0] and (posts[1]["val_zsl_t1"], posts[1]["val_gzsl_h"]) == ("0.500", "0.250")
    assert "cvc-zsl" in capsys.readouterr().err  # the bar was drawn
