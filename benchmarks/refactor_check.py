"""Short runs of every method, setting and selection whose results a refactor must not change.

Every method (cvc-zsl, cycle-wgan and its variants, eszsl) x setting (inductive; transductive where the method has
it) x selection (validation, fixed, oracle), plus the selection engine's other paths (several validation class
splits with racing, patience, a head grid, savepoints chosen by a checkpoint metric), on synthetic data
(``synthetic-tiny``, data seed 0, difficulty 0.5), run seed 0, CPU, one thread, budgets cut by overrides (the values
``zslkit train --set KEY=VALUE`` takes). Each run goes through ``experiment.execute`` (what ``zslkit train`` runs)
into a temporary run directory; recorded per run: metrics.json without its wall times, the keys of metrics.json,
history.json without wall times, the training history's numbers and a hash of the saved model's state.

Usage (``--only`` takes run-name substrings):
    PYTHONPATH=/path/to/old/src python benchmarks/refactor_check.py run before.json
    python benchmarks/refactor_check.py run after.json [--only cvc eszsl]
    python benchmarks/refactor_check.py compare before.json after.json   # exit 1 on any difference, printed

The recorded baseline: ``benchmarks/results/refactor_check_baseline.json`` (commit da67f8d).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import warnings

CVC = dict(ways=12, shots=4, lr=3e-4, weight_decay=1e-4, step_size=2, epochs=4, episodes=8, hidden_dim=32,
           inductive_epochs=3, trans_ways=12, trans_shots=2, trans_lr=1e-4, trans_weight_decay=1e-5,
           trans_step_size=2, refresh=2, finetune_episodes=5, eval_every=1, lr_grid=(3e-4, 1e-3),
           validation_patience=0.0)
GAN = dict(hidden_g=64, hidden_d=64, batch_size=32, lr_g=1e-3, lr_d=1e-3, regressor_epochs=3, pre_cls_epochs=3,
           pre_cls_batch=256, syn_per_unseen=40, syn_per_seen=0, cls_epochs=20, cls_batch=64, cls_lr=1e-2, epochs=6,
           eval_every=2, n_critic=2, mode_grid=(), syn_grid=(), syn_seen_grid=(), cls_epochs_grid=(), cls_lr_grid=(),
           savepoints=(), checkpoint_metric="")
ESZSL = dict(grid=(-2.0, 0.0, 2.0), lambda_min_exp=-1.0)
SELECTIONS = ("validation", "fixed", "oracle")

# name -> (method, setting, selection, overrides, val_splits)
RUNS: dict[str, tuple] = {}
for _sel in SELECTIONS:
    RUNS[f"cvc-inductive-{_sel}"] = ("cvc-zsl", "inductive", _sel, CVC, None)
    RUNS[f"cvc-transductive-{_sel}"] = ("cvc-zsl", "transductive", _sel, CVC, None)
    for _variant in ("cycle-wgan", "f-clswgan", "cycle-clswgan", "f-clswgan-reference"):
        RUNS[f"{_variant}-inductive-{_sel}"] = ("cycle-wgan", "inductive", _sel, dict(GAN, variant=_variant), None)
    RUNS[f"eszsl-inductive-{_sel}"] = ("eszsl", "inductive", _sel, ESZSL, None)
RUNS.update({
    "cvc-inductive-validation-3splits-patience": ("cvc-zsl", "inductive", "validation",
                                                  dict(CVC, epochs=6, validation_patience=0.3,
                                                       episode_overflow="clip"), 3),
    "cvc-transductive-validation-2splits": ("cvc-zsl", "transductive", "validation",
                                            dict(CVC, episode_overflow="clip"), 2),
    "cycle-wgan-validation-heads-2splits": ("cycle-wgan", "inductive", "validation",
                                            dict(GAN, mode_grid=("merge", "replace"), syn_grid=(10, 30)), 2),
    "cycle-wgan-validation-savepoints": ("cycle-wgan", "inductive", "validation",
                                         dict(GAN, eval_every=1, savepoints=(2, 4), checkpoint_metric="zsl_t1"), None),
    "cycle-wgan-oracle-heads": ("cycle-wgan", "inductive", "oracle", dict(GAN, mode_grid=("merge", "replace")), None),
    "eszsl-validation-3splits-racing": ("eszsl", "inductive", "validation",
                                        dict(grid=(-3.0, -1.0, 0.0, 1.0, 3.0), lambda_min_exp=-3.0), 3),
    "eszsl-validation-zsl_t1": ("eszsl", "inductive", "validation", ESZSL, None),
})
CRITERION = {"eszsl-validation-zsl_t1": "zsl_t1"}
TIMES = ("time_s", "wall_time_s", "search_time_s")  # wall-clock values: never compared


def _untimed(obj):
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if k not in TIMES}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def _state_hash(obj, h) -> None:
    """Feed a checkpoint's state (nested dicts / lists of tensors, arrays, numbers) into a hash, keys sorted."""
    import numpy as np
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, np.ndarray):
        h.update(f"A{obj.dtype}{obj.shape}".encode() + np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        for k in sorted(obj, key=repr):
            if k in TIMES:
                continue
            h.update(f"K{k!r}".encode())
            _state_hash(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for v in obj:
            _state_hash(v, h)
    else:
        h.update(f"V{obj!r}".encode())


def run(path: str, only: list[str]) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    import zslkit
    from zslkit.data.synthetic import make_synthetic
    from zslkit.experiment import RunSpec, execute
    from zslkit.runs import git_commit

    ds = make_synthetic("synthetic-tiny", 0, difficulty=0.5)
    out = {"zslkit": zslkit.__file__, "commit": git_commit() or "unknown", "runs": {}}
    chosen = {n: r for n, r in RUNS.items() if not only or any(o in n for o in only)}
    with tempfile.TemporaryDirectory(prefix="refactor_check_") as tmp:
        for name, (method, setting, selection, overrides, splits) in chosen.items():
            t0 = time.perf_counter()
            spec = RunSpec(method=method, dataset="synthetic-tiny", setting=setting, selection=selection,
                           criterion=CRITERION.get(name), seed=0, device="cpu", overrides=dict(overrides),
                           val_splits=splits, checkpoint_every=1000)
            rd = os.path.join(tmp, name)
            execute(spec, rd, progress=False, dataset=ds, plots=False)
            read = lambda f: json.load(open(os.path.join(rd, f), encoding="utf-8"))  # noqa: E731
            metrics, history, curves = read("metrics.json"), read("history.json"), read("curves.json")
            h = hashlib.sha256()
            _state_hash(torch.load(os.path.join(rd, "model.pt"), map_location="cpu", weights_only=False)["state"], h)
            out["runs"][name] = {"metrics": _untimed(metrics), "metrics_keys": sorted(metrics),
                                 "history": _untimed(history), "training": _untimed(curves["training"]),
                                 "model_state_sha256": h.hexdigest()}
            print(f"{name:44s} T1 {metrics['zsl_t1']:.6f}  H {metrics['gzsl_h']:.6f}  chosen "
                  f"{metrics['selection']['chosen']}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return 0


def _diff(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{where}/{k}: {'missing before' if k not in a else 'missing after'}")
            else:
                _diff(a[k], b[k], f"{where}/{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{where}[{i}]", out)
    elif a != b or type(a) is not type(b):
        out.append(f"{where}: {json.dumps(a)[:120]} -> {json.dumps(b)[:120]}")


def compare(before: str, after: str) -> int:
    a, b = (json.load(open(p, encoding="utf-8"))["runs"] for p in (before, after))
    names = [n for n in a if n in b]
    same_all = set(a) == set(b)
    for name in sorted(set(a) ^ set(b)):
        print(f"{name}: only in {'before' if name in a else 'after'}")
    for name in names:
        diffs: list[str] = []
        _diff(a[name], b[name], "", diffs)
        same_all &= not diffs
        ma, mb = a[name]["metrics"], b[name]["metrics"]
        print(f"{name:44s} T1 {ma['zsl_t1']:.6f} -> {mb['zsl_t1']:.6f}  H {ma['gzsl_h']:.6f} -> {mb['gzsl_h']:.6f}  "
              f"identical={not diffs}")
        for d in diffs[:20]:
            print(f"    differs {d}")
        if len(diffs) > 20:
            print(f"    ... {len(diffs) - 20} more differences")
    print(f"{len(names)} runs compared: " + ("ALL IDENTICAL" if same_all else "DIFFERENCES"))
    return 0 if same_all else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out")
    r.add_argument("--only", nargs="*", default=[])
    c = sub.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    args = p.parse_args(argv)
    return run(args.out, args.only) if args.cmd == "run" else compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
