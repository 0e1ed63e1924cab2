"""The evaluation protocol end to end: select (validation | fixed | oracle), train, test once.

``run_protocol`` is a pure function of (method, config, setting, selection, seed, data): it returns the
final model, its metrics (ZSL and GZSL from the same model) and the selection trace. Writing the run
directory is the caller's job (see ``zslkit.cli.train_cmd``).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from zslkit.checkpointing import ProgressStore, capture_rng, restore_rng
from zslkit.data.dataset import ZSLDataset
from zslkit.errors import ConfigError
from zslkit.methods._epochs import progress_stage
from zslkit.methods.base import ZSLMethod
from zslkit.methods.config import apply_overrides, empty_settings, make_config, validate_config
from zslkit.protocol.evaluate import TestScores
from zslkit.protocol.health import health_warnings
from zslkit.protocol.selection import SELECTION_MODES, validation_view
from zslkit.tracking import CallbackList, EpochEvent

log = logging.getLogger("zslkit.pipeline")

SETTINGS = ("inductive", "transductive")
CRITERIA = ("gzsl_h", "zsl_t1", "gzsl_cs_h")


@dataclass
class ProtocolResult:
    model: ZSLMethod
    metrics: dict
    config: object  # the final method config (dataclass)
    history: list[dict] = field(default_factory=list)
    scores: TestScores | None = None
    wall_time_s: float = 0.0


def fit_on(model: ZSLMethod, dataset: ZSLDataset, transductive: bool, monitor=None, **fit_kwargs) -> ZSLMethod:
    """Fit on the dataset's trainval samples (labels = positions among the seen classes); transductive
    runs also get the unlabeled test_unseen features and the unseen-class embeddings."""
    seen = dataset.seen_classes
    X, labels = dataset.split("trainval")
    y = np.searchsorted(seen, labels)
    if transductive:
        fit_kwargs["unlabeled"] = dataset.split("test_unseen")[0]
        fit_kwargs["unlabeled_embeddings"] = dataset.class_embeddings[dataset.unseen_classes]
    return model.fit(X, y, dataset.class_embeddings[seen], monitor=monitor, **fit_kwargs)


def best_row(history: list[dict], criterion: str, candidate: int | None = None,
             stage: str | None = None) -> dict | None:
    """The first row with the highest ``criterion`` (ties keep the earliest evaluation point), among the rows
    of ``candidate`` and of selection ``stage`` ("warmup" or "validation") when given."""
    best = None
    for row in history:
        if candidate is not None and row["candidate"] != candidate:
            continue
        if stage is not None and row.get("stage", "validation") != stage:
            continue
        if best is None or row[criterion] > best[criterion] + 1e-12:
            best = row
    return best


def select_on_validation(method_cls: type[ZSLMethod], dataset: ZSLDataset, config, *, setting: str = "inductive",
                         criterion: str = "gzsl_h", make=None, history: list[dict] | None = None,
                         resumer: "_Resumer | None" = None, kept: dict | None = None, callbacks=None,
                         stage: str = "validation") -> dict:
    """Fit every candidate of ``method_cls.search_space`` on the validation view of ``dataset`` (train
    classes vs validation classes, test data never touched), score each evaluation point under every
    ``head_space`` entry, and return the best row by ``criterion`` (its ``overrides`` and ``epoch`` say what
    was chosen). Rows are appended to ``history``; ``make(cfg)`` builds a model (default: seed 0 on the
    automatic device). With ``kept`` (a dict), ``kept["state"]`` receives the best point's ``state_dict()``
    (for methods that keep the validated model instead of retraining); ``callbacks`` (zslkit.tracking) see every
    new row as an ``EpochEvent`` (live progress, trackers, sweeps). ``stage`` tags the rows ("warmup" for the
    inductive warm-up of a transductive method). A fit stops early once ``validation_patience`` (a config
    fraction of its epochs, 0: never) passes without a better point of that fit."""
    make = make or (lambda cfg: method_cls(cfg))
    history = [] if history is None else history
    resumer = resumer or _Resumer(None)
    callbacks = CallbackList(callbacks)
    transductive = setting == "transductive"
    view = validation_view(dataset)
    heads = method_cls.head_space(config, dataset, setting) or [{}]
    best = {"row": best_row(history, criterion, stage=stage)}
    candidates = list(method_cls.search_space(config, dataset, setting))
    for i, overrides in enumerate(candidates):
        if resumer.done(stage, i):
            continue
        cfg = apply_overrides(config, overrides)
        patience = _patience(method_cls, cfg)

        def monitor(epoch, m, _i=i, _o=overrides, _cfg=cfg, _patience=patience):
            shown = None
            extras = getattr(m, "monitor_extras", dict)()  # e.g. cycle-wgan's generator diagnostics
            for h, head in enumerate(heads):
                m.config_ = apply_overrides(_cfg, head)  # head fields change only build_classifier
                ts = TestScores(m, view)
                met = ts.metrics(ts.best_gamma())
                row = {"stage": stage, "candidate": _i, "overrides": {**_o, **head}, "epoch": int(epoch), **met,
                       **extras}
                history.append(row)
                callbacks.on_epoch(EpochEvent(stage, _i, int(epoch), met, row["overrides"], head=h))
                if best["row"] is None or row[criterion] > best["row"][criterion] + 1e-12:
                    best["row"] = row
                    if kept is not None:
                        kept["state"] = copy.deepcopy(m.state_dict())
                if shown is None or met[criterion] > shown[criterion]:
                    shown = met
            m.config_ = _cfg
            own = best_row(history, criterion, candidate=_i, stage=stage)
            if _patience and own is not None and epoch - own["epoch"] >= _patience:
                raise _StopFit(epoch)
            return shown

        log.info("%s candidate %d: %s", stage, i, overrides or "(preset)")
        extra = (lambda: {"best_state": kept["state"]}) if kept is not None else None
        try:
            with progress_stage(f"{stage} candidate {i + 1} of {len(candidates)}"):
                fit_on(make(cfg), view, transductive, monitor, **resumer.fit_kwargs(stage, i, history, extra=extra))
        except _StopFit as stop:
            log.info("%s candidate %d stopped at epoch %d: no better validation point for %d epochs", stage, i,
                     stop.epoch, patience)
    if best["row"] is None:
        why = ([] if candidates else ["an empty search space"]) + empty_settings(config)
        raise ConfigError(f"method {method_cls.name!r} never reported a validation point; nothing to select"
                          + (f" (nothing to train or try: {', '.join(why)})" if why else ""))
    return best["row"]


class _StopFit(Exception):
    """Raised by a validation monitor to end a fit early (patience exhausted)."""

    def __init__(self, epoch: int):
        super().__init__(epoch)
        self.epoch = epoch


def _patience(method_cls: type[ZSLMethod], cfg) -> int:
    """Epochs without a better validation point after which a validation fit stops (0: never)."""
    fraction = float(getattr(cfg, "validation_patience", 0.0) or 0.0)
    if fraction <= 0 or not method_cls.epochs_field:
        return 0
    return max(1, int(math.ceil(fraction * getattr(cfg, method_cls.epochs_field))))


def chosen_overrides(method_cls: type[ZSLMethod], row: dict) -> dict:
    """The config overrides a selected history row stands for: its candidate's overrides plus its epoch (epoch 0:
    a point a method reports before training its stage, e.g. CVC-ZSL's warm-up model before self-training)."""
    chosen = dict(row["overrides"])
    if method_cls.epochs_field and row["epoch"] >= 0:
        chosen[method_cls.epochs_field] = row["epoch"]
    return chosen


