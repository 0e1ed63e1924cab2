"""``zslkit train``: run the protocol for one method on one dataset and write a run directory."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from zslkit.cli import bounded, seed_type
from zslkit.data.catalog import DEFAULT_DATASET, open_dataset
from zslkit.data.synthetic import PRESETS
from zslkit.data.xlsa17 import SEMANTICS
from zslkit.errors import ConfigError, RunDirError
from zslkit.experiment import RunSpec, execute, load_spec
from zslkit.methods.registry import available_methods, get_method
from zslkit.pipeline import CRITERIA, SETTINGS
from zslkit.protocol.selection import SELECTION_MODES
from zslkit.runfile import RUN_FILE, check_overrides, merge, read_run_file
from zslkit.runtime import device_description, resolve_device
from zslkit.tracking import TRACKERS, make_trackers

DEFAULT_METHOD = "cvc-zsl"

# generic command-line options -> their type (bounds checked at parse time); the config field names (a method that
# lacks the field rejects the option)
OVERRIDE_OPTIONS = {
    "epochs": bounded(int, min=1),
    "episodes_per_epoch": bounded(int, min=1),
    "ways": bounded(int, min=1),
    "shots": bounded(int, min=1),
    "lr": bounded(float, above=0),
    "variant": str,
}
# options whose config field has another name
OPTION_FIELDS = {"episodes_per_epoch": "episodes"}
# options -> RunSpec fields (what a --config run file holds beside its overrides)
SPEC_OPTIONS = {"method": "method", "dataset": "dataset", "data_root": "dataset", "semantic": "semantic",
                "data_seed": "data_seed", "setting": "setting", "selection": "selection", "criterion": "criterion",
                "seed": "seed", "device": "device", "deterministic": "deterministic",
                "checkpoint_every": "checkpoint_every", "preset": "preset"}
# the options that go with --resume (everything else comes from RUN_DIR/config.json)
RESUME_OPTIONS = {"resume", "device", "no_progress", "log_to"}
SEMANTIC_HELP = (f"semantic source for real data: {', '.join(SEMANTICS)}; or a class table file (.csv/.tsv/.npy, "
                 f"e.g. from `zslkit classes embed`) that replaces the class embeddings, aligned by class name")


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", help=f"synthetic preset ({', '.join(PRESETS)}) or a path; "
                                       f"default {DEFAULT_DATASET}")
    src.add_argument("--data-root", help="folder (or file) in any supported layout: xlsa17, DEM, cycle-WGAN h5, npz "
                                         "(detected automatically)")
    p.add_argument("--semantic", help=SEMANTIC_HELP)
    p.add_argument("--data-seed", type=seed_type(), default=0, help="seed of a synthetic dataset (default 0)")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train and evaluate a method (ZSL and GZSL numbers from one model)",
                       description="Train a method with honest model selection and write RUN_DIR with config, "
                                   "metrics, checkpoint, log and provenance.")
    p.add_argument("--config", metavar="RUN_FILE", help=f"a run file (YAML or JSON) holding the run's method, data, "
                   f"setting, variant, overrides, selection and seed; every run directory has RUN_DIR/{RUN_FILE}, "
                   f"so `--config RUN_DIR/{RUN_FILE} --out NEW` replays a run. Options given beside it replace its "
                   f"values (each replacement is printed); docs/api.md")
    p.add_argument("--method", default=None, help=f"method name (default {DEFAULT_METHOD}); see `zslkit methods`")
    add_data_arguments(p)
    p.add_argument("--setting", default=SETTINGS[0], choices=SETTINGS,
                   help="inductive, or transductive (unlabeled test_unseen features used in training, if the method "
                        "supports it; see `zslkit methods NAME`)")
    p.add_argument("--selection", default="validation", choices=list(SELECTION_MODES),
                   help="validation (default, honest), fixed (no selection) or oracle (test-selected, labelled)")
    p.add_argument("--criterion", default=None, choices=list(CRITERIA),
                   help="what validation selection maximises (default: the method's own, shown by `zslkit methods "
                        "NAME`; gzsl_cs_h is H after calibrated stacking)")
    p.add_argument("--seed", type=seed_type(), default=0, help="training seed (weights, episodes, noise)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--log-to", action="append", default=[], choices=list(TRACKERS), metavar="TRACKER",
                   help=f"also log the monitored epochs and final metrics to {' or '.join(TRACKERS)} (repeatable; "
                        f"optional extras; TensorBoard: RUN_DIR/tensorboard, MLflow: $MLFLOW_TRACKING_URI or "
                        f"RUN_DIR/mlruns)")
    p.add_argument("--out", help="run directory (default runs/<method>-<dataset>-seed<S>)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint "
                                                        "(all other options come from RUN_DIR/config.json)")
    p.add_argument("--checkpoint-every", type=bounded(int, min=1), default=10, metavar="EPOCHS",
                   help="epochs between training checkpoints (default 10)")
    p.add_argument("--deterministic", action="store_true", help="ask torch for deterministic kernels")
    p.add_argument("--val-splits", type=bounded(int, min=1), default=None, metavar="K",
                   help="validation class splits the selection criterion is averaged over (default: by the number "
                        "of seen classes, docs/protocol.md; 1: the dataset's own train/val split only)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    for name, typ in OVERRIDE_OPTIONS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                       help="the named recipe: default (the dataset's preset, else the rules on the data), a method "
                            "variant or preset variant (`zslkit methods NAME` lists them; e.g. cvc-zsl reference = the "
                            "full 1000 x 1000 reference protocol)" if name == "variant"
                       else f"override the preset's {OPTION_FIELDS.get(name, name)} (learning-rate schedules follow a "
                            f"changed training length)" if name in ("epochs", "episodes_per_epoch")
                       else f"override the preset's {name}")
    for option, methods in method_options().values():  # the methods' own options (cycle-wgan: --savepoints, ...)
        p.add_argument(option.flag, **option.argparse_kwargs(methods))
    p.add_argument("--preset", metavar="NAME", help="use the preset entry NAME (e.g. AWA1; `zslkit methods NAME` lists "
                   "them) on whatever data is loaded, instead of the dataset's own preset (or the rules on the data)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config fields of the method: one or more KEY=VALUE after one --set (--set a=1 b=2), "
                        "and repeatable; `zslkit methods NAME` lists the fields")
    record_given(p)
    p.set_defaults(func=run)


class _Given:
    """Mixed into every option's action: records the options the command line gave (``given_options``), so that
    exactly those replace the values of a --config run file (a default is not a choice)."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        namespace.given_options = {*(getattr(namespace, "given_options", None) or ()), self.dest}


