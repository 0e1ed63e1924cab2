"""f-CLSWGAN parity harness (issue 18): zslkit's reference recipe beside the release's recorded numbers.

For every fold of a real dev set in ``../shared/data`` (xlsa17 layout, fold K > 0 from ``folds/foldK_att_splits.mat``)
this runs ``zslkit train --method cycle-wgan --variant f-clswgan-reference --selection fixed`` with the epochs, seed
and any ``--set`` of the recorded reference run, and prints per fold: the release at its last GAN epoch (its final
classifiers keep their best test epoch of 25, as the release prints; and their last epoch), zslkit's test numbers
(one final classifier, its last epoch: nothing chosen on test) and zslkit's seen-class fidelity next to the
release's (nearest synthetic seen-class mean on real test_seen features, recorded by the patched release).

    python benchmarks/parity_gan.py --data digits-7seg [--folds 0,1,2,3] [--out benchmarks/results/parity_gan_digits-7seg.json]

The reference numbers come from ``benchmarks/results/parity_gan_reference.json`` (commit, command, seed and the
patches, in words). All numbers are real data, seed as recorded, no selection (fixed settings).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
REFERENCE = HERE / "results" / "parity_gan_reference.json"
KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")


def fold_root(data: Path, fold: int, tmp: Path) -> Path:
    """The xlsa17 folder of ``fold``: the dataset itself for fold 0, else symlinks to res101.mat and the fold's split."""
    if fold == 0:
        return data
    split = data / "folds" / f"fold{fold}_att_splits.mat"
    if not split.is_file():
        raise SystemExit(f"parity_gan: {split}: no such fold file")
    out = tmp / f"fold{fold}"
    out.mkdir(parents=True, exist_ok=True)
    for name, target in (("res101.mat", data / "res101.mat"), ("att_splits.mat", split)):
        if not (out / name).exists():
            (out / name).symlink_to(target)
    return out


def run_zslkit(root: Path, out: Path, epochs: int, seed: int, sets: list[str]) -> dict:
    cmd = ["zslkit", "train", "--method", "cycle-wgan", "--variant", "f-clswgan-reference", "--selection", "fixed",
           "--data-root", str(root), "--seed", str(seed), "--set", f"epochs={epochs}", "--out", str(out),
           "--overwrite", "--no-progress"]
    for kv in sets:
        cmd += ["--set", kv]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"parity_gan: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"command": " ".join(cmd), **{k: metrics.get(k) for k in (*KEYS, "generator_seen_fidelity",
                                                                      "generator_spread_ratio")}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits-7seg", help="dataset folder name in ../shared/data (or a path)")
    ap.add_argument("--folds", default=None, help="comma-separated folds (default: those recorded for the reference)")
    ap.add_argument("--reference", default=str(REFERENCE), help="the recorded reference runs (JSON)")
    ap.add_argument("--out", default=None, help="write zslkit's numbers and the side-by-side here (JSON)")
    args = ap.parse_args(argv)
    data = Path(args.data) if Path(args.data).is_dir() else SHARED / args.data
    if not (data / "res101.mat").is_file():
        print(f"parity_gan: {data}/res101.mat: not found", file=sys.stderr)
        return 2
    ref_all = json.loads(Path(args.reference).read_text())
    ref = ref_all["datasets"].get(data.name)
    if ref is None:
        print(f"parity_gan: {args.reference}: no reference runs recorded for {data.name} "
              f"(recorded: {', '.join(ref_all['datasets'])})", file=sys.stderr)
        return 2
    folds = [int(f) for f in args.folds.split(",")] if args.folds else sorted(int(k) for k in ref["folds"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fold in folds:
            rec = ref["folds"].get(str(fold))
            reported = (ref.get("reported") or {}).get(str(fold))
            if rec is None and reported is None:
                print(f"parity_gan: no reference numbers for {data.name} fold {fold}", file=sys.stderr)
                return 2
            last = rec["epochs"][-1] if rec is not None else None
            mine = run_zslkit(fold_root(data, fold, Path(tmp)), Path(tmp) / f"run{fold}", ref["nepoch"],
                              ref_all["zslkit_seed"], ref.get("zslkit_sets", []))
            rows.append({"fold": fold, "reference_last_epoch": last, "reported": reported, "zslkit": mine})
            theirs = (f"release recorded here (epoch {last['epoch']}, best / last classifier epoch) T1 "
                      f"{last['zsl_t1_best']:.3f} / {last['zsl_t1_last']:.3f}  H {last['gzsl_h_best']:.3f} / "
                      f"{last['gzsl_h_last']:.3f}  fidelity {last['seen_ncm_fidelity']:.3f}" if last else
                      "release not recorded here")
            if reported:
                theirs += f"; reported ({ref.get('reported_source', '?')}): T1 {reported['zsl_t1']:.3f} H {reported['gzsl_h']:.3f}"
            print(f"{data.name} fold {fold}: {theirs} | zslkit T1 {mine['zsl_t1']:.3f}  H {mine['gzsl_h']:.3f} "
                  f"(U {mine['gzsl_u']:.3f} S {mine['gzsl_s']:.3f})  fidelity {mine['generator_seen_fidelity']:.3f}",
                  flush=True)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    rec_rows = [r for r in rows if r["reference_last_epoch"]]
    rep_rows = [r for r in rows if r["reported"]]
    summary = {
        "recorded_folds": [r["fold"] for r in rec_rows],
        "release_t1_best": mean([r["reference_last_epoch"]["zsl_t1_best"] for r in rec_rows]),
        "release_t1_last": mean([r["reference_last_epoch"]["zsl_t1_last"] for r in rec_rows]),
        "release_h_best": mean([r["reference_last_epoch"]["gzsl_h_best"] for r in rec_rows]),
        "release_h_last": mean([r["reference_last_epoch"]["gzsl_h_last"] for r in rec_rows]),
        "reported_folds": [r["fold"] for r in rep_rows],
        "reported_t1": mean([r["reported"]["zsl_t1"] for r in rep_rows]),
        "reported_h": mean([r["reported"]["gzsl_h"] for r in rep_rows]),
        "zslkit_t1": mean([r["zslkit"]["zsl_t1"] for r in rows]),
        "zslkit_h": mean([r["zslkit"]["gzsl_h"] for r in rows]),
        "zslkit_t1_on_recorded_folds": mean([r["zslkit"]["zsl_t1"] for r in rec_rows]),
        "zslkit_h_on_recorded_folds": mean([r["zslkit"]["gzsl_h"] for r in rec_rows]),
    }
    print(f"{data.name}: release recorded here, folds {summary['recorded_folds']}: T1 {summary['release_t1_best']:.3f}"
          f" / {summary['release_t1_last']:.3f}, H {summary['release_h_best']:.3f} / {summary['release_h_last']:.3f} "
          f"(zslkit on those folds T1 {summary['zslkit_t1_on_recorded_folds']:.3f}, H "
          f"{summary['zslkit_h_on_recorded_folds']:.3f}); reported, folds {summary['reported_folds']}: T1 "
          f"{summary['reported_t1']:.3f}, H {summary['reported_h']:.3f} | zslkit, folds {folds}: T1 "
          f"{summary['zslkit_t1']:.3f}, H {summary['zslkit_h']:.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"dataset": data.name, "data": "real", "selection": "fixed (none)",
                                              "seed": ref_all["zslkit_seed"], "folds": rows, "mean": summary},
                                             indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
