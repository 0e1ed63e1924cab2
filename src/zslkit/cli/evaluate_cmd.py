"""``zslkit evaluate RUN_DIR``: rebuild the model from its checkpoint and score it on the run's data."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="re-evaluate a finished run from its checkpoint",
                       description="Rebuild the model from RUN_DIR/model.pt, score it on the run's dataset, print the "
                                   "metrics (differences from metrics.json noted) and write RUN_DIR/evaluation.json.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (holds metrics.json and model.pt)")
    p.add_argument("--data-root", help="the data folder, if it moved since training")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--epoch", type=int, metavar="E",
                   help="score the generator kept at GAN epoch E (cycle-wgan --savepoints) instead of the final one; "
                        "writes RUN_DIR/evaluation-epochE.json")
    p.set_defaults(func=run)


def run(args) -> int:
    from zslkit.cli.synthesize_cmd import use_epoch
    from zslkit.cli.train_cmd import format_metrics
    from zslkit.data.catalog import open_dataset
    from zslkit.methods.base import ZSLMethod
    from zslkit.protocol.evaluate import TestScores
    from zslkit.runs import atomic_write_json, open_finished_run

    run_dir = Path(args.run_dir)
    info = open_finished_run(run_dir)
    cfg, stored = info["config"], info["metrics"]
    spec = args.data_root or cfg.get("data_root") or cfg["dataset"]
    dataset = open_dataset(spec, semantic=cfg.get("semantic"), seed=cfg.get("data_seed", 0))
    model = ZSLMethod.load(run_dir / "model.pt", device=args.device)
    if args.epoch is not None:
        use_epoch(model, args.epoch, run_dir)
    scores = TestScores(model, dataset)
    fresh = scores.metrics(stored.get("cs_gamma"), curve=True)
    metrics = dict(stored)
    metrics.update({k: float(v) for k, v in fresh.items()})
    if args.epoch is not None:
        metrics["generator_epoch"] = args.epoch
        print(f"  generator of GAN epoch {args.epoch} (metrics.json scores the final one, epoch "
              f"{model.epochs_trained_})")
    print(format_metrics(metrics))
    changed = {k: (stored[k], fresh[k]) for k in fresh if k in stored and abs(stored[k] - fresh[k]) > 1e-9}
    if changed and args.epoch is None:
        print("  note: differs from metrics.json: " + ", ".join(f"{k} {a:.4f} -> {b:.4f}" for k, (a, b) in changed.items()))
    name = "evaluation.json" if args.epoch is None else f"evaluation-epoch{args.epoch}.json"
    atomic_write_json(metrics, run_dir / name)
    return 0
