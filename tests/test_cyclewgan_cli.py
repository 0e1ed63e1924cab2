"""The cycle-WGAN reference's interfaces on the command line (issue 14): ``zslkit train --savepoints``,
``--checkpoint-metric``, ``--reuse-stage``, ``--skip-stage``, ``--architecture``; ``zslkit evaluate --epoch`` and
``zslkit synthesize --epoch``. Tiny networks on synthetic-tiny, a few seconds each."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from zslkit.cli import main
from zslkit.data.synthetic import make_synthetic
from zslkit.methods.base import ZSLMethod
from zslkit.protocol.evaluate import TestScores

SMALL = ["--set", "hidden_g=32", "--set", "hidden_d=32", "--set", "regressor_epochs=2", "--set", "syn_per_unseen=10",
         "--set", "cls_epochs=2", "--set", "batch_size=32"]


def train(out, *extra, small=True) -> int:
    return main(["train", "--method", "cycle-wgan", "--dataset", "synthetic-tiny", "--no-progress", "--device", "cpu",
                 "--out", str(out), *(SMALL if small else []), *extra])


def read(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", seed=0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cwgan"
    assert train(out, "--selection", "fixed", "--epochs", "3", "--savepoints", "[1,2]") == 0  # the reference's form
    return out


def test_savepoints_then_evaluate_and_synthesize_an_epoch(run_dir, tiny, tmp_path, capsys):
    assert read(run_dir / "config.json")["method_config"]["savepoints"] == [1, 2]
    assert main(["evaluate", str(run_dir), "--epoch", "1", "--device", "cpu"]) == 0
    assert "generator of GAN epoch 1 (metrics.json scores the final one, epoch 3)" in capsys.readouterr().out
    got = read(run_dir / "evaluation-epoch1.json")
    model = ZSLMethod.load(run_dir / "model.pt", device="cpu")
    model.use_snapshot(1)
    assert got["generator_epoch"] == 1 and got["zsl_t1"] == TestScores(model, tiny).metrics()["zsl_t1"]
    E = tiny.class_embeddings[tiny.unseen_classes]
    np.save(tmp_path / "unseen.npy", E)
    out = tmp_path / "fake.npz"
    assert main(["synthesize", str(run_dir), "--classes", str(tmp_path / "unseen.npy"), "--per-class", "3",
                 "--out", str(out), "--epoch", "2", "--device", "cpu"]) == 0
    model.use_snapshot(2)
    np.testing.assert_array_equal(np.load(out)["features"], model.synthesize(E, 3, generator=0)[0])
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--epoch", "7", "--device", "cpu"]) == 2  # a usage error, no traceback
    err = capsys.readouterr().err
    assert "--epoch 7" in err and "keeps epochs 1, 2, 3" in err and "Traceback" not in err


def test_epoch_of_a_model_without_snapshots_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "eszsl"
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--selection", "fixed", "--out", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--epoch", "3"]) == 2
    assert "keeps no snapshots" in capsys.readouterr().err


def test_reuse_and_skip_stages(run_dir, tmp_path, capsys):
    out = tmp_path / "reuse"
    assert train(out, "--selection", "fixed", "--epochs", "1", "--reuse-stage", f"regressor={run_dir}") == 0
    reused = read(out / "provenance.json")["reused_stages"]
    assert reused["regressor"]["sha256"] == hashlib.sha256((run_dir / "model.pt").read_bytes()).hexdigest()
    assert reused["regressor"]["dataset"] == "synthetic-tiny" and reused["regressor"]["source"].endswith("model.pt")
    assert read(out / "config.json")["method_config"]["regressor_stage"] == str(run_dir.resolve())
    out = tmp_path / "skip"
    assert train(out, "--selection", "fixed", "--epochs", "1", "--variant", "cycle-clswgan",
                 "--skip-stage", "aux_classifier", "--skip-stage", "regressor") == 0
    rows = read(out / "curves.json")["training"]
    assert rows and all(r["stage"] == "gan" and r["cls"] == 0 and r["cycle"] == 0 for r in rows)
    assert "reused_stages" not in read(out / "provenance.json")
    capsys.readouterr()
    assert train(tmp_path / "bad", "--reuse-stage", f"critic={run_dir}") == 2
    assert "--reuse-stage expects STAGE=RUN_DIR with STAGE one of regressor" in capsys.readouterr().err
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(tmp_path / "e"),
                 "--reuse-stage", f"regressor={run_dir}", "--no-progress"]) == 2
    assert "--reuse-stage: eszsl has no option --reuse-stage (it applies to cycle-wgan)" in capsys.readouterr().err


def test_checkpoint_metric_is_the_selection_criterion(tmp_path, capsys):
    out = tmp_path / "val"
    assert train(out, "--epochs", "3", "--savepoints", "1,3", "--checkpoint-metric", "zsl_t1") == 0
    sel = read(out / "metrics.json")["selection"]
    assert sel["criterion"] == "zsl_t1" and sel["chosen"]["epochs"] in (1, 3)
    assert {r["epoch"] for r in read(out / "history.json")} == {1, 3}
    capsys.readouterr()
    assert train(tmp_path / "fixed", "--selection", "fixed", "--savepoints", "1", "--checkpoint-metric", "zsl_t1") == 2
    assert "--selection fixed chooses nothing" in capsys.readouterr().err
    assert train(tmp_path / "both", "--savepoints", "1", "--checkpoint-metric", "zsl_t1", "--criterion", "gzsl_h") == 2
    assert "disagree" in capsys.readouterr().err


def test_architecture_files_apply_like_a_preset(tmp_path, capsys):
    from test_architecture_json import classifier_file, gan_file, write

    g = write(tmp_path, gan_file(), "cycle_wgan.json")
    c = write(tmp_path, classifier_file(), "fullyconnected.json")
    out = tmp_path / "arch"
    assert train(out, "--selection", "fixed", "--architecture", str(g), "--architecture", str(c), "--epochs", "2",
                 "--set", "regressor_epochs=2", "--set", "pre_cls_epochs=2", "--set", "cls_epochs=2",
                 small=False) == 0
    cfg = read(out / "config.json")["method_config"]
    assert (cfg["hidden_g"], cfg["hidden_d"], cfg["lr_decay_g"], cfg["cls_lr_decay"], cfg["cls_batch"]) == (
        48, 40, 0.018, 2.84e-3, 256)  # from the files
    assert (cfg["epochs"], cfg["cls_epochs"]) == (2, 2)  # the other options override the files
    capsys.readouterr()
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--architecture", str(g),
                 "--out", str(tmp_path / "e"), "--no-progress"]) == 2
    assert "--architecture: eszsl has no option --architecture (it applies to cycle-wgan)" in capsys.readouterr().err
    doc = gan_file()
    doc["generator"]["operators"][3] = {"op": "activation", "type": "dropout", "params": {"keep_prob": 0.5}}
    bad = write(tmp_path, doc, "dropout.json")
    assert train(tmp_path / "d", "--architecture", str(bad)) == 2
    err = capsys.readouterr().err
    assert "dropout.json: generator.operators[3].type" in err and "Traceback" not in err
