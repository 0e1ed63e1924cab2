"""Time to accuracy (issue 20): zslkit's default CVC-ZSL run against the reference recipe through the plain loop.

In one process, on the same data and thread count:

(a) ``zslkit train --method cvc-zsl`` with default options (``experiment.execute``: validation selection, final
    fit, test), its wall time and the protocol's own split of it (``metrics.json`` ``time_s``);
(b) the reference recipe (cvcZSL's settings: ``--epochs`` x ``--episodes`` episodes of ``--ways`` x ``--shots``,
    Adam lr ``--lr``, weight decay 1e-4, StepLR halving every ``--step-size`` epochs, read at its last epoch, no
    selection) through the plain reference-style loop of ``benchmarks/bench_cvc.py`` (``PlainTrainer``),
    scored with zslkit's metric functions (ZSL T1; GZSL U, S, H without calibration).

Prints both wall times, both accuracies and the ratio; writes benchmarks/results/time_to_accuracy_<data>.json.

    python benchmarks/time_to_accuracy.py --data ../shared/data/icons --threads 1
    python benchmarks/time_to_accuracy.py --data synthetic-sun --threads 1
    python benchmarks/time_to_accuracy.py --data ../shared/data/digits-7seg --epochs 200 --ways 7 --step-size 100

Numbers: the data's label (real / SYNTHETIC) is printed; seed 0 both sides; (a) validation-selected, (b) the
recipe's last epoch (no selection).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import write_result

import bench_cvc
from zslkit.data.catalog import open_dataset
from zslkit.experiment import RunSpec, execute
from zslkit.protocol.metrics import gzsl_accuracy, zsl_top1


def plain_recipe(ds, *, epochs: int, episodes: int, ways: int, shots: int, lr: float, step_size: int,
                 seed: int = 0, curve_every: int = 0) -> dict:
    """Train bench_cvc.PlainTrainer with the reference recipe on trainval; score the test splits once at the end.
    ``curve_every`` > 0 also scores test every that many epochs (``curve``: [epoch, T1, H]; for reading how the
    recipe's accuracy grows with its episodes, never for selection); that scoring is left out of the times."""
    X, y_global = ds.split("trainval")
    seen, unseen = ds.seen_classes, ds.unseen_classes
    y = np.searchsorted(seen, y_global)
    E = ds.class_embeddings
    # the plain trainer reads its shapes from module constants: set them to this data's
    bench_cvc.EMB, bench_cvc.FEAT = E.shape[1], X.shape[1]
    bench_cvc.WAYS = min(ways, seen.size)
    bench_cvc.SHOTS = min(shots, int(np.bincount(y).min()))
    started, cpu = time.perf_counter(), time.process_time()
    trainer = bench_cvc.PlainTrainer(X, y, E[seen], torch.device("cpu"), seed=seed)
    trainer.opt = torch.optim.Adam(trainer.params, lr=lr, weight_decay=1e-4, foreach=False)
    sched = torch.optim.lr_scheduler.StepLR(trainer.opt, step_size=step_size, gamma=0.5)
    curve, curve_s = [], 0.0
    for epoch in range(1, epochs + 1):
        trainer.train(episodes)
        sched.step()
        if curve_every and epoch % curve_every == 0 and epoch < epochs:
            t = time.perf_counter()
            r = score_plain(trainer, ds)
            curve.append([epoch, round(r["zsl_t1"], 4), round(r["gzsl_h"], 4)])
            curve_s += time.perf_counter() - t
    train_s = time.perf_counter() - started - curve_s
    t = time.perf_counter()
    out = score_plain(trainer, ds)
    evaluation_s = time.perf_counter() - t
    cpu_s = time.process_time() - cpu - curve_s  # (curve scoring: wall time as an estimate of its CPU time)
    out.update(train_s=round(train_s, 2), evaluation_s=round(evaluation_s, 2), wall_s=round(train_s + evaluation_s, 2),
               cpu_s=round(cpu_s, 2), ways=bench_cvc.WAYS, shots=bench_cvc.SHOTS)
    if curve_every:
        out["curve_test_t1_h"] = curve + [[epochs, round(out["zsl_t1"], 4), round(out["gzsl_h"], 4)]]
    return out


def score_plain(trainer, ds) -> dict:
    """ZSL T1 and GZSL U, S, H (no calibration) of the plain trainer's generator on the test splits."""
    seen, unseen, E = ds.seen_classes, ds.unseen_classes, ds.class_embeddings
    classes = np.concatenate([seen, unseen])
    with torch.no_grad():
        def scores(Xs, cand):
            w = torch.relu(torch.relu(torch.tensor(E[cand]) @ trainer.w1 + trainer.b1) @ trainer.w2 + trainer.b2)
            w = torch.nn.functional.normalize(w, p=2, dim=1)
            x = torch.nn.functional.normalize(torch.tensor(Xs), p=2, dim=1)
            return (trainer.scale * (x @ w.T + trainer.bias)).numpy()
        Xu, yu = ds.split("test_unseen")
        Xs, ys = ds.split("test_seen")
        t1 = zsl_top1(scores(Xu, unseen), yu, unseen)
        g = gzsl_accuracy(scores(Xs, classes), ys, scores(Xu, classes), yu, classes, np.isin(classes, seen))
    return {"zsl_t1": t1, "gzsl_u": g.u, "gzsl_s": g.s, "gzsl_h": g.h}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a folder in any zslkit layout, or a synthetic preset name")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads for both sides")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--ways", type=int, default=16)
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--step-size", type=int, default=100)
    ap.add_argument("--curve-every", type=int, default=0,
                    help="also score the reference recipe on test every N epochs (untimed; 0: only at its end)")
    ap.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                    help="config overrides for the zslkit run, as zslkit train --set (default: none, the default run)")
    ap.add_argument("--only", choices=("both", "zslkit", "reference"), default="both",
                    help="run one side only (exploration; the recorded comparisons run both, back to back)")
    ap.add_argument("--run-dir", default=None, help="keep the zslkit run directory here (default: a temporary one)")
    ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/time_to_accuracy_<data>.json)")
    args = ap.parse_args(argv)
    overrides = parse_sets(ap, args.set)
    torch.set_num_threads(args.threads)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    ds = open_dataset(args.data)
    label = "SYNTHETIC" if ds.synthetic else "real"
    print(f"time to accuracy: cvc-zsl on {ds.name} ({label} data), {args.threads} thread(s), seed 0", flush=True)
    t = time.perf_counter()
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first optimizer imports torch._dynamo (seconds):
    import_s = round(time.perf_counter() - t, 2)  # a one-time cost of any torch process, paid here for both sides
    load = {"start": os.getloadavg()}

    ours = zslkit_run(args.data, overrides, args.run_dir) if args.only != "reference" else None
    load["between"] = os.getloadavg()
    ref = None
    if args.only != "zslkit":
        ref = plain_recipe(ds, epochs=args.epochs, episodes=args.episodes, ways=args.ways, shots=args.shots,
                           lr=args.lr, step_size=args.step_size, curve_every=args.curve_every)
    load["end"] = os.getloadavg()
    ratio = ours["wall_s"] / ref["wall_s"] if ours and ref else None
    print("| run | selection | T1 | U | S | H | wall s |\n|---|---|---|---|---|---|---|")
    if ours:
        what = "default" if not overrides else " ".join(f"{k}={v}" for k, v in overrides.items())
        print(f"| zslkit train ({what}) | validation | {_row(ours)} |")
    if ref:
        print(f"| reference recipe, plain loop ({args.epochs} x {args.episodes} of {ref['ways']} x {ref['shots']}, lr "
              f"{args.lr:g}) | last epoch | {_row(ref)} |")
    if ratio is not None:
        print(f"time ratio (zslkit / reference recipe): {ratio:.3f} (target <= 1/3); zslkit's parts: {ours['time_s']}")
    print(f"load average (1 min) at start / between / end: "
          + " / ".join(f"{v[0]:.2f}" for v in load.values()))
    name = Path(args.data).name or args.data
    write_result({"data": args.data, "dataset": ds.name, "synthetic": bool(ds.synthetic), "threads": args.threads,
                  "seed": 0, "command": "python benchmarks/time_to_accuracy.py " + " ".join(sys.argv[1:] if argv is None
                                                                                         else argv),
                  "load_average_1_5_15": load,
                  "first_optimizer_import_s": import_s, "zslkit": ours,
                  "reference_recipe": ref and {**ref, **{k: getattr(args, k) for k in ("epochs", "episodes", "lr",
                                                                                        "step_size")}},
                  "time_ratio": ratio}, args.out, f"time_to_accuracy_{name}.json")


