"""Choose CVC-ZSL presets on a dataset's validation classes, and write them into presets/cvc_zsl.yaml.

Two steps, so that several searches can run side by side (one process per dataset, one thread each)::

    python tools/tune_cvc_presets.py search synthetic-awa1 [--setting inductive|transductive|both]
    python tools/tune_cvc_presets.py search data/xlsa17/AWA1 [--semantic att]   # real features, if you have them
    python tools/tune_cvc_presets.py write            # merge tools/tuning/*.json into presets/cvc_zsl.yaml

A dataset is anything ``zslkit train --dataset`` accepts (a synthetic preset name or a data folder); its
preset and record are keyed by the loaded dataset's name (``AWA1``, ``synthetic-awa1``, ...). The search
is the protocol's own validation selection (``pipeline.select_on_validation``: train classes vs
validation classes, test data never touched), over the fixed CPU budget of ``search_base``:

* inductive: 30 epochs x 100 episodes, lr in ``--lr-grid``, and the epoch (1..30) with the best
  validation H (calibrated-stacking gamma chosen on the same validation classes);
* transductive: ``inductive_epochs`` (20) warm-up epochs at the inductive search's chosen lr, then
  trans_lr in ``--lr-grid`` and the self-training epoch (1..20) with the best validation H (the
  validation classes' features are the unlabeled data);
* ``--shapes 16x1 32x4`` adds the searched stage's episode shape (ways x shots) to the grid.

Each search writes ``tools/tuning/cvc-zsl_<dataset>_<setting>.json``: the base config, the grid, the
chosen overrides, the chosen point's validation numbers, every evaluated point, seed, torch version and
wall time. ``write`` turns those files into the synthetic entries of ``cvc_zsl.yaml`` (other entries are
kept as they are) with a ``source`` that states how they were chosen.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from zslkit.data.catalog import open_dataset
from zslkit.methods.cvc import CVCConfig, CVCZSL
from zslkit.pipeline import best_row, chosen_overrides, select_on_validation
from zslkit.runs import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tools" / "tuning"
PRESET_FILE = ROOT / "src" / "zslkit" / "presets" / "cvc_zsl.yaml"
METHOD = "cvc-zsl"
# the fields a synthetic preset records (the rest stay at the CVCConfig defaults)
INDUCTIVE_FIELDS = ("epochs", "episodes", "lr", "step_size", "lr_gamma", "grad_clip", "hidden_dim",
                    "episode_overflow", "finetune_episodes", "ways", "shots", "weight_decay")
TRANSDUCTIVE_FIELDS = INDUCTIVE_FIELDS + (
    "trans_ways", "trans_shots", "trans_weight_decay", "inductive_epochs", "trans_lr", "trans_step_size", "refresh",
    "ratio_threshold", "topk_per_class", "gce_q", "trans_grad_clip", "gzsl_seen_classifiers")
VAL_KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "cs_gamma", "gzsl_cs_h")


def result_path(dataset: str, setting: str) -> Path:
    return RESULTS / f"{METHOD}_{dataset}_{setting}.json"


def shape_fields(shape: str, setting: str) -> dict:
    """"32x4" -> the episode-shape fields of the searched stage (trans_* for the transductive stage)."""
    try:
        ways, shots = (int(v) for v in shape.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--shapes: {shape!r} is not WAYSxSHOTS (e.g. 32x4)") from None
    prefix = "trans_" if setting == "transductive" else ""
    return {f"{prefix}ways": ways, f"{prefix}shots": shots}


def search_base(dataset, setting: str) -> CVCConfig:
    """The fixed CPU budget the committed synthetic records were searched with (kept here so that a search
    reproduces its record; the library's own defaults, ``scaled_defaults``, have moved on to data-driven rules):
    30 x 100 episodes of 16 ways x 4 shots (clipped to the data), lr 1e-4 halved every 10 epochs, decay 1e-4;
    transductive 20 warm-up epochs, then 20 self-training epochs of 16 x 1, trans decay 1e-5, refresh every 2.
    Every epoch is evaluated (no validation patience), so the record holds the whole grid."""
    seen = dataset.seen_classes
    counts = np.bincount(dataset.labels[dataset.splits["trainval"]], minlength=dataset.num_classes)[seen]
    smallest = int(counts.min()) if counts.size else 1
    ways, shots = max(1, min(16, seen.size)), max(1, min(4, smallest))
    cfg = CVCConfig(ways=ways, shots=shots, lr=1e-4, weight_decay=1e-4, step_size=10, epochs=30, episodes=100,
                    episode_overflow="clip", finetune_episodes=200, inductive_epochs=20, trans_ways=ways,
                    trans_shots=1, trans_lr=1e-4, trans_weight_decay=1e-5, trans_step_size=10, refresh=2)
    if setting == "transductive":
        cfg = dataclasses.replace(cfg, epochs=20, gzsl_seen_classifiers="learned")
    return cfg


def search(spec: str, setting: str, lr_grid: list[float], seed: int, device: str, semantic: str | None = None,
           shapes: list[str] | None = None) -> dict:
    """Run one validation search on ``spec`` (lr grid x episode ``shapes``, each with every epoch) and write
    its JSON record; returns the record."""
    dataset = open_dataset(spec, semantic=semantic, seed=seed)
    dataset_name = dataset.name
    base = search_base(dataset, setting)
    if setting == "transductive":
        record = result_path(dataset_name, "inductive")
        if not record.is_file():
            raise SystemExit(f"{record}: no inductive search record for {dataset_name}; the transductive search "
                             f"starts from the inductive one's lr (run --setting inductive first)")
        inductive = json.loads(record.read_text())
        base = dataclasses.replace(base, lr=float(inductive["chosen_config"]["lr"]))
    config = dataclasses.replace(base, lr_grid=tuple(lr_grid))
    started = time.perf_counter()
    history: list[dict] = []
    for shape in shapes or [None]:  # one validation search per episode shape, candidates numbered on
        extra = shape_fields(shape, setting) if shape else {}
        rows: list[dict] = []
        select_on_validation(CVCZSL, dataset, dataclasses.replace(config, **extra), setting=setting,
                             criterion="gzsl_h", history=rows, make=lambda cfg: CVCZSL(cfg, seed=seed, device=device))
        offset = len({row["candidate"] for row in history})
        history += [{**row, "candidate": row["candidate"] + offset, "overrides": {**extra, **row["overrides"]}}
                    for row in rows]
    best = best_row(history, "gzsl_h")
    chosen = chosen_overrides(CVCZSL, best)
    final = dataclasses.replace(dataclasses.replace(config, lr_grid=()), **chosen)
    fields = TRANSDUCTIVE_FIELDS if setting == "transductive" else INDUCTIVE_FIELDS
    record = {
        "method": METHOD, "dataset": dataset_name, "setting": setting, "seed": seed, "spec": spec,
        "synthetic": bool(dataset.synthetic), "semantic_source": dataset.semantic_source, "criterion": "gzsl_h (validation classes)",
        "lr_grid": list(lr_grid), "shapes": list(shapes or []), "base_config": {k: getattr(base, k) for k in fields},
        "chosen": chosen, "chosen_config": {k: getattr(final, k) for k in fields},
        "validation": {k: float(best[k]) for k in VAL_KEYS},
        "history": [{k: v for k, v in row.items() if k in ("candidate", "overrides", "epoch") or k in VAL_KEYS}
                    for row in history],
        "wall_time_s": round(time.perf_counter() - started, 1),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
    }
    out = atomic_write_bytes((json.dumps(record, indent=1) + "\n").encode("utf-8"), result_path(dataset_name, setting))
    print(f"{dataset_name} {setting}: chose {chosen} (val H {best['gzsl_h']:.3f}, T1 {best['zsl_t1']:.3f}) "
          f"in {record['wall_time_s']:.0f} s -> {out}", flush=True)
    return record


def source_text(rec: dict) -> str:
    grid = ", ".join(f"{v:g}" for v in rec["lr_grid"])
    val, base = rec["validation"], rec["base_config"]
    if rec.get("shapes"):
        grid += "} x episode shape in {" + ", ".join(rec["shapes"])
    if rec["setting"] == "inductive":
        how = (f"{base['epochs']} x {base['episodes']} episodes of {base['ways']} ways x {base['shots']} shots "
               f"(search_base), lr in {{{grid}}} and the epoch (1..{base['epochs']}) with the best validation H")
    else:
        how = (f"{base['inductive_epochs']} inductive epochs at the inductive search's lr ({base['lr']:g}), then "
               f"{base['epochs']} x {base['episodes']} self-training episodes of {base['trans_ways']} ways x "
               f"{base['trans_shots']} shots, trans_lr in {{{grid}}} and the self-training epoch "
               f"(1..{base['epochs']}) with the best validation H")
    data = (f"make_synthetic('{rec['dataset']}', seed {rec['seed']})" if rec["synthetic"]
            else f"{rec['dataset']} ({rec.get('semantic_source')}, real features, training seed {rec['seed']})")
    return (f"chosen by tools/tune_cvc_presets.py on the validation classes of {data} (validation_view: train "
            f"vs val classes, never test): {how} (val T1 "
            f"{val['zsl_t1']:.3f}, H {val['gzsl_h']:.3f}; record: tools/tuning/{result_path(rec['dataset'], rec['setting']).name})")


def write_presets() -> int:
    """Replace the entries of cvc_zsl.yaml that have a search record (no variant); keep the rest."""
    text = PRESET_FILE.read_text(encoding="utf-8")
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    entries = yaml.safe_load(text)
    n = 0
    for path in sorted(RESULTS.glob(f"{METHOD}_*.json")):
        rec = json.loads(path.read_text())
        key = f"{rec['dataset']}/{rec['setting']}"
        entries[key] = {"dataset": rec["dataset"], "setting": rec["setting"], "source": source_text(rec),
                        "params": dict(rec["chosen_config"])}
        n += 1
    body = yaml.safe_dump(entries, sort_keys=False, width=120, allow_unicode=True)
    atomic_write_bytes((header + body).encode("utf-8"), PRESET_FILE)
    print(f"wrote {n} tuned entries into {PRESET_FILE}")
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("search", help="validation search for one or more datasets")
    s.add_argument("datasets", nargs="+", help="synthetic preset names or data folders")
    s.add_argument("--semantic", default=None, help="semantic source of a real dataset (att, sent, ...)")
    s.add_argument("--setting", choices=("inductive", "transductive", "both"), default="both")
    s.add_argument("--lr-grid", type=float, nargs="+", default=[1e-4, 3e-4])
    s.add_argument("--shapes", nargs="+", default=None, metavar="WAYSxSHOTS",
                   help="episode shapes to try too (the searched stage's: trans_ways/trans_shots when transductive)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int, default=1)
    sub.add_parser("write", help="merge the search records into presets/cvc_zsl.yaml")
    args = ap.parse_args(argv)
    if args.cmd == "write":
        return 0 if write_presets() else 1
    torch.set_num_threads(args.threads)
    settings = ("inductive", "transductive") if args.setting == "both" else (args.setting,)
    for name in args.datasets:
        for setting in settings:
            search(name, setting, args.lr_grid, args.seed, args.device, args.semantic, args.shapes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
