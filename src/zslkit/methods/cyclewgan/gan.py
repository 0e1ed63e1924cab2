"""cycle-WGAN's GAN stage: the epoch loop of the conditional WGAN-GP.

Each epoch: ``n_critic`` critic steps per generator step on batches of fresh permutations, the generator step with
the cycle (regression) and/or classification terms of the variant, the weight average of G (``g_ema``), then the
one shape of epoch end (``EpochReporter``: finite check, history row with ``stage: "gan"``, ``loss`` = the mean
critic loss, the other losses as extras, progress bar, monitor and checkpoint hook). At the monitored epochs the row
also holds the generator diagnostics ``seen_fidelity`` and ``spread_ratio`` (diagnostics.py). An exploding critic loss
(``max_critic_loss``) or a non-finite loss restores G and D to the last good epoch before the error is raised.
At the ``savepoints`` epochs a copy of the synthesising generator is kept in ``model.snapshots_``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from zslkit.methods._epochs import EpochReporter
from zslkit.methods._optim import set_lr
from zslkit.methods.cyclewgan.softmax import inverse_time_lr, logits
from zslkit.methods.base import cpu_copy
from zslkit.methods.cyclewgan.networks import gradient_penalty


def epoch_batches(n: int, batch_size: int, n_critic: int, gen: torch.Generator, device,
                  draw: str = "permutation") -> torch.Tensor:
    """(steps, n_critic, B) sample indices of one epoch. ``permutation``: floor(n / B) steps, consecutive random
    permutations cut in batches; ``independent``: ceil(n / B) steps, every batch the first B of its own permutation
    (f-CLSWGAN's ``next_batch``: samples repeat across batches, some are not drawn in an epoch)."""
    bs = min(batch_size, n)
    if draw == "independent":
        steps = -(-n // bs)
        return torch.stack([torch.randperm(n, generator=gen, device=device)[:bs]
                            for _ in range(steps * n_critic)]).view(steps, n_critic, bs)
    steps = max(1, n // bs)
    need = steps * n_critic * bs
    perms = [torch.randperm(n, generator=gen, device=device) for _ in range(-(-need // n))]
    return torch.cat(perms)[:need].view(steps, n_critic, bs)


@torch.no_grad()
def update_ema(model) -> None:
    """G_ema <- d G_ema + (1 - d) G after a generator step, d = min(g_ema, (1 + t) / (10 + t)) (the warm-up of
    TensorFlow's ExponentialMovingAverage with num_updates, so early averages are not dominated by the init)."""
    model.ema_steps_ += 1
    t = model.ema_steps_
    d = min(model.config_.g_ema, (1.0 + t) / (10.0 + t))
    torch._foreach_lerp_(list(model.G_ema_.parameters()), list(model.G_.parameters()), 1.0 - d)


def evaluation_point(cfg, epoch: int) -> bool:
    """Whether the validation monitor scores GAN epoch ``epoch``: every ``eval_every`` epochs (0: epochs // 10),
    after the last and at every savepoint; with ``checkpoint_metric``, at the savepoints only (validation selection
    then chooses among them)."""
    if cfg.checkpoint_metric:
        return epoch in cfg.savepoints
    every = cfg.eval_every or max(1, cfg.epochs // 10)
    return epoch % every == 0 or epoch == cfg.epochs or epoch in cfg.savepoints


def train_gan(model, X: torch.Tensor, y: torch.Tensor, E: torch.Tensor, context) -> None:
    """Train ``model``'s G and D from epoch ``model.epochs_trained_ + 1`` to ``config_.epochs`` on features ``X``
    (scaled, on the device), labels ``y`` (rows of ``E``) and class embeddings ``E``."""
    cfg, dev = model.config_, model.device_
    G, D, R, C = model.G_, model.D_, model.R_, model.C_
    opt_g, opt_d, gen = model.opt_g_, model.opt_d_, model.noise_gen_
    d_params = list(D.parameters())
    nz = model._noise_dim()
    use_cycle, use_cls = R is not None and model.uses_cycle, C is not None and model.uses_cls
    critic = lambda x, p: D(x, a_proj=p)  # noqa: E731
    zero = torch.zeros((), device=dev)
    nets = (G, D) if model.G_ema_ is None else (G, D, model.G_ema_)
    good = _snapshot(*nets)
    alpha_cols = X.shape[1] if cfg.gp_alpha == "element" else 1
    reporter = EpochReporter(model, total=cfg.epochs, unit="epoch", initial=model.epochs_trained_,
                             desc=f"{cfg.variant} GAN")
    try:
        for epoch in range(model.epochs_trained_ + 1, cfg.epochs + 1):
            lr_g = inverse_time_lr(cfg.lr_g, cfg.lr_decay_g, epoch - 1)
            set_lr(opt_g, lr_g)
            set_lr(opt_d, inverse_time_lr(cfg.lr_d, cfg.lr_decay_d, epoch - 1))
            batches = epoch_batches(X.shape[0], cfg.batch_size, cfg.n_critic, gen, dev, cfg.gan_batches)
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
                if model.G_ema_ is not None:
                    update_ema(model)
                for p in d_params:
                    p.requires_grad_(True)
                sums += torch.stack([loss_d.detach(), w_est.detach(), gp.detach(), cyc.detach(), cls.detach(),
                                     loss_g.detach()])
            m = (sums / steps).tolist()  # one device sync per epoch
            _end_epoch(model, reporter, context, epoch, m, lr_g, nets, good)
            good = _snapshot(*nets)
    finally:
        reporter.close()


def _end_epoch(model, reporter: EpochReporter, context, epoch: int, m: list[float], lr_g: float, nets, good) -> None:
    """Divergence checks (restoring the last good state), then the epoch end: history row, bar, monitor, hook."""
    cfg = model.config_
    prev = model.epochs_trained_
    hint = (f"the model keeps the state after the last good epoch ({prev}); try lower learning rates "
            f"(lr_d={cfg.lr_d:g}, lr_g={cfg.lr_g:g}) or a larger gp_lambda")

    def on_diverge(what: str = "") -> str:
        _restore(*nets, good)
        model.epochs_trained_ = prev
        model.fitted_ = prev > 0
        model.head_.clear()
        model.snapshots_.pop(epoch, None)
        return hint

    if abs(m[0]) > cfg.max_critic_loss:
        on_diverge()
        raise reporter.diverged("gan", epoch, f"|critic loss| {abs(m[0]):.3g} > max_critic_loss "
                                f"{cfg.max_critic_loss:.3g} (W {m[1]:.4g}, gp {m[2]:.4g})", hint)
    model.epochs_trained_ = epoch  # the monitor and the checkpoint hook see the new generator
    model.generator_epoch_ = epoch
    model.head_.clear()
    if epoch in cfg.savepoints:  # kept before the checkpoint hook, so that a resumed fit has it too
        model.snapshots_[epoch] = cpu_copy(model._synth_net().state_dict())
    evaluate = evaluation_point(cfg, epoch)
    # generator diagnostics at the monitored epochs (own seeded noise: the GAN's random stream is untouched)
    diag = {k: v for k, v in model._diagnostics().items() if k != "seen_fidelity_chance"} if evaluate else {}
    if diag:  # seen-class fidelity and spread ratio beside the losses in the progress bar
        reporter.shown = {"fidelity": f"{diag['seen_fidelity']:.3f}",
                          **({"spread": f"{diag['spread_ratio']:.2f}"} if "spread_ratio" in diag else {})}
    reporter.end_epoch(context, stage="gan", epoch=epoch, loss=m[0], lr=lr_g,
                       evaluate=evaluate, on_diverge=on_diverge, **diag,
                       watch={"wasserstein": m[1], "gp": m[2], "g_loss": m[5]}, cycle=m[3], cls=m[4],
                       lr_d=inverse_time_lr(cfg.lr_d, cfg.lr_decay_d, epoch - 1))


def _snapshot(*modules: nn.Module) -> list[list[torch.Tensor]]:
    return [[p.detach().clone() for p in m.parameters()] for m in modules]


@torch.no_grad()
def _restore(*modules_and_state) -> None:
    *modules, state = modules_and_state
    for m, saved in zip(modules, state):
        for p, s in zip(m.parameters(), saved):
            p.copy_(s)
