"""benchmarks/time_to_accuracy.py, profile_cvc.py --data and bench_denormals.py: both sides run, the JSON holds what the README cites.

Tiny budgets on synthetic-tiny; no timing asserts (speed is measured in benchmarks/, never in tests)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import _common and bench_cvc as top-level modules


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tta = _load("time_to_accuracy")
TINY = ["--data", "synthetic-tiny", "--epochs", "2", "--episodes", "4", "--ways", "40", "--shots", "2"]


def test_both_sides_run_and_the_ratio_is_their_wall_times(tmp_path, capsys):
    out = tmp_path / "r.json"
    tta.main(TINY + ["--set", "epochs=2", "episodes=3", "lr_grid=0.001", "--out", str(out),
                     "--run-dir", str(tmp_path / "run")])
    r = json.loads(out.read_text())
    ours, ref = r["zslkit"], r["reference_recipe"]
    assert r["synthetic"] is True and r["threads"] == 1 and r["seed"] == 0
    assert r["time_ratio"] == pytest.approx(ours["wall_s"] / ref["wall_s"])
    # the plain loop's episode is clipped to the data: 24 seen classes (40 ways asked), 2 shots as asked
    assert (ref["ways"], ref["shots"], ref["epochs"], ref["episodes"]) == (24, 2, 2, 4)
    assert ours["overrides"] == {"epochs": "2", "episodes": "3", "lr_grid": "0.001"}
    assert 1 <= ours["chosen"]["epochs"] <= 2 and ours["final_model"] == "retrained on trainval"
    for side in (ours, ref):
        assert all(0.0 <= side[k] <= 1.0 for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"))
    # one validation candidate (lr_grid has one rate), a point per epoch until the end or the patience
    (key, points), = ours["timeline"].items()
    assert key.startswith("validation/c0") and [p[0] for p in points] == list(range(1, len(points) + 1))
    assert set(ours["time_s"]) == {"search", "final_fit", "evaluation", "total"}
    assert (tmp_path / "run" / "metrics.json").is_file()
    printed = capsys.readouterr().out
    assert "time ratio (zslkit / reference recipe)" in printed and "SYNTHETIC" in printed


def test_one_side_only_has_no_ratio(tmp_path):
    out = tmp_path / "r.json"
    tta.main(TINY + ["--only", "reference", "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["zslkit"] is None and r["time_ratio"] is None and r["reference_recipe"]["wall_s"] > 0


def test_a_set_without_a_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        tta.main(TINY + ["--set", "epochs"])
    assert e.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_profile_of_the_protocol_parts(tmp_path):
    timeline = tmp_path / "t.json"
    timeline.write_text(json.dumps({"zslkit": {"wall_s": 9.0, "time_s": {"search": 5.0}, "chosen": {"epochs": 2},
                                               "timeline": {"validation/c0 {}": [[1, 1.0, 0.5, 0.4],
                                                                                 [2, 2.0, 0.6, 0.45]]}}}))
    out = tmp_path / "p.json"
    _load("profile_cvc").main(["--data", "synthetic-tiny", "--epochs", "1", "--threads", "1", "--timeline",
                               str(timeline), "--out", str(out)])
    p = json.loads(out.read_text())
    assert p["validation_view"]["epochs_timed"] == 1 and p["validation_point_s"] > 0
    cand = p["run"]["candidates"]["validation/c0 {}"]
    assert cand["epochs"] == 2 and cand["best_validation_h"] == 0.45 and p["run"]["final_fit_epochs"] == 2


def test_bench_denormals_runs_both_ways_and_restores_the_setting(tmp_path, capsys):
    from zslkit.runtime import flushing_denormals

    bench = _load("bench_denormals")
    out = tmp_path / "d.json"
    bench.main(["--data", "synthetic-tiny", "--epochs", "3", "--episodes", "2", "--step-size", "2", "--out", str(out)])
    r = json.loads(out.read_text())
    flushed, plain = r["runs"]
    assert (flushed["flush"], plain["flush"]) == (True, False) and r["synthetic"] is True
    assert len(flushed["epoch_s"]) == len(plain["epoch_s"]) == 3
    assert (flushed["zsl_t1"], flushed["gzsl_h"]) == (plain["zsl_t1"], plain["gzsl_h"])  # tiny data: no subnormals
    assert not flushing_denormals()  # the unflushed run's patch and the fit's context are both undone
    assert "same T1 and H: True" in capsys.readouterr().out
