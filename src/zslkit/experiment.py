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
from zslkit.errors import RunDirError, TrainingDivergedError
from zslkit.methods.config import apply_overrides
from zslkit.methods.registry import get_method
from zslkit.pipeline import run_protocol
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
    criterion: str | None = None  # None: the method's default_criterion (its recipe's)
    seed: int = 0
    device: str = "auto"
    overrides: dict = field(default_factory=dict)
    deterministic: bool = False
    checkpoint_every: int = 10  # epochs between training checkpoints (resumable runs)
    val_splits: int | None = None  # validation class splits (None: the rule of protocol.selection.split_count)
    preset: str | None = None  # a preset entry by name (e.g. AWA1) for any data; None: the dataset's own, if any


def spec_fingerprint(spec: RunSpec) -> dict:
    """The RunSpec fields a resumed run must agree on (the device may change; a field added later counts only when
    set, so runs started before it existed still resume)."""
    fields = dataclasses.asdict(spec) | {"device": None}
    if fields["preset"] is None:
        del fields["preset"]
    return fields


def build_config(method_cls, dataset: ZSLDataset, spec: RunSpec):
    """The method recipe's config for the dataset (the preset of ``spec.preset`` / the dataset, for the variant, or
    the rules on the data), then the user's overrides with what the recipe says they imply (``user_overrides``;
    a changed training length rescales the learning-rate schedule, ``follow_budget``)."""
    recipe = method_cls.recipe
    variant = spec.overrides.get("variant")
    config = recipe.default_config(dataset, spec.setting, variant, spec.preset)
    overrides = dict(spec.overrides)
    if "variant" not in {f.name for f in dataclasses.fields(config)}:  # a preset variant (cvc-zsl "reference")
        overrides.pop("variant", None)
    overrides = recipe.user_overrides(config, overrides)
    return recipe.follow_budget(config, apply_overrides(config, overrides, source="command line"), spec.setting)


def recipe_criterion(method_cls, spec: RunSpec, config) -> RunSpec:
    """``spec`` with the criterion the config asks for (cycle-wgan: its ``checkpoint_metric``, which needs a
    selection that chooses and agrees with ``criterion``; the recipe's ``criterion``)."""
    criterion = method_cls.recipe.criterion(config, spec.selection, spec.criterion)
    return spec if criterion == spec.criterion else dataclasses.replace(spec, criterion=criterion)


def preset_semantic(method_cls, dataset: ZSLDataset, spec: RunSpec) -> str | None:
    """The semantic source the chosen preset asks for (e.g. ``original_att`` for the CVC-ZSL reference on AwA2),
    when the user named none and the real dataset was loaded with another; else None."""
    if spec.semantic is not None or dataset.synthetic:
        return None
    preset = method_cls.recipe.preset_for(dataset, spec.setting, spec.overrides.get("variant"), spec.preset)
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
    spec = recipe_criterion(method_cls, spec, config)
    if spec.deterministic:
        set_deterministic(True)
    seed_everything(spec.seed)
    out = Path(out)
    with RunDir(out, overwrite=overwrite, resume=resume) as rd:
        if resume and not rd.file("config.json").is_file():
            raise RunDirError(f"{out}: nothing to resume (no config.json)")
        store = ProgressStore(rd.file("checkpoints") / "progress.pt", every=spec.checkpoint_every,
                              fingerprint=fingerprint([spec_fingerprint(spec),
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
        rd.write_json("provenance.json", provenance(dataset.summary(), seed=spec.seed,
                                                    device=device_description(device), wall_time_s=wall,
                                                    extra=result.model.run_provenance() or None))
        metrics = dict(result.metrics, wall_time_s=round(wall, 3))
        if plots:
            save_run_plots(rd.path, result=result, dataset=dataset)
        rd.write_json("metrics.json", metrics)  # written last: its presence marks a finished run
        store.clear()
    return metrics
