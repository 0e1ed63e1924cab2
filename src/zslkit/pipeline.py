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
from zslkit.protocol.selection import SELECTION_MODES, validation_view, validation_views
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
             stage: str | None = None, split="mean") -> dict | None:
    """The first row with the highest ``criterion`` (ties keep the earliest evaluation point), among the rows
    of ``candidate`` and of selection ``stage`` ("warmup" or "validation") when given. ``split``: "mean" (the
    rows selection chooses among: the means over several validation splits, or the rows of a single split,
    which carry no "split" key), a split index, or None (every row)."""
    best = None
    for row in history:
        if candidate is not None and row["candidate"] != candidate:
            continue
        if stage is not None and row.get("stage", "validation") != stage:
            continue
        if split is not None and row.get("split", "mean") != split:
            continue
        if best is None or row[criterion] > best[criterion] + 1e-12:
            best = row
    return best


# racing over validation splits: after each split a candidate whose mean best so far is below the leader's by
# more than this (criterion units) is not fitted on the remaining splits (docs/protocol.md)
RACE_MARGIN = 0.05
VALIDATION_KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "cs_gamma", "gzsl_cs_h")  # averaged over splits, reported


def mean_rows(history: list[dict], stage: str, candidate: int, splits: int, criterion: str) -> list[dict]:
    """Rows of ``candidate`` averaged over its fitted splits, per (head, epoch) present in every one of them:
    the metric means, ``split`` "mean", the criterion's spread (``criterion_std``) and per-split values."""
    rows = [r for r in history if r.get("stage") == stage and r["candidate"] == candidate
            and isinstance(r.get("split"), int)]
    fitted = sorted({r["split"] for r in rows})
    table: dict = {}
    for r in rows:
        key = (repr(sorted(r["overrides"].items())), r["epoch"])
        table.setdefault(key, {})[r["split"]] = r
    out = []
    for (_, epoch), by_split in table.items():
        if sorted(by_split) != fitted:
            continue
        per = [by_split[s] for s in fitted]
        row = {"stage": stage, "candidate": candidate, "overrides": dict(per[0]["overrides"]), "epoch": epoch,
               "split": "mean", "splits": len(fitted), "splits_planned": splits}
        for k in VALIDATION_KEYS:
            row[k] = float(np.mean([p[k] for p in per]))
        row["criterion_std"] = float(np.std([p[criterion] for p in per]))
        row["criterion_per_split"] = [float(p[criterion]) for p in per]
        out.append(row)
    out.sort(key=lambda r: r["epoch"])
    return out


