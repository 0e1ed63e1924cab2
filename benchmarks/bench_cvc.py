"""CVC-ZSL training speed: zslkit's episodic trainer vs a plain per-sample-loop implementation.

Both train the same model (classifier generator, hidden 1600, cosine classifier, Adam + weight decay,
gradient clipping at 1) on AWA1-shaped synthetic data (40 seen classes, 2048-d features, 85-d
embeddings, 16 ways x 4 shots). The plain trainer builds each episode the way the reference code does:
per-class ``nonzero`` over all labels, ``np.random.choice`` without replacement, one sample at a time
appended with ``torch.cat``, copied to the device every episode, and an unfused (for-loop) Adam. zslkit's
trainer keeps the data on the device, draws episodes with tensor index arithmetic, uses foreach (CPU) or
fused capturable (CUDA, replayed as a CUDA graph) Adam.

    python benchmarks/bench_cvc.py --device cpu [--episodes 300] [--threads N] [--rounds 3]
    python benchmarks/bench_cvc.py --device cuda [--graph-episodes 8] [--tf32]

zslkit's rate is reported two ways: steady state (the time difference between fits of N and N/10
episodes, so set-up is left out as it is for the plain trainer) and whole fit (set-up included); both are
medians over ``--rounds``. ``--tf32`` trains zslkit with TF32 matmuls (the plain trainer stays float32).

Prints a Markdown table and writes benchmarks/results/cvc_<device>.json. Timings only; no accuracy claims.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import sync, write_result

from zslkit.methods.cvc import CVCZSL, CVCConfig
from zslkit.runtime import device_description, resolve_device

WAYS, SHOTS, HIDDEN, FEAT, EMB = 16, 4, 1600, 2048, 85
SEEN, UNSEEN, PER_CLASS, TEST = 40, 10, 500, 5685


def make_data(seed: int = 0):
    """AWA1-shaped random data (the speed does not depend on what the features mean)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(SEEN), PER_CLASS)
    rng.shuffle(y)
    X = np.maximum(rng.normal(0, 1, (y.size, FEAT)), 0).astype(np.float32)
    E = rng.random((SEEN + UNSEEN, EMB)).astype(np.float32)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    Xt = np.maximum(rng.normal(0, 1, (TEST, FEAT)), 0).astype(np.float32)
    return X, y, E[:SEEN], E[SEEN:], Xt


# ------------------------------------------------------------------------------------------------
# the plain implementation (reference style)


class PlainTrainer:
    def __init__(self, X, y, E, device, seed=0):
        self.X = torch.tensor(X)  # stays on the CPU, as in the reference's data loader
        self.y = y
        self.E = torch.tensor(E)
        self.classes = np.unique(y)
        self.device = device
        self.rng = np.random.RandomState(seed)
        g = torch.Generator().manual_seed(seed)
        self.w1 = (torch.randn(EMB, HIDDEN, generator=g) * 0.02).to(device).requires_grad_()
        self.b1 = torch.zeros(HIDDEN, device=device, requires_grad=True)
        self.w2 = (torch.randn(HIDDEN, FEAT, generator=g) * 0.02).to(device).requires_grad_()
        self.b2 = torch.zeros(FEAT, device=device, requires_grad=True)
        self.scale = torch.full((1,), 10.0, device=device, requires_grad=True)
        self.bias = torch.zeros(1, device=device, requires_grad=True)
        self.params = [self.w1, self.b1, self.w2, self.b2, self.scale, self.bias]
        self.opt = torch.optim.Adam(self.params, lr=1e-5, weight_decay=1e-4, foreach=False)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=500, gamma=0.5)

    def episode(self):
        chosen = self.rng.choice(self.classes, WAYS, False)
        feats = atts = None
        labels = torch.LongTensor(WAYS * SHOTS)
        for i in range(WAYS):
            members = (self.y == chosen[i]).nonzero()[0]
            picked = self.rng.choice(members, SHOTS, False)
            for j in range(SHOTS):
                f = self.X[picked[j]].unsqueeze(0)
                a = self.E[chosen[i]].unsqueeze(0)
                feats = f if feats is None else torch.cat((feats, f), 0)
                atts = a if atts is None else torch.cat((atts, a), 0)
                labels[i * SHOTS + j] = i
        return feats, atts, labels

    def step(self):
        feats, atts, labels = self.episode()
        x = F.normalize(feats.to(self.device), p=2, dim=1)
        a = atts[torch.arange(0, WAYS * SHOTS, SHOTS)].to(self.device)
        w = F.relu(F.relu(a @ self.w1 + self.b1) @ self.w2 + self.b2)
        w = F.normalize(w, p=2, dim=1)
        score = self.scale * (x @ w.T + self.bias)
        loss = F.cross_entropy(score, labels.to(self.device))
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1, foreach=False)
        self.opt.step()
        return loss

    def train(self, episodes):
        for _ in range(episodes):
            loss = self.step()
        float(loss.detach())

    def score_test(self, Xt, E_cand):
        with torch.no_grad():
            w = F.relu(F.relu(torch.tensor(E_cand).to(self.device) @ self.w1 + self.b1) @ self.w2 + self.b2)
            w = F.normalize(w, p=2, dim=1)
            preds = []
            for i in range(Xt.shape[0]):  # one test sample at a time
                x = F.normalize(torch.tensor(Xt[i:i + 1]).to(self.device), p=2, dim=1)
                preds.append(int((self.scale * (x @ w.T + self.bias)).argmax()))
            return np.array(preds)


# ------------------------------------------------------------------------------------------------


