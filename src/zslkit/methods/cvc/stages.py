"""The episodes of CVC-ZSL's other two training stages (the inductive one is :mod:`.graph_step`): fine-tuning
the "learned" GZSL seen rows, and transductive self-training on seen and pseudo-labelled unseen samples."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from zslkit.methods.cvc.episodes import EpisodeSampler
from zslkit.methods._optim import make_adam
from zslkit.methods.cvc.episode_loop import each_episode, run_episodes
from zslkit.methods.cvc.networks import ClassifierGenerator, cosine_scores, generalized_cross_entropy


def finetune_seen_rows(net: ClassifierGenerator, Xn: torch.Tensor, yt: torch.Tensor, E: torch.Tensor,
                       draw: Callable[[int], tuple] | None, episodes: int, lr: float, *, tf32: bool = False,
                       device: torch.device | None = None) -> torch.Tensor:
    """"learned" GZSL seen rows (inductive): free rows initialised from g(E) and fine-tuned for ``episodes``
    episodes (``draw(n)`` -> ``(indices,)``) with cross-entropy over all seen classes, by Adam at ``lr``;
    generator, scale and bias frozen, so seen and unseen scores stay on one scale. Returns the rows."""
    with torch.no_grad():
        rows = net(E).detach().clone()
    rows.requires_grad_(True)
    if episodes > 0:
        opt = make_adam([rows], lr)
        scale, bias = net.scale.detach(), net.bias.detach()

        def step(i: torch.Tensor) -> None:
            loss = F.cross_entropy(cosine_scores(Xn.index_select(0, i), rows, scale, bias), yt.index_select(0, i))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        run_episodes(episodes, draw, each_episode(step), tf32=tf32, device=device)
    return rows.detach()


def pseudo_classes_per_episode(classes: int, ways: int, shots: int, pseudo_shots: int, share: float) -> int:
    """How many pseudo-labelled classes an episode holds: all of them, or (``share`` > 0) at most as many as keep
    the pseudo-labelled samples within ``share`` of the episode (at least one class)."""
    if share <= 0:
        return classes
    return max(1, min(classes, int(share / (1 - share) * ways * shots) // pseudo_shots))


def mixed_episodes(sampler: EpisodeSampler, ways: int, shots: int, pool: EpisodeSampler, pool_index: torch.Tensor,
                   classes: torch.Tensor, pseudo_shots: int, gen: torch.Generator, *, per_episode: int | None = None,
                   offset: int = 0) -> Callable[[int], tuple]:
    """``draw(n)`` for :func:`run_episodes`: per episode, ``ways`` x ``shots`` indices of labelled seen samples and
    ``pseudo_shots`` indices (into the unlabeled samples) of every pseudo-labelled class in ``classes`` (drawn with
    repeats where a class has fewer), class-major. With ``per_episode`` below the class count, each episode takes
    that many of the classes at random and ``draw`` also returns the targets (``offset`` + class) of its samples."""
    P = int(classes.numel())

    def draw(n: int) -> tuple[torch.Tensor, ...]:
        idx, _ = sampler.sample(n, ways, shots, gen)
        if per_episode is None or per_episode >= P:
            members = pool.sample_members(classes.expand(n, P), pseudo_shots, gen, allow_repeats=True)
            return idx, pool_index[members].reshape(n, P * pseudo_shots)
        chosen = classes[torch.rand(n, P, generator=gen, device=classes.device).argsort(1)[:, :per_episode]]
        members = pool.sample_members(chosen, pseudo_shots, gen, allow_repeats=True)
        targets = (offset + chosen).repeat_interleave(pseudo_shots, dim=1)
        return idx, pool_index[members].reshape(n, per_episode * pseudo_shots), targets

    return draw


class TransductiveStep:
    """One self-training episode: logits over all classes (free rows for the seen classes and for unseen classes
    without pseudo labels, generated rows for those with), cross-entropy on the labelled seen samples and
    generalized cross-entropy (exponent ``q``) on the pseudo-labelled ones, weighted by their counts; then
    optional gradient clipping and the optimizer step. ``loss_sum`` adds up the epoch's losses."""

    def __init__(self, net: ClassifierGenerator, free: torch.nn.Parameter, Xn: torch.Tensor, yt: torch.Tensor,
                 U: torch.Tensor, EU: torch.Tensor, optimizer, clip: float, q: float):
        self.net, self.free, self.Xn, self.yt, self.U, self.EU = net, free, Xn, yt, U, EU
        self.opt, self.clip, self.q = optimizer, float(clip), q
        self.params = [*net.parameters(), free]
        self.S = free.shape[0] - EU.shape[0]
        self.loss_sum = torch.zeros((), device=Xn.device)
        self.present = self.pseudo_targets = None

    def start_epoch(self, present: torch.Tensor, pseudo_targets: torch.Tensor) -> None:
        """The epoch's pseudo-labelled classes (mask over the unseen classes) and the targets (indices over all
        classes) of an episode's pseudo-labelled samples; the loss sum starts at zero."""
        self.present, self.pseudo_targets = present, pseudo_targets
        self.loss_sum.zero_()

    def __call__(self, i: torch.Tensor, ui: torch.Tensor, targets: torch.Tensor | None = None) -> None:
        net, free, S = self.net, self.free, self.S
        x = torch.cat([self.Xn.index_select(0, i), self.U.index_select(0, ui)])
        gen_u = net(self.EU)
        rows_u = torch.where(self.present.unsqueeze(1), gen_u, free[S:])
        logits = net.scores(x, torch.cat([free[:S], rows_u]))
        n1, n2 = i.numel(), ui.numel()
        loss1 = F.cross_entropy(logits[:n1], self.yt.index_select(0, i))
        loss2 = generalized_cross_entropy(logits[n1:], self.pseudo_targets if targets is None else targets, self.q)
        loss = (loss1 * n1 + loss2 * n2) / (n1 + n2)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        self.opt.step()
        self.loss_sum.add_(loss.detach())
