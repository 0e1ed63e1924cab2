"""Where a CVC-ZSL training episode spends its time: operators (CPU) or kernels (CUDA) per episode.

Profiles ``--episodes`` eager inductive steps of the benchmark shape (16 ways x 4 shots, hidden 1600,
2048-d features) with ``torch.profiler`` and prints, per episode, the number of CUDA kernels (or, on the
CPU, aten operator calls, views included) and the kernels or operators with the most (self) time. On CUDA it also times steps replayed from a CUDA graph, so
launch overhead and kernel time can be told apart.

    python benchmarks/profile_cvc.py --device cpu --threads 1
    python benchmarks/profile_cvc.py --device cuda [--graph-episodes 8]

Writes benchmarks/results/profile_cvc_<device>.json. Timings only; no accuracy claims.

``--data DATA`` profiles the default protocol's parts instead (issue 20): on DATA's validation view and on its
trainval, the seconds per training epoch of the default configuration (``--epochs`` epochs timed), per validation
point (the validation view's ZSL and GZSL scores and the calibration sweep that selection runs at every point)
and of the final test evaluation; with ``--timeline`` (a ``time_to_accuracy.py`` result) it splits that run's
wall time into candidates' training, validation points, final fit and evaluation.

    python benchmarks/profile_cvc.py --data ../shared/data/icons --threads 1 \
        --timeline benchmarks/results/time_to_accuracy_icons.json --out benchmarks/results/profile_cvc_icons.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import sync, write_result
from torch.profiler import ProfilerActivity, profile

from zslkit.methods.cvc.episodes import EpisodeSampler
from zslkit.methods._optim import make_adam
from zslkit.methods.cvc.graph_step import InductiveStep
from zslkit.methods.cvc.networks import ClassifierGenerator
from zslkit.runtime import device_description, resolve_device

WAYS, SHOTS, HIDDEN, FEAT, EMB, SEEN, PER_CLASS = 16, 4, 1600, 2048, 85, 40, 500


def make_step(device, use_graph: bool, graph_episodes: int):
    g = torch.Generator().manual_seed(0)
    X = F.normalize(torch.relu(torch.randn(SEEN * PER_CLASS, FEAT, generator=g)), dim=1).to(device)
    y = torch.arange(SEEN).repeat_interleave(PER_CLASS).to(device)
    E = torch.rand(SEEN, EMB, generator=g).to(device)
    net = ClassifierGenerator(EMB, HIDDEN, FEAT, seed=0).to(device)
    opt = make_adam(net.parameters(), 1e-5, weight_decay=1e-4, capturable=use_graph)
    step = InductiveStep(net, X, E, WAYS, SHOTS, opt, 1.0, use_graph, graph_episodes)
    sampler = EpisodeSampler(y, SEEN)
    gen = torch.Generator(device=device).manual_seed(0)
    return step, sampler, gen


def profile_eager(device, episodes: int, top: int) -> dict:
    step, sampler, gen = make_step(device, False, 1)
    idx, cls = sampler.sample(episodes + 10, WAYS, SHOTS, gen)
    step.run(idx[:10], cls[:10])  # warm-up
    sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step.run(idx[10:], cls[10:])
        sync(device)
    if device.type == "cuda":
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        total_us = sum(e.device_time for e in kernels)
        by_name: dict[str, list[float]] = {}
        for e in kernels:
            by_name.setdefault(e.name, []).append(e.device_time)
        unit = "kernel"
    else:  # aten operators with their self (exclusive) CPU time
        kernels = [e for e in prof.events() if e.name.startswith("aten::")]
        total_us = sum(e.self_cpu_time_total for e in kernels)
        by_name = {}
        for e in kernels:
            by_name.setdefault(e.name, []).append(e.self_cpu_time_total)
        unit = "operator"
    rows = sorted(((name, len(t) / episodes, sum(t) / episodes) for name, t in by_name.items()),
                  key=lambda r: -r[2])
    return {"unit": unit, "per_episode_count": len(kernels) / episodes, "per_episode_us": total_us / episodes,
            "top": [{"name": n[:120], "per_episode_count": c, "per_episode_us": us} for n, c, us in rows[:top]]}


def time_graph(device, episodes: int, graph_episodes: int) -> dict:
    step, sampler, gen = make_step(device, True, graph_episodes)
    idx, cls = sampler.sample(episodes + 64, WAYS, SHOTS, gen)
    step.run(idx[:64], cls[:64])  # warm-up and capture
    sync(device)
    t = time.perf_counter()
    step.run(idx[64:], cls[64:])
    sync(device)
    return {"graph_episodes": graph_episodes, "captured": step.graph is not None,
            "per_episode_us": (time.perf_counter() - t) / episodes * 1e6}


def profile_protocol(data: str, epochs: int, timeline: str | None) -> dict:
    """Seconds per part of the default validation protocol on ``data`` (see the module docstring)."""
    from dataclasses import replace

    import numpy as np

    from zslkit.data.catalog import open_dataset
    from zslkit.methods.cvc import CVCZSL
    from zslkit.pipeline import fit_on
    from zslkit.protocol.evaluate import TestScores
    from zslkit.protocol.selection import validation_view

    ds = open_dataset(data)
    view = validation_view(ds)
    cfg = CVCZSL.default_config(ds, "inductive")
    out = {"data": data, "synthetic": bool(ds.synthetic), "config": {k: getattr(cfg, k) for k in (
        "ways", "shots", "epochs", "episodes", "lr_grid", "validation_patience", "eval_every")}}
    points = []

    def monitor(epoch, m):
        t = time.perf_counter()
        ts = TestScores(m, view)
        met = ts.metrics(ts.best_gamma())
        points.append(time.perf_counter() - t)
        return met

    for name, d, mon in (("validation_view", view, monitor), ("trainval", ds, None)):
        model = CVCZSL(replace(cfg, epochs=epochs), device="cpu")
        t = time.perf_counter()
        fit_on(model, d, False, mon)
        wall = time.perf_counter() - t
        epoch_s = [r["time_s"] for r in model.history_]
        per_epoch = float(np.median(np.diff([0.0, *epoch_s]))) if epoch_s else wall / epochs
        out[name] = {"epochs_timed": epochs, "seconds_per_epoch": per_epoch,
                     "seconds_per_episode": per_epoch / cfg.episodes, "fit_wall_s": wall}
    out["validation_point_s"] = float(np.median(points))
    t = time.perf_counter()
    TestScores(model, ds).metrics(0.0, curve=True)
    out["test_evaluation_s"] = time.perf_counter() - t
    if timeline:
        run = json.loads(Path(timeline).read_text())["zslkit"]
        parts = run["time_s"]
        cands = {}
        for key, pts in run["timeline"].items():
            cands[key] = {"epochs": len(pts), "last_epoch": pts[-1][0],
                          "validation_points_s": len(pts) * out["validation_point_s"],
                          "training_s": len(pts) * out["validation_view"]["seconds_per_epoch"],
                          "best_validation_h": max(p[3] for p in pts)}
        final_epochs = run["chosen"].get("epochs")
        out["run"] = {"wall_s": run["wall_s"], "time_s": parts, "candidates": cands,
                      "final_fit_epochs": final_epochs,
                      "final_fit_estimate_s": (final_epochs or 0) * out["trainval"]["seconds_per_epoch"],
                      "note": "estimates: epochs x this profile's seconds per epoch / per point (measured now, "
                              "not in that run)"}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="profile the default protocol's parts on this data instead")
    ap.add_argument("--epochs", type=int, default=3, help="--data: epochs timed per fit")
    ap.add_argument("--timeline", default=None, help="--data: a time_to_accuracy.py JSON to split into parts")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--graph-episodes", type=int, default=8)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data:
        result = profile_protocol(args.data, args.epochs, args.timeline)
        print(json.dumps(result, indent=1, default=str))
        name = Path(args.data).name or args.data
        write_result(result, args.out, f"profile_cvc_{name}.json")
        return 0
    result = {"device": device_description(device), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "episodes": args.episodes,
              "eager": profile_eager(device, args.episodes, args.top)}
    if device.type == "cuda":
        result["graph"] = time_graph(device, max(args.episodes, 1000), args.graph_episodes)
    eager = result["eager"]
    print(f"\n### CVC-ZSL training episode, {result['device']}, torch {torch.__version__}\n")
    print(f"eager: {eager['per_episode_count']:.0f} {eager['unit']}s per episode, "
          f"{eager['per_episode_us']:.0f} us of {eager['unit']} time per episode")
    if "graph" in result:
        print(f"CUDA graph ({args.graph_episodes} episodes per graph): {result['graph']['per_episode_us']:.0f} us "
              f"wall per episode")
    print(f"\n| {eager['unit']} | per episode | us per episode |\n|---|---:|---:|")
    for row in eager["top"]:
        print(f"| `{row['name']}` | {row['per_episode_count']:.1f} | {row['per_episode_us']:.1f} |")
    write_result(result, args.out, f"profile_cvc_{device.type}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
