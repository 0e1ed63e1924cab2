"""f-CLSWGAN parity (issue 18): the reference recipe resolves to the release's values, the generator diagnostics
and their health warning, and on a small real slice (digits-7seg from ../shared) a generator that learns."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from zslkit.data.synthetic import make_synthetic
from zslkit.methods.cyclewgan import CycleWGAN
from zslkit.methods.cyclewgan.diagnostics import near_chance
from zslkit.presets import find_preset
from zslkit.protocol.health import health_warnings

DIGITS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "digits-7seg"

# the f-CLSWGAN release (aaronyun/cycle_clsgan @a87a9da clswgan.py, classifier*.py, script/reproduce_gzsl_cub.sh)
PUBLISHED = dict(epochs=56, batch_size=64, hidden_g=4096, hidden_d=4096, noise_dim=0, leaky_slope=0.2, lr_g=1e-4,
                 lr_d=1e-4, betas_g=(0.5, 0.999), betas_d=(0.5, 0.999), n_critic=5, gp_lambda=10.0, gp_alpha="sample",
                 gan_init="normal", gan_batches="independent", g_ema=0.0, c_beta=0.01, train_fraction=1.0,
                 feature_norm="minmax",
                 pre_cls_epochs=50, pre_cls_lr=1e-3, pre_cls_batch=100, pre_cls_betas=(0.5, 0.999),
                 syn_per_unseen=300, syn_per_seen=0, mode="merge", cls_epochs=25, cls_lr=1e-3, cls_batch=300,
                 cls_betas=(0.5, 0.999), cls_weight_decay=0.0, cls_head="linear", cls_init="normal", mode_grid=(),
                 syn_grid=(), syn_seen_grid=(), cls_epochs_grid=(), cls_lr_grid=())


@pytest.mark.parametrize("name", [None, "my-data", "AWA1", "CUB"])
def test_reference_recipe_resolves_to_the_published_values_on_any_data(name):
    ds = None if name is None else dataclasses.replace(make_synthetic("synthetic-tiny", seed=0), name=name)
    cfg = CycleWGAN.default_config(ds, variant="f-clswgan-reference")
    got = {k: getattr(cfg, k) for k in PUBLISHED}
    assert got == PUBLISHED  # never a dataset's own cycle-wgan / f-clswgan entry (AWA1, CUB have both)
    assert cfg.variant == "f-clswgan-reference"
    model = CycleWGAN(cfg)
    model.config_ = cfg
    assert model.uses_cls and not model.uses_cycle  # it trains as f-clswgan
    assert CycleWGAN.head_space(cfg) == [{}]  # the release's one final classifier
    assert find_preset("cycle-wgan", "AWA1", "inductive", "f-clswgan-reference").name == "default"


def test_fidelity_health_warning():
    base = {"zsl_t1": 0.9}
    near = health_warnings({**base, "generator_seen_fidelity": 0.15, "generator_seen_fidelity_chance": 1 / 7},
                           num_unseen=3, unseen_share=0.5)
    assert len(near) == 1 and "fidelity" in near[0] and "15.0%" in near[0]
    good = health_warnings({**base, "generator_seen_fidelity": 0.8, "generator_seen_fidelity_chance": 1 / 7},
                           num_unseen=3, unseen_share=0.5)
    assert good == []
    assert health_warnings(base, num_unseen=3, unseen_share=0.5) == []  # methods without a generator
    assert near_chance({"seen_fidelity": 0.2, "seen_fidelity_chance": 1 / 7})
    assert not near_chance({"seen_fidelity": 0.5, "seen_fidelity_chance": 1 / 7})


@pytest.fixture(scope="module")
def digits():
    if not (DIGITS / "res101.mat").is_file():
        pytest.skip(f"{DIGITS} not present (../shared)")
    from zslkit.data.catalog import open_dataset

    ds = open_dataset(str(DIGITS))
    seen = ds.seen_classes
    lut = {c: i for i, c in enumerate(seen)}
    tv = ds.splits["trainval"]
    y = np.array([lut[c] for c in ds.labels[tv]])
    return ds.features[tv], y, ds.class_embeddings[seen]


SMALL = dict(variant="f-clswgan", epochs=8, hidden_g=1024, hidden_d=1024, lr_g=1e-3, lr_d=1e-3, n_critic=5,
             feature_norm="minmax", pre_cls_epochs=5, syn_per_unseen=30, cls_epochs=2, eval_every=4)


def test_generator_learns_its_seen_classes_on_real_digits(digits):
    X, y, E = digits
    model = CycleWGAN(seed=0, device="cpu", progress=False, **SMALL).fit(X, y, E)
    diag = model.generator_diagnostics()
    chance = 1.0 / E.shape[0]
    assert diag["seen_fidelity_chance"] == pytest.approx(chance)
    assert diag["seen_fidelity"] > 3 * chance  # measured 0.63 (chance 0.14); a 256-wide generator stays at 0.09
    assert 0.3 < diag["spread_ratio"] < 3.0
    rows = [r for r in model.history_ if "seen_fidelity" in r]
    assert [r["epoch"] for r in rows] == [4, 8]  # the monitored epochs
    assert rows[-1]["seen_fidelity"] == pytest.approx(diag["seen_fidelity"])
    assert model.result_extras()["generator_seen_fidelity"] == pytest.approx(diag["seen_fidelity"])


def test_narrow_generator_at_chance_is_flagged(digits):
    X, y, E = digits
    cfg = {**SMALL, "epochs": 4, "hidden_g": 128, "hidden_d": 128, "lr_g": 1e-4, "lr_d": 1e-4, "n_critic": 1}
    model = CycleWGAN(seed=0, device="cpu", progress=False, **cfg).fit(X, y, E)
    diag = model.generator_diagnostics()
    assert near_chance(diag)
    warns = health_warnings({"zsl_t1": 0.9, **model.result_extras()}, num_unseen=3, unseen_share=0.5)
    assert any("fidelity" in w for w in warns)


def test_diagnostics_leave_the_gan_unchanged():
    """The diagnostics draw their own noise: diagnosing every epoch or every third gives the same GAN."""
    ds = make_synthetic("synthetic-tiny", seed=0, difficulty=0.2)
    tv = ds.splits["trainval"]
    seen = ds.seen_classes
    lut = {c: i for i, c in enumerate(seen)}
    X, y, E = ds.features[tv], np.array([lut[c] for c in ds.labels[tv]]), ds.class_embeddings[seen]
    cfg = dict(epochs=3, hidden_g=32, hidden_d=32, batch_size=64, regressor_epochs=2, syn_per_unseen=10,
               cls_epochs=1)
    a = CycleWGAN(seed=0, device="cpu", progress=False, eval_every=1, **cfg).fit(X, y, E)
    b = CycleWGAN(seed=0, device="cpu", progress=False, eval_every=3, **cfg).fit(X, y, E)
    assert [r["loss"] for r in a.history_] == [r["loss"] for r in b.history_]
    assert sum("seen_fidelity" in r for r in a.history_) == 3 and sum("seen_fidelity" in r for r in b.history_) == 1
    assert a.generator_diagnostics() == b.generator_diagnostics()


def test_diagnostics_reach_validation_rows_and_metrics():
    from zslkit.pipeline import run_protocol

    ds = make_synthetic("synthetic-tiny", seed=0, difficulty=0.2)
    cfg = CycleWGAN.config_class(variant="f-clswgan", epochs=2, eval_every=1, hidden_g=32, hidden_d=32,
                                 pre_cls_epochs=1, syn_per_unseen=10, cls_epochs=1)
    res = run_protocol(CycleWGAN, ds, config=cfg, selection="validation", seed=0, progress=False)
    # the rows of each validation fit (not the means over several validation splits, where those are made)
    rows = [r for r in res.history if r.get("stage") == "validation" and r.get("split") != "mean"]
    assert rows and all(0.0 <= r["seen_fidelity"] <= 1.0 and r["spread_ratio"] > 0 for r in rows)
    assert res.metrics["generator_seen_fidelity_chance"] == pytest.approx(1.0 / ds.seen_classes.size)
    assert 0.0 <= res.metrics["generator_seen_fidelity"] <= 1.0


def test_validation_class_fidelity_on_the_training_split_is_the_seen_fidelity(digits):
    """The same nearest-mean rule, rows and noise: class_fidelity over trainval equals seen_fidelity; over the
    unseen classes its chance level is 1 / 3."""
    from zslkit.data.catalog import open_dataset

    X, y, E = digits
    model = CycleWGAN(seed=0, device="cpu", progress=False, **{**SMALL, "epochs": 2, "eval_every": 2}).fit(X, y, E)
    ds = open_dataset(str(DIGITS))
    same = model.class_fidelity(ds, "trainval")
    assert same["val_fidelity"] == pytest.approx(model.generator_diagnostics()["seen_fidelity"])
    assert same["val_fidelity_chance"] == pytest.approx(1 / 7)
    unseen = model.monitor_extras(ds)
    assert unseen["val_fidelity_chance"] == pytest.approx(1 / 3) and 0.0 <= unseen["val_fidelity"] <= 1.0
    assert unseen["seen_fidelity"] == pytest.approx(model.history_[-1]["seen_fidelity"])
    assert "val_fidelity" not in model.monitor_extras()  # without a view: the history row's numbers only


def test_independent_batches_as_the_release_draws_them():
    import torch

    from zslkit.methods.cyclewgan.gan import epoch_batches

    g = torch.Generator().manual_seed(0)
    perm = epoch_batches(100, 64, 5, g, "cpu")
    ind = epoch_batches(100, 64, 5, g, "cpu", "independent")
    assert perm.shape == (1, 5, 64) and ind.shape == (2, 5, 64)  # floor(100 / 64) vs ceil(100 / 64) steps
    assert all(len(set(b.tolist())) == 64 for b in ind.view(-1, 64))  # no repeat inside a batch
    assert len(set(perm.view(-1).tolist()[:100])) == 100  # a permutation covers every row once


def test_linear_head_inits():
    import torch

    from zslkit.methods.cyclewgan.softmax import train_softmax

    X, y = torch.rand(40, 400), torch.arange(40) % 4
    normal = train_softmax(X, y, 4, epochs=0, lr=1e-3, batch_size=8, init="normal",
                           generator=torch.Generator().manual_seed(0))
    uniform = train_softmax(X, y, 4, epochs=0, lr=1e-3, batch_size=8, generator=torch.Generator().manual_seed(0))
    assert float(normal.weight.std()) == pytest.approx(0.02, rel=0.1) and float(normal.bias.abs().max()) == 0.0
    assert float(uniform.weight.abs().max()) <= 1 / 400 ** 0.5  # torch's default range, U(-1/sqrt(d), 1/sqrt(d))
    assert float(uniform.weight.std()) == pytest.approx(1 / (3 * 400) ** 0.5, rel=0.1)


def test_progress_and_plot_show_the_generator_diagnostics(capsys, tmp_path):
    from matplotlib import pyplot as plt

    from zslkit.reporting.plots import _plot_diagnostics

    ds = make_synthetic("synthetic-tiny", seed=0, difficulty=0.2)
    tv, seen = ds.splits["trainval"], ds.seen_classes
    lut = {c: i for i, c in enumerate(seen)}
    X, y, E = ds.features[tv], np.array([lut[c] for c in ds.labels[tv]]), ds.class_embeddings[seen]
    model = CycleWGAN(seed=0, device="cpu", progress=True, epochs=2, eval_every=1, hidden_g=32, hidden_d=32,
                      regressor_epochs=1, syn_per_unseen=10, cls_epochs=1).fit(X, y, E)
    err = capsys.readouterr().err  # plain progress lines (not a terminal)
    fid = model.history_[-1]["seen_fidelity"]
    assert f"fidelity {fid:.3f}" in err and "spread" in err
    fig, ax = plt.subplots()
    _plot_diagnostics(ax, model.history_)
    twin = [a for a in fig.axes if a is not ax]
    assert len(twin) == 1 and len(twin[0].lines) == 2  # seen-class fidelity and spread ratio
    assert list(twin[0].lines[0].get_ydata()) == [r["seen_fidelity"] for r in model.history_]
    plt.close(fig)
