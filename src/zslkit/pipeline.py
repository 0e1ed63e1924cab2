"""The evaluation protocol end to end: select (validation | fixed | oracle), train, test once.

``run_protocol`` is a pure function of (method, config, setting, selection, seed, data): it returns the
final model, its metrics (ZSL and GZSL from the same model) and the selection trace. Writing the run
directory is the caller's job (see ``zslkit.experiment``). The search itself (candidates x heads x epochs,
racing, patience, the one comparison rule) is ``zslkit.protocol.search.Search``; the criteria are
``zslkit.protocol.criteria``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from zslkit.checkpointing import ProgressStore, Resumer
from zslkit.data.dataset import ZSLDataset
from zslkit.errors import ConfigError
from zslkit.methods._epochs import progress_stage
from zslkit.methods.base import ZSLMethod
from zslkit.methods.config import apply_overrides, make_config, validate_config
from zslkit.protocol.criteria import CRITERIA, resolve_criterion
from zslkit.protocol.evaluate import TestScores
from zslkit.protocol.health import health_warnings
from zslkit.protocol.search import VALIDATION_KEYS, Search, best_row, build_search, fit_on, mean_rows
from zslkit.protocol.selection import SELECTION_MODES, validation_view, validation_views
from zslkit.tracking import CallbackList

log = logging.getLogger("zslkit.pipeline")

SETTINGS = ("inductive", "transductive")
__all__ = ["CRITERIA", "SETTINGS", "ProtocolResult", "best_row", "chosen_overrides", "fit_on", "mean_rows", "rebuild",
           "run_protocol", "select_on_validation"]


@dataclass
class ProtocolResult:
    model: ZSLMethod
    metrics: dict
    config: object  # the final method config (dataclass)
    history: list[dict] = field(default_factory=list)
    scores: TestScores | None = None
    wall_time_s: float = 0.0


def select_on_validation(method_cls: type[ZSLMethod], dataset: ZSLDataset, config, *, setting: str = "inductive",
                         criterion: str = "gzsl_h", make=None, history: list[dict] | None = None,
                         resumer: Resumer | None = None, kept: dict | None = None, callbacks=None,
                         stage: str = "validation", views: list[ZSLDataset] | None = None) -> dict:
    """Fit every candidate of the method recipe's ``search_space`` on the validation view of ``dataset`` (train
    classes vs validation classes, test data never touched), score each evaluation point under every
    ``head_space`` entry, and return the best row by ``criterion`` (its ``overrides`` and ``epoch`` say what
    was chosen). Rows are appended to ``history``; ``make(cfg)`` builds a model (default: seed 0 on the
    automatic device). With ``kept`` (a dict), ``kept["state"]`` receives the best point's ``state_dict()``
    (for methods that keep the validated model instead of retraining); ``callbacks`` (zslkit.tracking) see every
    new row as an ``EpochEvent``. ``stage`` tags the rows ("warmup" for the inductive warm-up of a transductive
    method). A fit stops early once ``validation_patience`` (a config fraction of its epochs, 0: never) passes
    without a better point of that fit. ``views`` (several validation views,
    :func:`zslkit.protocol.selection.validation_views`): the criterion is averaged over the splits, with racing
    (see ``zslkit.protocol.search``); ``kept`` is ignored with several views (the final model is then retrained)."""
    views = views or [validation_view(dataset)]
    keep = kept is not None and len(views) == 1
    search = build_search(method_cls, config, stage, views, criterion, make or (lambda cfg: method_cls(cfg)),
                          dataset, setting, keep=keep, kept_state=kept.get("state") if keep else None,
                          history=[] if history is None else history, resumer=resumer or Resumer(None),
                          callbacks=CallbackList(callbacks))
    best = search.run()
    if keep:
        kept["state"] = search.kept_state
    return best


def chosen_overrides(method_cls: type[ZSLMethod], row: dict) -> dict:
    """The config overrides a selected history row stands for: its candidate's overrides plus its epoch (epoch 0:
    a point a method reports before training its stage, e.g. CVC-ZSL's warm-up model before self-training)."""
    chosen = dict(row["overrides"])
    if method_cls.epochs_field and row["epoch"] >= 0:
        chosen[method_cls.epochs_field] = row["epoch"]
    return chosen


