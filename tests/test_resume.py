"""Resumable runs and determinism ("nothing lost, nothing silent").

* in-process: a CVC-ZSL fit resumed (fresh model object, serialized state) from a checkpoint taken after
  any epoch ends with the same weights, epoch log and monitor metrics as the uninterrupted fit (inductive
  with "learned" seen rows; transductive: inductive stage, stage boundary, between pseudo-label refreshes);
  the protocol (validation selection) resumes through a ProgressStore after a Ctrl-C-style stop.
  (cycle-WGAN's exact resume is covered by tests/test_cyclewgan.py::test_resume_continues_exactly.)
* subprocesses: ``zslkit train`` killed with SIGKILL, or stopped with one SIGINT, then ``--resume`` gives
  the same metrics.json as an uninterrupted run; finished runs are never overwritten silently.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from zslkit.checkpointing import ProgressStore, TrainingInterrupted
from zslkit.data.synthetic import make_synthetic
from zslkit.methods.cvc import CVCZSL
from zslkit.pipeline import fit_on, run_protocol

TINY = dict(ways=12, shots=4, lr=3e-4, weight_decay=1e-4, step_size=2, epochs=5, episodes=12, hidden_dim=64,
            inductive_epochs=3, trans_ways=12, trans_shots=2, trans_lr=1e-4, trans_weight_decay=1e-5,
            trans_step_size=2, refresh=3, finetune_episodes=10, eval_every=2)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", 0, difficulty=0.5)


def _roundtrip(state):
    """What a new process sees: the state written to and read back from a file."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, map_location="cpu", weights_only=False)


def _untimed(history):
    """History rows without their wall-clock seconds (which differ between any two runs)."""
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def _scores(model, ds):
    from zslkit.protocol.evaluate import seen_label_map

    classes = np.concatenate([ds.seen_classes, ds.unseen_classes])
    X = ds.split("test_unseen")[0]
    return model.decision_function(X, ds.class_embeddings[classes], seen_label_map(ds)[classes])


def _learned(model) -> dict:
    out = {f"net.{k}": v for k, v in model.state_dict()["generator"].items()}
    for name in ("seen_rows_", "free_rows_"):
        t = getattr(model, name, None)
        if t is not None:
            out[name] = t.detach().cpu()
    return out


def _fit_recording(ds, transductive, cfg, resume_state=None):
    """Fit with a monitor recording scores and a hook recording every epoch's training_state."""
    seen, states = [], []

    def monitor(epoch, model):
        seen.append((epoch, _scores(model, ds)))
        return {"zsl_t1": float(epoch)}

    def hook(epoch, model):
        states.append(((model._stage, epoch), _roundtrip(model.training_state())))

    model = CVCZSL(cfg, seed=4, device="cpu")
    fit_on(model, ds, transductive, monitor, checkpoint=hook, resume_state=resume_state)
    return model, seen, states


@pytest.mark.parametrize("setting", ["inductive", "transductive"])
def test_resume_after_any_epoch_is_exact(tiny, setting):
    transductive = setting == "transductive"
    cfg = dict(TINY, gzsl_seen_classifiers="learned")
    full, full_seen, states = _fit_recording(tiny, transductive, cfg)
    expected = [("inductive", e) for e in range(1, TINY["epochs" if not transductive else "inductive_epochs"] + 1)]
    if transductive:
        expected += [("transductive", e) for e in range(1, TINY["epochs"] + 1)]
    assert [where for where, _ in states] == expected
    assert [(r["stage"], r["epoch"]) for r in full.history_] == expected
    assert all({"loss", "lr", "scale"} <= set(r) for r in full.history_)
    if transductive:
        assert all(r["pseudo_labels"] > 0 for r in full.history_ if r["stage"] == "transductive")
    reference = _learned(full)
    final_scores = _scores(full, tiny)
    for (stage, epoch), state in states[:-1]:
        resumed, seen, _ = _fit_recording(tiny, transductive, cfg, resume_state=state)
        where = f"resumed after {stage} epoch {epoch}"
        got = _learned(resumed)
        assert got.keys() == reference.keys(), where
        for k in reference:
            assert torch.equal(got[k], reference[k]), f"{where}: {k} differs"
        assert _untimed(resumed.history_) == _untimed(full.history_), where
        # the monitor runs at the evaluation points after the checkpoint, with identical models
        monitored_stage = "transductive" if transductive else "inductive"
        later = [(e, s) for e, s in full_seen if stage != monitored_stage or e > epoch]
        assert [e for e, _ in seen] == [e for e, _ in later], where
        for (_, a), (_, b) in zip(seen, later):
            assert np.array_equal(a, b), where
        assert np.array_equal(_scores(resumed, tiny), final_scores), where