def _fit_seconds(X, y, E, device, episodes, graph_episodes, tf32=False):
    cfg = CVCConfig(ways=WAYS, shots=SHOTS, hidden_dim=HIDDEN, lr=1e-5, weight_decay=1e-4, step_size=500,
                    epochs=1, episodes=episodes, graph_episodes=graph_episodes, tf32=tf32)
    m = CVCZSL(cfg, seed=0, device=str(device))
    sync(device)
    t = time.perf_counter()
    m.fit(X, y, E)
    sync(device)
    return time.perf_counter() - t, m


def time_ours(X, y, E, device, episodes, warmup, graph_episodes=8, rounds=1, tf32=False):
    """(whole-fit episodes/s, steady-state episodes/s, model), medians over ``rounds``.

    Whole fit: one ``fit`` of ``episodes`` episodes, set-up included (data to the device, generator
    initialisation, sampler tables, CUDA graph warm-up and capture). Steady state: the difference between
    that fit and a fit of ``episodes // 10`` episodes, which removes the set-up cost the same way the
    plain trainer's timing leaves out its construction and warm-up."""
    _fit_seconds(X, y, E, device, warmup, graph_episodes, tf32)  # first use: allocations, kernels, cuBLAS handles
    short = max(episodes // 10, warmup)
    whole, steady = [], []
    for _ in range(rounds):
        t_long, model = _fit_seconds(X, y, E, device, episodes, graph_episodes, tf32)
        t_short, _ = _fit_seconds(X, y, E, device, short, graph_episodes, tf32)
        whole.append(episodes / t_long)
        steady.append((episodes - short) / max(t_long - t_short, 1e-9))
    return float(np.median(whole)), float(np.median(steady)), model


def time_plain(X, y, E, device, episodes, warmup, rounds=1):
    """Plain trainer episodes/s after ``warmup`` episodes (construction not timed), median over rounds."""
    p = PlainTrainer(X, y, E, device)
    p.train(warmup)
    rates = []
    for _ in range(rounds):
        sync(device)
        t = time.perf_counter()
        p.train(episodes)
        sync(device)
        rates.append(episodes / (time.perf_counter() - t))
    return float(np.median(rates)), p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--episodes", type=int, default=None, help="timed episodes (default: 300 cpu, 2000 cuda)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/cvc_<device>.json)")
    ap.add_argument("--graph-episodes", type=int, default=8, help="training steps per captured CUDA graph")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per trainer (medians are reported)")
    ap.add_argument("--tf32", action="store_true", help="zslkit trains with TF32 matmuls (CUDA; the plain trainer "
                    "stays in float32)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    episodes = args.episodes or (2000 if device.type == "cuda" else 300)
    warmup = 20
    X, y, E, EU, Xt = make_data()

    ours_whole, ours_eps, model = time_ours(X, y, E, device, episodes, warmup, args.graph_episodes, args.rounds,
                                            args.tf32)
    plain_eps, plain = time_plain(X, y, E, device, max(episodes // 4, 50), warmup, args.rounds)

    # evaluation: score the AWA1-sized unseen test set against the unseen classes
    clf = model.build_classifier(EU)
    clf.decision_function(Xt[:256])
    sync(device)
    t = time.perf_counter()
    ours_pred = clf.decision_function(Xt).argmax(1)
    sync(device)
    ours_eval = time.perf_counter() - t
    t = time.perf_counter()
    plain.score_test(Xt, EU)
    sync(device)
    plain_eval = time.perf_counter() - t
    del ours_pred

    result = {
        "benchmark": "cvc-zsl training episodes per second (AWA1-shaped synthetic data)",
        "shape": {"ways": WAYS, "shots": SHOTS, "hidden": HIDDEN, "feature_dim": FEAT, "embedding_dim": EMB,
                  "seen_classes": SEEN, "train_samples": int(y.size), "test_samples": TEST},
        "device": device_description(device),
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "episodes_timed": {"zslkit": episodes, "plain": max(episodes // 4, 50)},
        "graph_episodes": args.graph_episodes,
        "rounds": args.rounds,
        "tf32": bool(args.tf32 and device.type == "cuda"),
        "note": ("medians over rounds. zslkit steady state = (fit(N) - fit(N/10)) time difference, set-up removed "
                 "as the plain trainer's timing leaves out its construction and warm-up; whole fit = fit(N) with "
                 "data to device, sampler tables and CUDA graph capture included"),
        "zslkit_episodes_per_s": ours_eps,
        "zslkit_whole_fit_episodes_per_s": ours_whole,
        "plain_episodes_per_s": plain_eps,
        "speedup": ours_eps / plain_eps,
        "speedup_whole_fit": ours_whole / plain_eps,
        "eval_seconds": {"zslkit_batched": ours_eval, "plain_per_sample": plain_eval},
        "eval_speedup": plain_eval / ours_eval,
    }
    print(f"\n### CVC-ZSL training speed, {result['device']}, torch {torch.__version__}\n")
    print("| trainer | episodes/s (steady) | episodes/s (whole fit) | test-set scoring (s) |")
    print("|---|---:|---:|---:|")
    print(f"| plain (per-sample loop, unfused Adam) | {plain_eps:.1f} | | {plain_eval:.3f} |")
    print(f"| zslkit | {ours_eps:.1f} | {ours_whole:.1f} | {ours_eval:.3f} |")
    print(f"| **ratio** | **{result['speedup']:.2f}x** | {result['speedup_whole_fit']:.2f}x | "
          f"**{result['eval_speedup']:.1f}x** |")
    write_result(result, args.out, f"cvc_{device.type}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