def run_protocol(method_cls: type[ZSLMethod], dataset: ZSLDataset, *, config=None, setting: str = "inductive",
                 selection: str = "validation", criterion: str | None = None, seed: int = 0, device="auto",
                 progress: bool = False, store: ProgressStore | None = None, callbacks=None,
                 val_splits: int | None = None) -> ProtocolResult:
    """Run the protocol; see the module docstring. With ``store``, fits checkpoint periodically and a
    run interrupted earlier continues from the stored position. ``callbacks`` (functions, or objects with
    ``on_epoch(event)`` / ``on_end(metrics)``; see zslkit.tracking) see every monitored evaluation point and
    the final metrics. ``val_splits``: the number of validation class splits the criterion is averaged over
    (default: :func:`zslkit.protocol.selection.split_count` of the seen classes). ``metrics["time_s"]``: the wall
    time of search, final fit and evaluation."""
    if setting not in SETTINGS:
        raise ConfigError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if setting not in method_cls.settings:
        raise ConfigError(f"method {method_cls.name!r} supports {', '.join(method_cls.settings)}, not {setting!r}")
    if selection not in SELECTION_MODES:
        raise ConfigError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTION_MODES)}")
    criterion = resolve_criterion(method_cls, criterion)
    config = (method_cls.recipe.default_config(dataset, setting) if config is None
              else make_config(method_cls.config_class, config))
    validate_config(config, method_cls.name)  # before any training: a bad value fails now, not after a search
    run = _Run(method_cls, dataset, setting, criterion, seed, device, progress, store, callbacks, val_splits)
    model, final_cfg, chosen, val_metrics = getattr(run, selection)(config)  # _Run.fixed / validation / oracle
    run.timer.lap("final_fit")
    scores = TestScores(model, dataset)
    metrics = scores.metrics(None if selection == "fixed" else run.best["cs_gamma"], curve=True)
    run.timer.lap("evaluation")
    metrics = _result_metrics(metrics, scores, model, run.timer, dataset)
    metrics.update({
        "method": method_cls.name,
        "variant": getattr(final_cfg, "variant", None),
        "setting": setting,
        "transductive": setting == "transductive",
        "selection": {"mode": selection, "description": SELECTION_MODES[selection], "criterion": criterion,
                      "chosen": chosen, "validation_metrics": val_metrics,
                      "calibration_gamma_source": {"validation": "validation classes", "oracle": "test (ORACLE)",
                                                   "fixed": "none"}[selection]},
        "dataset": dataset.name,
        "synthetic": bool(dataset.synthetic),
        "semantic_source": dataset.semantic_source,
        "seed": int(seed),
        "warnings": metrics.pop("warnings"),
    })
    run.callbacks.on_end(metrics)
    return ProtocolResult(model=model, metrics=metrics, config=final_cfg, history=run.history, scores=scores,
                          wall_time_s=time.perf_counter() - run.started)


class _Run:
    """One protocol run's selection modes: each fits, selects and returns (final model, final config, chosen
    overrides, validation metrics or None), with the chosen row in ``best`` and the search timed."""

    def __init__(self, method_cls, dataset, setting, criterion, seed, device, progress, store, callbacks,
                 val_splits=None):
        self.method_cls, self.dataset, self.setting, self.criterion = method_cls, dataset, setting, criterion
        self.transductive = setting == "transductive"
        self.callbacks = CallbackList(callbacks)
        self.timer = _Timer()
        self.started = self.timer.last
        self.resumer = Resumer(store)
        self.history: list[dict] = self.resumer.history()
        self.make = lambda cfg: method_cls(cfg, seed=seed, device=device, progress=progress)
        self.best: dict | None = None
        self.val_splits = val_splits

    def search(self, config, stage: str, views: list[ZSLDataset], setting: str, *, keep: bool = False) -> Search:
        """The search of one stage (:func:`zslkit.protocol.search.build_search`) over this run's history."""
        return build_search(self.method_cls, config, stage, views, self.criterion, self.make, self.dataset, setting,
                            keep=keep, kept_state=self.resumer.kept_state() if keep else None, history=self.history,
                            resumer=self.resumer, callbacks=self.callbacks)

    def fixed(self, config):  # one candidate, the config as given, fitted without evaluation points
        self.timer.lap("search")
        search = self.search(config, "fixed", [self.dataset], self.setting)
        search.run()
        return search.last_model, config, {}, None

    def validation(self, config):
        cls, crit, dataset = self.method_cls, self.criterion, self.dataset
        views = validation_views(dataset, self.val_splits)
        keep = cls.keeps_validated_model and len(views) == 1
        warm_cfg = cls.recipe.warmup_config(config) if self.transductive else None
        warm_chosen = {}
        if warm_cfg is not None:  # transductive from the best inductive model: choose the warm-up first
            warm = self.search(warm_cfg, "warmup", views, "inductive").run()
            warmed = cls.recipe.with_warmup(config, chosen_overrides(cls, warm))
            warm_chosen = {f.name: getattr(warmed, f.name) for f in dataclasses.fields(warmed)
                           if getattr(warmed, f.name) != getattr(config, f.name)}
            config = warmed
            log.info("warm-up chosen on validation (%s=%.4f): %s", crit, warm[crit], chosen_overrides(cls, warm))
        search = self.search(config, "validation", views, self.setting, keep=keep)
        self.best = best = search.run()
        self.timer.lap("search")
        chosen = {**warm_chosen, **chosen_overrides(cls, best)}  # what the warm-up selection chose, shown too
        final_cfg = apply_overrides(config, chosen)
        if keep:
            log.info("selected on validation (%s=%.4f): %s; keeping that model (no retraining)", crit, best[crit],
                     chosen)
            model = rebuild(self.make(final_cfg), dataset, validation_view(dataset), search.kept_state)
            X, labels = dataset.split("trainval")
            model.adopt_seen_classes(X, np.searchsorted(dataset.seen_classes, labels),
                                     dataset.class_embeddings[dataset.seen_classes])
        else:
            log.info("selected on validation (%s=%.4f): %s; retraining on trainval", crit, best[crit], chosen)
            model = self.make(final_cfg)
            with progress_stage("final fit on trainval"):
                fit_on(model, dataset, self.transductive, **self.resumer.fit_kwargs("final", 0, self.history))
        val_metrics = {k: best[k] for k in VALIDATION_KEYS}
        val_metrics["splits"] = _split_summary(views, best, crit)
        val_metrics["search_time_s"] = round(self.timer.parts["search"], 3)
        val_metrics["final_model"] = "kept from validation" if keep else "retrained on trainval"
        return model, final_cfg, chosen, val_metrics

    def oracle(self, config):  # every evaluation point scored on TEST; the best one's state is kept
        search = self.search(config, "oracle", [self.dataset], self.setting, keep=True)
        self.best = best = search.run()
        self.timer.lap("search")
        chosen = chosen_overrides(self.method_cls, best)
        final_cfg = apply_overrides(config, chosen)
        # the state goes into the last fitted model (what it holds beyond its state, e.g. cycle-WGAN's held-out
        # diagnostic rows, comes from a fit on the same data)
        model = self.make(final_cfg) if search.last_model is None else search.last_model
        model.config = final_cfg
        return rebuild(model, self.dataset, self.dataset, search.kept_state), final_cfg, chosen, None


