"""Run directories and the train / evaluate / predict commands (in-process, ESZSL on tiny data)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from zslkit.cli import main
from zslkit.data.synthetic import make_synthetic
from zslkit.errors import RunDirError
from zslkit.runs import RunDir, atomic_write_json


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_json({"a": 1}, tmp_path / "x.json")
    atomic_write_json({"a": 2}, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["x.json"]


def test_finished_run_is_protected_and_locked(tmp_path):
    with RunDir(tmp_path / "r") as rd:
        with pytest.raises(RunDirError, match="another zslkit process"):
            RunDir(tmp_path / "r").__enter__()
        rd.write_json("metrics.json", {"zsl_t1": 0.5})
    with pytest.raises(RunDirError, match="--overwrite"):
        RunDir(tmp_path / "r").__enter__()
    with RunDir(tmp_path / "r", overwrite=True) as rd:
        assert not rd.finished


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "eszsl"
    code = main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--seed", "3", "--out", str(out),
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    return out


def test_train_writes_complete_run_dir(trained_run, capsys):
    for name in ("config.json", "metrics.json", "history.json", "provenance.json", "model.pt", "log.txt",
                 "curves.json", "per_class.json"):
        assert (trained_run / name).is_file(), name
    m = json.loads((trained_run / "metrics.json").read_text())
    assert {"zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h"} <= set(m)
    assert m["selection"]["mode"] == "validation" and m["synthetic"] is True and m["seed"] == 3
    prov = json.loads((trained_run / "provenance.json").read_text())
    assert prov["seed"] == 3 and prov["dataset"]["synthetic"] is True and "torch" in prov["packages"]
    assert prov["wall_time_s"] > 0


def test_second_train_into_finished_run_is_refused(trained_run, capsys):
    code = main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(trained_run),
                 "--no-progress"])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err


def test_evaluate_reproduces_metrics(trained_run, capsys):
    assert main(["evaluate", str(trained_run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "selection: validation" in out and "differs" not in out
    stored = json.loads((trained_run / "metrics.json").read_text())
    again = json.loads((trained_run / "evaluation.json").read_text())
    assert again["gzsl_h"] == pytest.approx(stored["gzsl_h"])


def test_predict_new_classes(trained_run, tmp_path, capsys):
    ds = make_synthetic("synthetic-tiny", 0)
    X, y = ds.split("test_unseen")
    np.save(tmp_path / "x.npy", X)
    np.savetxt(tmp_path / "e.csv", ds.class_embeddings[ds.unseen_classes], delimiter=",")
    assert main(["predict", str(trained_run), "--features", str(tmp_path / "x.npy"), "--classes",
                 str(tmp_path / "e.csv"), "--out", str(tmp_path / "p.csv"), "--top-k", "2"]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == X.shape[0] + 1 and rows[0].startswith("index,class_1,name_1,probability_1,class_2")
    pred = np.array([int(r.split(",")[1]) for r in rows[1:]])
    acc = np.mean(ds.unseen_classes[pred] == y)
    assert acc > 1.5 / len(ds.unseen_classes)
    # wrong embedding width: a clear error naming the file
    np.save(tmp_path / "bad.npy", np.ones((3, 5)))
    assert main(["predict", str(trained_run), "--features", str(tmp_path / "x.npy"), "--classes",
                 str(tmp_path / "bad.npy")]) == 1  # bad data: a run-time error
    err = capsys.readouterr().err
    assert "bad.npy" in err and "expects 24-d" in err


def test_clear_errors_for_unknown_names(capsys):
    assert main(["train", "--method", "eszl", "--dataset", "synthetic-tiny"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert main(["train", "--method", "eszsl", "--dataset", "AWA1"]) == 2
    err = capsys.readouterr().err
    assert "zslkit data download" in err and "synthetic-awa1" in err
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tni"]) == 2
    assert "synthetic-tiny" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_gpu(capsys):
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "zslkit", "methods"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "eszsl" in out.stdout


def test_preset_variant_option_selects_the_reference_protocol(tmp_path):
    out = tmp_path / "ref"
    assert main(["train", "--method", "cvc-zsl", "--variant", "reference", "--dataset", "synthetic-tiny",
                 "--selection", "fixed", "--epochs", "1", "--set", "episodes=2", "--set", "hidden_dim=16",
                 "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    cfg = json.loads((out / "config.json").read_text())["method_config"]
    assert cfg["lr"] == 1e-5 and cfg["episodes"] == 2 and cfg["epochs"] == 1
