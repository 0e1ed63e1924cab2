"""The selection engine (zslkit.protocol.search / criteria): one comparison rule, one criterion resolution, heads
scored without changing the model's config, one rebuild path, and the refactor check's comparison."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from zslkit.data.synthetic import make_synthetic
from zslkit.errors import ConfigError
from zslkit.experiment import RunSpec, recipe_criterion
from zslkit.methods import ZSLMethod
from zslkit.methods.eszsl import ESZSL
from zslkit.pipeline import rebuild, run_protocol, select_on_validation
from zslkit.protocol.criteria import CRITERIA, better, not_worse, resolve_criterion
from zslkit.protocol.search import best_row
from zslkit.protocol.selection import validation_view

ROOT = Path(__file__).resolve().parents[1]
GRID = dict(grid=(-1.0, 1.0), lambda_min_exp=-3.0)  # 4 ESZSL candidates


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", 0)


def test_one_comparison_rule_ties_keep_the_earlier_point():
    assert better(0.5, None) and better(0.5, 0.4) and not better(0.5, 0.5) and not better(0.5 + 1e-13, 0.5)
    assert not_worse(0.5 - 1e-13, 0.5) and not not_worse(0.49, 0.5)
    rows = [{"candidate": 0, "epoch": e, "gzsl_h": v} for e, v in enumerate([0.2, 0.5, 0.5 + 1e-13, 0.1])]
    assert best_row(rows, "gzsl_h")["epoch"] == 1


def test_the_criterion_is_resolved_in_one_place():
    assert CRITERIA == ("gzsl_h", "zsl_t1", "gzsl_cs_h")
    assert resolve_criterion(ESZSL) == "gzsl_cs_h"  # the method's default
    assert resolve_criterion(ESZSL, "zsl_t1") == "zsl_t1"

    with pytest.raises(ConfigError, match="unknown selection criterion 'acc'"):
        resolve_criterion(ESZSL, "acc")


def test_what_a_config_implies_is_the_recipes_criterion_hook():
    class Recipe:  # what a recipe may say a config implies (cycle-WGAN: its checkpoint metric)
        @staticmethod
        def criterion(config, selection, criterion):
            return criterion or config["metric"] or None

    WithRecipe = SimpleNamespace(recipe=Recipe(), default_criterion="gzsl_cs_h")  # what is read of a method
    spec = RunSpec(method="eszsl", dataset="synthetic-tiny", selection="validation")
    assert recipe_criterion(WithRecipe, spec, {"metric": "zsl_t1"}).criterion == "zsl_t1"
    given = dataclasses.replace(spec, criterion="gzsl_h")
    assert recipe_criterion(WithRecipe, given, {"metric": "zsl_t1"}) is given  # unchanged: the same spec
    assert recipe_criterion(WithRecipe, spec, {"metric": ""}).criterion is None  # the default comes later:
    assert resolve_criterion(WithRecipe, None) == "gzsl_cs_h"


class _Heads(ESZSL):
    """ESZSL with a two-entry head space whose build_classifier takes the head explicitly and records the calls."""

    calls: list = []

    @classmethod
    def head_space(cls, config, dataset=None, setting="inductive"):
        return [{}, {"lambda_min_exp": -2.0}]  # a field no classifier reads: the scores stay the same

    def build_classifier(self, candidate_embeddings, seen_labels=None, *, head=None):
        self.calls.append((head, id(self.config_), self.config_.lambda_min_exp))
        return super().build_classifier(candidate_embeddings, seen_labels)


def test_heads_are_passed_explicitly_not_through_the_config(tiny):
    _Heads.calls = []
    history: list[dict] = []
    select_on_validation(_Heads, tiny, _Heads.config_class(**GRID), history=history)
    assert len(history) == 4 * 2 and [r["overrides"].get("lambda_min_exp") for r in history[:2]] == [None, -2.0]
    heads = [c[0] for c in _Heads.calls]
    assert heads.count({"lambda_min_exp": -2.0}) == 4 * 2  # ZSL and GZSL classifier of every point
    assert {c[2] for c in _Heads.calls} == {-3.0}  # the model's config never held the head's value
    assert len({c[1] for c in _Heads.calls}) == 4  # one config object per fitted candidate, never replaced


def test_validation_and_oracle_rows_come_from_one_search(tiny):
    val = run_protocol(ESZSL, tiny, config=GRID, selection="validation", device="cpu")
    assert [r["stage"] for r in val.history] == ["validation"] * 4
    assert val.metrics["selection"]["chosen"] == best_row(val.history, "gzsl_cs_h")["overrides"]
    oracle = run_protocol(ESZSL, tiny, config=GRID, selection="oracle", device="cpu")
    assert len(oracle.history) == 4 and not any("stage" in r for r in oracle.history)  # the oracle's row format
    best = best_row(oracle.history, "gzsl_cs_h")
    assert oracle.metrics["selection"]["chosen"] == best["overrides"]
    assert oracle.metrics["gzsl_cs_h"] == pytest.approx(best["gzsl_cs_h"])  # the kept point, scored on test again


def test_rebuild_is_the_checkpoint_restore(tiny):
    res = run_protocol(ESZSL, tiny, config=GRID, selection="fixed", device="cpu")
    again = rebuild(ESZSL(res.config, device="cpu"), tiny, tiny, res.model.state_dict())
    loaded = ZSLMethod.from_checkpoint(res.model.checkpoint(), device="cpu")
    E = tiny.class_embeddings[tiny.unseen_classes]
    X = tiny.split("test_unseen")[0]
    assert np.array_equal(again.decision_function(X, E), loaded.decision_function(X, E))
    assert (again.num_train_classes_, again.feature_dim_) == (loaded.num_train_classes_, loaded.feature_dim_)
    with pytest.raises(ConfigError, match="no evaluation point to keep"):
        rebuild(ESZSL(res.config), tiny, validation_view(tiny), None)


def _check_module():
    spec = importlib.util.spec_from_file_location("refactor_check", ROOT / "benchmarks" / "refactor_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refactor_check_compares_every_metric_exactly(tmp_path, capsys):
    check = _check_module()
    run = {"metrics": {"zsl_t1": 0.5, "gzsl_h": 0.25, "selection": {"chosen": {"epochs": 3}}}, "history": [{"a": 1}]}
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    before.write_text(json.dumps({"runs": {"x": run}}))
    after.write_text(json.dumps({"runs": {"x": run}}))
    assert check.compare(str(before), str(after)) == 0
    assert "ALL IDENTICAL" in capsys.readouterr().out
    changed = json.loads(json.dumps(run))
    changed["metrics"]["selection"]["chosen"]["epochs"] = 4
    changed["history"][0]["a"] = 1.0000000001
    after.write_text(json.dumps({"runs": {"x": changed}}))
    assert check.compare(str(before), str(after)) == 1
    out = capsys.readouterr().out
    assert "/metrics/selection/chosen/epochs: 3 -> 4" in out and "/history[0]/a" in out and "DIFFERENCES" in out
    assert check._untimed({"time_s": 1, "a": [{"wall_time_s": 2, "b": 3}]}) == {"a": [{"b": 3}]}
