"""One run, from names to a finished run directory; shared by ``zslkit train`` and ``zslkit reproduce``."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from zslkit.checkpointing import ProgressStore, fingerprint
from zslkit.data.catalog import DEFAULT_DATASET, open_dataset
from zslkit.data.dataset import ZSLDataset
from zslkit.errors import ConfigError, RunDirError, TrainingDivergedError
from zslkit.methods.config import apply_overrides
from zslkit.methods.registry import get_method
from zslkit.pipeline import run_protocol
from zslkit.presets import find_preset
from zslkit.reporting.plots import save_run_plots  # matplotlib itself is imported when a plot is drawn
from zslkit.runfile import RUN_FILE, write_run_file
from zslkit.runs import RunDir, provenance, read_json
from zslkit.runtime import device_description, resolve_device, seed_everything, set_deterministic

log = logging.getLogger("zslkit.experiment")


@dataclass
class RunSpec:
    """Everything that defines a run (a run is a pure function of this and the data)."""

    method: str
    dataset: str = DEFAULT_DATASET  # synthetic preset name or a path (see data.catalog)
    semantic: str | None = None
    data_seed: int = 0
    setting: str = "inductive"
    selection: str = "validation"
    criterion: str | None = None  # None: the method's default_criterion
    seed: int = 0
    device: str = "auto"
    overrides: dict = field(default_factory=dict)
    deterministic: bool = False
    checkpoint_every: int = 10  # epochs between training checkpoints (resumable runs)
    val_splits: int | None = None  # validation class splits (None: the rule of protocol.selection.split_count)


def build_config(method_cls, dataset: ZSLDataset, spec: RunSpec):
    """The method's preset (or scaled defaults) for the dataset, then the user's overrides (a changed training
    length rescales the learning-rate schedule, ``follow_budget``). Episode sizes the user asked for
    explicitly are never clipped to the data silently: an impossible one is an error."""
    variant = spec.overrides.get("variant")
    config = method_cls.default_config(dataset, spec.setting, **({"variant": variant} if variant else {}))
    overrides = dict(spec.overrides)
    names = {f.name for f in dataclasses.fields(config)}
    if "variant" not in names:  # a preset variant (e.g. cvc-zsl "reference"), already used by default_config
        overrides.pop("variant", None)
    if "episode_overflow" in names and ({"ways", "shots"} & set(overrides)):
        overrides.setdefault("episode_overflow", "error")
    return method_cls.follow_budget(config, apply_overrides(config, overrides, source="command line"), spec.setting)


def checkpoint_metric_criterion(spec: RunSpec, config) -> RunSpec:
    """A config's ``checkpoint_metric`` (cycle-wgan: the validation metric that chooses among savepoints) is the
    selection criterion; it needs a selection that chooses (validation or oracle) and agrees with ``criterion``."""
    metric = getattr(config, "checkpoint_metric", "")
    if not metric:
        return spec
    if spec.selection == "fixed":
        raise ConfigError(f"checkpoint metric {metric} chooses among savepoints on validation classes, but --selection "
                          f"fixed chooses nothing: use --selection validation, or keep the savepoints and pick one "
                          f"with zslkit evaluate RUN_DIR --epoch E")
    if spec.criterion not in (None, metric):
        raise ConfigError(f"checkpoint metric {metric} and --criterion {spec.criterion} disagree: the checkpoint "
                          f"metric is the selection criterion (give one of them)")
    return dataclasses.replace(spec, criterion=metric)


def preset_semantic(method_cls, dataset: ZSLDataset, spec: RunSpec) -> str | None:
    """The semantic source the chosen preset asks for (e.g. ``original_att`` for the CVC-ZSL reference on AwA2),
    when the user named none and the real dataset was loaded with another; else None."""
    if spec.semantic is not None or dataset.synthetic:
        return None
    preset = find_preset(method_cls.name, dataset.name, spec.setting, spec.overrides.get("variant"))
    if preset is None or preset.semantic is None or preset.name.lower() != dataset.name.lower():
        return None
    return None if preset.semantic == dataset.semantic_source else preset.semantic


def load_spec(run_dir: str | Path) -> RunSpec:
    """The RunSpec stored in a run directory's config.json (for --resume)."""
    cfg = read_json(Path(run_dir) / "config.json")
    names = {f.name for f in dataclasses.fields(RunSpec)}
    try:
        return RunSpec(**{k: v for k, v in cfg.items() if k in names})
    except TypeError as exc:
        raise RunDirError(f"{run_dir}/config.json: not a zslkit run configuration ({exc})") from None


