"""Generator + critic iterations per second of the cycle-WGAN trainer vs a plain eager implementation.

CUB-shaped synthetic data: 1024-d class embeddings (150 seen classes), 2048-d features, 4096 hidden units in G
and D, batch 64, one critic step per generator step (the cycle-WGAN reference schedule), cycle loss on. The
estimated time to finish the CUB reference schedule is 926 GAN epochs x floor(7057 / 64) = 101,860 iterations
divided by the measured rate.

"ours"  : zslkit.methods.cyclewgan (data on the device, batches by tensor indexing, fused Adam, the critic's
          embedding projection computed once per batch, real and fake scored in one forward pass);
"eager" : a plain implementation: per-batch batching from numpy (+ host->device copy), nn.Sequential on [x; a],
          separate forward passes for real, fake and interpolates, unfused (for-loop) Adam.

Usage:  python benchmarks/bench_cyclewgan.py [--device cpu|cuda] [--steps N]
Writes benchmarks/results/cyclewgan_<device>.json and prints a Markdown table. Finishes in < 2 minutes.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from _common import sync, write_result
from torch import nn
from torch.nn import functional as F

from zslkit.methods.base import FitContext
from zslkit.methods.cyclewgan import CycleWGAN, gradient_penalty
from zslkit.methods.cyclewgan.gan import train_gan
from zslkit.runtime import device_description, resolve_device

N_TRAIN, FEAT, EMB, CLASSES, HIDDEN, BATCH = 7057, 2048, 1024, 150, 4096, 64
CUB_EPOCHS = 926
CUB_ITERS = CUB_EPOCHS * (N_TRAIN // BATCH)


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    E = rng.normal(size=(CLASSES, EMB)).astype(np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    y = rng.integers(0, CLASSES, N_TRAIN)
    X = np.maximum(rng.normal(0.5, 1.0, (N_TRAIN, FEAT)), 0).astype(np.float32)
    return X, y, E


def make_ours(X, y, E, device, warmup: int):
    cfg = dict(epochs=1, batch_size=BATCH, hidden_g=HIDDEN, hidden_d=HIDDEN, regressor_epochs=0, eval_every=1)
    m = CycleWGAN(cfg, seed=0, device=device)
    m._prepare()
    m.feature_dim_, m.embedding_dim_, m.num_train_classes_ = FEAT, EMB, CLASSES
    m._build_networks()
    m._init_gan_optimizers()
    m.R_.requires_grad_(False)
    m.epochs_trained_ = 0
    Xt, yt, Et = (torch.as_tensor(a, device=device) for a in (X, y, E))
    train_gan(m, Xt[:warmup * BATCH], yt[:warmup * BATCH], Et, FitContext())  # warm-up epoch

    def run(steps: int) -> None:  # one epoch of exactly `steps` iterations
        m.epochs_trained_ = 0
        train_gan(m, Xt[:steps * BATCH], yt[:steps * BATCH], Et, FitContext())

    return run


def make_eager(X, y, E, device, warmup: int):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(EMB * 2, HIDDEN), nn.LeakyReLU(0.2), nn.Linear(HIDDEN, FEAT), nn.ReLU()).to(device)
    D = nn.Sequential(nn.Linear(FEAT + EMB, HIDDEN), nn.LeakyReLU(0.2), nn.Linear(HIDDEN, 1)).to(device)
    R = nn.Linear(FEAT, EMB).to(device).requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999), foreach=False)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999), foreach=False)
    rng = np.random.default_rng(0)

    def step():
        idx = rng.choice(X.shape[0], BATCH, replace=False)
        x = torch.from_numpy(X[idx]).to(device)
        a = torch.from_numpy(E[y[idx]]).to(device)
        z = torch.randn(BATCH, EMB, device=device)
        fake = G(torch.cat([a, z], 1)).detach()
        d_real = D(torch.cat([x, a], 1)).mean()
        d_fake = D(torch.cat([fake, a], 1)).mean()
        gp = gradient_penalty(lambda v, c: D(torch.cat([v, c], 1)), x, fake, a, lam=10.0)
        opt_d.zero_grad()
        (d_fake - d_real + gp).backward()
        opt_d.step()
        for p in D.parameters():
            p.requires_grad = False
        z = torch.randn(BATCH, EMB, device=device)
        fake = G(torch.cat([a, z], 1))
        loss_g = -D(torch.cat([fake, a], 1)).mean() + 0.01 * F.mse_loss(R(fake), a)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad = True
        return float(loss_g.detach())  # the usual per-step logging sync

    for _ in range(warmup):
        step()

    def run(steps: int) -> None:
        for _ in range(steps):
            step()

    return run


def timed(run, steps: int, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    run(steps)
    sync(device)
    return steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    ap.add_argument("--steps", type=int, default=None, help="timed iterations per implementation "
                    "(default: 8 on CPU, 300 on CUDA)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds, best counts (default 3)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/cyclewgan_<device>.json)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    steps = args.steps or (300 if device.type == "cuda" else 8)
    warmup = 20 if device.type == "cuda" else 2
    X, y, E = make_data()
    runs = {"ours": make_ours(X, y, E, device, warmup), "eager": make_eager(X, y, E, device, warmup)}
    samples = {name: [] for name in runs}
    for _ in range(args.rounds):  # interleaved rounds; the best round counts (shared machines are noisy)
        for name, run in runs.items():
            samples[name].append(timed(run, steps, device))
    rates = {name: max(v) for name, v in samples.items()}
    rows = []
    for name, rate in rates.items():
        rows.append({"implementation": name, "iters_per_s": rate, "ms_per_iter": 1000.0 / rate,
                     "cub_schedule_hours": CUB_ITERS / rate / 3600.0, "speedup_vs_eager": rate / rates["eager"]})
    print(f"\ncycle-WGAN trainer, CUB-shaped ({FEAT}-d features, {EMB}-d embeddings, hidden {HIDDEN}, batch {BATCH}), "
          f"{device_description(device)}, best of {args.rounds} interleaved rounds of {steps} iterations\n")
    print("| implementation | iters/s | ms/iter | CUB schedule (926 ep x 110 it) | speed-up |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['implementation']} | {r['iters_per_s']:.2f} | {r['ms_per_iter']:.1f} | "
              f"{r['cub_schedule_hours']:.2f} h | {r['speedup_vs_eager']:.2f}x |")
    result = {"benchmark": "cyclewgan", "device": device_description(device), "torch": torch.__version__,
              "python": platform.python_version(), "shape": {"n_train": N_TRAIN, "feature_dim": FEAT,
              "embedding_dim": EMB, "hidden": HIDDEN, "batch": BATCH, "classes": CLASSES},
              "cub_schedule_iterations": CUB_ITERS, "timed_iterations": steps, "rounds": args.rounds,
              "all_rounds_iters_per_s": samples, "results": rows,
              "threads": torch.get_num_threads(), "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_result(result, args.out, f"cyclewgan_{device.type}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
