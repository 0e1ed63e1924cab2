"""Recipes apart from estimators (issue 21): one recipe per method, the old hooks as delegations, named recipes
(``--variant default``, ``--preset NAME``), heads passed explicitly, the methods' own train options."""

from __future__ import annotations

import dataclasses
import json

import pytest

from zslkit.cli import main
from zslkit.data.synthetic import make_synthetic
from zslkit.errors import ConfigError
from zslkit.methods import get_method
from zslkit.methods.cvc import CVCZSL
from zslkit.methods.eszsl import ESZSL
from zslkit.methods.recipe import HOOKS, ClassHooks, Recipe
from zslkit.presets import find_preset


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", 0)


def test_every_method_has_its_own_recipe_and_the_old_hooks_delegate(tiny):
    for name, criterion in (("cvc-zsl", "gzsl_h"), ("cycle-wgan", "gzsl_h"), ("eszsl", "gzsl_cs_h")):
        cls = get_method(name)
        assert isinstance(cls.recipe, Recipe) and type(cls.recipe) is not Recipe  # a method-specific recipe
        assert cls.recipe.config_class is cls.config_class and cls.default_criterion == criterion
        cfg = cls.recipe.default_config(tiny)
        assert cls.default_config(tiny) == cfg
        assert cls.search_space(cfg, tiny) == cls.recipe.search_space(cfg, tiny)
        assert cls.head_space(cfg, tiny) == cls.recipe.head_space(cfg, tiny)
    assert "default" in CVCZSL.recipe.names() and "reference" in CVCZSL.recipe.names()


def test_a_subclass_overriding_an_old_hook_keeps_it_and_its_super_call(tiny):
    class Wider(ESZSL):
        name = "eszsl-wider-test"
        default_criterion = "zsl_t1"

        @classmethod
        def search_space(cls, config, dataset=None, setting="inductive"):
            return super().search_space(config, dataset, setting)[:2] + [{"gamma_exp": 9.0, "lambda_exp": 9.0}]

    assert isinstance(Wider.recipe, ClassHooks) and Wider.recipe.default_criterion == "zsl_t1"
    cfg = Wider.default_config(tiny)
    space = Wider.recipe.search_space(cfg, tiny)  # what the selection engine calls
    assert space == ESZSL.recipe.search_space(cfg, tiny)[:2] + [{"gamma_exp": 9.0, "lambda_exp": 9.0}]
    assert ESZSL.recipe.default_criterion == "gzsl_cs_h"  # the parent's recipe is untouched
    assert set(HOOKS) >= {"search_space", "head_space", "default_config", "follow_budget"}


def test_an_overridden_hook_runs_once_called_on_the_class_or_through_the_recipe_or_a_subclass(tiny):
    extra = {"gamma_exp": 9.0, "lambda_exp": 9.0}

    class Longer(ESZSL):
        name = "eszsl-longer-test"

        @classmethod
        def search_space(cls, config, dataset=None, setting="inductive"):
            return super().search_space(config, dataset, setting) + [extra]  # not idempotent: twice adds two

    class LongerStill(Longer):
        name = "eszsl-longer-still-test"

    cfg = Longer.default_config(tiny)
    base = ESZSL.recipe.search_space(cfg, tiny)
    assert Longer.search_space(cfg, tiny) == base + [extra]  # on the class: the old hook's call
    assert Longer.recipe.search_space(cfg, tiny) == base + [extra]  # what the selection engine calls
    assert LongerStill.search_space(cfg, tiny) == base + [extra]  # inherited: wrapped once, not twice
    assert LongerStill.recipe.search_space(cfg, tiny) == base + [extra]


