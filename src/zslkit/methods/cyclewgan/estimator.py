"""The cycle-WGAN estimator: its stages in order (regressor, auxiliary classifier, GAN), synthesis, the explicit
final-classifier step (``fit_head``), persistence; its recipe (presets, head search) is :mod:`.recipe`."""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn

from zslkit.errors import ConfigError, DataError
from zslkit.methods._optim import make_adam
from zslkit.methods.cyclewgan.softmax import SoftmaxClassifier, keep_fraction
from zslkit.methods.base import CandidateClassifier, ZSLMethod, check_labels, check_matrix, cpu_copy
from zslkit.methods.config import apply_overrides
from zslkit.methods.cyclewgan.config import CLS_VARIANTS, CYCLE_VARIANTS, CycleWGANConfig
from zslkit.methods.cyclewgan.diagnostics import class_fidelity, generator_diagnostics
from zslkit.methods.cyclewgan.gan import train_gan
from zslkit.methods.cyclewgan.head import GenerativeHead, synthesize_rows
from zslkit.methods.cyclewgan.networks import Critic, FeatureScaler, Generator
from zslkit.methods.cyclewgan.options import TRAIN_OPTIONS
from zslkit.methods.cyclewgan.recipe import RECIPE
from zslkit.methods.cyclewgan.stages import (StageSource, common_scaler, pretrain_aux_classifier, pretrain_regressor,
                                             resolve_stages, reuse_aux_classifier, reuse_gan, reuse_regressor)
from zslkit.methods.registry import register
from zslkit.runtime import make_generator, stream

log = logging.getLogger("zslkit.methods.cyclewgan")


