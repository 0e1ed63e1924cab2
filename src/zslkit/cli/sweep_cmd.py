"""``zslkit sweep``: hyperparameters x datasets x seeds on Ray Tune, locally or on a cluster (docs/sweeps.md)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from zslkit.cli import bounded, seed_type
from zslkit.cli.train_cmd import DEFAULT_METHOD, SEMANTIC_HELP, collect_overrides
from zslkit.data.catalog import open_dataset
from zslkit.errors import ConfigError, RunDirError
from zslkit.experiment import RunSpec, build_config
from zslkit.methods.registry import get_method
from zslkit.pipeline import SETTINGS
from zslkit.protocol.criteria import resolve_criterion
from zslkit.runs import atomic_write_json, read_json
from zslkit.sweep.space import (SCHEDULERS, SEARCHES, DatasetEntry, SweepPlan, check_keys, configurations, parse_params,
                                parse_seeds)
from zslkit.sweep.summary import PLAN_FILE, SUMMARY_FILES, render_summary, write


def show_table(text: str) -> None:
    """How the command shows the live table of trials (``engine``'s ``progress``)."""
    print(text, flush=True)


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run a hyperparameter x dataset x seed sweep on Ray Tune (local or cluster)",
                       description="Each trial is one `zslkit train` run (selection on validation classes, one test "
                                   "evaluation) in SWEEP_DIR/runs/; a configuration is chosen per dataset by its mean "
                                   "validation metric over seeds (SWEEP_DIR/summary.md, .csv, .json). Needs the "
                                   "optional extra: pip install 'zslkit[sweep]'.")
    p.add_argument("--method", help=f"method name (default {DEFAULT_METHOD}); see `zslkit methods`")
    p.add_argument("--dataset", action="append", default=[], metavar="NAME",
                   help="synthetic preset or path (repeatable: one sweep over several datasets)")
    p.add_argument("--data-root", action="append", default=[], metavar="DIR",
                   help="data folder in any supported layout (repeatable; on a cluster, a path every node sees)")
    p.add_argument("--semantic", help=SEMANTIC_HELP)
    p.add_argument("--data-seed", type=seed_type(), default=0, help="seed of synthetic datasets (default 0)")
    p.add_argument("--setting", default=SETTINGS[0], choices=SETTINGS,
                   help="inductive, or transductive (unlabeled test_unseen features used in training)")
    p.add_argument("--seeds", default="0", help="training seeds, e.g. 0-4 or 0,2,5 (default 0)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="values a trial may take for a config field (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a config field for every trial, as in `zslkit train` (repeatable)")
    p.add_argument("--search", default="grid", choices=SEARCHES,
                   help="grid (every combination), random (--samples distinct combinations, sampling seed 0) or "
                        "optuna (TPE over the --param lists, --samples configurations per dataset)")
    p.add_argument("--samples", type=bounded(int, min=1), help="configurations tried by random / optuna search")
    p.add_argument("--scheduler", default="fifo", choices=SCHEDULERS,
                   help="fifo (run every trial to the end) or asha (stop weak trials early on their validation metric)")
    p.add_argument("--cpus-per-trial", type=bounded(float, above=0), default=1.0, help="CPUs per trial (default 1; torch threads)")
    p.add_argument("--gpus-per-trial", type=bounded(float, min=0), default=0.0,
                   help="GPUs per trial, fractions allowed (default 0: CPU)")
    p.add_argument("--address", help="join a Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: start Ray here)")
    p.add_argument("--checkpoint-every", type=bounded(int, min=1), default=10, metavar="EPOCHS",
                   help="epochs between a trial's training checkpoints (default 10)")
    p.add_argument("--max-failures", type=bounded(int, min=0), default=3,
                   help="times a trial whose worker died is retried from its checkpoint (default 3)")
    p.add_argument("--out", metavar="SWEEP_DIR", help="sweep folder: a path (on a cluster, one every node sees) or a "
                                                      "storage URI Ray Tune accepts (s3://, gs://, file:// ...)")
    p.add_argument("--resume", metavar="SWEEP_DIR", help="continue an interrupted sweep (other options come from "
                                                         "SWEEP_DIR/sweep.json; --address may be given again)")
    p.add_argument("--show-all-test", action="store_true",
                   help="also show test numbers of configurations that were not chosen, labelled ORACLE")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots of every run directory (faster for "
                                                           "many short trials)")
    p.add_argument("--no-progress", action="store_true", help="hide the live table of trials")
    p.set_defaults(func=run)


def make_plan(args):
    """The SweepPlan from the command line, every name, key and value checked before Ray starts."""
    if not args.out:
        raise ConfigError("--out SWEEP_DIR is required (or --resume SWEEP_DIR)")
    method_cls = get_method(args.method or DEFAULT_METHOD)
    params = parse_params(args.param)
    fixed = collect_overrides(args)
    check_keys(method_cls, params, fixed)
    if args.search != "grid" and not args.samples:
        raise ConfigError(f"--search {args.search} needs --samples N")
    if args.samples is not None and args.samples < 1:
        raise ConfigError("--samples must be >= 1")
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0 or args.max_failures < 0 or args.checkpoint_every < 1:
        raise ConfigError("--cpus-per-trial must be > 0, --gpus-per-trial and --max-failures >= 0, "
                          "--checkpoint-every >= 1")
    names = [(d, False) for d in args.dataset] + [(d, True) for d in args.data_root]
    if not names:
        raise ConfigError("name at least one --dataset or --data-root")
    datasets = []
    for name, is_path in names:
        data = open_dataset(name, semantic=args.semantic, seed=args.data_seed)
        spec = str(Path(name).resolve()) if is_path or Path(name).exists() else name
        label = data.name
        if any(d.name == label for d in datasets):  # e.g. two folders holding the same benchmark
            label = f"{data.name}[{Path(name).name}]"
        if any(d.name == label or d.spec == spec for d in datasets):
            raise ConfigError(f"dataset {name} is named twice")
        datasets.append(DatasetEntry(spec=spec, name=label, synthetic=bool(data.synthetic)))
        for p in (configurations(params, "grid", None) if args.search != "random" else
                  configurations(params, "random", args.samples)):
            build_config(method_cls, data, RunSpec(method=method_cls.name, setting=args.setting,
                                                   overrides={**fixed, **p}))
    return SweepPlan(method=method_cls.name, datasets=datasets, setting=args.setting, seeds=parse_seeds(args.seeds),
                     params=params, fixed=fixed, search=args.search, samples=args.samples, scheduler=args.scheduler,
                     semantic=args.semantic, data_seed=args.data_seed, cpus_per_trial=args.cpus_per_trial,
                     gpus_per_trial=args.gpus_per_trial, checkpoint_every=args.checkpoint_every,
                     max_failures=args.max_failures, plots=not args.no_plots,
                     criterion=resolve_criterion(method_cls))


def run(args) -> int:
    from zslkit.sweep import storage  # optional extra (sweep): pyarrow

    target = str(args.resume or args.out or "")
    remote = target if storage.is_uri(target) else None  # a storage URI: work in a local staging copy
    if args.resume:
        root = storage.local_root(target)
        if not (root / PLAN_FILE).is_file():
            raise RunDirError(f"{target}: not a sweep folder (no {PLAN_FILE}); nothing to resume")
        plan = SweepPlan.from_json(read_json(root / PLAN_FILE))
    else:
        plan = make_plan(args)
        root = storage.staging(target) if remote else Path(target)
        if (storage.exists(storage.join(target, PLAN_FILE)) if remote else (root / PLAN_FILE).is_file()):
            raise RunDirError(f"{target}: a sweep is already there; continue it with zslkit sweep --resume "
                              f"{target}, or choose another --out")
        if remote:
            shutil.rmtree(root, ignore_errors=True)
    from zslkit.sweep import engine  # optional extra (sweep): Ray Tune

    engine.connect(args.address, need_cpus=plan.cpus_per_trial, need_gpus=plan.gpus_per_trial)
    if not args.resume:
        atomic_write_json(plan.to_json(), root / PLAN_FILE)
        if remote:
            storage.upload(root / PLAN_FILE, storage.join(remote, PLAN_FILE))
    print(f"zslkit sweep: {plan.method} on {', '.join(d.name for d in plan.datasets)}, seeds {plan.seeds}, "
          f"search {plan.search}, scheduler {plan.scheduler} -> {target}", flush=True)
    fixed = {"spec": {"method": plan.method, "semantic": plan.semantic, "data_seed": plan.data_seed,
                      "setting": plan.setting, "selection": "validation", "criterion": plan.criterion,
                      "device": "cuda" if plan.gpus_per_trial > 0 else "cpu", "overrides": plan.fixed,
                      "checkpoint_every": plan.checkpoint_every},
             "root": str(root.resolve()), "remote": remote, "seeds": plan.seeds,
             "threads": max(1, int(plan.cpus_per_trial)), "plots": plan.plots}
    where = remote or root
    tuners = engine.sweep_tuners(where, plan, fixed, progress=None if args.no_progress else show_table)
    grids, stopped = engine.fit_all(tuners, where, plan, resume=bool(args.resume))
    if remote:  # every node's run directories, as uploaded
        storage.download(storage.join(remote, "runs"), root / "runs")
    summary = write(root, show_all_test=args.show_all_test)
    if remote:
        for name in SUMMARY_FILES:
            storage.upload(root / name, storage.join(remote, name))
    print(render_summary(summary), end="")
    print(f"summary written to {target.rstrip('/')}/summary.md, .csv, .json")
    if stopped:
        print(f"zslkit: sweep interrupted; continue it with: zslkit sweep --resume {target}", file=sys.stderr)
        return 130
    failed = [t for t in summary["trials"] if t["status"] == "failed"] + [e for g in grids for e in g.errors]
    if failed:
        print(f"zslkit: error: {len(failed)} trial(s) failed; see the trial table and each run's sweep_trial.json",
              file=sys.stderr)
        return 1
    return 0
