"""User callbacks of run_protocol / execute, and the --log-to trackers built on them (zslkit.tracking)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from zslkit.cli import main
from zslkit.data.synthetic import make_synthetic
from zslkit.experiment import RunSpec, execute
from zslkit.methods import get_method
from zslkit.pipeline import run_protocol
from zslkit.tracking import Callback, EpochEvent, MLflowTracker

METRIC_KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")


class Recorder(Callback):
    def __init__(self):
        self.events, self.ends = [], []

    def on_epoch(self, event):
        self.events.append(event)

    def on_end(self, metrics):
        self.ends.append(metrics)


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", seed=0)


def test_callbacks_see_every_monitored_point_and_the_end(tiny):
    rec, seen = Recorder(), []
    res = run_protocol(get_method("eszsl"), tiny, selection="validation", seed=0, device="cpu",
                       callbacks=[rec, seen.append])  # an object, and a plain function (an on_epoch)
    rows = [r for r in res.history if r.get("stage", "validation") == "validation"]
    assert len(rec.events) == len(rows) == len(seen) > 1
    for event, row in zip(rec.events, rows):
        assert isinstance(event, EpochEvent) and event.stage == "validation"
        assert (event.candidate, event.epoch, event.overrides) == (row["candidate"], row["epoch"], row["overrides"])
        assert all(event.metrics[k] == row[k] for k in METRIC_KEYS)
    assert rec.ends == [res.metrics]


def test_oracle_points_are_reported_as_oracle(tiny):
    rec = Recorder()
    res = run_protocol(get_method("eszsl"), tiny, selection="oracle", seed=0, device="cpu", callbacks=[rec])
    assert rec.events and {e.stage for e in rec.events} == {"oracle"}
    assert rec.ends[0]["selection"]["mode"] == "oracle" and rec.ends[0]["gzsl_h"] == res.metrics["gzsl_h"]


def test_execute_passes_callbacks_and_rejects_non_callbacks(tiny, tmp_path):
    rec = Recorder()
    metrics = execute(RunSpec(method="eszsl", dataset="synthetic-tiny"), tmp_path / "run", progress=False,
                      dataset=tiny, plots=False, callbacks=[rec])
    assert rec.events and rec.ends[0]["gzsl_h"] == metrics["gzsl_h"]
    from zslkit.errors import ConfigError

    with pytest.raises(ConfigError, match="neither a function nor"):
        run_protocol(get_method("eszsl"), tiny, callbacks=[42])


def test_tensorboard_tracker_writes_the_run(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(out), "--no-progress",
                 "--device", "cpu", "--log-to", "tensorboard"]) == 0
    assert f"TensorBoard: {out / 'tensorboard'}" in capsys.readouterr().out
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert {f"validation/c{r['candidate']}/gzsl_h" for r in history} <= tags
    assert acc.Scalars("test/gzsl_h")[0].value == pytest.approx(metrics["gzsl_h"], rel=1e-6)
    c0 = [r for r in history if r["candidate"] == 0]
    assert [s.value for s in acc.Scalars("validation/c0/zsl_t1")] == pytest.approx([r["zsl_t1"] for r in c0])
    # --overwrite starts the event files afresh (one file, this run's)
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(out), "--no-progress",
                 "--device", "cpu", "--log-to", "tensorboard", "--overwrite"]) == 0
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1


class FakeMlflow(types.ModuleType):
    """A stand-in for the mlflow package (heavy, not in the test extra) that records the calls."""

    def __init__(self):
        super().__init__("mlflow")
        self.calls = []
        for name in ("set_tracking_uri", "set_experiment", "set_tag", "log_params", "end_run"):
            setattr(self, name, self._recorder(name))

    def _recorder(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    def start_run(self, run_name=None):
        self.calls.append(("start_run", (), {"run_name": run_name}))
        return object()

    def log_metrics(self, metrics, step=None):
        self.calls.append(("log_metrics", (dict(metrics),), {"step": step}))

    def named(self, name):
        return [c for c in self.calls if c[0] == name]


def test_mlflow_tracker_logs_to_a_file_store_in_the_run_dir(tmp_path, monkeypatch, capsys):
    fake = FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(out), "--no-progress",
                 "--device", "cpu", "--log-to", "mlflow"]) == 0
    uri = (out / "mlruns").resolve().as_uri()
    assert fake.named("set_tracking_uri")[0][1] == (uri,) and uri.startswith("file:")
    assert f"MLflow: {uri}" in capsys.readouterr().out
    assert len(fake.named("start_run")) == 1 and fake.named("start_run")[0][2]["run_name"] == "run"
    epochs = [c for c in fake.named("log_metrics") if c[2]["step"] is not None]
    history = json.loads((out / "history.json").read_text())
    assert len(epochs) == len(history) and "validation/c0/gzsl_h" in epochs[0][1][0]
    final = [c[1][0] for c in fake.named("log_metrics") if c[2]["step"] is None]
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(final) == 1 and final[0]["test/gzsl_h"] == pytest.approx(metrics["gzsl_h"])
    params = fake.named("log_params")[0][1][0]
    assert params["method"] == "eszsl" and params["dataset"] == "synthetic-tiny" and params["selection"] == "validation"
    assert fake.named("end_run")[-1][2] == {"status": "FINISHED"}


def test_mlflow_tracking_uri_from_the_environment_and_failed_runs(tmp_path, monkeypatch):
    fake = FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    tracker = MLflowTracker(tmp_path / "run")
    tracker.on_epoch(EpochEvent("validation", 0, 1, {"gzsl_h": 0.5, "note": "text"}))
    tracker.close(failed=True)
    assert fake.named("set_tracking_uri")[0][1] == ("http://tracking.example:5000",)
    assert fake.named("log_metrics")[0][1][0] == {"validation/c0/gzsl_h": 0.5}  # numbers only
    assert fake.named("end_run")[0][2] == {"status": "FAILED"}


def test_missing_tracker_package_is_one_line_with_the_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(tmp_path / "r"),
                 "--no-progress", "--log-to", "mlflow"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'zslkit[mlflow]'" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # refused before anything was written