PHASE_ORDER = {"warmup": 0, "validation": 1, "final": 2, "oracle": 0, "fixed": 0}


class _Resumer:
    """Where a resumed protocol stands: which (phase, candidate) fits are done, which one continues."""

    def __init__(self, store: ProgressStore | None):
        self.store = store
        self.saved = store.load() if store is not None else None
        if self.saved:
            log.info("resuming from %s (phase %s, candidate %s)", store.path, self.saved["phase"],
                     self.saved["candidate"])

    def history(self) -> list[dict]:
        return list(self.saved["history"]) if self.saved else []

    def done(self, phase: str, candidate: int) -> bool:
        if not self.saved:
            return False
        return (PHASE_ORDER[phase], candidate) < (PHASE_ORDER[self.saved["phase"]], self.saved["candidate"])

    def fit_kwargs(self, phase: str, candidate: int, history: list[dict], extra=None) -> dict:
        kwargs = {}
        if self.saved and (self.saved["phase"], self.saved["candidate"]) == (phase, candidate):
            restore_rng(self.saved["rng"])
            kwargs["resume_state"] = self.saved["fit_state"]
        if self.store is not None:
            def make_state(epoch, model):
                return {"phase": phase, "candidate": candidate, "history": list(history), "rng": capture_rng(),
                        "fit_state": model.training_state(), "extra": extra() if extra else None}
            kwargs["checkpoint"] = self.store.hook(make_state)
        return kwargs


