"""The one search of the selection engine: candidates x heads x epochs, scored at every evaluation point.

Validation selection (and its transductive warm-up stage), oracle and fixed selection are one routine, ``Search``:
every candidate of the method's search space is fitted on each view in turn (one validation view, several
validation class splits, or, for the oracle, the dataset itself), the monitor scores every head of the head space
at every evaluation point, one row per (candidate, head, epoch) goes into the history, and the best row by the
criterion (:func:`zslkit.protocol.criteria.better`: ties keep the earlier point) is what was chosen. What differs
is data, not code:

* ``views``: validation views (fit and score on validation classes) or ``[dataset]`` (the oracle: test scores);
* ``heads``: the method's ``head_space`` (validation) or ``[{}]`` (the oracle scores the config's head);
* ``tagged``: validation rows carry ``stage`` (and the model's ``monitor_extras``), the oracle's rows do not, and
  validation fits stop after ``validation_patience`` without a better point of that fit;
* ``keep``: the best point's ``state_dict()`` is kept (the oracle; a method that keeps its validated model);
* ``monitored``: False for fixed selection, the search of one candidate with no evaluation point (nothing scored,
  nothing chosen: ``run()`` returns None and ``last_model`` is the fitted model).

Several views: a candidate's rows carry ``split``, the criterion is averaged per (head, epoch) over the splits
(:func:`mean_rows`), a candidate whose mean best falls ``RACE_MARGIN`` below the leader's once two splits are in
is not fitted on the remaining ones, and a transductive self-training point must not be worse than its warm-up
(epoch 0) on any split (:func:`helps_every_split`).
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from zslkit.checkpointing import Resumer
from zslkit.data.dataset import ZSLDataset
from zslkit.errors import ConfigError
from zslkit.methods._epochs import progress_stage
from zslkit.methods.config import apply_overrides, empty_settings
from zslkit.protocol.criteria import better, not_worse
from zslkit.protocol.evaluate import TestScores
from zslkit.tracking import CallbackList, EpochEvent

log = logging.getLogger("zslkit.pipeline")

# racing over validation splits: after each split a candidate whose mean best so far is below the leader's by
# more than this (criterion units) is not fitted on the remaining splits (docs/protocol.md)
RACE_MARGIN = 0.05
VALIDATION_KEYS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "cs_gamma", "gzsl_cs_h")  # averaged over splits, reported


def fit_on(model, dataset: ZSLDataset, transductive: bool, monitor=None, **fit_kwargs):
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
        if better(row[criterion], None if best is None else best[criterion]):
            best = row
    return best


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


def helps_every_split(row: dict, rows: list[dict]) -> bool:
    """Transductive selection over several splits: a self-training point (epoch > 0) is eligible only where the
    criterion is at least the warm-up model's (its candidate's epoch 0) on every validation split, so the mean of
    one split's large gain and another's collapse cannot choose self-training (docs/methods/cvc_zsl.md)."""
    if row["epoch"] <= 0:
        return True
    start = next((r for r in rows if r["candidate"] == row["candidate"] and r["epoch"] == 0
                  and r["overrides"] == row["overrides"]), None)
    if start is None:
        return True
    return all(not_worse(a, b) for a, b in zip(row["criterion_per_split"], start["criterion_per_split"]))


def patience_epochs(method_cls, cfg) -> int:
    """Epochs without a better validation point after which a validation fit stops (0: never)."""
    fraction = float(getattr(cfg, "validation_patience", 0.0) or 0.0)
    if fraction <= 0 or not method_cls.epochs_field:
        return 0
    return max(1, int(math.ceil(fraction * getattr(cfg, method_cls.epochs_field))))


def score_point(model, view: ZSLDataset, head: dict) -> dict:
    """The metrics of ``model`` on ``view`` under ``head`` (head-space overrides handed to ``build_classifier``; {}:
    the model's own config), with the calibration gamma chosen on the same classes. The model is not changed."""
    scores = TestScores(model, view, head=head)
    return scores.metrics(scores.best_gamma())


def extras_reader(model_cls: type):
    """``read(model, view) -> dict``: what a model of ``model_cls`` adds to a validation row (cycle-WGAN: its
    generator diagnostics), through its ``monitor_extras()`` or ``monitor_extras(view)`` (e.g. fidelity on the
    validation classes); ``{}`` for a class without one. The signature is read once, here, not at every point."""
    extras = getattr(model_cls, "monitor_extras", None)
    if extras is None:
        return lambda model, view: {}
    if len(inspect.signature(extras).parameters) > 1:  # (self, view)
        return lambda model, view: model.monitor_extras(view)
    return lambda model, view: model.monitor_extras()


class StopFit(Exception):
    """Raised by a validation monitor to end a fit early (patience exhausted)."""

    def __init__(self, epoch: int):
        super().__init__(epoch)
        self.epoch = epoch


@dataclass
class Search:
    """One search of ``method_cls`` from ``config`` (see the module docstring). ``run()`` returns the chosen row;
    ``kept_state`` then holds its ``state_dict()`` (with ``keep``) and ``last_model`` the last fitted model."""

    method_cls: type
    config: object
    stage: str  # "warmup" | "validation" | "oracle": the rows' stage, the events' and the resume phase
    views: list[ZSLDataset]
    criterion: str
    make: object  # make(cfg) -> an unfitted model
    transductive: bool = False
    candidates: list[dict] = field(default_factory=lambda: [{}])
    heads: list[dict] = field(default_factory=lambda: [{}])
    tagged: bool = True  # validation rows: carry `stage` and monitor extras, and fits stop on patience
    keep: bool = False
    monitored: bool = True
    kept_state: dict | None = None
    history: list[dict] = field(default_factory=list)
    resumer: Resumer = field(default_factory=lambda: Resumer(None))
    callbacks: CallbackList = field(default_factory=lambda: CallbackList(None))
    last_model: object = None

    def __post_init__(self):
        self.multi = len(self.views) > 1
        self.best = best_row(self.history, self.criterion, stage=self.stage if self.tagged else None)
        self.alive = list(range(len(self.candidates)))

    # ----- the search ------------------------------------------------------------------------------
    def run(self) -> dict | None:
        for s, view in enumerate(self.views):
            for i in list(self.alive):
                self.fit(s, view, i)
            if self.multi and 1 <= s < len(self.views) - 1 and len(self.alive) > 1:
                self.race(s)
        if not self.monitored:
            return None
        if self.multi:
            self.best = self.best_mean()
        if self.best is None or (self.keep and self.kept_state is None and not self.tagged):
            raise ConfigError(self.nothing_chosen())
        return self.best

    def fit(self, s: int, view: ZSLDataset, i: int) -> None:
        """Fit candidate ``i`` on view ``s`` with the monitor; skipped when a resumed run has done it."""
        fit_index = s * len(self.candidates) + i  # the resumer's position, in the order fits run
        if self.resumer.done(self.stage, fit_index):
            return
        overrides = self.candidates[i]
        cfg = apply_overrides(self.config, overrides)
        patience = patience_epochs(self.method_cls, cfg) if self.tagged else 0
        where = f" (validation split {s + 1}/{len(self.views)})" if self.multi else ""
        model = self.make(cfg)
        monitor = None
        if self.monitored:
            log.info("%s candidate %d%s: %s", self.stage, i, where, overrides or "(preset)")
            monitor = self.monitor(i, overrides, view, s if self.multi else None, patience, self.reached(s, i),
                                   extras_reader(type(model)) if self.tagged else None)
        extra = (lambda: {"best_state": self.kept_state}) if self.keep else None
        try:
            with progress_stage(self.label(s, i)):
                fit_on(model, view, self.transductive, monitor,
                       **self.resumer.fit_kwargs(self.stage, fit_index, self.history, extra=extra))
        except StopFit as stop:
            log.info("%s candidate %d stopped at epoch %d: no better validation point for %d epochs", self.stage, i,
                     stop.epoch, patience)
        self.last_model = model

    def monitor(self, i: int, overrides: dict, view: ZSLDataset, split: int | None, patience: int, reached: int,
                read_extras=None):
        """The monitor of one fit: a row per head at every evaluation point (with ``read_extras(model, view)``, see
        :func:`extras_reader`), the best point, patience."""

        def monitor(epoch, m):
            shown = None
            extras = read_extras(m, view) if read_extras else {}
            for h, head in enumerate(self.heads):
                met = score_point(m, view, head)
                row = self.row(i, {**overrides, **head}, int(epoch), met, extras, split)
                self.history.append(row)
                self.callbacks.on_epoch(EpochEvent(self.stage, i, int(epoch), met, row["overrides"], head=h))
                if split is None and better(row[self.criterion], self._best_value()):
                    self.best = row
                    if self.keep:
                        self.kept_state = copy.deepcopy(m.state_dict())
                if shown is None or met[self.criterion] > shown[self.criterion]:
                    shown = met
            own = best_row(self.history, self.criterion, candidate=i, stage=self.stage,
                           split=split if self.multi else "mean") if patience else None
            if own is not None and epoch - own["epoch"] >= patience and epoch >= reached:
                raise StopFit(epoch)
            return shown

        return monitor

    def _best_value(self) -> float | None:
        return None if self.best is None else self.best[self.criterion]

    def row(self, i: int, overrides: dict, epoch: int, met: dict, extras: dict, split: int | None) -> dict:
        row = {"stage": self.stage} if self.tagged else {}
        row.update({"candidate": i, "overrides": overrides, "epoch": epoch, **met, **extras})
        if split is not None:
            row["split"] = split
        return row

    def reached(self, s: int, i: int) -> int:
        """Later splits run at least as far as split 1 did: a split cut early by its own patience would otherwise
        cap the epochs common to all splits, and so the epochs selection can choose."""
        if not self.multi or s == 0:
            return 0
        return max((r["epoch"] for r in self.history if r.get("stage") == self.stage and r["candidate"] == i
                    and r.get("split") == 0), default=0)

    def label(self, s: int, i: int) -> str:
        if not self.monitored:
            return f"{self.stage} configuration"
        if not self.tagged:
            return f"{self.stage} candidate {i + 1}"
        return f"{self.stage} candidate {i + 1} of {len(self.candidates)}" + (
            f", split {s + 1}/{len(self.views)}" if self.multi else "")

    # ----- several validation splits ---------------------------------------------------------------
    def race(self, s: int) -> None:
        """After split ``s``: drop the candidates whose mean best is more than ``RACE_MARGIN`` below the leader's."""
        c, n = self.criterion, len(self.views)
        running = {i: best_row(mean_rows(self.history, self.stage, i, n, c), c) for i in self.alive}
        leader = max((i for i in self.alive if running[i] is not None), key=lambda i: running[i][c])
        lead = running[leader][c]
        dropped = [i for i in self.alive if i != leader and (running[i] is None or running[i][c] < lead - RACE_MARGIN)]
        if dropped:
            log.info("%s: candidates %s dropped after split %d (mean %s more than %.2f below the leader's %.4f)",
                     self.stage, dropped, s + 1, c, RACE_MARGIN, lead)
        self.alive = [i for i in self.alive if i not in dropped]

    def best_mean(self) -> dict | None:
        """Replace this stage's mean rows by the final ones and choose among the means over every split."""
        stage, n, history = self.stage, len(self.views), self.history
        history[:] = [r for r in history if not (r.get("stage") == stage and r.get("split") == "mean")]
        for i in range(len(self.candidates)):
            history.extend(mean_rows(history, stage, i, n, self.criterion))
        full = [r for r in history if r.get("stage") == stage and r.get("split") == "mean" and r["splits"] == n]
        if self.transductive:
            full = [r for r in full if helps_every_split(r, full)]
        return best_row(full, self.criterion) or best_row(history, self.criterion, stage=stage)

    def nothing_chosen(self) -> str:
        name = self.method_cls.name
        if not self.tagged:
            return f"method {name!r} never reported an evaluation point"
        why = ([] if self.candidates else ["an empty search space"]) + empty_settings(self.config)
        return (f"method {name!r} never reported a validation point; nothing to select"
                + (f" (nothing to train or try: {', '.join(why)})" if why else ""))


def build_search(method_cls, config, stage: str, views: list[ZSLDataset], criterion: str, make, dataset: ZSLDataset,
                 setting: str, **state) -> Search:
    """The search of one stage, the one builder of every selection: validation (and warm-up) rows tagged, with the
    recipe's search space and heads and patience; the oracle's untagged, the config's head only; fixed selection
    the config alone, unmonitored. ``state``: Search's ``keep``, ``kept_state``, ``history``, ``resumer``,
    ``callbacks``."""
    recipe = method_cls.recipe
    fixed = stage == "fixed"
    plain = fixed or stage == "oracle"
    return Search(method_cls, config, stage, views, criterion, make, transductive=setting == "transductive",
                  candidates=[{}] if fixed else list(recipe.search_space(config, dataset, setting)),
                  heads=[{}] if plain else (recipe.head_space(config, dataset, setting) or [{}]),
                  tagged=not plain, monitored=not fixed, **state)
