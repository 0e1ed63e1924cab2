"""The evaluation protocol end to end: select (validation | fixed | oracle), train, test once.

``run_protocol`` is a pure function of (method, config, setting, selection, seed, data): it returns the
final model, its metrics (ZSL and GZSL from the same model) and the selection trace. Writing the run
directory is the caller's job (see ``zslkit.cli.train_cmd``).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from zslkit.data.dataset import ZSLDataset
from zslkit.errors import ConfigError
from zslkit.methods.base import ZSLMethod, apply_overrides, make_config
from zslkit.protocol.evaluate import TestScores
from zslkit.protocol.selection import SELECTION_MODES, validation_view

log = logging.getLogger("zslkit.pipeline")

SETTINGS = ("inductive", "transductive")
CRITERIA = ("gzsl_h", "zsl_t1")


@dataclass
class ProtocolResult:
    model: ZSLMethod
    metrics: dict
    config: object  # the final method config (dataclass)
    history: list[dict] = field(default_factory=list)
    scores: TestScores | None = None
    wall_time_s: float = 0.0


def fit_on(model: ZSLMethod, dataset: ZSLDataset, transductive: bool, monitor=None) -> ZSLMethod:
    """Fit on the dataset's trainval samples (labels = positions among the seen classes); transductive
    runs also get the unlabeled test_unseen features and the unseen-class embeddings."""
    seen = dataset.seen_classes
    X, labels = dataset.split("trainval")
    y = np.searchsorted(seen, labels)
    kwargs = {}
    if transductive:
        kwargs["unlabeled"] = dataset.split("test_unseen")[0]
        kwargs["unlabeled_embeddings"] = dataset.class_embeddings[dataset.unseen_classes]
    return model.fit(X, y, dataset.class_embeddings[seen], monitor=monitor, **kwargs)


def _better(row: dict, best: dict | None, criterion: str) -> bool:
    return best is None or row[criterion] > best[criterion] + 1e-12


def run_protocol(method_cls: type[ZSLMethod], dataset: ZSLDataset, *, config=None, setting: str = "inductive",
                 selection: str = "validation", criterion: str = "gzsl_h", seed: int = 0, device="auto",
                 progress: bool = False) -> ProtocolResult:
    """Run the protocol; see the module docstring."""
    if setting not in SETTINGS:
        raise ConfigError(f"unknown setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if setting not in method_cls.settings:
        raise ConfigError(f"method {method_cls.name!r} supports {', '.join(method_cls.settings)}, not {setting!r}")
    if selection not in SELECTION_MODES:
        raise ConfigError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTION_MODES)}")
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown selection criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    transductive = setting == "transductive"
    config = (method_cls.default_config(dataset, setting) if config is None
              else make_config(method_cls.config_class, config))
    started = time.perf_counter()
    history: list[dict] = []
    make = lambda cfg: method_cls(cfg, seed=seed, device=device, progress=progress)  # noqa: E731

    if selection == "fixed":
        model = fit_on(make(config), dataset, transductive)
        scores = TestScores(model, dataset)
        metrics = scores.metrics(curve=True)
        chosen, final_cfg, val_metrics = {}, config, None
    elif selection == "validation":
        view = validation_view(dataset)
        best = None
        for i, overrides in enumerate(method_cls.search_space(config, dataset, setting)):
            cfg = apply_overrides(config, overrides)

            def monitor(epoch, m, _i=i, _o=overrides):
                nonlocal best
                ts = TestScores(m, view)
                met = ts.metrics(ts.best_gamma())
                row = {"candidate": _i, "overrides": _o, "epoch": int(epoch), **met}
                history.append(row)
                if _better(row, best, criterion):
                    best = row
                return met

            log.info("validation candidate %d: %s", i, overrides or "(preset)")
            fit_on(make(cfg), view, transductive, monitor)
        if best is None:
            raise ConfigError(f"method {method_cls.name!r} never reported a validation point; nothing to select")
        chosen = dict(best["overrides"])
        if method_cls.epochs_field and best["epoch"] > 0:
            chosen[method_cls.epochs_field] = best["epoch"]
        final_cfg = apply_overrides(config, chosen)
        log.info("selected on validation (%s=%.4f): %s; retraining on trainval", criterion, best[criterion], chosen)
        model = fit_on(make(final_cfg), dataset, transductive)
        scores = TestScores(model, dataset)
        metrics = scores.metrics(best["cs_gamma"], curve=True)
        val_metrics = {k: best[k] for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "cs_gamma", "gzsl_cs_h")}
    else:  # oracle
        best, best_state, best_model = None, None, None
        for i, overrides in enumerate(method_cls.search_space(config, dataset, setting)):
            cfg = apply_overrides(config, overrides)
            candidate = make(cfg)

            def monitor(epoch, m, _i=i, _o=overrides):
                nonlocal best, best_state, best_model
                ts = TestScores(m, dataset)
                met = ts.metrics(ts.best_gamma())
                row = {"candidate": _i, "overrides": _o, "epoch": int(epoch), **met}
                history.append(row)
                if _better(row, best, criterion):
                    best, best_state, best_model = row, copy.deepcopy(m.state_dict()), m
                return met

            fit_on(candidate, dataset, transductive, monitor)
        if best is None:
            raise ConfigError(f"method {method_cls.name!r} never reported an evaluation point")
        model = best_model
        model.load_state_dict(best_state)
        chosen = dict(best["overrides"])
        if method_cls.epochs_field and best["epoch"] > 0:
            chosen[method_cls.epochs_field] = best["epoch"]
        final_cfg = apply_overrides(config, chosen)
        model.config = final_cfg
        scores = TestScores(model, dataset)
        metrics = scores.metrics(best["cs_gamma"], curve=True)
        val_metrics = None

    metrics = {k: float(v) for k, v in metrics.items()}
    metrics.update({
        "method": method_cls.name,
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
    })
    return ProtocolResult(model=model, metrics=metrics, config=final_cfg, history=history, scores=scores,
                          wall_time_s=time.perf_counter() - started)


def config_dict(config) -> dict:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
