"""report, reproduce and run plots."""

import json

import pytest

from zslkit.cli import main
from zslkit.reproduce import benchmark_of
from zslkit.reporting.tables import load_published, published_entry

FAST_CVC = ["--set", "epochs=2", "--set", "episodes=10", "--set", "hidden_dim=64", "--set", "eval_every=1"]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--seed", str(seed), "--data-seed",
                     "0", "--out", str(root / f"s{seed}"), "--no-progress", "--device", "cpu",
                     "--set", "grid=-1,0,1"]) == 0
    return root


def test_plots_are_written(two_seeds):
    for name in ("training_curves.png", "seen_unseen_curve.png", "per_class_accuracy.png"):
        png = two_seeds / "s0" / name
        assert png.is_file() and png.stat().st_size > 10_000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_aggregates_seeds(two_seeds, tmp_path, capsys):
    assert main(["report", str(two_seeds), "--out", str(tmp_path / "t.md")]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("| eszsl")]
    assert len(row) == 1 and "| 0,1 |" in row[0] and "±" in row[0]
    assert "synthetic" in out and (tmp_path / "t.md").read_text() in out
    assert main(["report", str(two_seeds), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out.split("\nnote:")[0])
    assert rows[0]["seeds"] == [0, 1] and rows[0]["zsl_t1"][2] == 2


def test_report_without_runs_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no finished runs" in capsys.readouterr().err


def test_published_numbers_are_data_with_sources():
    table = load_published()
    assert set(table) == {"cvc-zsl", "cycle-wgan", "f-clswgan"}
    for paper in table.values():
        for ds in paper["datasets"].values():
            for metric, entry in ds["metrics"].items():
                assert metric in {"zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"}
                assert 0 < entry["value"] < 100 and entry["tag"] in {"A", "S", "T"} and entry["source"]
    assert published_entry("cycle-wgan")["datasets"]["CUB"]["metrics"]["gzsl_h"]["value"] == 52.2
    assert benchmark_of("synthetic-cub-sent") == "CUB" and benchmark_of("AWA2") == "AWA2"


def test_reproduce_real_dataset_without_data_explains(capsys):
    assert main(["reproduce", "--paper", "cvc-zsl", "--dataset", "AWA2"]) == 2
    err = capsys.readouterr().err
    assert "zslkit data download" in err and "synthetic-awa2" in err


def test_reproduce_on_synthetic_writes_tables(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "--paper", "cvc-zsl", "--dataset", "synthetic-tiny", "--seeds", "2", "--oracle-seeds",
                 "1", "--out", str(out), "--device", "cpu", "--no-progress", *FAST_CVC]) == 0
    md = (out / "reproduce.md").read_text()
    assert "ORACLE" in md and "mean ± std over 2 seeds" in md and "SYNTHETIC" in md
    data = json.loads((out / "reproduce.json").read_text())
    rows = {r["metric"]: r for r in data["rows"]}
    assert rows["gzsl_h"]["validation_n"] == 2 and rows["gzsl_h"]["oracle_n"] == 1
    assert rows["zsl_t1"]["published"] is None  # no published numbers for the tiny test preset
    assert (out / "reproduce.csv").read_text().startswith("metric,")
    assert "validation run, seed 1" in capsys.readouterr().out
    # a second call resumes: finished runs are reused, not recomputed
    assert main(["reproduce", "--paper", "cvc-zsl", "--dataset", "synthetic-tiny", "--seeds", "2", "--oracle-seeds",
                 "1", "--out", str(out), "--device", "cpu", "--no-progress", *FAST_CVC]) == 0
    assert "run, seed" not in capsys.readouterr().out
