"""f-CLSWGAN parity harness (issue 18): zslkit's reference recipe beside the release's recorded numbers.

For every fold of a real dev set in ``../shared/data`` (xlsa17 layout, fold K > 0 from ``folds/foldK_att_splits.mat``)
and every zslkit seed this trains ``--variant f-clswgan-reference`` (``CycleWGAN.default_config(dataset,
variant="f-clswgan-reference")``, the config of ``zslkit train --method cycle-wgan --variant f-clswgan-reference
--selection fixed``) for the GAN epochs of the recorded reference runs (plus any ``--set``) on trainval and scores
the test splits at every GAN epoch from ``--trace-from`` on, as the patched release does: a fresh ZSL and GZSL final
classifier per epoch, used at its last epoch (nothing chosen on test), and the generator's seen-class fidelity
(nearest synthetic seen-class mean on the real test_seen features, as the patched release measures it).
``--head KEY=VALUE`` also scores heads with that final-classifier override from the same generator (a paired
comparison, e.g. ``cls_init=uniform``). Printed per fold: the release at its last GAN epoch per recorded seed (its
classifiers' last epoch; in brackets their best test epoch of 25, which the release prints) and its mean over the
traced epochs, zslkit the same; then the means over the folds. One GAN epoch's T1 is noisy (the release's own moves
by 0.02-0.07 sd from epoch to epoch), so the trace mean is the steadier comparison.

    python benchmarks/parity_gan.py --data digits-7seg [--folds 0,1,2,3] [--seeds 0] [--trace-from 31]
        [--set KEY=VALUE ...] [--head KEY=VALUE ...] [--out benchmarks/results/parity_gan_digits-7seg.json]

``--out`` keeps the rows of other folds / seeds already in the file when the settings are the same (run folds one
at a time). The reference numbers come from ``benchmarks/results/parity_gan_reference.json`` (commit, command,
seeds and the patches, in words). All numbers are real data, no selection (fixed settings).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _folds  # noqa: E402  (benchmarks/ is not a package)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
REFERENCE = HERE / "results" / "parity_gan_reference.json"
KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")


def fold_root(data: Path, fold: int, tmp: Path) -> Path:
    """The xlsa17 folder of ``fold`` (see ``_folds.fold_root``)."""
    return _folds.fold_root(data, fold, tmp, prog="parity_gan")


def parse_sets(items: list[str]) -> dict:
    out = {}
    for kv in items:
        if "=" not in kv:
            raise SystemExit(f"parity_gan: --set/--head {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def run_zslkit(root: Path, epochs: int, seed: int, sets: dict, heads: dict, trace_from: int) -> dict:
    """The reference recipe on trainval for ``epochs`` GAN epochs; test numbers at every epoch >= ``trace_from``."""
    import numpy as np
    import torch

    from zslkit.data.catalog import open_dataset
    from zslkit.methods.config import apply_overrides
    from zslkit.methods.cyclewgan import CycleWGAN
    from zslkit.protocol.evaluate import TestScores

    torch.set_num_threads(1)
    ds = open_dataset(str(root))
    cfg = apply_overrides(CycleWGAN.default_config(ds, variant="f-clswgan-reference"),
                          {"epochs": epochs, **sets}, source="--set")
    cfg = dataclasses.replace(cfg, eval_every=1)  # every epoch from trace_from is scored (own noise: GAN unchanged)
    seen = ds.seen_classes
    lut = {c: i for i, c in enumerate(seen)}
    tv = ds.splits["trainval"]
    X, y, E = ds.features[tv], np.array([lut[c] for c in ds.labels[tv]]), ds.class_embeddings[seen]
    trace, t0 = [], time.perf_counter()

    def monitor(epoch, model):
        if epoch < trace_from:
            return None
        base = model.config_
        row = {"epoch": epoch, **{k: round(float(v), 4) for k, v in TestScores(model, ds).metrics().items()}}
        row.update({k: round(float(v), 4) for k, v in model.generator_diagnostics().items()})
        # the release's fidelity: nearest synthetic seen-class mean on the real test_seen features
        row["test_seen_fidelity"] = round(float(model.class_fidelity(ds, "test_seen")["val_fidelity"]), 4)
        for k, v in heads.items():
            model.config_ = apply_overrides(base, {k: v}, source="--head")
            row.update({f"{m}[{k}={v}]": round(float(x), 4)
                        for m, x in TestScores(model, ds).metrics().items()})
        model.config_ = base
        row["time_s"] = round(time.perf_counter() - t0, 1)
        trace.append(row)
        return None

    CycleWGAN(cfg, seed=seed, device="cpu", progress=False).fit(X, y, E, monitor=monitor)
    return {"seed": seed, "trace": trace}


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else float("nan")


def release_runs(runs: dict, fold: int, nepoch: int, trace_from: int) -> list[dict]:
    """The recorded release runs of ``fold``, one per seed: the last GAN epoch and the mean over the traced ones."""
    out = []
    for seed, folds in sorted(runs.items(), key=lambda kv: int(kv[0])):
        rec = folds.get(str(fold))
        if not rec:
            continue
        last = ([e for e in rec["epochs"] if e["epoch"] == nepoch] or rec["epochs"][-1:])[0]
        span = [e for e in rec["epochs"] if trace_from <= e["epoch"] <= nepoch]
        out.append({"seed": int(seed), "last": last,
                    "trace_mean": {k: mean([e[k] for e in span]) for k in ("zsl_t1_last", "gzsl_h_last",
                                                                            "zsl_t1_best", "gzsl_h_best",
                                                                            "seen_ncm_fidelity")}})
    return out


def zslkit_summary(run: dict) -> dict:
    last = run["trace"][-1]
    keys = [k for k in last if k not in ("epoch", "time_s")]
    return {"seed": run["seed"], "last": last, "trace_mean": {k: mean([r.get(k) for r in run["trace"]]) for k in keys},
            "trace": run["trace"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits-7seg", help="dataset folder name in ../shared/data (or a path)")
    ap.add_argument("--folds", default=None, help="comma-separated folds (default: those recorded for the reference)")
    ap.add_argument("--seeds", default="0", help="comma-separated zslkit seeds; 'none': train nothing, print the "
                    "side-by-side of the rows already in --out against the current reference file")
    ap.add_argument("--trace-from", type=int, default=51, help="first GAN epoch scored on test (both sides)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="zslkit config override (repeatable), after the recorded ones")
    ap.add_argument("--head", action="append", default=[], metavar="KEY=VALUE",
                    help="also score final classifiers with this head override from the same generator (repeatable)")
    ap.add_argument("--reference", default=str(REFERENCE), help="the recorded reference runs (JSON)")
    ap.add_argument("--out", default=None, help="write zslkit's numbers and the side-by-side here (JSON)")
    args = ap.parse_args(argv)
    found = _folds.dataset_and_reference(args.data, args.reference, SHARED, "parity_gan")
    if found is None:
        return 2
    data, ref = found
    runs, nepoch = ref["runs"], ref["nepoch"]
    recorded = sorted({int(k) for folds in runs.values() for k in folds})
    folds = [int(f) for f in args.folds.split(",")] if args.folds else recorded
    seeds = [] if args.seeds.strip().lower() in ("", "none") else [int(s) for s in args.seeds.split(",")]
    sets, heads = {**parse_sets(ref.get("zslkit_sets", [])), **parse_sets(args.set)}, parse_sets(args.head)
    settings = {"sets": sets, "heads": heads, "trace_from": args.trace_from, "nepoch": nepoch}
    old = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).is_file() else {}
    rows = {r["fold"]: r for r in old.get("folds", [])} if old.get("settings") == settings else {}
    with tempfile.TemporaryDirectory() as tmp:
        for fold in folds:
            theirs = release_runs(runs, fold, nepoch, args.trace_from)
            if not theirs:
                print(f"parity_gan: no reference runs recorded for {data.name} fold {fold}", file=sys.stderr)
                return 2
            mine = {m["seed"]: m for m in rows.get(fold, {}).get("zslkit", [])}
            if not mine and not seeds:
                continue
            for s in seeds:
                mine[s] = zslkit_summary(run_zslkit(fold_root(data, fold, Path(tmp)), nepoch, s, sets, heads,
                                                    args.trace_from))
            rows[fold] = {"fold": fold, "release": theirs, "zslkit": [mine[s] for s in sorted(mine)]}
            for r in theirs:
                last, tm = r["last"], r["trace_mean"]
                print(f"{data.name} fold {fold} release seed {r['seed']:>5}: epoch {last['epoch']} T1 "
                      f"{last['zsl_t1_last']:.3f} ({last['zsl_t1_best']:.3f}) H {last['gzsl_h_last']:.3f} "
                      f"({last['gzsl_h_best']:.3f}) fidelity {last['seen_ncm_fidelity']:.3f} | epochs "
                      f"{args.trace_from}-{nepoch}: T1 {tm['zsl_t1_last']:.3f} H {tm['gzsl_h_last']:.3f}")
            for m in rows[fold]["zslkit"]:
                last, tm = m["last"], m["trace_mean"]
                extra = "".join(f" {k} {v:.3f}" for k, v in tm.items() if "[" in k and k.split("[")[0] in
                                ("zsl_t1", "gzsl_h"))
                print(f"{data.name} fold {fold} zslkit  seed {m['seed']:>5}: epoch {last['epoch']} T1 "
                      f"{last['zsl_t1']:.3f} H {last['gzsl_h']:.3f} (U {last['gzsl_u']:.3f} S {last['gzsl_s']:.3f}) "
                      f"fidelity {last.get('test_seen_fidelity', float('nan')):.3f} (trainval rows "
                      f"{last['seen_fidelity']:.3f}) | epochs {args.trace_from}-{nepoch}: T1 "
                      f"{tm['zsl_t1']:.3f} H {tm['gzsl_h']:.3f}{extra}", flush=True)
    table = [rows[f] for f in sorted(rows) if seeds or f in folds]  # a run keeps the file's other folds
    if not table:
        print("parity_gan: nothing to compare (no zslkit rows for these folds)", file=sys.stderr)
        return 2

    def over_folds(side: str, part: str, key: str) -> float:
        return mean([mean([r[part][key] for r in row[side]]) for row in table])

    summary = {
        "folds": [row["fold"] for row in table],
        "release_seeds": sorted({r["seed"] for row in table for r in row["release"]}),
        "zslkit_seeds": sorted({m["seed"] for row in table for m in row["zslkit"]}),
        "release_t1_last_epoch": over_folds("release", "last", "zsl_t1_last"),
        "release_h_last_epoch": over_folds("release", "last", "gzsl_h_last"),
        "release_t1_best_cls_epoch": over_folds("release", "last", "zsl_t1_best"),
        "release_h_best_cls_epoch": over_folds("release", "last", "gzsl_h_best"),
        "release_t1_trace_mean": over_folds("release", "trace_mean", "zsl_t1_last"),
        "release_h_trace_mean": over_folds("release", "trace_mean", "gzsl_h_last"),
        "zslkit_t1_last_epoch": over_folds("zslkit", "last", "zsl_t1"),
        "zslkit_h_last_epoch": over_folds("zslkit", "last", "gzsl_h"),
        "zslkit_t1_trace_mean": over_folds("zslkit", "trace_mean", "zsl_t1"),
        "zslkit_h_trace_mean": over_folds("zslkit", "trace_mean", "gzsl_h"),
    }
    print(f"{data.name}, folds {summary['folds']}: release (seeds {summary['release_seeds']}) last epoch T1 "
          f"{summary['release_t1_last_epoch']:.3f} H {summary['release_h_last_epoch']:.3f}, epochs "
          f"{args.trace_from}-{nepoch} T1 {summary['release_t1_trace_mean']:.3f} H "
          f"{summary['release_h_trace_mean']:.3f}"
          f" | zslkit (seeds {summary['zslkit_seeds']}) last epoch T1 {summary['zslkit_t1_last_epoch']:.3f} H "
          f"{summary['zslkit_h_last_epoch']:.3f}, epochs {args.trace_from}-{nepoch} T1 "
          f"{summary['zslkit_t1_trace_mean']:.3f} H {summary['zslkit_h_trace_mean']:.3f}")
    command = "python benchmarks/parity_gan.py " + " ".join(argv if argv is not None else sys.argv[1:])
    commands = [*(old.get("commands", []) if rows else []), *([command] if seeds else [])]  # the runs behind the rows
    if args.out:
        Path(args.out).write_text(json.dumps({"dataset": data.name, "data": "real", "selection": "fixed (none)",
                                              "settings": settings, "commands": commands,
                                              "folds": table, "mean": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
