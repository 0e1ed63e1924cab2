"""cycle-WGAN (Felix, Kumar, Reid, Carneiro, ECCV 2018) and its f-CLSWGAN baseline (Xian et al., CVPR 2018).

A conditional WGAN-GP (``zslkit.methods._gan``) learns to generate visual features from class embeddings:

* critic loss   L_D = mean D(x~, a) - mean D(x, a) + lambda * mean (||grad_x^ D(x^, a)||_2 - 1)^2
  (f-CLSWGAN's sign convention; the cycle-WGAN code writes the negation, which is equivalent);
* generator loss L_G = -mean D(x~, a) + r_beta * MSE(R(x~), a)   [cycle-wgan, cycle-clswgan]
                                      + c_beta * CE(C(x~), y)     [f-clswgan, cycle-clswgan]
  where R (linear, visual -> semantic) is pretrained on real seen features with MSE and C is a pretrained,
  frozen seen-class softmax.

After training, ``build_classifier`` synthesises features for the candidate classes and trains the final
softmax (``zslkit.methods._softmax``) on real seen + synthetic (``merge``) or synthetic only (``replace``)
features; see docs/methods/cycle_wgan.md.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import logging
import math
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from zslkit.errors import ConfigError, DataError, TrainingDivergedError
from zslkit.methods._gan import (FEATURE_NORMS, GP_ALPHAS, INITS, Critic, FeatureScaler, Generator, gradient_penalty,
                                 init_linear, inverse_time_lr)
from zslkit.methods._optim import make_adam, set_lr
from zslkit.methods._softmax import HEADS, SoftmaxClassifier, keep_fraction, logits, train_softmax
from zslkit.methods.base import CandidateClassifier, ZSLMethod, check_labels, check_matrix, cpu_copy
from zslkit.methods.config import apply_overrides, option
from zslkit.methods.registry import register
from zslkit.runtime import make_generator

log = logging.getLogger("zslkit.methods.cyclewgan")

VARIANTS = ("cycle-wgan", "f-clswgan", "cycle-clswgan")
CLS_VARIANTS = ("f-clswgan", "cycle-clswgan")  # with the f-CLSWGAN classification loss
MODES = ("merge", "replace")
PRESET_METHOD = "cycle-wgan"
SYNTH_CHUNK = 16384  # rows per generator forward pass during synthesis
MAX_HEADS = 12  # final-classifier settings tried at each validation point (head_space)
CLS_STEP_BUDGET = 500  # optimizer steps of one final classifier in the no-preset default (scaled_default)
# the config fields that change only build_classifier (synthesis + final softmax): part of the classifier cache key
HEAD_FIELDS = ("syn_per_unseen", "syn_per_seen", "mode", "cls_epochs", "cls_lr", "cls_batch", "cls_betas",
               "cls_weight_decay", "cls_head", "cls_lr_decay", "train_fraction")


@dataclass
class CycleWGANConfig:
    variant: str = option("cycle-wgan", "cycle-wgan | f-clswgan | cycle-clswgan", choices=VARIANTS)
    # GAN
    epochs: int = option(30, "GAN epochs (validation selection picks this)", min=1)
    batch_size: int = option(64, "GAN batch size", min=1)
    hidden_g: int = option(4096, "generator hidden width", min=1)
    hidden_d: int = option(4096, "critic hidden width", min=1)
    noise_dim: int = option(0, "noise dimension (0: the embedding dimension)", min=0)
    leaky_slope: float = option(0.2, "LeakyReLU slope of G and D", min=0)
    lr_g: float = option(1e-4, "generator Adam learning rate", above=0)
    lr_d: float = option(1e-3, "critic Adam learning rate", above=0)
    lr_decay_g: float = option(0.0, "inverse-time decay lr / (1 + decay * epoch), advanced once per epoch (all "
                               "*_lr_decay)", min=0)
    lr_decay_d: float = option(0.0, "critic inverse-time lr decay", min=0)
    betas_g: tuple = option((0.5, 0.999), "generator Adam betas", item=float, min=0, below=1)
    betas_d: tuple = option((0.5, 0.999), "critic Adam betas", item=float, min=0, below=1)
    n_critic: int = option(1, "critic steps per generator step (cycle-WGAN reference: 1; f-CLSWGAN: 5)", min=1)
    gp_lambda: float = option(10.0, "gradient-penalty weight", min=0)
    gp_alpha: str = option("sample", "sample: one interpolation weight per sample (f-CLSWGAN) | element (cycle-WGAN)",
                           choices=GP_ALPHAS)
    gan_init: str = option("normal", "normal: N(0, 0.02) (f-CLSWGAN) | xavier: Glorot uniform (cycle-WGAN), also R",
                           choices=INITS)
    g_ema: float = option(0.0, "> 0: synthesise with an exponential moving average of G's weights (decay per G step)",
                          min=0, below=1)
    r_beta: float = option(0.01, "weight of the cycle (regression) loss", min=0)
    c_beta: float = option(0.01, "weight of the f-CLSWGAN classification loss", min=0)
    train_fraction: float = option(1.0, "share of the training rows used (the cycle-WGAN reference: 0.9, 10 % "
                                   "monitoring)", above=0, max=1)
    # pretrained regressor R: x -> a (cycle variants); Adam betas (0.9, 0.999)
    regressor_epochs: int = option(40, "epochs of the pretrained regressor x -> a (cycle variants)", min=0)
    regressor_lr: float = option(1e-4, "regressor learning rate", above=0)
    regressor_lr_decay: float = option(0.0, "regressor inverse-time lr decay", min=0)
    regressor_batch: int = option(64, "regressor batch size", min=1)
    regressor_weight_decay: float = option(0.0, "regressor weight decay", min=0)
    # pretrained frozen seen-class softmax (f-CLSWGAN loss); its head is cls_head
    pre_cls_epochs: int = option(30, "epochs of the frozen seen-class softmax (f-CLSWGAN loss)", min=0)
    pre_cls_lr: float = option(1e-3, "its learning rate", above=0)
    pre_cls_lr_decay: float = option(0.0, "its inverse-time lr decay", min=0)
    pre_cls_batch: int = option(2048, "its batch size", min=1)
    pre_cls_betas: tuple = option((0.5, 0.999), "its Adam betas", item=float, min=0, below=1)
    # synthesis and the final softmax classifier
    syn_per_unseen: int = option(200, "synthetic features per unseen class", min=0)
    syn_per_seen: int = option(0, "synthetic features per seen class", min=0)
    mode: str = option("merge", "merge: real seen + synthetic; replace: synthetic only", choices=MODES)
    feature_norm: str = option("none", "none | max (one global divisor) | minmax (each dimension to [0, 1])",
                               choices=FEATURE_NORMS)
    cls_epochs: int = option(25, "final softmax classifier epochs", min=0)
    cls_lr: float = option(1e-3, "final classifier learning rate", above=0)
    cls_lr_decay: float = option(0.0, "final classifier inverse-time lr decay", min=0)
    cls_batch: int = option(2048, "final classifier batch size", min=1)
    cls_betas: tuple = option((0.5, 0.999), "final classifier Adam betas", item=float, min=0, below=1)
    cls_weight_decay: float = option(0.0, "final classifier weight decay", min=0)
    cls_head: str = option("linear", "linear: softmax(Wx + b) | relu: softmax(ReLU(Wx + b)) (cycle-WGAN reference)",
                           choices=HEADS)
    # validation search over the final classifier (head_space): the product of these lists, each empty = as set
    mode_grid: tuple = option((), "modes tried on validation (head search; empty: as set)", item=str, choices=MODES)
    syn_grid: tuple = option((), "syn_per_unseen values tried on validation", item=int, min=0)
    cls_epochs_grid: tuple = option((), "cls_epochs values tried on validation", item=int, min=0)
    cls_lr_grid: tuple = option((), "cls_lr values tried on validation", item=float, above=0)
    # bookkeeping
    eval_every: int = option(0, "monitor every k GAN epochs (0: max(1, epochs // 10)); always after the last", min=0)
    max_critic_loss: float = option(1e6, "|mean critic loss| of an epoch above this counts as divergence", above=0)
    keep_train_features: bool = option(True, "store the real trainval features in the checkpoint (merge after load)")


# ----------------------------------------------------------------------------------------------------------
# the estimator

@register
class CycleWGAN(ZSLMethod):
    name = "cycle-wgan"
    config_class = CycleWGANConfig
    settings = ("inductive",)
    epochs_field = "epochs"
    # False: validation selection retrains on trainval with the chosen settings (the weight-averaged generator of the
    # no-preset default makes that reproducible); keeping the validation-view GAN (adopt_seen_classes) tested worse on
    # fashion-zsl, see docs/methods/cycle_wgan.md. Set True on a subclass to keep it.
    keeps_validated_model = False
    variants = VARIANTS
    description = ("cycle-WGAN (Felix et al., ECCV 2018) with the f-CLSWGAN baseline (Xian et al., CVPR 2018): "
                   "conditional WGAN-GP feature generator + softmax on synthetic features")

    def _prepare(self) -> None:
        super()._prepare()
        self.history_: list[dict] = []
        self._cache: OrderedDict = OrderedDict()
        self._scaler = FeatureScaler("none")

    # ----- building blocks -------------------------------------------------------------------------
    @property
    def uses_cycle(self) -> bool:
        return self.config_.variant in ("cycle-wgan", "cycle-clswgan")

    @property
    def uses_cls(self) -> bool:
        return self.config_.variant in CLS_VARIANTS

    def _noise_dim(self) -> int:
        return int(self.config_.noise_dim) or int(self.embedding_dim_)

    def _build_networks(self) -> None:
        cfg, D, A = self.config_, self.feature_dim_, self.embedding_dim_
        gen = torch.Generator().manual_seed(self.seed)
        self.G_ = Generator(A, self._noise_dim(), cfg.hidden_g, D, cfg.leaky_slope)
        self.D_ = Critic(D, A, cfg.hidden_d, cfg.leaky_slope)
        self.G_.init(gen, cfg.gan_init)
        self.D_.init(gen, cfg.gan_init)
        self.G_.to(self.device_)
        self.G_ema_ = copy.deepcopy(self.G_).requires_grad_(False) if cfg.g_ema > 0 else None
        self.ema_steps_ = 0
        self.D_.to(self.device_)
        self.R_ = nn.Linear(D, A).to(self.device_) if self.uses_cycle else None
        self.C_ = None  # frozen seen-class softmax (f-CLSWGAN loss), built in _fit

    # ----- training --------------------------------------------------------------------------------
    def _fit(self, X, y, class_embeddings, *, unlabeled, unlabeled_embeddings, context) -> None:
        cfg, dev = self.config_, self.device_
        self._cache.clear()
        self.history_ = []
        self.epochs_trained_ = 0
        Xt = torch.as_tensor(X, device=dev)
        self._scaler = FeatureScaler.fit(cfg.feature_norm, Xt)
        Xt = self._scaler.transform(Xt)
        yt = torch.as_tensor(y, device=dev)
        Et = torch.as_tensor(class_embeddings, device=dev)
        self.train_X_, self.train_y_ = Xt, yt
        self.train_embeddings_ = Et
        # the reference trains R, C and the GAN on a random 90 % of the rows (train_fraction) and only monitors on
        # the rest; the real seen features of the final classifier are all rows (train_X_)
        keep = keep_fraction(Xt.shape[0], cfg.train_fraction, make_generator(self.seed + 6, dev), dev)
        Xg, yg = (Xt, yt) if keep is None else (Xt[keep], yt[keep])
        self._build_networks()
        self._init_gan_optimizers()
        resume = context.resume_state
        if resume is not None:  # continue an interrupted fit: networks, optimizers, noise RNG, history
            self.restore_training_state(resume)
        else:
            if self.uses_cycle:
                self._pretrain_regressor(Xg, Et[yg])
            if self.uses_cls:
                self.C_ = train_softmax(Xg, yg, Et.shape[0], epochs=cfg.pre_cls_epochs, lr=cfg.pre_cls_lr,
                                        batch_size=cfg.pre_cls_batch, betas=cfg.pre_cls_betas, head=cfg.cls_head,
                                        lr_decay=cfg.pre_cls_lr_decay, generator=make_generator(self.seed + 2, dev))
        self._train_gan(Xg, yg, Et, context)
        self._cache.clear()

    def training_state(self) -> dict:
        """Everything needed to continue the GAN training exactly (networks, optimizers, noise RNG, epoch)."""
        return {
            "epoch": int(self.epochs_trained_),
            "model": self.state_dict(with_features=False),
            "opt_g": self._opt_g.state_dict(),
            "opt_d": self._opt_d.state_dict(),
            "rng": self._gen.get_state(),
        }

    def restore_training_state(self, state: dict) -> int:
        keep = (self.train_X_, self.train_y_, self._scaler)
        self.load_state_dict(state["model"])
        self.train_X_, self.train_y_, self._scaler = keep
        self._init_gan_optimizers()
        self._opt_g.load_state_dict(state["opt_g"])
        self._opt_d.load_state_dict(state["opt_d"])
        self._gen.set_state(state["rng"])
        self.epochs_trained_ = int(state["epoch"])
        return self.epochs_trained_

    def _init_gan_optimizers(self) -> None:
        """Fresh Adam optimizers for G and D and the seeded noise/batch generator of the GAN stage."""
        cfg, dev = self.config_, self.device_
        self._opt_g = make_adam(self.G_.parameters(), cfg.lr_g, betas=cfg.betas_g)
        self._opt_d = make_adam(self.D_.parameters(), cfg.lr_d, betas=cfg.betas_d)
        self._gen = make_generator(self.seed + 3, dev)

    def _pretrain_regressor(self, X: torch.Tensor, A: torch.Tensor) -> None:
        cfg = self.config_
        gen = torch.Generator().manual_seed(self.seed + 1)
        if cfg.gan_init == "xavier":
            init_linear(self.R_, gen, "xavier")
        else:
            with torch.no_grad():  # torch's default uniform range, from the injected generator
                bound = 1.0 / math.sqrt(X.shape[1])
                self.R_.weight.copy_((torch.rand(self.R_.weight.shape, generator=gen) * 2 - 1) * bound)
                self.R_.bias.zero_()
        opt = make_adam(self.R_.parameters(), cfg.regressor_lr, weight_decay=cfg.regressor_weight_decay)
        dgen = make_generator(self.seed + 1, self.device_)
        n = X.shape[0]
        bs = max(1, min(cfg.regressor_batch, n))
        losses = torch.zeros((), device=self.device_)
        for epoch in range(cfg.regressor_epochs):
            if cfg.regressor_lr_decay:
                set_lr(opt, inverse_time_lr(cfg.regressor_lr, cfg.regressor_lr_decay, epoch))
            perm = torch.randperm(n, generator=dgen, device=self.device_)
            for start in range(0, n, bs):
                idx = perm[start:start + bs]
                loss = F.mse_loss(self.R_(X[idx]), A[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses = loss.detach()
        self.R_.requires_grad_(False)
        self.regressor_loss_ = float(losses)
        if not math.isfinite(self.regressor_loss_):
            raise TrainingDivergedError(f"{self.name}: regressor pretraining diverged (loss {self.regressor_loss_}); "
                                        f"lower regressor_lr ({cfg.regressor_lr:g})")

    def _epoch_batches(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """(steps, n_critic, B) sample indices of one epoch: consecutive random permutations, cut in batches."""
        cfg = self.config_
        bs = min(cfg.batch_size, n)
        steps = max(1, n // bs)
        need = steps * cfg.n_critic * bs
        perms = [torch.randperm(n, generator=gen, device=self.device_) for _ in range(-(-need // n))]
        return torch.cat(perms)[:need].view(steps, cfg.n_critic, bs)

    def _train_gan(self, X, y, E, context) -> None:
        cfg, dev = self.config_, self.device_
        G, D, R, C = self.G_, self.D_, self.R_, self.C_
        opt_g, opt_d, gen = self._opt_g, self._opt_d, self._gen
        d_params = list(D.parameters())
        nz = self._noise_dim()
        every = cfg.eval_every or max(1, cfg.epochs // 10)
        use_cycle, use_cls = self.uses_cycle, self.uses_cls
        critic = lambda x, p: D(x, a_proj=p)  # noqa: E731
        zero = torch.zeros((), device=dev)
        nets = (G, D) if self.G_ema_ is None else (G, D, self.G_ema_)
        good = _snapshot(*nets)

        from tqdm.auto import tqdm

        bar = tqdm(range(self.epochs_trained_ + 1, cfg.epochs + 1), initial=self.epochs_trained_, total=cfg.epochs,
                   desc=f"{cfg.variant} GAN", unit="epoch", disable=not self.progress, leave=False)
        alpha_cols = X.shape[1] if cfg.gp_alpha == "element" else 1
        for epoch in bar:
            t0 = time.perf_counter()
            set_lr(opt_g, inverse_time_lr(cfg.lr_g, cfg.lr_decay_g, epoch - 1))
            set_lr(opt_d, inverse_time_lr(cfg.lr_d, cfg.lr_decay_d, epoch - 1))
            batches = self._epoch_batches(X.shape[0], gen)
            steps, _, bs = batches.shape
            sums = torch.zeros(6, device=dev)  # critic loss, W estimate, gp, cycle, cls, generator loss
            for it in range(steps):
                for k in range(cfg.n_critic):
                    idx = batches[it, k]
                    x, yb = X[idx], y[idx]
                    a = E[yb]
                    z = torch.randn(bs, nz, generator=gen, device=dev)
                    with torch.no_grad():
                        fake = G(a, z)
                    a_proj = D.project(a)
                    out = D(torch.cat([x, fake]), a_proj=torch.cat([a_proj, a_proj]))
                    w_est = out[:bs].mean() - out[bs:].mean()
                    alpha = torch.rand(bs, alpha_cols, generator=gen, device=dev)
                    gp = gradient_penalty(critic, x, fake, a_proj, lam=cfg.gp_lambda, alpha=alpha)
                    loss_d = gp - w_est
                    opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    opt_d.step()
                # generator step on the last critic batch's classes, fresh noise
                for p in d_params:
                    p.requires_grad_(False)
                z = torch.randn(bs, nz, generator=gen, device=dev)
                fake = G(a, z)
                loss_g = -D(fake, a).mean()
                cyc = cls = zero
                if use_cycle:
                    cyc = F.mse_loss(R(fake), a)
                    loss_g = loss_g + cfg.r_beta * cyc
                if use_cls:
                    cls = F.cross_entropy(logits(C, fake, cfg.cls_head), yb)
                    loss_g = loss_g + cfg.c_beta * cls
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                if self.G_ema_ is not None:
                    self._update_ema()
                for p in d_params:
                    p.requires_grad_(True)
                sums += torch.stack([loss_d.detach(), w_est.detach(), gp.detach(), cyc.detach(), cls.detach(),
                                     loss_g.detach()])
            m = (sums / steps).tolist()  # one device sync per epoch
            row = {"epoch": epoch, "critic_loss": m[0], "wasserstein": m[1], "gp": m[2], "cycle": m[3],
                   "cls": m[4], "g_loss": m[5], "time_s": time.perf_counter() - t0}
            bad = [k for k in ("critic_loss", "wasserstein", "gp", "g_loss") if not math.isfinite(row[k])]
            if bad or abs(row["critic_loss"]) > cfg.max_critic_loss:
                _restore(*nets, good)
                self.fitted_ = self.epochs_trained_ > 0
                what = (f"non-finite {', '.join(bad)}" if bad else
                        f"|critic loss| {abs(row['critic_loss']):.3g} > max_critic_loss {cfg.max_critic_loss:.3g}")
                raise TrainingDivergedError(
                    f"{self.name} ({cfg.variant}) diverged in GAN epoch {epoch}/{cfg.epochs}: {what} "
                    f"(critic loss {row['critic_loss']:.4g}, W {row['wasserstein']:.4g}, gp {row['gp']:.4g}). "
                    f"The model keeps the state after the last good epoch ({self.epochs_trained_}); "
                    f"try lower learning rates (lr_d={cfg.lr_d:g}, lr_g={cfg.lr_g:g}) or a larger gp_lambda.")
            self.history_.append(row)
            self.epochs_trained_ = epoch
            good = _snapshot(*nets)
            bar.set_postfix(D=f"{m[0]:.3f}", W=f"{m[1]:.3f}", gp=f"{m[2]:.3f}",
                            cyc=f"{m[3]:.4f}" if use_cycle else "-", refresh=False)
            self._cache.clear()
            met = self._epoch_done(epoch, context, evaluate=epoch % every == 0 or epoch == cfg.epochs)
            if met:
                row["monitor"] = {k: v for k, v in met.items() if isinstance(v, (int, float))}
        bar.close()

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
        return self._scaler.inverse(self._synth_net()(a, z)).cpu().numpy()

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
        x, lab = self._synthesize_t(torch.as_tensor(E, device=self.device_),
                                    torch.as_tensor(counts, device=self.device_), generator)
        return self._scaler.inverse(x).cpu().numpy(), lab.cpu().numpy()

    def _synth_net(self) -> nn.Module:
        """The generator that synthesises: the weight average (``g_ema``) when kept, else G itself."""
        return self.G_ema_ if getattr(self, "G_ema_", None) is not None else self.G_

    @torch.no_grad()
    def _update_ema(self) -> None:
        """G_ema <- d G_ema + (1 - d) G after a generator step, d = min(g_ema, (1 + t) / (10 + t)) (the warm-up of
        TensorFlow's ExponentialMovingAverage with num_updates, so early averages are not dominated by the init)."""
        self.ema_steps_ += 1
        t = self.ema_steps_
        d = min(self.config_.g_ema, (1.0 + t) / (10.0 + t))
        torch._foreach_lerp_(list(self.G_ema_.parameters()), list(self.G_.parameters()), 1.0 - d)

    @torch.no_grad()
    def _synthesize_t(self, E: torch.Tensor, counts: torch.Tensor, gen: torch.Generator | None):
        labels = torch.repeat_interleave(torch.arange(E.shape[0], device=E.device), counts)
        z = torch.randn(labels.shape[0], self._noise_dim(), generator=gen, device=E.device)
        out = torch.empty(labels.shape[0], self.feature_dim_, device=E.device)
        net = self._synth_net()
        for s in range(0, labels.shape[0], SYNTH_CHUNK):
            out[s:s + SYNTH_CHUNK] = net(E[labels[s:s + SYNTH_CHUNK]], z[s:s + SYNTH_CHUNK])
        return out, labels

    # ----- the final classifier ---------------------------------------------------------------------
    def _build_classifier(self, candidate_embeddings, seen_labels) -> CandidateClassifier:
        cfg, dev = self.config_, self.device_
        sl = (np.full(candidate_embeddings.shape[0], -1, np.int64) if seen_labels is None
              else np.asarray(seen_labels, np.int64))
        head = repr(tuple(getattr(cfg, f) for f in HEAD_FIELDS))  # head_space changes these between calls
        key = hashlib.sha1(candidate_embeddings.tobytes() + sl.tobytes()
                           + str(candidate_embeddings.shape).encode() + head.encode()).hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        K = candidate_embeddings.shape[0]
        is_seen = sl >= 0
        have_real = getattr(self, "train_X_", None) is not None
        merge = cfg.mode == "merge" and is_seen.any()
        if merge and not have_real:
            warnings.warn("cycle-wgan: mode 'merge' but this model has no real training features (saved with "
                          "keep_train_features=False); using synthetic features for the seen candidates",
                          RuntimeWarning, stacklevel=3)
            merge = False
        seen_syn = cfg.syn_per_seen if (merge or cfg.syn_per_seen > 0) else cfg.syn_per_unseen
        counts = np.where(is_seen, seen_syn, cfg.syn_per_unseen).astype(np.int64)
        E = torch.as_tensor(candidate_embeddings, device=dev)
        gen = make_generator(self.seed + 4, dev)
        xs, ys = self._synthesize_t(E, torch.as_tensor(counts, device=dev), gen)
        if merge:
            lut = np.full(self.num_train_classes_, -1, np.int64)
            lut[sl[is_seen]] = np.flatnonzero(is_seen)
            lut_t = torch.as_tensor(lut, device=dev)
            cand = lut_t[self.train_y_]
            keep = cand >= 0
            xs = torch.cat([self.train_X_[keep], xs])
            ys = torch.cat([cand[keep], ys])
        if xs.shape[0] == 0:
            raise ConfigError("cycle-wgan: no training samples for the final classifier (syn_per_unseen = 0?)")
        layer = train_softmax(xs, ys, K, epochs=cfg.cls_epochs, lr=cfg.cls_lr, batch_size=cfg.cls_batch,
                              betas=cfg.cls_betas, weight_decay=cfg.cls_weight_decay, head=cfg.cls_head,
                              lr_decay=cfg.cls_lr_decay, fraction=cfg.train_fraction,
                              generator=make_generator(self.seed + 5, dev))
        clf = self._classifier(layer, cfg.cls_head)
        self._cache[key] = clf
        while len(self._cache) > 4:
            self._cache.popitem(last=False)
        return clf

    def _classifier(self, layer: nn.Linear, head: str) -> SoftmaxClassifier:
        transform = None if self._scaler.kind == "none" else self._scaler.transform
        return SoftmaxClassifier(layer, self.device_, head=head, transform=transform)

    def adopt_seen_classes(self, X, y, class_embeddings) -> None:
        """Use real features ``X`` with labels ``y`` (rows of ``class_embeddings``) as the seen-class side of the
        final classifier (``merge``) from now on; the GAN is untouched. Used when validation selection keeps the
        model trained on the validation view: its seen side then covers every training class."""
        self._check_fitted()
        E = check_matrix(class_embeddings, "class_embeddings", dim=self.embedding_dim_, dim_name="embedding dimension")
        Xc = check_matrix(X, "X", dim=self.feature_dim_, dim_name="feature dimension")
        yc = check_labels(y, Xc.shape[0], E.shape[0])
        self.train_X_ = self._scaler.transform(torch.as_tensor(Xc, device=self.device_))
        self.train_y_ = torch.as_tensor(yc, device=self.device_)
        self.train_embeddings_ = torch.as_tensor(E, device=self.device_)
        self.num_train_classes_ = int(E.shape[0])
        self._cache.clear()

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
            "scaler": self._scaler.state(),
            "train_features": cpu_copy(self.train_X_) if keep else None,
            "train_labels": cpu_copy(self.train_y_) if keep else None,
            # the final classifiers already trained (e.g. for the test candidates): kept so that a reloaded
            # model, on any device, scores those candidates exactly as before instead of retraining them
            "final_classifiers": {key: {**cpu_copy(dict(clf.layer.state_dict())), "head": clf.head}
                                  for key, clf in self._cache.items()},
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
        self._scaler = FeatureScaler.from_state(state.get("scaler"), float(state.get("feature_scale", 1.0)))
        tx = state.get("train_features")
        self.train_X_ = None if tx is None else tx.to(self.device_)
        self.train_y_ = None if tx is None else state["train_labels"].to(self.device_)
        self._cache.clear()
        for key, head in (state.get("final_classifiers") or {}).items():
            layer = nn.Linear(head["weight"].shape[1], head["weight"].shape[0]).to(self.device_)
            with torch.no_grad():
                layer.weight.copy_(head["weight"])
                layer.bias.copy_(head["bias"])
            self._cache[key] = self._classifier(layer, head.get("head", "linear"))

    # ----- presets and selection -------------------------------------------------------------------
    @classmethod
    def preset_names(cls, dataset) -> list[str]:
        """CUB with sentence embeddings (semantic source ``sent*``) uses the ``CUB-sent`` entry first."""
        names = super().preset_names(dataset)
        if dataset is not None and dataset.name.upper() == "CUB" and \
                str(dataset.semantic_source).lower().startswith("sent"):
            names.insert(0, "CUB-sent")
        return names

    @classmethod
    def preset_variants(cls, variant: str | None) -> list[str | None]:
        """A variant's own entry, else the dataset's cycle-wgan entry (cycle-clswgan has none of its own)."""
        own = None if variant in (None, "cycle-wgan") else variant
        return [own, None] if own else [None]

    @classmethod
    def from_preset(cls, preset, variant: str | None) -> CycleWGANConfig:
        return _as_variant(super().from_preset(preset, variant), variant, own_preset=preset.variant is not None)

    @classmethod
    def scaled_config(cls, dataset=None, setting: str = "inductive", variant: str | None = None) -> CycleWGANConfig:
        return _as_variant(scaled_default(dataset, variant), variant, own_preset=False)

    @classmethod
    def search_space(cls, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """One GAN run: its epoch comes from the monitor, the final classifier from ``head_space``."""
        return [{}]

    @classmethod
    def head_space(cls, config, dataset=None, setting: str = "inductive") -> list[dict]:
        """Final-classifier settings scored at every validation point without refitting the GAN: the product of
        ``mode_grid``, ``syn_grid`` (syn_per_unseen), ``cls_epochs_grid`` and ``cls_lr_grid`` (an empty list keeps
        the config's value). The reference presets set none, so they are scored as given."""
        axes = [(name, tuple(values)) for name, values in (("mode", config.mode_grid),
                                                           ("syn_per_unseen", config.syn_grid),
                                                           ("cls_epochs", config.cls_epochs_grid),
                                                           ("cls_lr", config.cls_lr_grid)) if values]
        if not axes:
            return [{}]
        heads = [dict(zip([n for n, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]
        if len(heads) > MAX_HEADS:
            raise ConfigError(f"cycle-wgan: the head grid (mode_grid x syn_grid x cls_epochs_grid x cls_lr_grid) "
                              f"has {len(heads)} entries; keep it at most {MAX_HEADS}, every one is trained at "
                              f"every validation point")
        return heads


def _as_variant(cfg: CycleWGANConfig, variant: str | None, own_preset: bool) -> CycleWGANConfig:
    """``cfg`` for ``variant``. Borrowing a cycle-WGAN entry (or the scaled default) for f-CLSWGAN keeps the
    f-CLSWGAN reference's 5 critic steps per generator step (papers.md 3.2, critic_iter 5)."""
    if not variant:
        return cfg
    cfg = dataclasses.replace(cfg, variant=variant)
    if variant == "f-clswgan" and not own_preset:
        cfg = dataclasses.replace(cfg, n_critic=5)
    return cfg


def scaled_default(dataset=None, variant: str | None = None) -> CycleWGANConfig:
    """Defaults for a dataset without a preset: rules on the data's size, dimensions and class count, each with
    its reason (numbers in docs/methods/cycle_wgan.md, "On real data"). The reference presets never come here.

    * Hidden width 2 x max(feature dim, embedding dim), rounded up to a power of two, within [128, 512]: the
      reference's 4096 is 2 x its 2048-d features; capped for a 2-core CPU budget (wider GANs were not compared on
      real data: the run was dropped for CPU time).
    * About 1500 generator steps (5..60 epochs of batch 64), lr_g 1e-3: a few thousand samples train in minutes on
      2 cores; the GAN epoch is then chosen by the validation monitor (every epochs // 10).
    * Synthesis from an exponential moving average of G's weights (``g_ema`` 0.99, a horizon of ~100 generator steps,
      1/15 of the budget): at lr_g 1e-3 the raw generator's quality swings from one epoch to the next (a fashion-zsl
      slice: ZSL T1 0.51 / 0.89 / 0.77 / 0.98 at GAN epochs 25 / 30 / 35 / 40; with the average 0.94 / 0.94 / 0.84 /
      0.94), and a validation point is only worth selecting if its neighbours agree.
    * Features divided by their largest training value (``feature_norm: max``): raw 2048-d features let the critic
      separate real from fake far too easily (synthetic-apy ZSL T1 8 % -> 30 %).
    * The final classifier is searched on the validation classes at every monitored GAN epoch (``head_space``):
      ``syn_per_unseen`` n and 2n where n is the mean number of real training samples per seen class rounded to 50
      within [100, 1000] (so a synthetic class weighs about as much as a real one in the softmax); classifier lr
      1e-3 and 1e-2, batch 512. ``mode`` is replace (synthetic features for the seen classes too) for cycle-wgan:
      real seen features beside synthetic unseen ones teach the softmax "real means seen" (fashion-zsl fold 0: GZSL
      U 0.00-0.07 with merge, 0.08-0.40 with replace), and when merge was in the searched grid, easy validation
      classes picked it and it failed on test (fold 3: validation H 0.75, test H 0.13); replace only, 4 folds: H
      0.36 +- 0.07 (worst fold 0.25) against 0.31 +- 0.12 (worst 0.13). The variants with the classification loss
      (f-clswgan, cycle-clswgan) search merge and replace (8 heads): that loss pulls synthetic features onto the
      real classes, so merge keeps U (fashion-zsl f-clswgan: 0.37 +- 0.01 with merge searched, 0.36 +- 0.04 replace
      only) and wins where the generator does not reproduce seen features well (synthetic-cub: H 77.7 against 67.8
      replace only). Without the search (``--selection fixed``) the head is replace, n, lr 1e-3.
    * Classifier epochs: 25 (f-CLSWGAN), fewer when the largest head's rows (2n per class, all classes) would need more
      than ~500 optimizer steps (at least 5 epochs): every head is trained at every monitored epoch, so its cost must
      not grow with the class count (a 200-class set at n = 100: 6 epochs instead of 25).
    """
    cfg = CycleWGANConfig()
    if dataset is None:
        return cfg
    n = int(dataset.splits["trainval"].size)
    width = int(min(512, max(128, 2 ** math.ceil(math.log2(2 * max(dataset.feature_dim, dataset.embedding_dim))))))
    steps = max(1, n // cfg.batch_size)
    epochs = int(min(60, max(5, round(1500 / steps))))
    per_class = n / max(1, dataset.seen_classes.size)
    syn = int(min(1000, max(100, 50 * round(per_class / 50))))
    cls_steps_per_epoch = math.ceil(2 * syn * dataset.num_classes / 512)
    cls_epochs = int(min(25, max(5, round(CLS_STEP_BUDGET / cls_steps_per_epoch))))
    return dataclasses.replace(cfg, hidden_g=width, hidden_d=width, epochs=epochs, lr_g=1e-3, syn_per_unseen=syn,
                               mode="replace",
                               feature_norm="max",
                               regressor_epochs=min(cfg.regressor_epochs, max(5, round(1500 / steps))),
                               cls_epochs=cls_epochs, cls_batch=512, pre_cls_batch=512,
                               g_ema=0.99, mode_grid=("merge", "replace") if variant in CLS_VARIANTS else (),
                               syn_grid=(syn, 2 * syn),
                               cls_lr_grid=(1e-3, 1e-2))


def _snapshot(*modules: nn.Module) -> list[list[torch.Tensor]]:
    return [[p.detach().clone() for p in m.parameters()] for m in modules]


@torch.no_grad()
def _restore(*modules_and_state) -> None:
    *modules, state = modules_and_state
    for m, saved in zip(modules, state):
        for p, s in zip(m.parameters(), saved):
            p.copy_(s)
