"""cycle-WGAN's stages before the GAN and how each stage is run, skipped or reused.

The pretraining stages: the regressor R (x -> a, the cycle loss) and the seen-class classifier C (the f-CLSWGAN
classification loss), both trained with the one supervised loop (``softmax.train_minibatches``) and then frozen.

Every stage (``STAGES``: regressor, aux_classifier, gan, final_classifier) has a config field ``<stage>_stage``:
``run``, ``skip`` (regressor and aux_classifier: their loss term is dropped) or an earlier run directory (or its
``model.pt``) whose trained stage is reused (the reference's separate ``--train_reg`` / ``--train_cls`` /
``--train_gan`` runs). A reused stage must come from a cycle-wgan model with this data's dimensions and training
classes (matched by class embedding); its source file's sha256 goes to ``model.reused_stages_`` and provenance.json.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from zslkit.errors import ConfigError, TrainingDivergedError
from zslkit.methods._optim import make_adam
from zslkit.methods.cyclewgan.softmax import train_minibatches, train_softmax
from zslkit.methods.cyclewgan.config import SKIPPABLE_STAGES, STAGES
from zslkit.methods.cyclewgan.networks import FeatureScaler, init_linear
from zslkit.methods.model_file import read_checkpoint
from zslkit.runtime import stream

log = logging.getLogger("zslkit.methods.cyclewgan")


def pretrain_regressor(model, X: torch.Tensor, A: torch.Tensor) -> None:
    """Train ``model.R_`` on features ``X`` -> their class embeddings ``A`` with MSE, then freeze it."""
    cfg, R = model.config_, model.R_
    gen = stream(model.seed, "cycle-wgan.regressor")
    if cfg.gan_init == "xavier":
        init_linear(R, gen, "xavier")
    else:
        with torch.no_grad():  # torch's default uniform range, from the injected generator
            bound = 1.0 / math.sqrt(X.shape[1])
            R.weight.copy_((torch.rand(R.weight.shape, generator=gen) * 2 - 1) * bound)
            R.bias.zero_()
    opt = make_adam(R.parameters(), cfg.regressor_lr, weight_decay=cfg.regressor_weight_decay)
    last = train_minibatches(opt, lambda idx: F.mse_loss(R(X[idx]), A[idx]), X.shape[0],
                             epochs=cfg.regressor_epochs, batch_size=cfg.regressor_batch, lr=cfg.regressor_lr,
                             lr_decay=cfg.regressor_lr_decay, generator=stream(model.seed, "cycle-wgan.regressor", model.device_),
                             device=model.device_)
    R.requires_grad_(False)
    model.regressor_loss_ = 0.0 if last is None else float(last)
    if not math.isfinite(model.regressor_loss_):
        raise TrainingDivergedError(f"{model.name}: regressor pretraining diverged (loss {model.regressor_loss_}); "
                                    f"lower regressor_lr ({cfg.regressor_lr:g})")


def pretrain_aux_classifier(model, X: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    """Train ``model.C_``, the frozen seen-class softmax of the classification loss (head ``cls_head``)."""
    cfg = model.config_
    model.C_ = train_softmax(X, y, num_classes, epochs=cfg.pre_cls_epochs, lr=cfg.pre_cls_lr,
                             batch_size=cfg.pre_cls_batch, betas=cfg.pre_cls_betas, head=cfg.cls_head,
                             lr_decay=cfg.pre_cls_lr_decay,
                             generator=stream(model.seed, "cycle-wgan.aux_classifier", model.device_),
                             init=cfg.cls_init)


# ----- run, skip or reuse each stage ------------------------------------------------------------------------
# what the GAN's networks must share with the run whose GAN is reused (their shapes and the synthesis net)
GAN_FIELDS = ("hidden_g", "hidden_d", "noise_dim", "leaky_slope")


@dataclass
class StageSource:
    """An earlier run's checkpoint that a stage is reused from."""

    stage: str
    field: str
    path: Path
    sha256: str
    ckpt: dict

    def error(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.field}: {self.path}: {problem}")

    @property
    def state(self) -> dict:
        return self.ckpt["state"]

    def record(self) -> dict:
        """What provenance.json says about the reused stage."""
        return {"source": str(self.path), "sha256": self.sha256, "method": self.ckpt["method"],
                "variant": self.ckpt["config"].get("variant"), "dataset": (self.ckpt.get("extra") or {}).get("dataset")}


