"""Where a CVC-ZSL training episode spends its time: operators (CPU) or kernels (CUDA) per episode.

Profiles ``--episodes`` eager inductive steps of the benchmark shape (16 ways x 4 shots, hidden 1600,
2048-d features) with ``torch.profiler`` and prints, per episode, the number of CUDA kernels (or, on the
CPU, aten operator calls, views included) and the kernels or operators with the most (self) time. On CUDA it also times steps replayed from a CUDA graph, so
launch overhead and kernel time can be told apart.

    python benchmarks/profile_cvc.py --device cpu --threads 1
    python benchmarks/profile_cvc.py --device cuda [--graph-episodes 8]

Writes benchmarks/results/profile_cvc_<device>.json. Timings only; no accuracy claims.
"""

from __future__ import annotations

import argparse
import sys
import time

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