def parse_sets(ap, items: list[str]) -> dict:
    """``KEY=VALUE`` strings -> overrides (values stay strings: the config coerces them, as ``zslkit train``)."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            ap.error(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


class Timeline:
    """A callback (zslkit.tracking) recording when each validation point arrived: ``points[stage/cN]`` lists
    ``[epoch, seconds since the run started, validation T1, validation H]`` (the profile of the search)."""

    def __init__(self):
        self.started, self.points = time.perf_counter(), {}

    def on_epoch(self, event) -> None:
        self.points.setdefault(f"{event.stage}/c{event.candidate} {event.overrides}", []).append(
            [event.epoch, round(time.perf_counter() - self.started, 2), round(event.metrics["zsl_t1"], 4),
             round(event.metrics["gzsl_h"], 4)])


def zslkit_run(data: str, overrides: dict, run_dir: str | None = None) -> dict:
    """(a): the whole ``zslkit train --method cvc-zsl`` run (validation selection, final fit, test), timed;
    the run directory is kept in ``run_dir`` when given (else a temporary folder)."""
    timeline = Timeline()
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(run_dir) if run_dir else Path(tmp) / "run"
        m = execute(RunSpec(method="cvc-zsl", dataset=data, device="cpu", overrides=dict(overrides)), out,
                    progress=False, callbacks=[timeline])
    ours = {k: m[k] for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")}
    val = m["selection"].get("validation_metrics") or {}
    ours.update(wall_s=round(time.perf_counter() - started, 2), cpu_s=round(time.process_time() - cpu, 2), time_s=m.get("time_s"), overrides=overrides,
                chosen=m["selection"]["chosen"], final_model=val.get("final_model"),
                validation={k: val.get(k) for k in ("zsl_t1", "gzsl_h")}, timeline=timeline.points)
    return ours


def _row(r: dict) -> str:
    return (f"{r['zsl_t1']:.3f} | {r['gzsl_u']:.3f} | {r['gzsl_s']:.3f} | {r['gzsl_h']:.3f} | {r['wall_s']:.1f}")


if __name__ == "__main__":
    main()