@register
class CycleWGAN(ZSLMethod):
    """cycle-WGAN / f-CLSWGAN / cycle-CLSWGAN (``variant``); see docs/methods/cycle_wgan.md.

    ``fit`` trains the stages; the final classifier over a candidate set is a separate step, ``fit_head``, which
    ``build_classifier`` / ``decision_function`` / ``predict`` call (training it on first use, cached)."""

    name = "cycle-wgan"
    config_class = CycleWGANConfig
    settings = ("inductive",)
    epochs_field = "epochs"
    # False: validation selection retrains on trainval with the chosen settings (the weight-averaged generator of the
    # no-preset default makes that reproducible); keeping the validation-view GAN (adopt_seen_classes) tested worse on
    # fashion-zsl, see docs/methods/cycle_wgan.md. Set True on a subclass to keep it.
    keeps_validated_model = False
    recipe = RECIPE  # presets, variants, defaults for other data, the head search (cyclewgan/recipe.py)
    train_options = TRAIN_OPTIONS  # zslkit train --savepoints, --reuse-stage, ... (cyclewgan/options.py)
    snapshot_option = "--savepoints"  # the GAN's generator kept at those epochs (use_snapshot)
    description = ("cycle-WGAN (Felix et al., ECCV 2018) with the f-CLSWGAN baseline (Xian et al., CVPR 2018): "
                   "conditional WGAN-GP feature generator + softmax on synthetic features")

    def _prepare(self) -> None:
        super()._prepare()
        self.history_: list[dict] = []
        self.head_ = GenerativeHead()
        self.scaler_ = FeatureScaler("none")
        self.snapshots_: dict[int, dict] = {}  # GAN epoch -> the synthesising generator's weights (savepoints)
        self.reused_stages_: dict[str, dict] = {}  # stage -> source file, sha256 (provenance)

    # ----- building blocks -------------------------------------------------------------------------
    @property
    def uses_cycle(self) -> bool:
        return self.config_.variant in CYCLE_VARIANTS

    @property
    def uses_cls(self) -> bool:
        return self.config_.variant in CLS_VARIANTS

    def _noise_dim(self) -> int:
        return int(self.config_.noise_dim) or int(self.embedding_dim_)

    def _build_networks(self) -> None:
        cfg, D, A = self.config_, self.feature_dim_, self.embedding_dim_
        gen = stream(self.seed, "cycle-wgan.weights")
        self.G_ = Generator(A, self._noise_dim(), cfg.hidden_g, D, cfg.leaky_slope)
        self.D_ = Critic(D, A, cfg.hidden_d, cfg.leaky_slope)
        self.G_.init(gen, cfg.gan_init)
        self.D_.init(gen, cfg.gan_init)
        self.G_.to(self.device_)
        self.G_ema_ = copy.deepcopy(self.G_).requires_grad_(False) if cfg.g_ema > 0 else None
        self.ema_steps_ = 0
        self.D_.to(self.device_)
        self.R_ = nn.Linear(D, A).to(self.device_) if self.uses_cycle and cfg.regressor_stage != "skip" else None
        self.C_ = None  # frozen seen-class softmax (f-CLSWGAN loss), built by its stage

    def _init_gan_optimizers(self) -> None:
        """Fresh Adam optimizers for G and D and the seeded noise/batch generator of the GAN stage."""
        cfg, dev = self.config_, self.device_
        self.opt_g_ = make_adam(self.G_.parameters(), cfg.lr_g, betas=cfg.betas_g)
        self.opt_d_ = make_adam(self.D_.parameters(), cfg.lr_d, betas=cfg.betas_d)
        self.noise_gen_ = stream(self.seed, "cycle-wgan.noise", dev)

    # ----- training --------------------------------------------------------------------------------
    def _fit(self, X, y, class_embeddings, *, unlabeled, unlabeled_embeddings, context) -> None:
        cfg, dev = self.config_, self.device_
        self.epochs_trained_ = self.generator_epoch_ = 0
        plan = resolve_stages(self)  # run / skip / reuse of each stage, checked before any training
        Xt = torch.as_tensor(X, device=dev)
        self.scaler_ = common_scaler(plan, cfg.feature_norm) or FeatureScaler.fit(cfg.feature_norm, Xt)
        Xt = self.scaler_.transform(Xt)
        yt = torch.as_tensor(y, device=dev)
        Et = torch.as_tensor(class_embeddings, device=dev)
        self.train_X_, self.train_y_ = Xt, yt
        self.train_embeddings_ = Et
        # the reference trains R, C and the GAN on a random 90 % of the rows (train_fraction) and only monitors on
        # the rest; the real seen features of the final classifier are all rows (train_X_)
        keep = keep_fraction(Xt.shape[0], cfg.train_fraction, stream(self.seed, "cycle-wgan.train_fraction", dev), dev)
        Xg, yg = (Xt, yt) if keep is None else (Xt[keep], yt[keep])
        # the real rows the generator diagnostics score (diagnostics.py): those the GAN does not train on, if any
        held = None if keep is None else torch.ones(Xt.shape[0], dtype=torch.bool, device=dev).index_fill_(0, keep, False)
        self.diag_X_, self.diag_y_ = (None, None) if held is None or not bool(held.any()) else (Xt[held], yt[held])
        self._build_networks()
        self._init_gan_optimizers()
        reused = {stage: src for stage, src in plan.items() if isinstance(src, StageSource)}
        if context.resume_state is not None:  # continue an interrupted fit: networks, optimizers, noise RNG, history
            self.restore_training_state(context.resume_state)
        elif "gan" in reused:
            reuse_gan(self, reused["gan"], Et)
        else:
            self._pretraining_stages(plan, Xg, yg, Et)
        self.reused_stages_ = {stage: src.record() for stage, src in reused.items()}
        if "gan" in reused:  # no GAN epochs here: one evaluation point (and checkpoint) for the reused generator
            log.info("%s: GAN reused from %s (%d epochs); no GAN training", self.name, reused["gan"].path,
                     self.epochs_trained_)
            self.generator_epoch_ = self.epochs_trained_
            self._epoch_done(self.epochs_trained_, context, evaluate=context.monitor is not None)
        else:
            train_gan(self, Xg, yg, Et, context)
        late = sorted(e for e in cfg.savepoints if e > self.epochs_trained_)
        if late:
            log.info("%s: savepoints %s lie beyond the %d GAN epochs trained; not kept", self.name,
                     ", ".join(map(str, late)), self.epochs_trained_)
        self.head_.clear()
        if "final_classifier" in reused:
            self.head_.load_state(self, reused["final_classifier"].state.get("final_classifiers"))

    def _pretraining_stages(self, plan: dict, X: torch.Tensor, y: torch.Tensor, E: torch.Tensor) -> None:
        """The regressor (cycle variants) and the seen-class classifier (classification-loss variants): trained
        here, reused from ``plan``'s source, or skipped (``R_`` / ``C_`` None: that loss term is dropped)."""
        if self.R_ is not None:
            if isinstance(plan["regressor"], StageSource):
                reuse_regressor(self, plan["regressor"], E)
            else:
                pretrain_regressor(self, X, E[y])
        if self.uses_cls and plan["aux_classifier"] != "skip":
            if isinstance(plan["aux_classifier"], StageSource):
                reuse_aux_classifier(self, plan["aux_classifier"], E)
            else:
                pretrain_aux_classifier(self, X, y, E.shape[0])

    def training_state(self) -> dict:
        """Everything needed to continue the GAN training exactly (networks, optimizers, noise RNG, epoch)."""
        return {
            "epoch": int(self.epochs_trained_),
            "model": self.state_dict(with_features=False),
            "opt_g": self.opt_g_.state_dict(),
            "opt_d": self.opt_d_.state_dict(),
            "rng": self.noise_gen_.get_state(),
        }

    def restore_training_state(self, state: dict) -> int:
        keep = (self.train_X_, self.train_y_, self.scaler_)
        self.load_state_dict(state["model"])
        self.train_X_, self.train_y_, self.scaler_ = keep
        self._init_gan_optimizers()
        self.opt_g_.load_state_dict(state["opt_g"])
        self.opt_d_.load_state_dict(state["opt_d"])
        self.noise_gen_.set_state(state["rng"])
        self.epochs_trained_ = int(state["epoch"])
        return self.epochs_trained_

    # ----- generator diagnostics -------------------------------------------------------------------
    def generator_diagnostics(self) -> dict:
        """``seen_fidelity`` (nearest synthetic class mean on real training-class features; chance
        ``seen_fidelity_chance``) and ``spread_ratio`` (synthetic / real within-class spread) of the current
        generator (diagnostics.py); {} when the model keeps no real features."""
        self._check_fitted()
        return self._diagnostics()

    def _diagnostics(self) -> dict:
        X, y = getattr(self, "diag_X_", None), getattr(self, "diag_y_", None)
        if X is None:
            X, y = getattr(self, "train_X_", None), getattr(self, "train_y_", None)
        E = getattr(self, "train_embeddings_", None)
        if X is None or E is None:
            return {}
        return generator_diagnostics(self, X, y, E)

    def monitor_extras(self, view=None) -> dict:
        """The current GAN epoch's generator diagnostics (its history row's ``seen_fidelity`` and ``spread_ratio``),
        for the validation rows of history.json; with ``view`` (the validation view, a ZSLDataset) also
        ``val_fidelity`` / ``val_fidelity_chance``: the nearest synthetic class mean on the real features of its
        unseen (validation) classes."""
        last = self.history_[-1] if getattr(self, "history_", None) else {}
        out = {k: last[k] for k in ("seen_fidelity", "spread_ratio") if k in last}
        if view is not None:
            out.update(self.class_fidelity(view))
        return out

    def class_fidelity(self, dataset, split: str = "test_unseen") -> dict:
        """``val_fidelity``: nearest synthetic class mean (per-class mean accuracy) on ``dataset``'s real ``split``
        features over the classes present there, and its chance ``val_fidelity_chance``; {} without rows."""
        X, labels = dataset.split(split)
        classes = np.unique(labels)
        if classes.size == 0:
            return {}
        Xt = self.scaler_.transform(torch.as_tensor(np.asarray(X, np.float32), device=self.device_))
        yt = torch.as_tensor(np.searchsorted(classes, labels), device=self.device_)
        E = torch.as_tensor(np.asarray(dataset.class_embeddings[classes], np.float32), device=self.device_)
        accs, _ = class_fidelity(self, Xt, yt, E)
        return {"val_fidelity": sum(accs) / len(accs), "val_fidelity_chance": 1.0 / classes.size} if accs else {}

    def result_extras(self) -> dict:
        """Numbers about the chosen model that go into metrics.json (and the health checks): the generator's
        seen-class fidelity, its chance level and the spread ratio, prefixed ``generator_``."""
        return {f"generator_{k}": float(v) for k, v in self.generator_diagnostics().items()}

    # ----- synthesis -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, class_embeddings, noise) -> np.ndarray:
        """G(a_i, z_i) for given embeddings (N x A) and noise (N x dim z): deterministic."""
        self._check_fitted()
        a = torch.as_tensor(check_matrix(class_embeddings, "class_embeddings", dim=self.embedding_dim_,
                                         dim_name="embedding dimension"), device=self.device_)
        z = torch.as_tensor(np.asarray(noise, dtype=np.float32), device=self.device_)
        if z.shape != (a.shape[0], self._noise_dim()):
            raise DataError(None, "noise", f"expected shape ({a.shape[0]}, {self._noise_dim()}), got {tuple(z.shape)}")
        return self.scaler_.inverse(self._synth_net()(a, z)).cpu().numpy()

    def synthesize(self, class_embeddings, per_class, generator=None, *, seed: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """``per_class`` synthetic features for each row of ``class_embeddings``.

        ``per_class``: an int or one count per class. ``generator``: None (torch's global RNG), an int seed,
        or a ``torch.Generator`` on the model's device (``seed=`` is the same as an int ``generator``). Returns
        (features float32 (M x D), labels int64 (M,) indexing the rows of ``class_embeddings``), grouped by class.
        """
        self._check_fitted()
        E = check_matrix(class_embeddings, "class_embeddings", dim=self.embedding_dim_, dim_name="embedding dimension")
        counts = np.array(np.broadcast_to(np.asarray(per_class, dtype=np.int64), (E.shape[0],)))
        if counts.min() < 0:
            raise ConfigError("per_class counts must be >= 0")
        if seed is not None:
            if generator is not None:
                raise ConfigError("synthesize: give either generator or seed, not both")
            generator = int(seed)
        if isinstance(generator, (int, np.integer)):
            generator = make_generator(int(generator), self.device_)
        x, lab = synthesize_rows(self._synth_net(), torch.as_tensor(E, device=self.device_),
                                 torch.as_tensor(counts, device=self.device_), self._noise_dim(), self.feature_dim_,
                                 generator)
        return self.scaler_.inverse(x).cpu().numpy(), lab.cpu().numpy()

    def _synth_net(self) -> nn.Module:
        """The generator that synthesises: the weight average (``g_ema``) when kept, else G itself."""
        return self.G_ema_ if getattr(self, "G_ema_", None) is not None else self.G_

    def use_snapshot(self, epoch: int) -> None:
        """Synthesise from the generator kept at GAN epoch ``epoch`` from now on (a ``savepoints`` epoch, or the last
        one); trained final classifiers are dropped. A ConfigError lists the epochs kept."""
        self._check_fitted()
        epoch = int(epoch)
        if epoch == self.generator_epoch_:
            return
        if epoch not in self.snapshots_:
            kept = sorted({*self.snapshots_, self.generator_epoch_})
            raise ConfigError(f"no generator of GAN epoch {epoch} in this model: it keeps epochs "
                              f"{', '.join(map(str, kept))} (the savepoints that were reached, "
                              f"{list(self.config_.savepoints) or 'none'} asked, and the last epoch)")
        net = self._synth_net()
        self.snapshots_.setdefault(self.generator_epoch_, cpu_copy(net.state_dict()))  # to switch back
        net.load_state_dict(self.snapshots_[epoch])
        self.generator_epoch_ = epoch
        self.head_.clear()

    # ----- the final classifier ---------------------------------------------------------------------
    def fit_head(self, candidate_embeddings, seen_labels=None, *, head: dict | None = None) -> SoftmaxClassifier:
        """Train (or take from the cache) the final classifier over candidate classes given by their embeddings and
        return it: ``syn_per_unseen`` synthetic features per new class (``seen_labels`` -1 or None), and per
        training class (``seen_labels`` = its training label) its real features plus ``syn_per_seen`` synthetic ones
        (``mode: merge``) or synthetic ones only (``replace``), then the softmax (``cls_*``). ``head``: head fields
        (one entry of the recipe's ``head_space``) that replace the config's for this call. Trained heads are
        cached by candidate set and head settings and saved in the checkpoint. ``build_classifier``,
        ``decision_function`` and ``predict`` call this, so a head is trained on first use (logged at INFO)."""
        return super().build_classifier(candidate_embeddings, seen_labels, head=head)

    def build_classifier(self, candidate_embeddings, seen_labels=None, *, head: dict | None = None
                         ) -> SoftmaxClassifier:
        """The same as ``fit_head``."""
        return self.fit_head(candidate_embeddings, seen_labels, head=head)

    def _build_classifier(self, candidate_embeddings, seen_labels, head: dict | None = None) -> CandidateClassifier:
        cfg = apply_overrides(self.config_, head, source="head") if head else self.config_
        return self.head_.fit(self, candidate_embeddings, seen_labels, cfg=cfg)

    def _classifier(self, layer: nn.Linear, head: str) -> SoftmaxClassifier:
        transform = None if self.scaler_.kind == "none" else self.scaler_.transform
        return SoftmaxClassifier(layer, self.device_, head=head, transform=transform)

    def adopt_seen_classes(self, X, y, class_embeddings) -> None:
        """Use real features ``X`` with labels ``y`` (rows of ``class_embeddings``) as the seen-class side of the
        final classifier (``merge``) from now on; the GAN is untouched. Used when validation selection keeps the
        model trained on the validation view: its seen side then covers every training class."""
        self._check_fitted()
        E = check_matrix(class_embeddings, "class_embeddings", dim=self.embedding_dim_, dim_name="embedding dimension")
        Xc = check_matrix(X, "X", dim=self.feature_dim_, dim_name="feature dimension")
        yc = check_labels(y, Xc.shape[0], E.shape[0])
        self.train_X_ = self.scaler_.transform(torch.as_tensor(Xc, device=self.device_))
        self.train_y_ = torch.as_tensor(yc, device=self.device_)
        self.train_embeddings_ = torch.as_tensor(E, device=self.device_)
        self.num_train_classes_ = int(E.shape[0])
        self.diag_X_ = self.diag_y_ = None  # the diagnostics now score the adopted rows
        self.head_.clear()

    # ----- persistence -----------------------------------------------------------------------------
    def state_dict(self, with_features: bool = True) -> dict:
        cpu = lambda m: None if m is None else cpu_copy(m.state_dict())  # noqa: E731
        keep = with_features and self.config_.keep_train_features and getattr(self, "train_X_", None) is not None
        return {
            "generator": cpu(self.G_),
            "generator_ema": cpu(getattr(self, "G_ema_", None)),
            "ema_steps": int(getattr(self, "ema_steps_", 0)),
            "critic": cpu(self.D_),
            "regressor": cpu(self.R_),
            "aux_classifier": cpu(self.C_),
            "num_aux_classes": None if self.C_ is None else int(self.C_.out_features),
            "history": [dict(r) for r in self.history_],
            "epochs_trained": int(getattr(self, "epochs_trained_", 0)),
            "scaler": self.scaler_.state(),
            "train_features": cpu_copy(self.train_X_) if keep else None,
            "train_labels": cpu_copy(self.train_y_) if keep else None,
            "train_class_embeddings": cpu_copy(getattr(self, "train_embeddings_", None)),
            "final_classifiers": self.head_.state(),
            "snapshots": {int(e): cpu_copy(w) for e, w in self.snapshots_.items()},
            "generator_epoch": int(getattr(self, "generator_epoch_", 0)),
            "reused_stages": {k: dict(v) for k, v in self.reused_stages_.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self._build_networks()
        self.G_.load_state_dict(state["generator"])
        if self.G_ema_ is not None:
            self.G_ema_.load_state_dict(state.get("generator_ema") or state["generator"])
            self.ema_steps_ = int(state.get("ema_steps", 0))
        self.D_.load_state_dict(state["critic"])
        if self.R_ is not None and state.get("regressor") is not None:
            self.R_.load_state_dict(state["regressor"])
            self.R_.requires_grad_(False)
        if state.get("aux_classifier") is not None:
            self.C_ = nn.Linear(self.feature_dim_, int(state["num_aux_classes"])).to(self.device_)
            self.C_.load_state_dict(state["aux_classifier"])
            self.C_.requires_grad_(False)
        self.history_ = [dict(r) for r in state.get("history", [])]
        self.epochs_trained_ = int(state.get("epochs_trained", len(self.history_)))
        self.scaler_ = FeatureScaler.from_state(state.get("scaler"), float(state.get("feature_scale", 1.0)))
        tx = state.get("train_features")
        self.train_X_ = None if tx is None else tx.to(self.device_)
        self.train_y_ = None if tx is None else state["train_labels"].to(self.device_)
        te = state.get("train_class_embeddings")
        self.train_embeddings_ = None if te is None else te.to(self.device_)
        self.snapshots_ = {int(e): w for e, w in (state.get("snapshots") or {}).items()}
        self.generator_epoch_ = int(state.get("generator_epoch", self.epochs_trained_))
        self.reused_stages_ = {k: dict(v) for k, v in (state.get("reused_stages") or {}).items()}
        self.head_.load_state(self, state.get("final_classifiers"))