def record_given(parser: argparse.ArgumentParser) -> None:
    """Make every option of ``parser`` record itself in ``args.given_options`` when given."""
    for action in parser._actions:  # argparse has no public list of a parser's actions
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            action.__class__ = type(f"Given{type(action).__name__}", (_Given, type(action)), {})
    parser.set_defaults(given_options=None)


def run_fields(args, cli_overrides: dict) -> tuple[dict, dict, list[str]]:
    """The RunSpec fields of this command line: its options, or with ``--config`` the run file's values with the
    options given explicitly on top. Returns the fields, the run file's own overrides and one line per value the
    command line replaced or added."""
    fields = {field: getattr(args, dest) for dest, field in SPEC_OPTIONS.items() if getattr(args, dest) is not None}
    if not args.config:
        return {**fields, "overrides": cli_overrides}, {}, []
    given = {SPEC_OPTIONS[d]: getattr(args, d) for d in args.given_options or () if d in SPEC_OPTIONS}
    from_file = read_run_file(args.config)
    merged, notes = merge(from_file, given, cli_overrides, source=args.config)
    return {**fields, **merged}, from_file["overrides"], notes


def collect_overrides(args) -> dict:
    """The config overrides of the options and of ``--set``; an option and a ``--set`` that give one field two
    different values are a usage error (``--epochs 2 --set epochs=1``)."""
    overrides = {OPTION_FIELDS.get(k, k): getattr(args, k) for k in OVERRIDE_OPTIONS if getattr(args, k, None) is not None}
    overrides.update(option_overrides(args))
    from_options = dict(overrides)
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = (part.strip() for part in item.split("=", 1))
        field = key.replace("-", "_")
        if field in from_options and str(from_options[field]) != value and not _same_number(from_options[field], value):
            flag = "--" + next((o for o, f in OPTION_FIELDS.items() if f == field), field).replace("_", "-")
            raise ConfigError(f"{flag} {from_options[field]} and --set {key}={value} give {field} two values; give one")
        overrides[key] = value
    return overrides


def _same_number(a, b: str) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def method_options() -> dict:
    """The installed methods' own ``train`` options: dest -> (TrainOption, names of the methods that have it)."""
    out: dict = {}
    for name in available_methods():
        for option in get_method(name).train_options:
            out.setdefault(option.dest, (option, []))[1].append(name)
    return out


