"""``zslkit sweep`` on one shared local Ray instance (2 CPUs), synthetic-tiny, tiny CVC-ZSL budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from zslkit.cli import main

TINY = ["--method", "cvc-zsl", "--set", "episodes=6", "--set", "hidden_dim=32", "--no-progress"]


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def record_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "sweep_trial.json").read_text())


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "runs").glob("*/*/seed*/sweep_trial.json"))


# ---------------------------------------------------------------- errors (no Ray instance needed)

def test_missing_ray_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    rc = main(["sweep", "--dataset", "synthetic-tiny", *TINY, "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "pip install 'zslkit[sweep]'" in err[0]


def test_unknown_param_key_is_one_line(tmp_path, capsys):
    rc = main(["sweep", "--dataset", "synthetic-tiny", "--param", "hiden_dim=8,16", *TINY, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'hiden_dim'" in err[0] and "hidden_dim" in err[0]
    assert not (tmp_path / "sweep.json").exists()


def test_bad_semantic_is_one_line(tmp_path, capsys):
    rc = main(["sweep", "--dataset", "synthetic-tiny", "--semantic", "sent", *TINY, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "synthetic" in err[0]


def test_unreachable_address_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    started = time.monotonic()
    rc = main(["sweep", "--dataset", "synthetic-tiny", *TINY, "--address", "127.0.0.1:1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "cannot reach 127.0.0.1:1" in err[0]
    assert time.monotonic() - started < 60  # fails fast instead of Ray's long retries (generous bound)


# ---------------------------------------------------------------- sweeps on a shared local Ray

@pytest.fixture(scope="module")
def ray_address():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_grid_sweep_chooses_best_mean_validation(tmp_path, ray_address, capsys):
    out = tmp_path / "sweep"
    rc = main(["sweep", "--dataset", "synthetic-tiny", "--data-seed", "0", "--setting", "inductive", "--seeds", "0-1",
               "--param", "lr=1e-4,1e-3", "--param", "epochs=1,3", *TINY, "--cpus-per-trial", "1", "--no-plots",
               "--out", str(out)])
    assert rc == 0
    dirs = run_dirs(out)
    assert len(dirs) == 8 and all((d / "metrics.json").is_file() for d in dirs)
    # recompute the choice from the run directories: best mean validation gzsl_h over the two seeds
    by_config: dict[str, list[float]] = {}
    for d in dirs:
        m = metrics_of(d)
        assert m["selection"]["mode"] == "validation" and m["seed"] in (0, 1)
        by_config.setdefault(d.parent.name, []).append(m["selection"]["validation_metrics"]["gzsl_h"])
    assert all(len(v) == 2 for v in by_config.values())
    best = max(sorted(by_config), key=lambda k: sum(by_config[k]) / 2)
    summary = json.loads((out / "summary.json").read_text())
    info = summary["datasets"]["synthetic-tiny"]
    assert info["chosen"] == best
    rows = {r["configuration"]: r for r in info["configurations"]}
    assert rows[best]["test"] is not None
    chosen_h = sum(metrics_of(d)["gzsl_h"] for d in dirs if d.parent.name == best) / 2
    assert rows[best]["test"]["gzsl_h"][0] == pytest.approx(chosen_h)
    assert all(r["test"] is None for k, r in rows.items() if k != best)
    assert all(t["test"] is None for t in summary["trials"])
    md = (out / "summary.md").read_text()
    csv_rows = [line for line in (out / "summary.csv").read_text().splitlines()[1:] if line]
    assert len(csv_rows) == 4 and md.count("hidden (not chosen)") == 3 and "ORACLE" not in md
    for d in dirs:  # no non-chosen test number leaks into the summary
        if d.parent.name != best:
            assert f"{100 * metrics_of(d)['gzsl_h']:.1f} ±" not in md
    # Ray saw validation numbers only
    reported = set()
    for f in (out / "tune").glob("*/result.json"):
        for line in f.read_text().splitlines():
            reported |= set(json.loads(line))
    assert "val_gzsl_h" in reported and not reported & {"zsl_t1", "gzsl_h", "gzsl_u", "gzsl_s", "ausuc"}
    # zslkit report SWEEP_DIR shows the sweep summary, not a mean over every configuration
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"chosen {best}" in text and "ORACLE" not in text
    # --show-all-test (on the finished sweep: nothing reruns) labels the other test numbers ORACLE
    mtimes = {d: (d / "metrics.json").stat().st_mtime_ns for d in dirs}
    assert main(["sweep", "--resume", str(out), "--show-all-test", "--no-progress"]) == 0
    assert {d: (d / "metrics.json").stat().st_mtime_ns for d in dirs} == mtimes
    md = (out / "summary.md").read_text()
    assert md.count("ORACLE (not chosen") == 3


def test_interrupted_sweep_resumes_without_rerunning(tmp_path, ray_address):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-c", "import sys; from zslkit.cli import main; sys.exit(main())", "sweep",
           "--dataset", "synthetic-tiny", "--seeds", "0-1", "--search", "random", "--samples", "1",
           "--param", "lr=1e-4,3e-4", "--param", "ways=4,8", "--set", "epochs=6", "--checkpoint-every", "1",
           "--cpus-per-trial", "2", "--no-plots", *TINY[:-1], "--address", ray_address, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.monotonic() + 600  # generous: a loaded machine runs the first trial slowly (it stops early)
    while time.monotonic() < deadline and proc.poll() is None:
        done = [d for d in run_dirs(out) if (d / "metrics.json").is_file()]
        if done:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    log, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, log
    assert "zslkit sweep --resume" in log
    assert "validation (best so far)" in log and "synthetic-tiny/" in log  # the live table (no --no-progress)
    finished = {d: (d / "metrics.json").stat().st_mtime_ns for d in run_dirs(out) if (d / "metrics.json").is_file()}
    assert len(finished) == 1  # one trial at a time (2 CPUs each): the second was running or pending
    assert main(["sweep", "--resume", str(out), "--no-progress"]) == 0
    dirs = run_dirs(out)
    assert len(dirs) == 2 and all((d / "metrics.json").is_file() for d in dirs)
    for d, mtime in finished.items():  # finished trials were not run again
        assert (d / "metrics.json").stat().st_mtime_ns == mtime and record_of(d)["attempts"] >= 1
    assert sum(record_of(d)["attempts"] for d in finished) <= 2 * len(finished)  # reported, never retrained


def test_killed_trial_is_retried_and_matches_uninterrupted(tmp_path, ray_address):
    from zslkit.experiment import RunSpec, execute

    out = tmp_path / "sweep"
    run_dir = out / "runs" / "synthetic-tiny" / "default" / "seed0"
    killed = {}

    def killer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if (run_dir / "checkpoints" / "progress.pt").is_file():
                pid = record_of(run_dir)["pid"]
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    rc = main(["sweep", "--dataset", "synthetic-tiny", "--seeds", "0", "--set", "epochs=8", "--checkpoint-every", "1",
               "--max-failures", "2", "--no-plots", *TINY, "--out", str(out)])
    thread.join(timeout=5)
    assert rc == 0 and killed
    record = record_of(run_dir)
    assert record["attempts"] == 2 and record["pid"] != killed["pid"]
    got = metrics_of(run_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = execute(RunSpec(method="cvc-zsl", dataset="synthetic-tiny", seed=0, device="cpu",
                              overrides={"epochs": "8", "episodes": "6", "hidden_dim": "32"}),
                      tmp_path / "reference", progress=False, plots=False)
    finally:
        torch.set_num_threads(threads)
    for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "gzsl_cs_h", "ausuc"):
        assert got[k] == ref[k], k
    assert got["selection"]["chosen"] == ref["selection"]["chosen"]


def test_optuna_asha_over_two_datasets(tmp_path, ray_address):
    from zslkit.data.npz import write_npz
    from zslkit.data.synthetic import make_synthetic

    npz = write_npz(make_synthetic("synthetic-tiny", seed=1), tmp_path / "tiny1.npz")
    out = tmp_path / "sweep"
    rc = main(["sweep", "--dataset", "synthetic-tiny", "--data-root", str(npz), "--seeds", "0", "--no-plots",
               "--search", "optuna", "--samples", "2", "--scheduler", "asha", "--param", "lr=1e-4,1e-3",
               "--set", "epochs=3", *TINY, "--address", ray_address, "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["datasets"]) == {"synthetic-tiny", "synthetic-tiny[tiny1.npz]"}
    for info in summary["datasets"].values():
        chosen = [r for r in info["configurations"] if r["chosen"]]
        assert len(chosen) <= 1
        for r in chosen:
            assert r["seeds_finished"] == [0] and r["test"] is not None
    assert all(t["status"] in ("finished", "stopped early") for t in summary["trials"])
    for t in summary["trials"]:  # a trial ASHA stopped has no test numbers at all
        assert (Path(t["run_dir"]) / "metrics.json").is_file() == (t["status"] == "finished")


def test_gpus_per_trial_without_gpu_is_one_line(tmp_path, ray_address, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    rc = main(["sweep", "--dataset", "synthetic-tiny", *TINY, "--gpus-per-trial", "0.5", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "GPU" in err[0]


def test_reproduce_sends_its_seeds_through_ray(tmp_path, ray_address):
    out = tmp_path / "repro"
    rc = main(["reproduce", "--paper", "cvc-zsl", "--dataset", "synthetic-tiny", "--seeds", "2", "--oracle-seeds", "1",
               "--set", "epochs=2", "--set", "episodes=6", "--set", "hidden_dim=32", "--no-progress",
               "--address", ray_address, "--out", str(out)])
    assert rc == 0
    for name in ("validation-seed0", "validation-seed1", "oracle-seed0"):
        record = record_of(out / name)  # written by the Ray trial, not by a local run
        assert (out / name / "training_curves.png").is_file()  # a whole run directory, plots included
        assert record["status"] == "finished" and record["pid"] != os.getpid()
        assert metrics_of(out / name)["selection"]["mode"] == name.split("-")[0]
    table = json.loads((out / "reproduce.json").read_text())
    assert table["seeds"] == [0, 1] and table["oracle_seeds"] == [0]


def test_failing_trial_is_recorded_not_retried(tmp_path, ray_address, capsys):
    out = tmp_path / "sweep"  # 1000 ways on a dataset with fewer training classes: a ConfigError inside the trial
    rc = main(["sweep", "--dataset", "synthetic-tiny", "--set", "ways=1000", "--set", "epochs=1", "--no-plots", *TINY,
               "--out", str(out)])
    assert rc == 1 and "1 trial(s) failed" in capsys.readouterr().err
    record = record_of(out / "runs" / "synthetic-tiny" / "default" / "seed0")
    assert record["status"] == "failed" and record["attempts"] == 1 and "ways" in record["error"]
    assert json.loads((out / "summary.json").read_text())["datasets"]["synthetic-tiny"]["chosen"] is None


def test_sweep_dir_as_storage_uri(tmp_path, ray_address, capsys):
    from zslkit.sweep import storage

    remote = tmp_path / "bucket" / "sweep"
    uri = f"file://{remote}"
    assert main(["sweep", "--dataset", "synthetic-tiny", "--seeds", "0", "--set", "epochs=2", "--checkpoint-every", "1",
                 "--no-plots", *TINY, "--out", uri]) == 0
    run_dir = remote / "runs" / "synthetic-tiny" / "default" / "seed0"  # uploaded from the worker's staging folder
    assert (run_dir / "metrics.json").is_file() and not (run_dir / "checkpoints").exists()
    assert all((remote / name).is_file() for name in ("sweep.json", "summary.md", "summary.json"))
    assert storage.staging(uri) != remote and (remote / "tune").is_dir()  # Ray Tune's state at the URI too
    mtime = (run_dir / "metrics.json").stat().st_mtime_ns
    import shutil

    shutil.rmtree(storage.staging(uri))  # another machine: nothing local, everything comes from the URI
    capsys.readouterr()
    assert main(["sweep", "--resume", uri, "--no-progress"]) == 0
    assert (run_dir / "metrics.json").stat().st_mtime_ns == mtime
    assert main(["report", uri]) == 0 and "chosen default" in capsys.readouterr().out
