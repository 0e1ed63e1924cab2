"""benchmarks/real_suite.py: README reference tables, the comparison order, fold folders, and one real run."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
spec = importlib.util.spec_from_file_location("real_suite", ROOT / "benchmarks" / "real_suite.py")
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)

README = """# a set

Some text | with a bar.

## The reference codes on these folds

Run with the authors' code:

| system (settings) | selection | fold 0 | mean |
|---|---|---|---|
| cvcZSL inductive, lr 1e-3 | best **test** H epoch | T1 .491 H .504 | **T1 0.558, H 0.514** |
| ESZSL, tuned on test | oracle | T1 .52 |

| a second | table |
|---|---|
| not | read |

## Another section

| x | y |
|---|---|
| 1 | 2 |
"""


def test_reference_table_rows_keep_their_text_and_columns():
    rows = suite.parse_reference_table(README)
    assert [r["text"] for r in rows] == [
        "| cvcZSL inductive, lr 1e-3 | best **test** H epoch | T1 .491 H .504 | **T1 0.558, H 0.514** |",
        "| ESZSL, tuned on test | oracle | T1 .52 |"]
    assert rows[0]["cells"]["mean"] == "**T1 0.558, H 0.514**"
    assert rows[1]["cells"]["selection"] == "oracle" and rows[1]["cells"]["mean"] == ""  # short row padded


def test_reference_table_absent():
    assert suite.parse_reference_table("# x\n\n| a | b |\n|---|---|\n| 1 | 2 |\n") == []


def _row(key, dataset, t1, h, u=0.5, s=0.5, method=None):
    return {"key": key, "dataset": dataset, "zsl_t1": t1, "gzsl_u": u, "gzsl_s": s, "gzsl_h": h,
            "method": method or key, "setting": "inductive"}


def test_comparison_puts_what_got_worse_first():
    before = {"rows": [_row("a", "d1", 0.5, 0.5), _row("b", "d1", 0.5, 0.5), _row("c", "d2", 0.5, 0.5),
                       _row("gone", "d1", 0.5, 0.5)]}
    after = [_row("a", "d1", 0.6, 0.55), _row("b", "d1", 0.5, 0.3), _row("c", "d2", 0.45, 0.5),
             _row("new", "d1", 0.1, 0.1)]
    changes = suite.compare(after, before)
    assert [c["key"] for c in changes] == ["b", "c", "a"]  # H -0.2, T1 -0.05, better; unmatched rows left out
    assert changes[0]["delta"]["gzsl_h"] == pytest.approx(-0.2) and changes[2]["worst"] == pytest.approx(0.05)


def test_comparison_counts_calibrated_h_and_not_a_u_s_trade():
    old, new = _row("a", "d", 0.5, 0.5, u=0.4, s=0.6), _row("a", "d", 0.5, 0.5, u=0.6, s=0.4)
    old["gzsl_cs_h"], new["gzsl_cs_h"] = 0.5, 0.45
    (change,) = suite.compare([new], {"rows": [old]})
    assert change["worst"] == pytest.approx(-0.05)  # calibrated H fell; S -0.2 alone is a trade, not "worse"
    del new["gzsl_cs_h"]
    (change,) = suite.compare([new], {"rows": [old]})
    assert change["worst"] == pytest.approx(0.0) and "gzsl_cs_h" not in change["delta"]


def test_comparison_falls_back_to_the_method_when_extra_options_differ():
    before = {"rows": [_row("m inductive [--set x=1]", "d", 0.5, 0.5, method="m")]}
    (change,) = suite.compare([_row("m inductive", "d", 0.4, 0.5, method="m")], before)
    assert change["against"] == "m inductive [--set x=1]" and change["delta"]["zsl_t1"] == pytest.approx(-0.1)
    before["rows"].append(_row("m inductive [--set x=2]", "d", 0.5, 0.5, method="m"))
    assert suite.compare([_row("m inductive", "d", 0.4, 0.5, method="m")], before) == []  # ambiguous: none


def test_aggregate_mean_std_and_failures():
    runs = [{"key": "k", "method": "m", "setting": "inductive", "extra": "", "dataset": "d", "fold": f, "ok": True,
             "zsl_t1": t, "gzsl_u": 0.1, "gzsl_s": 0.9, "gzsl_h": 0.2, "gzsl_cs_h": 0.3, "wall_s": 2.0, "chosen": {}}
            for f, t in ((0, 0.4), (1, 0.6))]
    runs.append({"key": "k", "method": "m", "setting": "inductive", "extra": "", "dataset": "d", "fold": 2,
                 "ok": False, "error": "boom", "wall_s": 1.0})
    (row,) = suite.aggregate(runs)
    assert row["zsl_t1"] == pytest.approx(0.5) and row["zsl_t1_std"] == pytest.approx(0.1414, abs=1e-4)
    assert row["failed"] == [{"fold": 2, "error": "boom"}] and row["wall_s"] == 4.0
    assert "FAILED 2" in suite.markdown({"finished": "t", "extra": "", "seed": 0, "commit": "c", "dirty": False,
                                         "rows": [row], "references": {}})


def test_reference_notes_are_the_for_scale_paragraphs():
    text = ("# x\n\nFor scale: ESZSL on fold 0\nreaches T1 0.12.\n\nOther text.\n\n  It is hard. For scale,\n"
            "  too.\n")
    assert suite.parse_reference_notes(text) == ["For scale: ESZSL on fold 0 reaches T1 0.12.", "For scale, too."]
    assert suite.parse_reference_notes(README) == []


def test_row_specs():
    assert suite.parse_row("cvc-zsl transductive --variant reference") == (
        "cvc-zsl", "transductive", ["--variant", "reference"])
    assert suite.parse_row("cycle-wgan --variant f-clswgan") == ("cycle-wgan", "inductive", ["--variant", "f-clswgan"])
    assert suite.parse_row("eszsl") == ("eszsl", "inductive", [])
    for bad in ("", "--variant reference", "cvc-zsl --set 'a"):
        with pytest.raises(suite.UsageError, match="--row"):
            suite.parse_row(bad)


def _fake_data(root):
    for name in ("d1", "d2"):
        (root / name / "folds").mkdir(parents=True)
        (root / name / "README.md").write_text(f"# {name}\n\nFor scale: {name} note.\n")
        (root / name / "att_splits.mat").write_text("0")
        (root / name / "res101.mat").write_text("x")
        (root / name / "folds" / "fold1_att_splits.mat").write_text("1")
    return root


def _fake_run(job):
    """A finished run without training: T1 from the fold, H from whether the row has extra options."""
    return {**job, "ok": True, "wall_s": 1.0, "returncode": 0, "zsl_t1": 0.5 + 0.1 * job["fold"], "gzsl_u": 0.3,
            "gzsl_s": 0.7, "gzsl_h": 0.4 if job["extra"] else 0.42, "gzsl_cs_h": 0.5, "chosen": {}, "selection":
            "validation", "criterion": "gzsl_h", "warnings": []}


def test_rows_extra_seed_cache_and_commands(tmp_path, monkeypatch):
    data, seen = _fake_data(tmp_path / "data"), []
    monkeypatch.setattr(suite, "run_one", lambda job: seen.append(job) or _fake_run(job))
    out = tmp_path / "o"
    code = suite.main(["--data-dir", str(data), "--out", str(out), "--row", "cvc-zsl", "--row",
                       "cvc-zsl transductive --variant reference", "--extra=--val-splits 1", "--seed", "3",
                       "--cache-dir", str(tmp_path / "cache"), "--datasets", "d1", "--workers", "2"])
    assert code == 0 and len(seen) == 4  # 2 rows x 2 folds of d1
    keys = sorted({j["key"] for j in seen})
    assert keys == ["cvc-zsl inductive [--val-splits 1]", "cvc-zsl transductive [--variant reference --val-splits 1]"]
    cmd = next(j["command"] for j in seen if j["setting"] == "transductive" and j["fold"] == 1)
    assert cmd[cmd.index("--seed") + 1] == "3" and cmd[cmd.index("--setting") + 1] == "transductive"
    assert cmd[-4:] == ["--variant", "reference", "--val-splits", "1"]  # the row's options, then --extra
    assert cmd[cmd.index("--data-root") + 1] == str(tmp_path / "cache" / "d1" / "fold1")
    report = json.loads((out / "suite.json").read_text())
    assert report["notes"] == {"d1": ["For scale: d1 note."]} and "d1 note" in (out / "suite.md").read_text()
    (row, _) = report["rows"]
    assert row["zsl_t1"] == pytest.approx(0.55) and row["commit"] == report["commit"] and row["seed"] == 3
    seen.clear()
    assert suite.main(["--data-dir", str(data), "--out", str(out), "--row", "eszsl", "--folds", "1"]) == 0
    assert sorted((j["dataset"], j["fold"]) for j in seen) == [("d1", 1), ("d2", 1)]


def test_fold_choice_errors(tmp_path, capsys):
    data = _fake_data(tmp_path / "data")
    assert suite.main(["--data-dir", str(data), "--out", str(tmp_path / "o"), "--folds", "0,5"]) == 2
    assert "d1 has folds [0, 1], not [5]" in capsys.readouterr().err
    assert suite.main(["--data-dir", str(data), "--out", str(tmp_path / "o"), "--folds", "x"]) == 2
    assert "comma-separated integers" in capsys.readouterr().err
    assert suite.main(["--data-dir", str(data), "--out", str(tmp_path / "o"), "--settings", "both"]) == 2
    assert "choose inductive and/or transductive" in capsys.readouterr().err


def test_settings_product_quick_and_auto_compare_then_merge(tmp_path, monkeypatch, capsys):
    data, seen = _fake_data(tmp_path / "data"), []
    monkeypatch.setattr(suite, "run_one", lambda job: seen.append(job) or _fake_run(job))
    rec = tmp_path / "rec"
    base = ["--data-dir", str(data), "--out", str(tmp_path / "o"), "--results", str(rec), "--quick"]
    assert suite.main(base + ["--methods", "eszsl,cvc-zsl", "--settings", "inductive"]) == 0
    assert len(seen) == 8 and all("--quick" not in j["command"] for j in seen)
    assert all(j["command"][-len(suite.QUICK[j["method"]]):] == suite.QUICK[j["method"]] for j in seen)
    first = json.loads(rec.with_suffix(".json").read_text())
    assert "changes" not in first  # nothing recorded before
    assert first["rows"][0]["quick"] is True and "not numbers" in rec.with_suffix(".md").read_text()
    # again, one dataset, with an option that lowers H: compared with the record automatically, worse first
    assert suite.main(base + ["--methods", "eszsl", "--datasets", "d2", "--extra=--set x=1", "--merge"]) == 0
    printed = capsys.readouterr().out
    assert f"against {rec}.json: worse than before" in printed and "H -0.020" in printed
    second = json.loads(rec.with_suffix(".json").read_text())
    assert second["compared_with"] == f"{rec}.json"
    (change,) = second["changes"]  # matched by method, setting, dataset (the extra options differ)
    assert change["dataset"] == "d2" and change["delta"]["gzsl_h"] == pytest.approx(-0.02)
    kept = sorted((r["dataset"], r["key"]) for r in second["rows"])
    assert kept == [("d1", "cvc-zsl inductive"), ("d1", "eszsl inductive"), ("d2", "cvc-zsl inductive"),
                    ("d2", "eszsl inductive"), ("d2", "eszsl inductive [--set x=1]")]  # the new row beside the old
    # --compare none: no comparison; --merge then has nothing to merge with
    assert suite.main(base + ["--datasets", "d1", "--compare", "none"]) == 0
    assert "changes" not in json.loads(rec.with_suffix(".json").read_text())
    assert suite.main(base + ["--compare", "none", "--merge"]) == 2
    assert "--merge needs" in capsys.readouterr().err


def test_bad_compare_file_and_interrupt(tmp_path, monkeypatch, capsys):
    data = _fake_data(tmp_path / "data")
    (tmp_path / "bad.json").write_text("[1]")
    assert suite.main(["--data-dir", str(data), "--out", str(tmp_path / "o"), "--compare",
                       str(tmp_path / "bad.json")]) == 2
    assert "cannot read it as a suite JSON" in capsys.readouterr().err

    def interrupted(job):
        raise KeyboardInterrupt
    monkeypatch.setattr(suite, "run_one", interrupted)
    assert suite.main(["--data-dir", str(data), "--out", str(tmp_path / "o"), "--workers", "1"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_datasets_and_folds_discovered(tmp_path):
    for name, files in (("a", ("README.md", "att_splits.mat", "res101.mat")), ("b", ("att_splits.mat",)),
                        ("xlsa17", ("README.md", "att_splits.mat"))):
        (tmp_path / name).mkdir()
        for f in files:
            (tmp_path / name / f).write_text(f)
    (tmp_path / "a" / "folds").mkdir()
    for k in (2, 1):
        (tmp_path / "a" / "folds" / f"fold{k}_att_splits.mat").write_text(f"fold{k}")
    assert suite.discover_datasets(tmp_path) == ["a"]  # b has no README, xlsa17 is split files only
    assert suite.dataset_folds(tmp_path / "a") == [0, 1, 2]
    fold = suite.fold_root(tmp_path / "a", 2, tmp_path / "cache")
    assert (fold / "att_splits.mat").read_text() == "fold2" and (fold / "res101.mat").is_symlink()
    assert suite.fold_root(tmp_path / "a", 2, tmp_path / "cache") == fold  # built once, reused
    assert suite.fold_root(tmp_path / "a", 0, tmp_path / "cache") == tmp_path / "a"


def test_usage_errors_exit_2(tmp_path, capsys):
    assert suite.main(["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err
    if DATA.is_dir():
        assert suite.main(["--data-dir", str(DATA), "--datasets", "nope", "--out", str(tmp_path / "o")]) == 2
        assert "nope not in" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "digits-7seg").is_dir(), reason="../shared/data/digits-7seg is absent")
def test_suite_runs_eszsl_on_digits_fold0(tmp_path):
    out = tmp_path / "suite"
    code = suite.main(["--methods", "eszsl", "--datasets", "digits-7seg", "--folds", "0", "--quick",
                       "--workers", "1", "--data-dir", str(DATA), "--out", str(out), "--results",
                       str(tmp_path / "rec")])
    assert code == 0
    report = json.loads((out / "suite.json").read_text())
    (row,) = report["rows"]
    assert row["dataset"] == "digits-7seg" and row["key"] == "eszsl inductive" and [f["fold"] for f in row["folds"]] == [0]
    assert 1 / 3 - 0.15 < row["zsl_t1"] <= 1.0 and 0.0 <= row["gzsl_h"] <= 1.0 and row["zsl_t1_std"] == 0.0
    assert report["data"] == "real" and report["runs"][0]["chosen"]["gamma_exp"] in (-1.0, 0.0, 1.0)  # --quick grid
    assert any("ESZSL" in r["text"] for r in report["references"]["digits-7seg"])
    assert (tmp_path / "rec.md").read_text() == (out / "suite.md").read_text()
    # compared with itself: every change is zero
    again = suite.compare(report["rows"], report)
    assert again and all(v == 0 for c in again for v in c["delta"].values())
