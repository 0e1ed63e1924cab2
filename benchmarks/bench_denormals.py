"""Subnormal floats on the CPU: CVC-ZSL's fit with ``runtime.flush_denormals`` (zslkit's default) against the same
fit with it disabled, back to back in one process, per-epoch wall times and the final model's test accuracy.

    python benchmarks/bench_denormals.py --data ../shared/data/icons --epochs 20 --step-size 12

Defaults: lr 1e-3 halved every ``--step-size`` epochs of 100 episodes of 32 x 4 (clipped to the data), weight decay
1e-4, seed 0, one thread, trained on trainval, scored on test at the last epoch (no selection). The slowdown starts once the StepLR
step has shrunk the updates enough for values to fall below float32's normal range (1.2e-38).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
from _common import write_result

import zslkit.methods.base as base
from zslkit.data.catalog import open_dataset
from zslkit.methods.registry import get_method
from zslkit.protocol.metrics import gzsl_accuracy, zsl_top1


def fit_once(ds, flush: bool, args) -> dict:
    X, yg = ds.split("trainval")
    seen, unseen = ds.seen_classes, ds.unseen_classes
    E = ds.class_embeddings
    times, last = [], [time.perf_counter()]

    def monitor(epoch, m):
        now = time.perf_counter()
        times.append(round(now - last[0], 3))
        last[0] = now

    real = base.flush_denormals
    if not flush:
        base.flush_denormals = lambda enabled=True: contextlib.nullcontext()
    try:
        model = get_method("cvc-zsl")(lr=args.lr, epochs=args.epochs, episodes=args.episodes, ways=32, shots=4,
                                      step_size=args.step_size, weight_decay=1e-4, episode_overflow="clip",
                                      seed=0, device="cpu")
        started = time.perf_counter()
        model.fit(X, np.searchsorted(seen, yg), E[seen], monitor=monitor)
        wall = time.perf_counter() - started
    finally:
        base.flush_denormals = real
    Xu, yu = ds.split("test_unseen")
    Xs, ys = ds.split("test_seen")
    classes = np.concatenate([seen, unseen])
    t1 = zsl_top1(model.decision_function(Xu, E[unseen]), yu, unseen)
    g = gzsl_accuracy(model.decision_function(Xs, E[classes]), ys, model.decision_function(Xu, E[classes]), yu,
                      classes, np.isin(classes, seen))
    return {"flush": flush, "wall_s": round(wall, 2), "epoch_s": times, "zsl_t1": float(t1), "gzsl_h": float(g.h)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/icons")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--episodes", type=int, default=100, help="episodes per epoch")
    ap.add_argument("--step-size", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = open_dataset(args.data)
    print(f"subnormal floats: cvc-zsl on {ds.name} ({'SYNTHETIC' if ds.synthetic else 'real'} data), "
          f"{args.threads} thread(s), seed 0")
    rows = [fit_once(ds, flush, args) for flush in (True, False)]
    print("| flush | wall s | mean epoch s before / after the first lr step | ZSL T1 | GZSL H (test, last epoch) |")
    print("|---|---:|---|---:|---:|")
    for r in rows:
        before, after = r["epoch_s"][:args.step_size], r["epoch_s"][args.step_size:]
        r["mean_epoch_s_before_after_step"] = [round(float(np.mean(before)), 2),
                                               round(float(np.mean(after)), 2) if after else None]
        print(f"| {r['flush']} | {r['wall_s']} | {r['mean_epoch_s_before_after_step']} | {r['zsl_t1']:.4f} | {r['gzsl_h']:.4f} |")
    print(f"ratio (flushed / not): {rows[0]['wall_s'] / rows[1]['wall_s']:.3f}; same T1 and H: "
          f"{(rows[0]['zsl_t1'], rows[0]['gzsl_h']) == (rows[1]['zsl_t1'], rows[1]['gzsl_h'])}")
    write_result({"data": args.data, "dataset": ds.name, "synthetic": ds.synthetic, "threads": args.threads,
                  "seed": 0, "epochs": args.epochs, "episodes": args.episodes, "step_size": args.step_size, "lr": args.lr, "runs": rows},
                 args.out, f"denormals_{ds.name}.json")


if __name__ == "__main__":
    main()