def resolve_stages(model) -> dict[str, "str | StageSource"]:
    """Each stage's plan from the ``<stage>_stage`` fields: "run", "skip" or the ``StageSource`` it is reused from
    (read and checked against this model's dimensions); a ConfigError naming the field for what cannot work."""
    cfg = model.config_
    plan: dict = {}
    for stage in STAGES:
        field = f"{stage}_stage"
        value = str(getattr(cfg, field)).strip()
        if value in ("run", "skip"):
            if value == "skip" and stage not in SKIPPABLE_STAGES:
                raise ConfigError(f"{field}=skip: the {stage.replace('_', ' ')} stage cannot be skipped "
                                  f"(nothing would {'synthesise features' if stage == 'gan' else 'classify'}); "
                                  f"run it or reuse an earlier run's ({field}=RUN_DIR)")
            plan[stage] = value
        else:
            plan[stage] = _read_source(stage, field, value, model)
    gan = plan["gan"]
    used = {"regressor": model.uses_cycle, "aux_classifier": model.uses_cls}
    for stage, needed in used.items():
        if isinstance(plan[stage], StageSource) and not needed:
            raise plan[stage].error(f"variant {cfg.variant} has no {LOSS_OF[stage]}, so it uses no {stage} to reuse")
        if isinstance(plan[stage], StageSource) and isinstance(gan, StageSource):
            raise plan[stage].error(f"the GAN is reused too ({gan.path}): a pretrained {stage} only trains a GAN")
    final = plan["final_classifier"]
    if isinstance(final, StageSource) and not (isinstance(gan, StageSource) and gan.sha256 == final.sha256):
        raise final.error("trained final classifiers belong to their run's generator: reuse the GAN of the same run "
                          f"(gan_stage={final.path})")
    if cfg.checkpoint_metric and not cfg.savepoints:
        raise ConfigError(f"checkpoint_metric={cfg.checkpoint_metric} chooses among savepoints, but savepoints is "
                          f"empty (e.g. savepoints=30,40,285)")
    if cfg.checkpoint_metric and isinstance(gan, StageSource):
        raise gan.error("checkpoint_metric chooses among the savepoints of a GAN trained here; this one is reused")
    return plan


LOSS_OF = {"regressor": "cycle loss", "aux_classifier": "classification loss"}