def _given_method_options(args) -> list:
    """The methods' options this command line gave: (TrainOption, methods having it, value)."""
    return [(opt, methods, getattr(args, dest)) for dest, (opt, methods) in method_options().items()
            if getattr(args, dest, None) not in (None, [])]


def option_overrides(args, dataset=None) -> dict:
    """The config fields of the methods' own options that were given (``dataset`` None: those that need no data;
    else those that do, read against it)."""
    out = {}
    for opt, _, value in _given_method_options(args):
        if opt.needs_data == (dataset is not None):
            out.update(opt.to_overrides(value, dataset))
    return out


def check_method_options(method_cls, args) -> None:
    """An option for a setting that ``method_cls`` lacks is a usage error naming the option and the methods that
    have it (``--method cvc-zsl --savepoints 1``: a cycle-wgan option), not a guess at a similar setting."""
    own = {f.name for f in dataclasses.fields(method_cls.config_class)}
    given = [(f"--{k.replace('_', '-')}", OPTION_FIELDS.get(k, k)) for k in OVERRIDE_OPTIONS
             if k != "variant" and getattr(args, k, None) is not None]
    for flag, field in given:
        if field not in own:
            having = [m for m in available_methods()
                      if field in {f.name for f in dataclasses.fields(get_method(m).config_class)}]
            _refuse(flag, method_cls, f"has no setting {field}", having)
    for opt, methods, _ in _given_method_options(args):
        if opt not in method_cls.train_options:
            _refuse(opt.flag, method_cls, f"has no option {opt.flag}", methods)


def _refuse(flag: str, method_cls, problem: str, having: list[str]) -> None:
    where = f"it applies to {', '.join(having)}" if having else "no installed method has it"
    raise ConfigError(f"{flag}: {method_cls.name} {problem} ({where}); drop {flag} or choose "
                      f"--method {having[0] if having else '...'}")


def default_out(method: str, dataset_label: str, seed: int, setting: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in dataset_label)
    tag = "" if setting == "inductive" else f"-{setting}"
    return Path("runs") / f"{method}-{safe}{tag}-seed{seed}"


def run(args) -> int:
    if args.resume and args.config:
        raise ConfigError(f"--config {args.config} and --resume {args.resume} exclude each other: a resumed run takes "
                          f"everything from RUN_DIR/config.json (to train a run again: --config RUN_DIR/{RUN_FILE} "
                          f"--out NEW)")
    if args.resume:
        ignored = sorted(set(args.given_options or ()) - RESUME_OPTIONS)
        if ignored:
            flags = ", ".join("--" + d.replace("_", "-") for d in ignored)
            raise ConfigError(f"--resume {args.resume} continues the run with the settings in its config.json, so "
                              f"{flags} would be ignored: drop {'them' if len(ignored) > 1 else 'it'} (only --device, "
                              f"--no-progress and --log-to go with --resume). To train with other settings: zslkit "
                              f"train --config {Path(args.resume) / RUN_FILE} OPTIONS --out NEW")

        if (Path(args.resume) / "metrics.json").is_file():
            raise RunDirError(f"{args.resume}: this run is already finished (metrics.json exists); nothing to "
                              f"resume. To train it again: zslkit train ... --out {args.resume} --overwrite")
        spec = load_spec(args.resume)
        if args.device != "auto":
            spec.device = args.device
        if (Path(args.resume) / "checkpoints" / "progress.pt").is_file():
            print(f"resuming {args.resume} from {Path(args.resume) / 'checkpoints' / 'progress.pt'}")
        return _execute(args, spec, Path(args.resume), resume=True)
    cli_overrides = collect_overrides(args)
    fields, file_overrides, notes = run_fields(args, cli_overrides)
    method_name = fields.pop("method", None) or (DEFAULT_METHOD if DEFAULT_METHOD in available_methods() else "eszsl")
    method_cls = get_method(method_name)
    check_method_options(method_cls, args)
    if args.config:
        check_overrides(method_cls, file_overrides, source=args.config)
    spec = RunSpec(method=method_cls.name, **{"dataset": DEFAULT_DATASET, **fields})
    if getattr(args, "val_splits", None) is not None:
        spec.val_splits = args.val_splits
    device = resolve_device(spec.device)
    dataset = open_dataset(spec.dataset, semantic=spec.semantic, seed=spec.data_seed)
    from_data = option_overrides(args, dataset)  # e.g. cycle-wgan --architecture: read against the data
    if from_data:  # above the run file's overrides, below the other options
        spec.overrides = {**file_overrides, **from_data, **cli_overrides}
        for opt, _, value in _given_method_options(args):
            if opt.needs_data:
                shown = ", ".join(value) if isinstance(value, list) else str(value)
                print(f"  {opt.dest}: {shown} ({len(from_data)} settings; --set and the other options override them)")
    out = Path(args.out) if args.out else default_out(method_cls.name, dataset.name, spec.seed, spec.setting)
    data_label = "SYNTHETIC" if dataset.synthetic else "real"
    print(f"zslkit train: {method_cls.name} on {dataset.name} ({data_label} data), {spec.setting}, seed {spec.seed}, "
          f"device {device_description(device)}")
    if args.config:
        print(f"  run file: {args.config}" + ("" if notes else " (no option replaces its values)"))
        for note in notes:
            print(f"  {note}")
    if spec.setting == "transductive":
        print("  TRANSDUCTIVE: the unlabeled test_unseen features are used during training")
    if spec.selection == "oracle":
        print("  ORACLE selection: chosen on the test set, only for comparison with published tables")
    return _execute(args, spec, out, dataset=dataset)