def test_history_survives_save_and_load(tiny, tmp_path):
    model = fit_on(CVCZSL(dict(TINY, epochs=2), seed=0, device="cpu"), tiny, True)
    loaded = CVCZSL.load(model.save(tmp_path / "m.pt"), device="cpu")
    assert loaded.history_ == model.history_ and len(loaded.history_) == TINY["inductive_epochs"] + 2


def test_training_state_is_a_snapshot(tiny):
    """A state taken after epoch 1 must not change while training goes on (optimizer tensors are copied)."""
    taken = {}

    def hook(epoch, model):
        if epoch == 1:
            taken["state"] = model.training_state()
            taken["copy"] = _roundtrip(taken["state"])

    fit_on(CVCZSL(dict(TINY, epochs=3), seed=0, device="cpu"), tiny, False, checkpoint=hook)
    a, b = taken["state"]["optimizer"]["state"], taken["copy"]["optimizer"]["state"]
    for k in a:
        for name, t in a[k].items():
            assert torch.equal(t, b[k][name]), name
    assert torch.equal(taken["state"]["generator"]["w1"], taken["copy"]["generator"]["w1"])


def test_resume_rejects_a_state_of_the_other_setting(tiny):
    from zslkit.errors import ConfigError

    states = []
    fit_on(CVCZSL(dict(TINY, epochs=1), seed=0, device="cpu"), tiny, False,
           checkpoint=lambda e, m: states.append(m.training_state()))
    with pytest.raises(ConfigError, match="inductive fit, this fit is transductive"):
        fit_on(CVCZSL(dict(TINY, epochs=1), seed=0, device="cpu"), tiny, True, resume_state=states[0])


def test_protocol_resumes_after_a_stop_request(tiny, tmp_path):
    """Validation selection, transductive: stop (as the first Ctrl-C does) in the middle, resume, same result."""
    cfg = dict(TINY, epochs=4, lr_grid=(1e-4, 3e-4))
    kwargs = dict(config=cfg, setting="transductive", selection="validation", seed=1, device="cpu",
                  val_splits=1)  # one validation split: the epoch count below (several: tests/test_val_splits.py)
    keys = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")
    full = run_protocol(CVCZSL, tiny, **kwargs)
    path = tmp_path / "progress.pt"
    calls = {"n": 0}
    # epochs before candidate 1 of the transductive stage: 2 warm-up candidates x 3 inductive epochs, then
    # candidate 0 (the chosen warm-up's epochs + 4 self-training epochs); stop 2 epochs into candidate 1
    warm = full.config.inductive_epochs
    stop_at = 2 * TINY["inductive_epochs"] + (warm + 4) + 2

    class StopOnce(ProgressStore):
        def hook(self, make_state):
            inner = super().hook(make_state)

            def checkpoint(epoch, model):
                calls["n"] += 1
                if calls["n"] == stop_at:  # candidate 1, in its inductive stage
                    self.stop_requested = True
                inner(epoch, model)

            return checkpoint

    with pytest.raises(TrainingInterrupted, match="interrupted after epoch"):
        run_protocol(CVCZSL, tiny, store=StopOnce(path, every=2, fingerprint="x", resume_hint="resume"), **kwargs)
    saved = torch.load(path, weights_only=False)
    assert (saved["phase"], saved["candidate"]) == ("validation", 1)
    again = run_protocol(CVCZSL, tiny, store=ProgressStore(path, every=2, fingerprint="x"), **kwargs)
    assert [again.metrics[k] for k in keys] == [full.metrics[k] for k in keys]
    assert again.metrics["selection"]["chosen"] == full.metrics["selection"]["chosen"]
    assert again.history == full.history
    assert _untimed(again.model.history_) == _untimed(full.model.history_)


