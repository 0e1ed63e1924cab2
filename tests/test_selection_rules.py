"""Validation-stage rules: early stop on patience, schedules that follow the budget, result health warnings,
per-method selection criteria, preset semantic sources, and the training-length options of `zslkit train`."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest

from zslkit.cli import main
from zslkit.cli.train_cmd import format_metrics
from zslkit.data.synthetic import make_synthetic
from zslkit.experiment import RunSpec, build_config, preset_semantic
from zslkit.methods.cvc import CVCZSL, scaled_defaults
from zslkit.methods.eszsl import ESZSL
from zslkit.pipeline import run_protocol
from zslkit.protocol.health import health_warnings

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(ways=8, shots=2, hidden_dim=64, episodes=5, lr=1e-3, step_size=100)


@pytest.fixture(scope="module")
def tiny():
    return dataclasses.replace(make_synthetic("synthetic-tiny", 0), name="my-data")  # no preset: scaled defaults


def test_patience_stops_a_validation_fit_after_its_best_point(tiny):
    cfg = dataclasses.replace(CVCZSL.default_config(tiny), **SMALL, epochs=40, lr_grid=(), validation_patience=0.1)
    r = run_protocol(CVCZSL, tiny, config=cfg, seed=0, device="cpu", val_splits=3)
    splits = r.metrics["selection"]["validation_metrics"]["splits"]["count"]
    assert splits == 3  # synthetic-tiny's 24 seen classes take one split by the rule; three asked for
    reached = 0
    for s in range(splits):  # each split's fit stops on its own patience, never before split 1's last epoch
        rows = [row for row in r.history if row.get("stage") == "validation" and row.get("split") == s]
        last, best = rows[-1]["epoch"], max(rows, key=lambda row: row["gzsl_h"])
        assert last < 40, "patience never stopped the fit"
        assert last == max(best["epoch"] + 4, reached)  # 10 % of 40 epochs without a better point
        reached = reached or last
    means = [row for row in r.history if row.get("stage") == "validation" and row.get("split") == "mean"]
    assert r.metrics["selection"]["chosen"]["epochs"] == max(means, key=lambda row: row["gzsl_h"])["epoch"]
    one = run_protocol(CVCZSL, tiny, config=cfg, seed=0, device="cpu", val_splits=1)
    rows = [row for row in one.history if row.get("stage") == "validation"]
    assert all("split" not in row for row in rows)  # one split: the single view's rows, as before
    last, best = rows[-1]["epoch"], max(rows, key=lambda row: row["gzsl_h"])
    assert last == best["epoch"] + 4 and one.metrics["selection"]["chosen"]["epochs"] == best["epoch"]


def test_schedule_follows_a_changed_training_length(tiny):
    base = scaled_defaults(tiny)
    spec = RunSpec(method="cvc-zsl", overrides={"epochs": 3 * base.epochs})
    assert build_config(CVCZSL, tiny, spec).step_size == 3 * base.step_size
    spec = RunSpec(method="cvc-zsl", overrides={"epochs": 3 * base.epochs, "step_size": 7})
    assert build_config(CVCZSL, tiny, spec).step_size == 7  # an explicit step size is kept
    spec = RunSpec(method="cvc-zsl", overrides={"episodes": 10})
    assert build_config(CVCZSL, tiny, spec).step_size == base.step_size  # per-epoch schedule: same share
    trans = scaled_defaults(tiny, "transductive")
    spec = RunSpec(method="cvc-zsl", setting="transductive",
                   overrides={"epochs": 2 * trans.epochs, "inductive_epochs": trans.inductive_epochs // 2})
    cfg = build_config(CVCZSL, tiny, spec)
    assert cfg.trans_step_size == round(trans.trans_step_size * 2)
    assert cfg.step_size == max(1, round(trans.step_size / 2))


def test_default_budget_grows_with_the_class_count():
    few = scaled_defaults(make_synthetic("synthetic-tiny", 0))
    many = scaled_defaults(make_synthetic("synthetic-sun", 0))
    assert (few.ways, many.ways) == (24, 32)
    assert few.epochs * few.episodes == 3000 and many.epochs * many.episodes == 12000
    assert many.step_size == many.epochs // 3 and many.lr_grid == (1e-4, 1e-3)


def test_health_warnings():
    ok = health_warnings({"zsl_t1": 0.8, "gzsl_u": 0.5}, num_unseen=5, unseen_share=0.6)
    assert ok == []
    at_chance = health_warnings({"zsl_t1": 0.21, "gzsl_u": 0.3}, num_unseen=5, unseen_share=0.4)
    assert len(at_chance) == 1 and "chance" in at_chance[0]
    no_unseen = health_warnings({"zsl_t1": 0.8, "gzsl_u": 0.01}, num_unseen=5, unseen_share=0.01)
    assert len(no_unseen) == 1 and "seen classes" in no_unseen[0]
    text = format_metrics({"selection": {"mode": "validation", "description": "d", "criterion": "gzsl_h"},
                           "method": "m", "dataset": "d", "setting": "inductive", "seed": 0, "zsl_t1": 0.2,
                           "gzsl_u": 0.0, "gzsl_s": 0.9, "gzsl_h": 0.0, "warnings": no_unseen})
    assert "WARNING: the GZSL head assigns only 1.0%" in text


def test_a_run_at_chance_is_flagged(tiny):
    # class embeddings that say nothing: every class gets the same description
    blind = dataclasses.replace(tiny, class_embeddings=tiny.class_embeddings * 0 + 1)
    r = run_protocol(ESZSL, blind, config={"grid": (0.0,)}, seed=0, device="cpu")
    assert any("chance" in w for w in r.metrics["warnings"])


def test_method_default_criterion(tiny):
    r = run_protocol(ESZSL, tiny, config={"grid": (-1.0, 1.0)}, seed=0, device="cpu")
    assert r.metrics["selection"]["criterion"] == "gzsl_cs_h"
    r = run_protocol(ESZSL, tiny, config={"grid": (-1.0, 1.0)}, criterion="zsl_t1", seed=0, device="cpu")
    assert r.metrics["selection"]["criterion"] == "zsl_t1"


def test_reference_preset_semantic_for_awa2():
    awa2 = SimpleNamespace(name="AWA2", synthetic=False, semantic_source="att")
    ref = RunSpec(method="cvc-zsl", overrides={"variant": "reference"})
    assert preset_semantic(CVCZSL, awa2, ref) == "original_att"
    assert preset_semantic(CVCZSL, awa2, RunSpec(method="cvc-zsl")) is None  # no variant: the user's data
    assert preset_semantic(CVCZSL, awa2, dataclasses.replace(ref, semantic="att")) is None  # the user's choice
    awa1 = SimpleNamespace(name="AWA1", synthetic=False, semantic_source="att")
    assert preset_semantic(CVCZSL, awa1, ref) is None


def test_train_options_episodes_per_epoch_and_criterion(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--out", str(out), "--no-progress",
                 "--device", "cpu", "--episodes-per-epoch", "3", "--epochs", "2", "--criterion", "zsl_t1",
                 "--set", "hidden_dim=32", "--set", "lr_grid=1e-3", "--val-splits", "3"]) == 0
    cfg = json.loads((out / "config.json").read_text())["method_config"]
    assert cfg["episodes"] == 3 and cfg["lr_grid"] == [1e-3]
    m = json.loads((out / "metrics.json").read_text())
    assert m["selection"]["criterion"] == "zsl_t1" and "search_time_s" in m["selection"]["validation_metrics"]
    printed = capsys.readouterr().out
    assert "validation search:" in printed and "wall time: search" in printed
    assert "validation over 3 class splits: zsl_t1" in printed
    assert set(m["time_s"]) == {"search", "final_fit", "evaluation", "total"}
    code = main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(tmp_path / "e"),
                 "--episodes-per-epoch", "3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no setting" in err and "episodes" in err


def test_variant_of_a_method_without_variants_is_a_clean_usage_error(tmp_path, capsys):
    code = main(["train", "--method", "eszsl", "--variant", "x", "--dataset", "synthetic-tiny",
                 "--out", str(tmp_path / "v")])
    assert code == 2
    err = capsys.readouterr().err
    assert "eszsl has no variants" in err and "Traceback" not in err