def test_variant_default_is_no_variant_and_preset_names_an_entry(tiny):
    assert CVCZSL.recipe.default_config(tiny, variant="default") == CVCZSL.recipe.default_config(tiny)
    awa1 = find_preset("cvc-zsl", "synthetic-awa1", "inductive")
    cfg = CVCZSL.recipe.default_config(tiny, preset="synthetic-awa1")  # another dataset's entry on this data
    assert all(getattr(cfg, k) == pytest.approx(v) if isinstance(v, float) else getattr(cfg, k) == v
               for k, v in awa1.params.items() if not isinstance(v, list))
    assert cfg != CVCZSL.recipe.default_config(tiny)
    with pytest.raises(ConfigError, match="no preset 'nope'.*synthetic-awa1"):
        CVCZSL.recipe.default_config(tiny, preset="nope")
    with pytest.raises(ConfigError, match="no variant 'nope'"):
        CVCZSL.recipe.default_config(tiny, variant="nope")


def test_train_preset_option_and_run_file_replay(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--preset", "synthetic-awa1",
            "--selection", "fixed", "--epochs", "1", "--episodes-per-epoch", "2", "--set", "hidden_dim=8",
            "--no-progress", "--out", str(out)]
    assert main(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    awa1 = find_preset("cvc-zsl", "synthetic-awa1", "inductive")
    assert cfg["preset"] == "synthetic-awa1" and cfg["method_config"]["ways"] == awa1.params["ways"]
    assert "preset: synthetic-awa1" in (out / "run.yaml").read_text()
    capsys.readouterr()
    assert main(["train", "--config", str(out / "run.yaml"), "--out", str(tmp_path / "again"), "--no-progress"]) == 0
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["method_config"] == cfg["method_config"]
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["zsl_t1"] == \
        json.loads((out / "metrics.json").read_text())["zsl_t1"]
    assert main([*args[:5], "--preset", "nope", "--out", str(tmp_path / "bad")]) == 2
    assert "cvc-zsl has no preset 'nope'" in capsys.readouterr().err


def test_a_head_is_passed_explicitly_and_a_method_without_heads_refuses_one(tiny):
    model = ESZSL(seed=0, device="cpu").fit(tiny.features[tiny.splits["trainval"]][:60],
                                             _local(tiny)[:60], tiny.class_embeddings[tiny.seen_classes])
    E = tiny.class_embeddings[tiny.unseen_classes]
    assert model.build_classifier(E, head={}).decision_function(tiny.features[:3]).shape == (3, E.shape[0])
    with pytest.raises(ConfigError, match="eszsl has no head settings"):
        model.build_classifier(E, head={"mode": "merge"})


def _local(ds):
    lut = {int(c): i for i, c in enumerate(ds.seen_classes)}
    return [lut[int(v)] for v in ds.labels[ds.splits["trainval"]]]


def test_method_options_come_from_the_method(capsys):
    cyclewgan = get_method("cycle-wgan")
    assert {o.flag for o in cyclewgan.train_options} == {"--architecture", "--savepoints", "--checkpoint-metric",
                                                         "--reuse-stage", "--skip-stage"}
    assert CVCZSL.train_options == () and ESZSL.train_options == ()
    opt = next(o for o in cyclewgan.train_options if o.flag == "--savepoints")
    assert opt.to_overrides("[30,40,285]", None) == {"savepoints": "30,40,285"}  # the reference's spelling
    assert dataclasses.is_dataclass(opt)


def test_an_old_default_config_override_calling_super_uses_the_subclass_hooks(tiny):
    class Narrow(CVCZSL):
        name = "cvc-narrow-test"

        @classmethod
        def default_config(cls, dataset=None, setting="inductive", variant=None, preset=None):
            return dataclasses.replace(super().default_config(dataset, setting, variant, preset), hidden_dim=7)

        @classmethod
        def preset_names(cls, dataset):
            return ["synthetic-awa1"]  # every dataset takes that entry

    expected = dataclasses.replace(CVCZSL.recipe.default_config(tiny, preset="synthetic-awa1"), hidden_dim=7)
    assert Narrow.recipe.default_config(tiny) == expected == Narrow.default_config(tiny)
    assert CVCZSL.recipe.default_config(tiny) != expected