# ----- the command line, in subprocesses -----------------------------------------------------------------


SETS = ["--set", "hidden_dim=128", "--set", "episodes=30", "--set", "epochs=14", "--set", "eval_every=2"]
TRAIN = ["-m", "zslkit", "train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--selection", "validation",
         "--checkpoint-every", "1", "--deterministic", "--device", "cpu", "--no-progress", *SETS]
KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(args, **kw):
    return subprocess.run([sys.executable, *args], env=_env(), capture_output=True, text=True, timeout=120, **kw)


def _metrics(run_dir: Path) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text())
    return {**{k: m[k] for k in KEYS}, "chosen": m["selection"]["chosen"]}


def _start_and_wait(run_dir: Path, min_epochs: int = 2):
    """Start a training run; return the process once its checkpoint shows ``min_epochs`` epochs done."""
    proc = subprocess.Popen([sys.executable, *TRAIN, "--out", str(run_dir)], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ckpt = run_dir / "checkpoints" / "progress.pt"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"training finished before it could be interrupted (rc {proc.returncode}); make it "
                        f"longer\n{out}\n{err}")
        if ckpt.is_file():
            try:
                state = torch.load(ckpt, weights_only=False)
            except Exception:  # replaced while reading: try again
                state = None
            if state and (state["phase"] != "validation" or state["fit_state"]["epoch"] >= min_epochs):
                return proc, state
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no checkpoint appeared within 60 s")


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    res = _run([*TRAIN, "--out", str(out)])
    assert res.returncode == 0, res.stderr
    return out


def test_sigkill_then_resume_gives_identical_metrics(reference_run, tmp_path):
    run = tmp_path / "killed"
    proc, state = _start_and_wait(run)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    res = _run(["-m", "zslkit", "train", "--resume", str(run), "--no-progress"])
    assert res.returncode == 0, res.stderr
    assert f"resuming {run}" in res.stdout
    assert _metrics(run) == _metrics(reference_run)
    assert not (run / "checkpoints" / "progress.pt").exists()  # cleared once finished
    assert json.loads((run / "history.json").read_text()) == json.loads((reference_run / "history.json").read_text())


def test_sigint_saves_a_checkpoint_and_exits_130(reference_run, tmp_path):
    run = tmp_path / "stopped"
    proc, _ = _start_and_wait(run)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "stopping after the current epoch" in err
    assert "zslkit: interrupted: interrupted after epoch" in err
    assert f"checkpoint saved to {run / 'checkpoints' / 'progress.pt'}" in err
    assert f"Resume with: zslkit train --resume {run}" in err
    assert not (run / "metrics.json").exists()
    res = _run(["-m", "zslkit", "train", "--resume", str(run), "--no-progress"])
    assert res.returncode == 0, res.stderr
    assert _metrics(run) == _metrics(reference_run)


def test_finished_runs_are_never_overwritten_silently(reference_run):
    before = (reference_run / "metrics.json").read_bytes()
    res = _run([*TRAIN, "--out", str(reference_run)])
    assert res.returncode == 2
    assert "holds a finished run" in res.stderr and "--overwrite" in res.stderr
    res = _run(["-m", "zslkit", "train", "--resume", str(reference_run), "--no-progress"])
    assert res.returncode == 2
    assert "already finished" in res.stderr and "nothing to resume" in res.stderr
    assert (reference_run / "metrics.json").read_bytes() == before