def _execute(args, spec, out: Path, *, resume: bool = False, dataset=None) -> int:
    """``experiment.execute`` with the ``--log-to`` trackers, then the metrics block."""
    trackers = make_trackers(args.log_to, out, resume=resume)
    try:
        metrics = execute(spec, out, overwrite=args.overwrite, progress=not args.no_progress, dataset=dataset,
                          resume=resume, callbacks=trackers)
    except BaseException:
        for t in trackers:
            t.close(failed=True)
        raise
    print(format_metrics(metrics))
    print(f"run directory: {out}")
    for t in trackers:
        print(f"logged to {t.where}")
    return 0


def format_metrics(m: dict) -> str:
    """Human-readable metrics block that always says how the numbers were selected and on what data."""
    sel = m["selection"]
    data = "SYNTHETIC data" if m.get("synthetic") else "real data"
    method = m["method"] + (f" ({m['variant']})" if m.get("variant") and m["variant"] != m["method"] else "")
    lines = [f"results ({method}, {m['dataset']}, {data}, {m['setting']}, seed {m['seed']}; "
             f"selection: {sel['mode']}, criterion {sel['criterion']})",
             f"  selection: {sel['description']}"]
    if sel.get("chosen"):
        lines.append(f"  chosen: {sel['chosen']}")
    val = sel.get("validation_metrics") or {}
    if "search_time_s" in val:
        lines.append(f"  validation search: {val['search_time_s']:.1f} s; final model {val['final_model']}; "
                     f"validation H = {100 * val['gzsl_h']:.2f}%, T1 = {100 * val['zsl_t1']:.2f}%")
    splits = val.get("splits") or {}
    if splits.get("count", 1) > 1:
        lines.append(f"  validation over {splits['count']} class splits: {splits['criterion']} "
                     f"{100 * splits['mean']:.2f}% +- {100 * splits['std']:.2f}% (per split "
                     f"{', '.join(f'{100 * v:.1f}' for v in splits['per_split'])})")
    if m.get("time_s"):
        t = m["time_s"]
        lines.append(f"  wall time: search {t['search']:.1f} s, final fit {t['final_fit']:.1f} s, evaluation "
                     f"{t['evaluation']:.1f} s")
    lines.append(f"  ZSL   T1 = {100 * m['zsl_t1']:.2f}%")
    lines.append(f"  GZSL  U = {100 * m['gzsl_u']:.2f}%  S = {100 * m['gzsl_s']:.2f}%  H = {100 * m['gzsl_h']:.2f}%")
    if "gzsl_cs_h" in m:
        lines.append(f"  GZSL + calibrated stacking (gamma {m['cs_gamma']:.4g}, from {sel['calibration_gamma_source']}): "
                     f"U = {100 * m['gzsl_cs_u']:.2f}%  S = {100 * m['gzsl_cs_s']:.2f}%  H = {100 * m['gzsl_cs_h']:.2f}%")
    if "ausuc" in m:
        lines.append(f"  AUSUC = {100 * m['ausuc']:.2f}%")
    if m.get("transductive"):
        lines.append("  (transductive: unlabeled test_unseen features were used in training)")
    for w in m.get("warnings") or []:
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)