def run_protocol(method_cls: type[ZSLMethod], dataset: ZSLDataset, *, config=None, setting: str = "inductive",
                 selection: str = "validation", criterion: str | None = None, seed: int = 0, device="auto",
                 progress: bool = False, store: ProgressStore | None = None, callbacks=None) -> ProtocolResult:
    """Run the protocol; see the module docstring. With ``store``, fits checkpoint periodically and a
    run interrupted earlier continues from the stored position. ``callbacks`` (functions, or objects with
    ``on_epoch(event)`` / ``on_end(metrics)``; see zslkit.tracking) see every monitored evaluation point and
    the final metrics."""
    if setting not in SETTINGS:
        raise ConfigError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if setting not in method_cls.settings:
        raise ConfigError(f"method {method_cls.name!r} supports {', '.join(method_cls.settings)}, not {setting!r}")
    if selection not in SELECTION_MODES:
        raise ConfigError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTION_MODES)}")
    criterion = criterion or method_cls.default_criterion
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown selection criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    transductive = setting == "transductive"
    callbacks = CallbackList(callbacks)
    config = (method_cls.default_config(dataset, setting) if config is None
              else make_config(method_cls.config_class, config))
    validate_config(config, method_cls.name)  # before any training: a bad value fails now, not after a search
    started = time.perf_counter()
    resumer = _Resumer(store)
    history: list[dict] = resumer.history()
    make = lambda cfg: method_cls(cfg, seed=seed, device=device, progress=progress)  # noqa: E731

    if selection == "fixed":
        model = make(config)
        with progress_stage("fixed configuration"):
            fit_on(model, dataset, transductive, **resumer.fit_kwargs("fixed", 0, history))
        scores = TestScores(model, dataset)
        metrics = scores.metrics(curve=True)
        chosen, final_cfg, val_metrics = {}, config, None
    elif selection == "validation":
        keep = method_cls.keeps_validated_model
        kept = {"state": (resumer.saved.get("extra") or {}).get("best_state") if resumer.saved else None}
        warm_cfg = method_cls.warmup_config(config) if transductive else None
        if warm_cfg is not None:  # transductive from the best inductive model: choose the warm-up first
            warm = select_on_validation(method_cls, dataset, warm_cfg, setting="inductive", criterion=criterion,
                                        make=make, history=history, resumer=resumer, callbacks=callbacks,
                                        stage="warmup")
            warmed = method_cls.with_warmup(config, chosen_overrides(method_cls, warm))
            warm_chosen = {f.name: getattr(warmed, f.name) for f in dataclasses.fields(warmed)
                           if getattr(warmed, f.name) != getattr(config, f.name)}
            config = warmed
            log.info("warm-up chosen on validation (%s=%.4f): %s", criterion, warm[criterion],
                     chosen_overrides(method_cls, warm))
        best = select_on_validation(method_cls, dataset, config, setting=setting, criterion=criterion, make=make,
                                    history=history, resumer=resumer, kept=kept if keep else None,
                                    callbacks=callbacks)
        search_s = time.perf_counter() - started
        chosen = chosen_overrides(method_cls, best)
        if warm_cfg is not None:
            chosen = {**warm_chosen, **chosen}  # what the warm-up selection chose, shown with the rest
        final_cfg = apply_overrides(config, chosen)
        if keep:
            log.info("selected on validation (%s=%.4f): %s; keeping that model (no retraining)", criterion,
                     best[criterion], chosen)
            model = _rebuild(make(final_cfg), dataset, validation_view(dataset), kept["state"])
            X, labels = dataset.split("trainval")
            model.adopt_seen_classes(X, np.searchsorted(dataset.seen_classes, labels),
                                     dataset.class_embeddings[dataset.seen_classes])
        else:
            log.info("selected on validation (%s=%.4f): %s; retraining on trainval", criterion, best[criterion],
                     chosen)
            model = make(final_cfg)
            with progress_stage("final fit on trainval"):
                fit_on(model, dataset, transductive, **resumer.fit_kwargs("final", 0, history))
        scores = TestScores(model, dataset)
        metrics = scores.metrics(best["cs_gamma"], curve=True)
        val_metrics = {k: best[k] for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "cs_gamma", "gzsl_cs_h")}
        val_metrics["search_time_s"] = round(search_s, 3)
        val_metrics["final_model"] = "kept from validation" if keep else "retrained on trainval"
    else:  # oracle: every evaluation point scored on TEST; the best one's state is kept
        kept = {"state": None, "row": best_row(history, criterion)}
        if resumer.saved and resumer.saved.get("extra"):
            kept["state"] = resumer.saved["extra"]["best_state"]
        model = None
        for i, overrides in enumerate(method_cls.search_space(config, dataset, setting)):
            candidate = make(apply_overrides(config, overrides))
            if resumer.done("oracle", i):
                continue

            def monitor(epoch, m, _i=i, _o=overrides):
                ts = TestScores(m, dataset)
                met = ts.metrics(ts.best_gamma())
                row = {"candidate": _i, "overrides": _o, "epoch": int(epoch), **met}
                history.append(row)
                callbacks.on_epoch(EpochEvent("oracle", _i, int(epoch), met, _o))
                if kept["row"] is None or row[criterion] > kept["row"][criterion] + 1e-12:
                    kept.update(row=row, state=copy.deepcopy(m.state_dict()))
                return met

            with progress_stage(f"oracle candidate {i + 1}"):
                fit_on(candidate, dataset, transductive, monitor,
                       **resumer.fit_kwargs("oracle", i, history, extra=lambda: {"best_state": kept["state"]}))
            model = candidate
        best = kept["row"]
        if best is None or kept["state"] is None:
            raise ConfigError(f"method {method_cls.name!r} never reported an evaluation point")
        chosen = chosen_overrides(method_cls, best)
        final_cfg = apply_overrides(config, chosen)
        model = make(final_cfg) if model is None else model
        model.config = final_cfg
        model = _rebuild(model, dataset, dataset, kept["state"])
        scores = TestScores(model, dataset)
        metrics = scores.metrics(best["cs_gamma"], curve=True)
        val_metrics = None

    metrics = {k: float(v) for k, v in metrics.items()}
    metrics["gzsl_unseen_share"] = scores.unseen_prediction_rate()
    metrics.update(getattr(model, "result_extras", dict)())  # e.g. cycle-wgan's generator diagnostics
    warnings = health_warnings(metrics, num_unseen=int(dataset.unseen_classes.size),
                               unseen_share=metrics["gzsl_unseen_share"])
    for w in warnings:
        log.info("result warning: %s", w)
    metrics.update({
        "method": method_cls.name,
        "variant": getattr(final_cfg, "variant", None),
        "setting": setting,
        "transductive": transductive,
        "selection": {"mode": selection, "description": SELECTION_MODES[selection], "criterion": criterion,
                      "chosen": chosen, "validation_metrics": val_metrics,
                      "calibration_gamma_source": {"validation": "validation classes", "oracle": "test (ORACLE)",
                                                   "fixed": "none"}[selection]},
        "dataset": dataset.name,
        "synthetic": bool(dataset.synthetic),
        "semantic_source": dataset.semantic_source,
        "seed": int(seed),
        "warnings": warnings,
    })
    callbacks.on_end(metrics)
    return ProtocolResult(model=model, metrics=metrics, config=final_cfg, history=history, scores=scores,
                          wall_time_s=time.perf_counter() - started)


def _rebuild(model: ZSLMethod, dataset: ZSLDataset, fitted_on: ZSLDataset, state: dict) -> ZSLMethod:
    """``model`` (already configured) with a stored ``state_dict`` loaded and the fitted dimensions of a fit on
    ``fitted_on`` (the dataset itself, or its validation view for a kept validation model)."""
    if state is None:
        raise ConfigError(f"method {model.name!r} reported no evaluation point to keep")
    model._prepare()
    model.feature_dim_ = dataset.feature_dim
    model.embedding_dim_ = dataset.embedding_dim
    model.num_train_classes_ = int(np.unique(fitted_on.labels[fitted_on.splits["trainval"]]).size)
    model.n_features_in_ = dataset.feature_dim
    model.load_state_dict(state)
    model.fitted_ = True
    return model
