"""Parallel efficiency of ``zslkit sweep`` on this machine: N equal trials on a local Ray instance.

efficiency = (sum of the trials' times, measured inside the workers) / (CPUs x sweep wall time).
The sweep wall time is the whole ``zslkit sweep`` command (Ray start, scheduling, summary); the
efficiency of the Tune loop alone (without Ray's start-up) is reported too. Every trial is the same
CVC-ZSL configuration on synthetic-tiny (one seed each, so the work is equal); the number of episodes
per epoch sets the trial length (default ~30 s on one core of the 2-core VM).

    python benchmarks/bench_sweep.py                 # 8 trials, 2 CPUs
    python benchmarks/bench_sweep.py --episodes 300  # shorter trials (~18 s)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs given to the local Ray instance")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=500, help="episodes per epoch (sets the trial length)")
    ap.add_argument("--plots", action="store_true", help="keep the PNG plots in every run directory")
    ap.add_argument("--out", help="result JSON (default benchmarks/results/sweep.json)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from zslkit.cli import main as zslkit

    started = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep"
        cmd = ["sweep", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--seeds", f"0-{args.trials - 1}",
               "--set", f"epochs={args.epochs}", "--set", f"episodes={args.episodes}", "--no-progress",
               "--out", str(out)] + ([] if args.plots else ["--no-plots"])
        t0 = time.perf_counter()
        rc = zslkit(cmd)
        loop = time.perf_counter() - t0
        wall = time.perf_counter() - started
        records = [json.loads(p.read_text()) for p in out.glob("runs/*/*/seed*/sweep_trial.json")]
        protocol = [json.loads((p.parent / "metrics.json").read_text())["wall_time_s"]
                    for p in out.glob("runs/*/*/seed*/sweep_trial.json")]
    ray.shutdown()
    if rc != 0 or len(records) != args.trials:
        print(f"sweep failed (exit {rc}, {len(records)} trials)", file=sys.stderr)
        return 1
    trial_times = [r["trial_wall_s"] for r in records]
    total = sum(trial_times)
    result = {"trials": args.trials, "cpus": args.cpus, "epochs": args.epochs, "episodes": args.episodes,
              "plots": args.plots, "trial_time_s": {"mean": total / len(trial_times), "min": min(trial_times),
                                                     "max": max(trial_times)},
              "protocol_time_s_mean": sum(protocol) / len(protocol), "ray_start_s": round(ray_start, 2),
              "sweep_loop_s": round(loop, 2), "wall_s": round(wall, 2),
              "efficiency": round(total / (args.cpus * wall), 3),
              "efficiency_without_ray_start": round(total / (args.cpus * loop), 3),
              "load_average_1min": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    write_result(result, args.out, "sweep.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
