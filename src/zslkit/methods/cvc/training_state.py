"""Resumable CVC-ZSL fits: the training state a checkpoint stores after any epoch (:func:`capture`) and its
restoration into a fresh model (:func:`restore`), so the continued fit ends exactly as the uninterrupted one.
These read and write the estimator's fit-time attributes (``_stage``, ``_epochs_done``, ``_opt``, ``_gen``, the
pseudo-label pool, ...): they are :class:`~zslkit.methods.cvc.estimator.CVCZSL`'s ``training_state`` and
``restore_training_state``, kept apart from the training code."""

from __future__ import annotations

from torch import nn

from zslkit.errors import ConfigError
from zslkit.methods.cvc.episodes import EpisodeSampler
from zslkit.methods.base import cpu_copy
from zslkit.methods.cvc.networks import ClassifierGenerator
from zslkit.runtime import stream

FORMAT = "cvc-zsl-training-state"


def capture(model) -> dict:
    """Everything needed to continue this fit exactly (see ``ZSLMethod.training_state``): the stage
    (inductive / transductive) and epochs done in it, generator + scale/bias, the stage's optimizer,
    the episode generator's state, the transductive free rows and current pseudo-label pool (it is only
    recomputed every ``refresh`` epochs), the learned seen rows, the last metrics and the epoch log.
    Tensors are CPU copies: later training steps never change a state already taken."""
    if getattr(model, "net_", None) is None or getattr(model, "_gen", None) is None:
        raise ConfigError("cvc-zsl: training_state() is only available during or after fit()")
    reporter = getattr(model, "_reporter", None)
    last = reporter.last_metrics if reporter is not None else model._last_metrics  # (shown by the bar)
    pool = None
    if model._pool_labels is not None:
        pool = {"labels": cpu_copy(model._pool_labels), "index": cpu_copy(model._pool_index),
                "num_classes": int(model._pool[0].num_classes)}
    return {
        "format": FORMAT,
        "version": 1,
        "transductive": bool(model.transductive_),
        "stage": model._stage,
        "epoch": int(model._epochs_done),
        "device_type": model.device_.type,
        "generator": cpu_copy(model.net_.state_dict()),
        "optimizer": None if model._opt is None else cpu_copy(model._opt.state_dict()),
        "episode_rng": model._gen.get_state().clone(),
        "free_rows": None if model.free_rows_ is None else cpu_copy(model.free_rows_.detach()),
        "pseudo_label_pool": pool,
        "pseudo_label_count": getattr(model, "pseudo_label_count_", None),
        "seen_rows": None if model.seen_rows_ is None else cpu_copy(model.seen_rows_),
        "seen_rows_source": model.seen_rows_source_,
        "rows_epoch": model._rows_epoch,
        "last_metrics": None if last is None else dict(last),
        "history": [dict(r) for r in model.history_],
    }


def restore(model, state: dict) -> int:
    """Restore ``training_state()``; returns the epochs done in the stored stage (the optimizer state
    is loaded into the stage's optimizer when training continues)."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError("cvc-zsl: not a cvc-zsl training state (was the checkpoint written by another method?)")
    if state.get("version") != 1:
        raise ConfigError(f"cvc-zsl: training state version {state.get('version')} is not supported")
    if state["device_type"] != model.device_.type:
        raise ConfigError(f"cvc-zsl: the training state was written on a {state['device_type']} device; resume "
                          f"it on the same kind of device (this model uses {model.device_.type})")
    dev = model.device_
    gen_w = state["generator"]
    net = getattr(model, "net_", None)
    if net is None or net.shape != (*gen_w["w1"].shape, gen_w["w2"].shape[1]):
        model.net_ = ClassifierGenerator.from_state_dict(gen_w).to(dev)
    model.net_.load_state_dict(gen_w)  # copies into the existing parameters
    model._gen = stream(model.seed, "cvc-zsl.episodes", dev)
    model._gen.set_state(state["episode_rng"])
    model.transductive_ = bool(state["transductive"])
    model._stage = state["stage"]
    model._epochs_done = int(state["epoch"])
    model._opt = None
    model._pending_opt = state["optimizer"]
    rows = state["free_rows"]
    model.free_rows_ = None if rows is None else nn.Parameter(rows.to(dev).clone())
    pool = state["pseudo_label_pool"]
    if pool is None:
        model._pool = model._pool_labels = model._pool_index = None
    else:
        labels, index = pool["labels"].to(dev), pool["index"].to(dev)
        sampler = EpisodeSampler(labels, int(pool["num_classes"]))
        model._pool_labels, model._pool_index = labels, index
        model._pool = (sampler, index, sampler.counts > 0)
    if state.get("pseudo_label_count") is not None:
        model.pseudo_label_count_ = int(state["pseudo_label_count"])
    seen = state["seen_rows"]
    model.seen_rows_ = None if seen is None else seen.to(dev).clone()
    model.seen_rows_source_ = state["seen_rows_source"]
    model._rows_epoch = state["rows_epoch"]
    model._last_metrics = None if state["last_metrics"] is None else dict(state["last_metrics"])
    model.history_ = [dict(r) for r in state["history"]]
    return model._epochs_done
