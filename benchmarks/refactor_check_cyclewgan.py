"""Short cycle-WGAN runs whose numbers a refactor must not change: run them on two checkouts and compare.

Seven runs on synthetic-tiny (difficulty 0.2, seed 0, CPU, small widths and epochs): the three variants, merge and
replace, the weight average with min-max scaling and the reference's per-element penalty / Glorot init / ReLU head /
90 % rows, and two validation selections with head grids. Recorded per run: the test metrics, the chosen settings,
every GAN epoch's critic loss, a hash of synthesised features and the validation trace.

Usage:
    PYTHONPATH=/path/to/old/src python benchmarks/refactor_check_cyclewgan.py run before.json
    python benchmarks/refactor_check_cyclewgan.py run after.json
    python benchmarks/refactor_check_cyclewgan.py compare before.json after.json   # exit 1 on any difference
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings

SMALL = dict(hidden_g=64, hidden_d=64, batch_size=32, lr_g=1e-3, lr_d=1e-3, regressor_epochs=4,
             pre_cls_epochs=4, pre_cls_batch=256, syn_per_unseen=30, cls_epochs=4, cls_batch=256)
RUNS = {
    "cwgan-merge-fixed": (dict(SMALL, epochs=6, mode="merge"), "fixed"),
    "cwgan-replace-fixed": (dict(SMALL, epochs=6, mode="replace", syn_per_seen=10), "fixed"),
    "fcls-fixed": (dict(SMALL, epochs=6, variant="f-clswgan", n_critic=2), "fixed"),
    "cycls-fixed-ema-minmax": (dict(SMALL, epochs=6, variant="cycle-clswgan", g_ema=0.9, feature_norm="minmax",
                                    gp_alpha="element", gan_init="xavier", cls_head="relu", train_fraction=0.9),
                               "fixed"),
    "cwgan-val-grid": (dict(SMALL, epochs=6, eval_every=2, mode_grid=("merge", "replace"), syn_grid=(20, 40)),
                       "validation"),
    "fcls-val-grid": (dict(SMALL, epochs=6, eval_every=2, variant="f-clswgan", cls_lr_grid=(1e-3, 1e-2),
                           feature_norm="max", g_ema=0.99), "validation"),
    "cwgan-learns-fixed": (dict(SMALL, epochs=20, hidden_g=128, hidden_d=128, regressor_epochs=20, syn_per_unseen=150,
                                cls_epochs=30, mode="replace"), "fixed"),
}
METRICS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "ausuc", "gzsl_cs_h")


def run(path: str) -> int:
    warnings.filterwarnings("ignore")
    import zslkit
    from zslkit.data.synthetic import make_synthetic
    from zslkit.methods import get_method
    from zslkit.pipeline import run_protocol

    ds = make_synthetic("synthetic-tiny", 0, difficulty=0.2)
    out = {"zslkit": zslkit.__file__}
    for name, (cfg, selection) in RUNS.items():
        res = run_protocol(get_method("cycle-wgan"), ds, config=cfg, selection=selection, seed=0, device="cpu")
        x, _ = res.model.synthesize(ds.class_embeddings[ds.unseen_classes], 5, seed=1)
        gan_rows = [r for r in res.model.history_ if r.get("stage", "gan") == "gan"]
        out[name] = {k: res.metrics.get(k) for k in METRICS}
        out[name].update(chosen=res.metrics["selection"]["chosen"],
                         critic=[r.get("critic_loss", r.get("loss")) for r in gan_rows],  # before / after issue 12
                         synth_sha=hashlib.sha1(x.tobytes()).hexdigest()[:16],
                         val_history=[(r["epoch"], r["overrides"], round(r["gzsl_h"], 10)) for r in res.history])
        print(f"{name:26s} T1 {out[name]['zsl_t1']:.6f}  H {out[name]['gzsl_h']:.6f}", flush=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1, default=str)
    return 0


def compare(before: str, after: str) -> int:
    a, b = (json.load(open(p, encoding="utf-8")) for p in (before, after))
    same_all = True
    for name in RUNS:
        same = a.get(name) == b.get(name)
        same_all &= same
        print(f"{name:26s} T1 {a[name]['zsl_t1']:.6f} -> {b[name]['zsl_t1']:.6f}  H {a[name]['gzsl_h']:.6f} -> "
              f"{b[name]['gzsl_h']:.6f}  AUSUC {a[name]['ausuc']:.6f} -> {b[name]['ausuc']:.6f}  identical={same}")
        for key in a[name]:
            if not same and a[name][key] != b[name].get(key):
                print(f"    differs: {key}")
    print("ALL IDENTICAL" if same_all else "DIFFERENCES")
    return 0 if same_all else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2]))
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    sys.exit(__doc__)