def select_on_validation(method_cls: type[ZSLMethod], dataset: ZSLDataset, config, *, setting: str = "inductive",
                         criterion: str = "gzsl_h", make=None, history: list[dict] | None = None,
                         resumer: "_Resumer | None" = None, kept: dict | None = None, callbacks=None,
                         stage: str = "validation", views: list[ZSLDataset] | None = None) -> dict:
    """Fit every candidate of ``method_cls.search_space`` on the validation view of ``dataset`` (train
    classes vs validation classes, test data never touched), score each evaluation point under every
    ``head_space`` entry, and return the best row by ``criterion`` (its ``overrides`` and ``epoch`` say what
    was chosen). Rows are appended to ``history``; ``make(cfg)`` builds a model (default: seed 0 on the
    automatic device). With ``kept`` (a dict), ``kept["state"]`` receives the best point's ``state_dict()``
    (for methods that keep the validated model instead of retraining); ``callbacks`` (zslkit.tracking) see every
    new row as an ``EpochEvent`` (live progress, trackers, sweeps). ``stage`` tags the rows ("warmup" for the
    inductive warm-up of a transductive method). A fit stops early once ``validation_patience`` (a config
    fraction of its epochs, 0: never) passes without a better point of that fit.

    ``views`` (several validation views, :func:`zslkit.protocol.selection.validation_views`): every candidate is
    fitted on each view in turn, its rows carry ``split``, and the criterion is averaged per (head, epoch) over
    the splits (rows with ``split`` "mean", ``criterion_std``); selection chooses among those means. A candidate
    whose mean best falls ``RACE_MARGIN`` below the leader's once two splits are in is not fitted on the remaining
    ones. Transductive: a self-training epoch is chosen only where it beats the warm-up (epoch 0) on every split.
    ``kept`` is ignored with several views (the final model is then retrained)."""
    make = make or (lambda cfg: method_cls(cfg))
    history = [] if history is None else history
    resumer = resumer or _Resumer(None)
    callbacks = CallbackList(callbacks)
    transductive = setting == "transductive"
    views = views or [validation_view(dataset)]
    multi = len(views) > 1
    kept = None if multi else kept
    heads = method_cls.head_space(config, dataset, setting) or [{}]
    best = {"row": best_row(history, criterion, stage=stage)}
    candidates = list(method_cls.search_space(config, dataset, setting))
    alive = list(range(len(candidates)))
    for s, view in enumerate(views):
        for i in list(alive):
            overrides = candidates[i]
            fit_index = s * len(candidates) + i  # the resumer's position, in the order fits run
            if resumer.done(stage, fit_index):
                continue
            cfg = apply_overrides(config, overrides)
            patience = _patience(method_cls, cfg)
            split = s if multi else None
            # later splits run at least as far as split 1 did: a split cut early by its own patience would
            # otherwise cap the epochs common to all splits, and so the epochs selection can choose
            reached = max((r["epoch"] for r in history if r.get("stage") == stage and r["candidate"] == i
                           and r.get("split") == 0), default=0) if multi and s > 0 else 0

            def monitor(epoch, m, _i=i, _o=overrides, _cfg=cfg, _patience=patience, _view=view, _split=split,
                        _reached=reached):
                shown = None
                extras = getattr(m, "monitor_extras", dict)()  # e.g. cycle-wgan's generator diagnostics
                for h, head in enumerate(heads):
                    m.config_ = apply_overrides(_cfg, head)  # head fields change only build_classifier
                    ts = TestScores(m, _view)
                    met = ts.metrics(ts.best_gamma())
                    row = {"stage": stage, "candidate": _i, "overrides": {**_o, **head}, "epoch": int(epoch), **met,
                           **extras}
                    if _split is not None:
                        row["split"] = _split
                    history.append(row)
                    callbacks.on_epoch(EpochEvent(stage, _i, int(epoch), met, row["overrides"], head=h))
                    if _split is None and (best["row"] is None or row[criterion] > best["row"][criterion] + 1e-12):
                        best["row"] = row
                        if kept is not None:
                            kept["state"] = copy.deepcopy(m.state_dict())
                    if shown is None or met[criterion] > shown[criterion]:
                        shown = met
                m.config_ = _cfg
                own = best_row(history, criterion, candidate=_i, stage=stage, split=_split if multi else "mean")
                if _patience and own is not None and epoch - own["epoch"] >= _patience and epoch >= _reached:
                    raise _StopFit(epoch)
                return shown

            log.info("%s candidate %d%s: %s", stage, i, f" (validation split {s + 1}/{len(views)})" if multi else "",
                     overrides or "(preset)")
            extra = (lambda: {"best_state": kept["state"]}) if kept is not None else None
            label = f"{stage} candidate {i + 1} of {len(candidates)}" + (f", split {s + 1}/{len(views)}" if multi else "")
            try:
                with progress_stage(label):
                    fit_on(make(cfg), view, transductive, monitor,
                           **resumer.fit_kwargs(stage, fit_index, history, extra=extra))
            except _StopFit as stop:
                log.info("%s candidate %d stopped at epoch %d: no better validation point for %d epochs", stage, i,
                         stop.epoch, patience)
        if multi and 1 <= s < len(views) - 1 and len(alive) > 1:  # race once two splits are in
            running = {i: best_row(mean_rows(history, stage, i, len(views), criterion), criterion) for i in alive}
            leader = max((i for i in alive if running[i] is not None), key=lambda i: running[i][criterion])
            lead = running[leader][criterion]
            dropped = [i for i in alive if i != leader and (running[i] is None or
                                                            running[i][criterion] < lead - RACE_MARGIN)]
            if dropped:
                log.info("%s: candidates %s dropped after split %d (mean %s more than %.2f below the leader's %.4f)",
                         stage, dropped, s + 1, criterion, RACE_MARGIN, lead)
            alive = [i for i in alive if i not in dropped]
    if multi:
        history[:] = [r for r in history if not (r.get("stage") == stage and r.get("split") == "mean")]
        for i in range(len(candidates)):
            history.extend(mean_rows(history, stage, i, len(views), criterion))
        full = [r for r in history if r.get("stage") == stage and r.get("split") == "mean"
                and r["splits"] == len(views)]
        if transductive:
            full = [r for r in full if _helps_every_split(r, full)]
        best["row"] = best_row(full, criterion) or best_row(history, criterion, stage=stage)
    if best["row"] is None:
        why = ([] if candidates else ["an empty search space"]) + empty_settings(config)
        raise ConfigError(f"method {method_cls.name!r} never reported a validation point; nothing to select"
                          + (f" (nothing to train or try: {', '.join(why)})" if why else ""))
    return best["row"]


