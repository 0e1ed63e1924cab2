"""``zslkit evaluate RUN_DIR``: rebuild the model from its checkpoint and score it on the run's data.

Before scoring, the model is checked against the run (method, feature and embedding dimensions, class names) and
the data against the run's provenance (split sha256, classes, split sizes): another model is an error, other data
(``--data-root`` with another split) only with ``--other-split``. Warnings are computed from the numbers printed
(for ``--epoch E``: that epoch's).
"""

from __future__ import annotations

from pathlib import Path

from zslkit.cli import bounded
from zslkit.cli.synthesize_cmd import snapshot_methods, use_epoch
from zslkit.cli.train_cmd import format_metrics
from zslkit.data.catalog import open_dataset
from zslkit.errors import ConfigError, DataError
from zslkit.methods.base import ZSLMethod
from zslkit.methods.model_file import read_checkpoint
from zslkit.protocol.evaluate import TestScores
from zslkit.protocol.health import health_warnings
from zslkit.runs import atomic_write_json, open_finished_run


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="re-evaluate a finished run from its checkpoint",
                       description="Rebuild the model from RUN_DIR/model.pt, score it on the run's dataset, print the "
                                   "metrics (differences from metrics.json noted) and write RUN_DIR/evaluation.json.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (holds metrics.json and model.pt)")
    p.add_argument("--data-root", help="the data folder, if it moved since training")
    p.add_argument("--other-split", action="store_true",
                   help="score on data whose split differs from the run's (another split sha256, other classes or "
                        "split sizes); without it that is an error")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--epoch", type=bounded(int, min=1), metavar="E",
                   help=f"score the model snapshot kept at epoch E instead of the final one ({snapshot_methods()}); "
                        f"writes RUN_DIR/evaluation-epochE.json")
    p.set_defaults(func=run)


def check_model(ckpt: dict, cfg: dict, dataset, model_path: Path) -> None:
    """DataError when the checkpoint is not the run's model: another method, dimensions or class names."""
    method = cfg.get("method")
    if method and ckpt["method"] != method:
        raise DataError(str(model_path), "method", f"holds a {ckpt['method']} model but the run (config.json) is "
                                                   f"{method}: not this run's model")
    dims = ckpt["dims"]
    for key, have in (("feature_dim", dataset.feature_dim), ("embedding_dim", dataset.embedding_dim)):
        if int(dims[key]) != have:
            raise DataError(str(model_path), "dims", f"{key} {dims[key]} but the run's data have {have}: not a "
                                                     f"model of this data")
    names = (ckpt.get("extra") or {}).get("class_names")
    if names is not None and list(names) != list(dataset.class_names):
        raise DataError(str(model_path), "extra.class_names",
                        f"the model was trained with {len(names)} classes ({', '.join(map(str, names[:3]))}, ...) "
                        f"that are not the data's {dataset.num_classes} ({', '.join(dataset.class_names[:3])}, ...)")


def split_differences(recorded: dict, summary: dict) -> list[str]:
    """How the data's split differs from the one the run recorded in provenance.json (empty: the same)."""
    out = []
    for key in ("split_sha256", "split_classes_sha256", "num_classes", "num_seen", "num_unseen", "split_sizes"):
        if key in recorded and recorded[key] != summary.get(key):
            was, now = recorded[key], summary.get(key)
            if key.endswith("sha256"):
                was, now = (str(v)[:12] for v in (was, now))
            out.append(f"{key} {was} -> {now}")
    return out


def run(args) -> int:
    run_dir = Path(args.run_dir)
    info = open_finished_run(run_dir)
    cfg, stored = info["config"], info["metrics"]
    spec = args.data_root or cfg.get("data_root") or cfg["dataset"]
    dataset = open_dataset(spec, semantic=cfg.get("semantic"), seed=cfg.get("data_seed", 0))
    differs = split_differences((info["provenance"] or {}).get("dataset") or {}, dataset.summary())
    if differs and not args.other_split:
        raise ConfigError(f"{spec}: not the split the run {run_dir} was trained and tested on ({'; '.join(differs)});"
                          f" pass --other-split to score the model on these data anyway")
    ckpt = read_checkpoint(run_dir / "model.pt")
    check_model(ckpt, cfg, dataset, run_dir / "model.pt")
    model = ZSLMethod.from_checkpoint(ckpt, device=args.device)
    if args.epoch is not None:
        use_epoch(model, args.epoch, run_dir)
    scores = TestScores(model, dataset)
    fresh = {k: float(v) for k, v in scores.metrics(stored.get("cs_gamma"), curve=True).items()}
    fresh["gzsl_unseen_share"] = scores.unseen_prediction_rate()
    fresh.update(getattr(model, "result_extras", dict)())
    metrics = dict(stored)
    metrics.update(fresh)
    metrics["warnings"] = health_warnings(metrics, num_unseen=int(dataset.unseen_classes.size),
                                          unseen_share=fresh["gzsl_unseen_share"])  # from these numbers
    metrics["synthetic"] = bool(dataset.synthetic)
    if differs:
        metrics["other_split"] = {"data": str(spec), "differences": differs, "split_sha256": dataset.split_sha256}
        print(f"  note: scored on OTHER data than the run's ({spec}: {'; '.join(differs)}); not comparable with "
              f"metrics.json")
    if args.epoch is not None:
        metrics["generator_epoch"] = args.epoch
        print(f"  generator of GAN epoch {args.epoch} (metrics.json scores the final one, epoch "
              f"{model.epochs_trained_})")
    print(format_metrics(metrics))
    changed = {k: (stored[k], fresh[k]) for k in fresh
               if isinstance(stored.get(k), (int, float)) and abs(stored[k] - fresh[k]) > 1e-9}
    if changed and args.epoch is None and not differs:
        print("  note: differs from metrics.json: " + ", ".join(f"{k} {a:.4f} -> {b:.4f}" for k, (a, b) in changed.items()))
    name = "evaluation.json" if args.epoch is None else f"evaluation-epoch{args.epoch}.json"
    atomic_write_json(metrics, run_dir / name)
    return 0
