"""Selection criteria: the one table of what selection can maximise (cycle-WGAN's checkpoint metrics are
``("", *CRITERIA)``), the one comparison rule, and the one place that resolves a run's criterion (run_protocol,
sweep plans and trials): the given one, else the method's default.

No heavy imports: methods' config modules import the table.
"""

from __future__ import annotations

from zslkit.errors import ConfigError

# name -> what it is (a validation row's key; higher is better)
CRITERION_HELP = {
    "gzsl_h": "GZSL harmonic mean of the unseen and seen accuracies (uncalibrated)",
    "zsl_t1": "ZSL per-class top-1 accuracy over the unseen (validation) classes",
    "gzsl_cs_h": "GZSL harmonic mean after calibrated stacking (gamma chosen on the same classes)",
}
CRITERIA = tuple(CRITERION_HELP)

# two criterion values closer than this are a tie: the earlier point is kept (floating-point noise of the metrics
# must not make a later evaluation point win)
TIE = 1e-12


def better(value: float, than: float | None) -> bool:
    """``value`` beats ``than`` (None: nothing yet): the one comparison of every selection (strictly more than a
    tie away, so ties keep the earlier point)."""
    return than is None or value > than + TIE


def not_worse(value: float, than: float) -> bool:
    """``value`` is at least ``than`` up to a tie (the counterpart of :func:`better`)."""
    return value >= than - TIE


def check_criterion(criterion: str) -> str:
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown selection criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    return criterion


def resolve_criterion(method_cls, criterion: str | None = None) -> str:
    """The criterion a run selects by: ``criterion`` if given, else the method's ``default_criterion``; an unknown
    name is a ConfigError. (What a config implies, e.g. cycle-WGAN's ``checkpoint_metric``, is the recipe's
    ``criterion`` hook, applied to the run spec by ``experiment.recipe_criterion`` before this.)"""
    return check_criterion(criterion or method_cls.default_criterion)