def _result_metrics(metrics: dict, scores: TestScores, model, timer: "_Timer", dataset: ZSLDataset) -> dict:
    """The test metrics as floats with the unseen-prediction share, the wall times, the model's extras and the
    health warnings (key ``warnings``)."""
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics["gzsl_unseen_share"] = scores.unseen_prediction_rate()
    metrics["time_s"] = timer.summary()
    log.info("wall time: search %.1f s, final fit %.1f s, evaluation %.1f s", metrics["time_s"]["search"],
             metrics["time_s"]["final_fit"], metrics["time_s"]["evaluation"])
    metrics.update(getattr(model, "result_extras", dict)())  # e.g. cycle-wgan's generator diagnostics
    warnings = health_warnings(metrics, num_unseen=int(dataset.unseen_classes.size),
                               unseen_share=metrics["gzsl_unseen_share"])
    for w in warnings:
        log.info("result warning: %s", w)
    metrics["warnings"] = warnings
    return metrics


class _Timer:
    """Wall time per protocol part: each ``lap(part)`` adds the time since the previous lap to ``part``."""

    PARTS = ("search", "final_fit", "evaluation")

    def __init__(self):
        self.last, self.parts = time.perf_counter(), dict.fromkeys(self.PARTS, 0.0)

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.parts[part] += now - self.last
        self.last = now

    def summary(self) -> dict:
        out = {k: round(v, 3) for k, v in self.parts.items()}
        out["total"] = round(sum(self.parts.values()), 3)
        return out


def _split_summary(views: list[ZSLDataset], best: dict, criterion: str) -> dict:
    """What metrics.json says about the validation splits: how many, their classes, the chosen point's criterion
    per split, its mean and spread."""
    per = best.get("criterion_per_split", [best[criterion]])
    return {"count": len(views), "criterion": criterion, "mean": float(np.mean(per)), "std": float(np.std(per)),
            "per_split": [float(v) for v in per],
            "validation_classes": [[int(c) for c in np.unique(v.labels[v.splits["test_unseen"]])] for v in views]}


def rebuild(model: ZSLMethod, dataset: ZSLDataset, fitted_on: ZSLDataset, state: dict) -> ZSLMethod:
    """``model`` (already configured) with a stored ``state_dict`` loaded and the fitted dimensions of a fit on
    ``fitted_on`` (the dataset itself, or its validation view for a kept validation model), through
    ``ZSLMethod.restore``, the restore of ``ZSLMethod.from_checkpoint``."""
    if state is None:
        raise ConfigError(f"method {model.name!r} reported no evaluation point to keep")
    dims = {"feature_dim": dataset.feature_dim, "embedding_dim": dataset.embedding_dim,
            "num_train_classes": int(np.unique(fitted_on.labels[fitted_on.splits["trainval"]]).size)}
    return model.restore(state, dims)

