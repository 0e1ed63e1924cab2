"""CVC-ZSL parity harness (issue 19): zslkit's reference recipe beside the cvcZSL code's recorded numbers.

For every fold of a real dev set in ``../shared/data`` (xlsa17 layout, fold K > 0 from ``folds/foldK_att_splits.mat``)
and every seed asked for, this runs ``zslkit train --method cvc-zsl --variant reference`` with the recorded
reference run's settings (``--set`` ways, shots, lr, step_size, epochs, episodes, weight_decay) and prints per fold,
over seeds, both sides at their **last epoch** (nothing chosen on test: what ``--selection fixed`` reports) and at
their **best test-H epoch** (what the cvcZSL code's ``train.py`` prints and keeps; an oracle).

By default zslkit runs with ``--selection oracle``, which scores every epoch on test: its last epoch is exactly the
``--selection fixed`` model (the same seeded run; the first k epochs of an E-epoch run equal a k-epoch run), its
best-H epoch the oracle. ``--fixed`` runs ``--selection fixed`` instead (last epoch only).

    python benchmarks/parity_cvc.py --data digits-7seg [--folds 0,1] [--seeds 0,1,2] [--out OUT.json]
    python benchmarks/parity_cvc.py record --data digits-7seg --fold 0 --seed 0 LOG   # add a reference log

``record`` reads the epoch lines the (patched) cvcZSL ``train.py`` prints and stores them in
``benchmarks/results/parity_cvc_reference.json`` (commit, command, patches in words). All numbers are real data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _folds  # noqa: E402  (benchmarks/ is not a package)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
REFERENCE = HERE / "results" / "parity_cvc_reference.json"
EPOCH_LINE = re.compile(r"ep: (\d+),\s+lr: ([\d.e-]+), loss: ([\d.naninf-]+),\s+zsl: ([\d.]+), gzsl: "
                        r"seen=([\d.]+), unseen=([\d.]+), h=([\d.nan]+)")
KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")


def parse_log(text: str) -> dict:
    """The per-epoch test numbers of a cvcZSL ``train.py`` log (0-based epochs as it prints them)."""
    rows = [m.groups() for m in EPOCH_LINE.finditer(text)]
    if not rows:
        raise SystemExit("parity_cvc: no epoch lines ('ep: N, lr: ..., zsl: ...') in the log")
    col = lambda i: [float(r[i]) for r in rows]  # noqa: E731
    return {"lr": col(1), "loss": col(2), "zsl_t1": col(3), "gzsl_s": col(4), "gzsl_u": col(5), "gzsl_h": col(6)}


def pick(curves: dict, which: str) -> dict:
    """``last``: the last epoch; ``best``: the epoch with the best test H (first on ties, as ``train.py``)."""
    h = curves["gzsl_h"]
    i = len(h) - 1 if which == "last" else max(range(len(h)), key=lambda j: (h[j], -j))
    return {"epoch": i + 1, **{k: curves[k][i] for k in KEYS}}


def fold_root(data: Path, fold: int, tmp: Path) -> Path:
    """The xlsa17 folder of ``fold`` (see ``_folds.fold_root``)."""
    return _folds.fold_root(data, fold, tmp, prog="parity_cvc")


def zslkit_command(root: Path, out: Path, settings: dict, seed: int, fixed: bool, extra: list[str]) -> list[str]:
    cmd = ["zslkit", "train", "--method", "cvc-zsl", "--variant", "reference", "--selection",
           "fixed" if fixed else "oracle", "--data-root", str(root), "--seed", str(seed), "--out", str(out),
           "--overwrite", "--no-progress", "--device", "cpu"]
    for key in ("ways", "shots", "lr", "step_size", "epochs", "episodes", "weight_decay"):
        cmd += ["--set", f"{key}={settings[key]}"]
    for kv in extra:
        cmd += ["--set", kv]
    return cmd


def run_zslkit(cmd: list[str], out: Path, fixed: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "1")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"parity_cvc: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    if fixed:
        return {"last": {k: metrics[k] for k in KEYS}, "best": None}
    rows = sorted(json.loads((out / "history.json").read_text()), key=lambda r: r["epoch"])
    curves = {k: [r[k] for r in rows] for k in KEYS}
    return {"last": pick(curves, "last"), "best": pick(curves, "best"), "curves": curves}


def mean_sd(xs: list[float]) -> str:
    if not xs:
        return "  -  "
    return f"{statistics.mean(xs):.3f}" + (f"±{statistics.stdev(xs):.3f}" if len(xs) > 1 else "")


def side(runs: list[dict], which: str) -> str:
    got = [r[which] for r in runs if r.get(which)]
    return (f"T1 {mean_sd([g['zsl_t1'] for g in got])} H {mean_sd([g['gzsl_h'] for g in got])} "
            f"(n={len(got)})") if got else "not run"


def compare(args) -> int:
    found = _folds.dataset_and_reference(args.data, args.reference, SHARED, "parity_cvc")
    if found is None:
        return 2
    data, ref = found
    settings = {**ref["settings"], **dict(kv.split("=", 1) for kv in args.set)}
    folds = [int(f) for f in args.folds.split(",")] if args.folds else sorted(int(k) for k in ref["runs"])
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fold in folds:
            theirs = [{"seed": int(s), "last": pick(c, "last"), "best": pick(c, "best")}
                      for s, c in sorted(ref["runs"].get(str(fold), {}).items())]
            reported = (ref.get("reported") or {}).get(str(fold))
            mine = []
            for seed in seeds:
                out = Path(tmp) / f"run{fold}_{seed}"
                cmd = zslkit_command(fold_root(data, fold, Path(tmp)), out, settings, seed, args.fixed, args.set_zslkit)
                res = run_zslkit(cmd, out, args.fixed)
                res.update(seed=seed, command=" ".join(cmd))
                mine.append(res)
                print(f"  {data.name} fold {fold} zslkit seed {seed}: last T1 {res['last']['zsl_t1']:.3f} H "
                      f"{res['last']['gzsl_h']:.3f}" + (f" | best-H epoch {res['best']['epoch']}: T1 "
                                                        f"{res['best']['zsl_t1']:.3f} H {res['best']['gzsl_h']:.3f}"
                                                        if res["best"] else ""), flush=True)
            rows.append({"fold": fold, "reference": theirs, "reported": reported,
                         "zslkit": [{k: v for k, v in r.items() if k != "curves" or args.curves} for r in mine]})
            rep = f"; README (best test H): T1 {reported['zsl_t1']:.3f} H {reported['gzsl_h']:.3f}" if reported else ""
            print(f"{data.name} fold {fold}  last epoch: cvcZSL {side(theirs, 'last')} | zslkit {side(mine, 'last')}\n"
                  f"{data.name} fold {fold}  best test H: cvcZSL {side(theirs, 'best')} | zslkit {side(mine, 'best')}"
                  f"{rep}", flush=True)
    summary = {}
    for which in ("last", "best"):
        for who, key in (("reference", "reference"), ("zslkit", "zslkit")):
            per_fold = [[r[which] for r in row[key] if r.get(which)] for row in rows]
            if all(per_fold):
                summary[f"{who}_{which}_t1"] = statistics.mean(statistics.mean(g["zsl_t1"] for g in f) for f in per_fold)
                summary[f"{who}_{which}_h"] = statistics.mean(statistics.mean(g["gzsl_h"] for g in f) for f in per_fold)
    print(f"{data.name} folds {folds}, mean over folds of the seed means: "
          + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
    if args.out:
        Path(args.out).write_text(json.dumps({"dataset": data.name, "data": "real", "settings": settings,
                                              "zslkit_selection": "fixed" if args.fixed else
                                              "oracle run: last epoch = --selection fixed, best = test-selected",
                                              "seeds": seeds, "folds": rows, "mean": summary}, indent=1) + "\n")
    return 0


def record(args) -> int:
    path = Path(args.reference)
    ref_all = json.loads(path.read_text())
    data = Path(args.data).name
    entry = ref_all["datasets"].setdefault(data, {"settings": {}, "runs": {}})
    if args.settings:
        entry["settings"] = json.loads(args.settings)
    curves = parse_log(Path(args.log).read_text())
    entry["runs"].setdefault(str(args.fold), {})[str(args.seed)] = curves
    path.write_text(json.dumps(ref_all, indent=1) + "\n")
    last, best = pick(curves, "last"), pick(curves, "best")
    print(f"recorded {data} fold {args.fold} seed {args.seed}: {len(curves['gzsl_h'])} epochs, last T1 "
          f"{last['zsl_t1']:.3f} H {last['gzsl_h']:.3f}, best-H epoch {best['epoch']} T1 {best['zsl_t1']:.3f} "
          f"H {best['gzsl_h']:.3f}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["record"]:
        ap = argparse.ArgumentParser(prog="parity_cvc.py record", description="add a cvcZSL train.py log")
        ap.add_argument("log")
        ap.add_argument("--data", required=True, help="dataset name (key in the reference JSON)")
        ap.add_argument("--fold", type=int, required=True)
        ap.add_argument("--seed", type=int, required=True)
        ap.add_argument("--settings", default=None, help="JSON of the run's settings (first record of a dataset)")
        ap.add_argument("--reference", default=str(REFERENCE))
        return record(ap.parse_args(argv[1:]))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits-7seg", help="dataset folder name in ../shared/data (or a path)")
    ap.add_argument("--folds", default=None, help="comma-separated folds (default: those recorded for the reference)")
    ap.add_argument("--seeds", default="0", help="comma-separated zslkit seeds")
    ap.add_argument("--fixed", action="store_true", help="run --selection fixed (last epoch only)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recorded setting on zslkit's side (e.g. weight_decay=1e-3)")
    ap.add_argument("--set-zslkit", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra zslkit config field (not a reference setting)")
    ap.add_argument("--curves", action="store_true", help="keep zslkit's per-epoch test curves in --out")
    ap.add_argument("--reference", default=str(REFERENCE), help="the recorded reference runs (JSON)")
    ap.add_argument("--out", default=None, help="write zslkit's numbers and the side-by-side here (JSON)")
    return compare(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