def _helps_every_split(row: dict, rows: list[dict]) -> bool:
    """Transductive selection over several splits: a self-training point (epoch > 0) is eligible only where the
    criterion is at least the warm-up model's (its candidate's epoch 0) on every validation split, so the mean of
    one split's large gain and another's collapse cannot choose self-training (docs/methods/cvc_zsl.md)."""
    if row["epoch"] <= 0:
        return True
    start = next((r for r in rows if r["candidate"] == row["candidate"] and r["epoch"] == 0
                  and r["overrides"] == row["overrides"]), None)
    if start is None:
        return True
    return all(a >= b - 1e-12 for a, b in zip(row["criterion_per_split"], start["criterion_per_split"]))


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
    criterion = criterion or method_cls.default_criterion
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown selection criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    transductive = setting == "transductive"
    callbacks = CallbackList(callbacks)
    config = (method_cls.default_config(dataset, setting) if config is None
              else make_config(method_cls.config_class, config))
    validate_config(config, method_cls.name)  # before any training: a bad value fails now, not after a search
    timer = _Timer()
    started = timer.last
    resumer = _Resumer(store)
    history: list[dict] = resumer.history()
    make = lambda cfg: method_cls(cfg, seed=seed, device=device, progress=progress)  # noqa: E731

    if selection == "fixed":
        timer.lap("search")
        model = make(config)
        with progress_stage("fixed configuration"):
            fit_on(model, dataset, transductive, **resumer.fit_kwargs("fixed", 0, history))
        timer.lap("final_fit")
        scores = TestScores(model, dataset)
        metrics = scores.metrics(curve=True)
        timer.lap("evaluation")
        chosen, final_cfg, val_metrics = {}, config, None
    elif selection == "validation":
        views = validation_views(dataset, val_splits)
        keep = method_cls.keeps_validated_model and len(views) == 1
        kept = {"state": (resumer.saved.get("extra") or {}).get("best_state") if resumer.saved else None}
        warm_cfg = method_cls.warmup_config(config) if transductive else None
        if warm_cfg is not None:  # transductive from the best inductive model: choose the warm-up first
            warm = select_on_validation(method_cls, dataset, warm_cfg, setting="inductive", criterion=criterion,
                                        make=make, history=history, resumer=resumer, callbacks=callbacks,
                                        stage="warmup", views=views)
            warmed = method_cls.with_warmup(config, chosen_overrides(method_cls, warm))
            warm_chosen = {f.name: getattr(warmed, f.name) for f in dataclasses.fields(warmed)
                           if getattr(warmed, f.name) != getattr(config, f.name)}
            config = warmed
            log.info("warm-up chosen on validation (%s=%.4f): %s", criterion, warm[criterion],
                     chosen_overrides(method_cls, warm))
        best = select_on_validation(method_cls, dataset, config, setting=setting, criterion=criterion, make=make,
                                    history=history, resumer=resumer, kept=kept if keep else None,
                                    callbacks=callbacks, views=views)
        timer.lap("search")
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
        timer.lap("final_fit")
        scores = TestScores(model, dataset)
        metrics = scores.metrics(best["cs_gamma"], curve=True)
        timer.lap("evaluation")
        val_metrics = {k: best[k] for k in VALIDATION_KEYS}
        val_metrics["splits"] = _split_summary(views, best, criterion)
        val_metrics["search_time_s"] = round(timer.parts["search"], 3)
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
        timer.lap("search")
        best = kept["row"]
        if best is None or kept["state"] is None:
            raise ConfigError(f"method {method_cls.name!r} never reported an evaluation point")
        chosen = chosen_overrides(method_cls, best)
        final_cfg = apply_overrides(config, chosen)
        model = make(final_cfg) if model is None else model
        model.config = final_cfg
        model = _rebuild(model, dataset, dataset, kept["state"])
        timer.lap("final_fit")
        scores = TestScores(model, dataset)
        metrics = scores.metrics(best["cs_gamma"], curve=True)
        timer.lap("evaluation")
        val_metrics = None

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