def _read_source(stage: str, field: str, value: str, model) -> StageSource:
    path = Path(value)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        modes = "run, skip" if stage in SKIPPABLE_STAGES else "run"
        raise ConfigError(f"{field}={value!r}: expected {modes} or a run directory / model.pt to reuse the "
                          f"{stage.replace('_', ' ')} from; {path} does not exist")
    ckpt = read_checkpoint(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    src = StageSource(stage, field, path.resolve(), digest.hexdigest(), ckpt)
    if ckpt["method"] != model.name:
        raise src.error(f"a {ckpt['method']} model; only a {model.name} run's stages can be reused")
    dims = ckpt["dims"]
    for key, mine in (("feature_dim", model.feature_dim_), ("embedding_dim", model.embedding_dim_)):
        if int(dims[key]) != int(mine):
            raise src.error(f"{key.replace('_', ' ')} {dims[key]} there, {mine} here: trained on other data")
    return src


def check_classes(src: StageSource, E: torch.Tensor, *, allow_more: bool) -> np.ndarray:
    """For each training class here (rows of ``E``), its row among the source's training classes (matched by class
    embedding): the check that the source was trained on this dataset. Source classes that are not training classes
    here (the validation view of validation selection) are an error unless ``allow_more``, then a warning."""
    theirs = src.state.get("train_class_embeddings")
    if theirs is None:
        raise src.error("this checkpoint does not record its training classes (written by an older zslkit), so "
                        "its data cannot be checked; retrain that run")
    theirs = theirs.to(E.device)
    rows = torch.empty(E.shape[0], dtype=torch.long)
    missing = 0
    for k in range(E.shape[0]):  # exact match up to float rounding (saved and loaded embeddings are the same numbers)
        gap = (theirs - E[k]).abs().amax(1)
        rows[k] = int(gap.argmin())
        missing += int(float(gap[rows[k]]) > 1e-6 * (1.0 + float(E[k].abs().max())))
    if missing:
        raise src.error(f"trained on other classes: {missing} of the {E.shape[0]} training classes here are not "
                        f"among its {theirs.shape[0]} (another dataset or semantic source)")
    extra = theirs.shape[0] - int(torch.unique(rows).numel())
    if extra:
        what = (f"was trained on {extra} classes that are not training classes here (the validation classes of "
                f"validation selection?)")
        if not allow_more:
            raise src.error(f"{what}: a reused GAN has seen their features, so scoring them as unseen would be "
                            f"dishonest; use --selection fixed, or reuse from a run trained on these classes")
        log.warning("%s: %s %s; they reach this fit through the reused %s", src.field, src.path, what,
                    src.stage.replace("_", " "))
    return rows.numpy()


def common_scaler(plan: dict, feature_norm: str) -> FeatureScaler | None:
    """The feature scaler of the reused stages (their networks work on features scaled that way); None when no
    network is reused. They must agree with each other and with ``feature_norm``."""
    sources = {s.sha256: s for s in plan.values() if isinstance(s, StageSource)}
    scaler = None
    for src in sources.values():
        if src.ckpt["config"].get("feature_norm", "none") != feature_norm:
            raise src.error(f"feature_norm {src.ckpt['config'].get('feature_norm')} there, {feature_norm} here")
        mine = FeatureScaler.from_state(src.state.get("scaler"))
        if scaler is not None and not _same_scaler(scaler, mine):
            raise src.error("its feature scaler differs from that of another reused stage (trained on other data)")
        scaler = mine
    return scaler


def _same_scaler(a: FeatureScaler, b: FeatureScaler) -> bool:
    same = lambda u, v: (u is None and v is None) or (u is not None and v is not None and  # noqa: E731
                                                     bool(torch.equal(torch.as_tensor(u), torch.as_tensor(v))))
    return a.kind == b.kind and same(a.shift, b.shift) and same(a.inv_scale, b.inv_scale)


def reuse_regressor(model, src: StageSource, E: torch.Tensor) -> None:
    if src.state.get("regressor") is None:
        raise src.error(f"it has no pretrained regressor (variant {src.ckpt['config'].get('variant')})")
    check_classes(src, E, allow_more=True)
    model.R_.load_state_dict(src.state["regressor"])
    model.R_.requires_grad_(False)


def reuse_aux_classifier(model, src: StageSource, E: torch.Tensor) -> None:
    """The source's seen-class classifier, its rows taken in this fit's class order."""
    if src.state.get("aux_classifier") is None:
        raise src.error(f"it has no pretrained seen-class classifier (variant {src.ckpt['config'].get('variant')})")
    if src.ckpt["config"].get("cls_head", "linear") != model.config_.cls_head:
        raise src.error(f"cls_head {src.ckpt['config'].get('cls_head')} there, {model.config_.cls_head} here")
    rows = torch.as_tensor(check_classes(src, E, allow_more=True))
    w, b = src.state["aux_classifier"]["weight"], src.state["aux_classifier"]["bias"]
    model.C_ = nn.Linear(w.shape[1], rows.numel()).to(model.device_)
    with torch.no_grad():
        model.C_.weight.copy_(w[rows])
        model.C_.bias.copy_(b[rows])
    model.C_.requires_grad_(False)


def reuse_gan(model, src: StageSource, E: torch.Tensor) -> None:
    """The source's generator, critic and weight average, with its history, epochs and snapshots."""
    cfg, theirs = model.config_, src.ckpt["config"]
    for key in GAN_FIELDS:
        if theirs.get(key) != getattr(cfg, key):
            raise src.error(f"{key} {theirs.get(key)} there, {getattr(cfg, key)} here: the networks differ")
    if (float(theirs.get("g_ema", 0.0)) > 0) != (cfg.g_ema > 0):
        raise src.error(f"g_ema {theirs.get('g_ema')} there, {cfg.g_ema} here: it synthesised from "
                        f"{'a weight average' if cfg.g_ema == 0 else 'G itself'}")
    check_classes(src, E, allow_more=False)
    state = src.state
    model.G_.load_state_dict(state["generator"])
    model.D_.load_state_dict(state["critic"])
    if model.G_ema_ is not None:
        model.G_ema_.load_state_dict(state.get("generator_ema") or state["generator"])
        model.ema_steps_ = int(state.get("ema_steps", 0))
    model.R_, model.C_ = None, None  # they only train a GAN
    model.history_ = [dict(r) for r in state.get("history", [])]
    model.epochs_trained_ = int(state.get("epochs_trained", len(model.history_)))
    model.snapshots_ = {int(k): v for k, v in (state.get("snapshots") or {}).items()}