def execute(spec: RunSpec, out: str | Path, *, overwrite: bool = False, progress: bool = True,
            dataset: ZSLDataset | None = None, plots: bool = True, resume: bool = False,
            callbacks=None) -> dict:
    """Run the protocol for ``spec`` and write ``out``; returns the metrics (also in metrics.json).

    ``out/run.yaml`` holds ``spec`` as asked (zslkit.runfile: ``zslkit train --config out/run.yaml`` replays it).
    Training checkpoints go to ``out/checkpoints/progress.pt`` every ``spec.checkpoint_every`` epochs;
    ``resume=True`` continues from there (Ctrl-C saves one and says how to resume). ``callbacks`` see every
    monitored evaluation point and the final metrics (see ``run_protocol`` and zslkit.tracking).
    """
    method_cls = get_method(spec.method)
    asked = spec  # before the preset's semantic source and the checkpoint metric fill it in (they follow from it)
    device = resolve_device(spec.device)
    if dataset is None:
        dataset = open_dataset(spec.dataset, semantic=spec.semantic, seed=spec.data_seed)
    semantic = preset_semantic(method_cls, dataset, spec)
    if semantic is not None:  # the preset was made for another semantic source of this dataset (AwA2 reference)
        spec = dataclasses.replace(spec, semantic=semantic)
        dataset = open_dataset(spec.dataset, semantic=semantic, seed=spec.data_seed)
    config = build_config(method_cls, dataset, spec)
    spec = checkpoint_metric_criterion(spec, config)
    if spec.deterministic:
        set_deterministic(True)
    seed_everything(spec.seed)
    out = Path(out)
    with RunDir(out, overwrite=overwrite, resume=resume) as rd:
        if resume and not rd.file("config.json").is_file():
            raise RunDirError(f"{out}: nothing to resume (no config.json)")
        store = ProgressStore(rd.file("checkpoints") / "progress.pt", every=spec.checkpoint_every,
                              fingerprint=fingerprint([dataclasses.asdict(spec) | {"device": None},
                                                       dataset.summary(), dataclasses.asdict(config)]),
                              resume_hint=f"zslkit train --resume {out}")
        if not resume:
            store.clear()
        elif store.path.is_file():
            log.info("resuming %s from %s", out, store.path)
        resolved = dataclasses.asdict(spec)
        resolved.update(method=method_cls.name, method_config=dataclasses.asdict(config),
                        dataset_name=dataset.name, synthetic=dataset.synthetic,
                        data_root=str(Path(spec.dataset).resolve()) if Path(spec.dataset).exists() else None,
                        device=str(device))
        rd.write_json("config.json", resolved)
        if not resume or not rd.file(RUN_FILE).is_file():  # a resumed run keeps the file it was started with
            write_run_file(rd.file(RUN_FILE), asked, config)
        started = time.perf_counter()
        try:
            with store.handle_sigint():
                result = run_protocol(method_cls, dataset, config=config, setting=spec.setting,
                                      selection=spec.selection, criterion=spec.criterion, seed=spec.seed,
                                      device=device, progress=progress, store=store, callbacks=callbacks,
                                      val_splits=spec.val_splits)
        except TrainingDivergedError as exc:
            kept = (f"the last good checkpoint is kept in {store.path}" if store.path.is_file()
                    else "it diverged before the first checkpoint")
            change = ("lower the learning rate (--lr or --set ...)" if "lr" in {f.name for f in dataclasses.fields(config)}
                      else "change the settings the message names (--set ...)")  # ESZSL: closed form, no lr
            raise TrainingDivergedError(f"{exc}; {kept}. A resume would repeat the same steps: {change} and start a "
                                        f"new run (another --out, or --overwrite)") from None
        wall = store.earlier_s + (time.perf_counter() - started)  # a resumed run: all its sessions
        resolved["method_config"] = dataclasses.asdict(result.config)
        rd.write_json("config.json", resolved)
        result.model.save(rd.file("model.pt"), extra={"dataset": dataset.name,
                                                      "class_names": list(dataset.class_names)})
        rd.write_json("history.json", result.history)
        curve = result.scores.curve()
        rd.write_json("curves.json", {"seen_unseen": {k: v.tolist() for k, v in curve.items()},
                                      "training": getattr(result.model, "history_", [])})
        rd.write_json("per_class.json", result.scores.per_class())
        reused = getattr(result.model, "reused_stages_", None)  # stages taken from earlier runs (cycle-wgan)
        rd.write_json("provenance.json", provenance(dataset.summary(), seed=spec.seed,
                                                    device=device_description(device), wall_time_s=wall,
                                                    extra={"reused_stages": reused} if reused else None))
        metrics = dict(result.metrics, wall_time_s=round(wall, 3))
        if plots:
            save_run_plots(rd.path, result=result, dataset=dataset)
        rd.write_json("metrics.json", metrics)  # written last: its presence marks a finished run
        store.clear()
    return metrics
