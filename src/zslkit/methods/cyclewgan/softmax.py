"""Supervised training on the device: the one mini-batch loop, and the softmax classifier trained with it.

``train_minibatches`` is the loop every supervised stage of the generative methods uses (cycle-WGAN's regressor
pretraining, the pretrained seen-class classifier of the f-CLSWGAN loss, the final GZSL/ZSL classifier): epochs
over a fresh random permutation drawn from an explicit ``torch.Generator``, one optimizer step per batch, the
inverse-time learning-rate decay advanced once per epoch. The data stay on the device, there is no per-sample
Python work, and the optimizer is a fused (or foreach) Adam.

Heads (``head``):

* ``linear``: log-softmax(W x + b), zero bias; W from torch's default uniform range (``init`` uniform) or
  N(0, 0.02) (``init`` normal: f-CLSWGAN's ``weights_init``, which its classifiers use);
* ``relu``: log-softmax(ReLU(W x + b)), W ~ truncated N(0, 0.01), b = 0.9999, weight decay on W only (the
  cycle-WGAN reference's ``fullyconnected.json``: its cross-entropy is taken on the ReLU output).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from zslkit.errors import TrainingDivergedError
from zslkit.methods._optim import make_adam, set_lr
from zslkit.methods.base import CandidateClassifier

HEADS = ("linear", "relu")
INITS = ("uniform", "normal")  # of the linear head


def inverse_time_lr(lr: float, decay: float, epoch: int) -> float:
    """TensorFlow's ``inverse_time_decay`` with decay_steps 1 on an epoch counter: lr / (1 + decay * epoch), where
    ``epoch`` counts the epochs already finished (0 during the first)."""
    return lr / (1.0 + decay * epoch)


def train_minibatches(opt: torch.optim.Optimizer, loss_of: Callable[[torch.Tensor], torch.Tensor], n: int, *,
                      epochs: int, batch_size: int, lr: float, lr_decay: float = 0.0,
                      generator: torch.Generator | None = None, device=None) -> torch.Tensor | None:
    """The supervised training loop: ``epochs`` passes over a fresh permutation of ``n`` rows (drawn from
    ``generator``) in batches of ``batch_size`` (the last may be smaller), one ``opt`` step on ``loss_of(idx)`` per
    batch. ``lr_decay`` > 0: lr / (1 + lr_decay * epoch) during epoch ``epoch`` (0-based). Returns the last batch's
    loss (detached; None when nothing ran)."""
    batch_size = max(1, min(int(batch_size), n))
    last = None
    for epoch in range(int(epochs)):
        if lr_decay:
            set_lr(opt, inverse_time_lr(lr, lr_decay, epoch))
        perm = torch.randperm(n, generator=generator, device=device)
        for start in range(0, n, batch_size):
            loss = loss_of(perm[start:start + batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last = loss.detach()
    return last


def keep_fraction(n: int, fraction: float, generator: torch.Generator | None, device) -> torch.Tensor | None:
    """Indices of a random ``fraction`` of ``n`` rows (the reference trains on 90 % and monitors on the rest);
    None when ``fraction`` >= 1."""
    if fraction >= 1.0:
        return None
    k = max(1, min(n, int(round(fraction * n))))
    return torch.randperm(n, generator=generator, device=device)[:k]


def logits(layer: nn.Linear, x: torch.Tensor, head: str) -> torch.Tensor:
    out = layer(x)
    return torch.relu(out) if head == "relu" else out


def _init(layer: nn.Linear, head: str, generator: torch.Generator | None, init: str = "uniform") -> None:
    d = layer.weight.shape[1]
    dev = layer.weight.device
    with torch.no_grad():
        if head == "relu":  # truncated normal (redraw beyond 2 std, as TensorFlow) with std 0.01, bias 0.9999
            w = torch.randn(layer.weight.shape, generator=generator, device=dev)
            bad = w.abs() > 2
            while bool(bad.any()):
                w[bad] = torch.randn(int(bad.sum()), generator=generator, device=dev)
                bad = w.abs() > 2
            layer.weight.copy_(w * 0.01)
            layer.bias.fill_(0.9999)
        elif init == "normal":  # f-CLSWGAN's weights_init: N(0, 0.02), zero bias
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator, device=dev) * 0.02)
            layer.bias.zero_()
        else:  # torch's default range, drawn from the injected generator
            w = torch.rand(layer.weight.shape, generator=generator, device=dev) * 2 - 1
            layer.weight.copy_(w / np.sqrt(d))
            layer.bias.zero_()


def train_softmax(X: torch.Tensor, y: torch.Tensor, num_classes: int, *, epochs: int, lr: float, batch_size: int,
                  betas=(0.5, 0.999), weight_decay: float = 0.0, head: str = "linear", lr_decay: float = 0.0,
                  fraction: float = 1.0, generator: torch.Generator | None = None, init: str = "uniform") -> nn.Linear:
    """Fit a softmax classifier ``X -> num_classes`` with cross-entropy; returns the linear layer.

    ``X`` (N x D float) and ``y`` (N, int64 in [0, num_classes)) must already be on the target device. Each epoch
    visits a fresh permutation in batches of ``batch_size`` (the last batch may be smaller). ``lr_decay``:
    inverse-time decay lr / (1 + lr_decay * epoch), advanced once per epoch. ``fraction`` < 1 trains on that random
    share of the rows only. ``init`` (linear head): ``uniform`` (torch's default range) or ``normal`` (N(0, 0.02)).
    """
    device = X.device
    keep = keep_fraction(X.shape[0], fraction, generator, device)
    if keep is not None:
        X, y = X[keep], y[keep]
    n, d = X.shape
    layer = nn.Linear(d, num_classes).to(device)
    if generator is not None or init != "uniform":  # deterministic initialisation from the injected generator
        _init(layer, head, generator, init)
    wd_bias = 0.0 if head == "relu" else weight_decay  # the reference decays the weights only
    opt = make_adam([{"params": [layer.weight]}, {"params": [layer.bias], "weight_decay": wd_bias}], lr,
                    betas=betas, weight_decay=weight_decay)
    train_minibatches(opt, lambda idx: nn.functional.cross_entropy(logits(layer, X[idx], head), y[idx]), n,
                      epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay, generator=generator,
                      device=device)
    layer.requires_grad_(False)
    if not bool(torch.isfinite(layer.weight).all() and torch.isfinite(layer.bias).all()):
        raise TrainingDivergedError(f"softmax classifier training diverged (non-finite weights after {epochs} "
                                    f"epochs at lr {lr:g}); lower its learning rate")
    return layer


class SoftmaxClassifier(CandidateClassifier):
    """Log-softmax scores of a trained layer over the K candidates (column j = candidate j).

    ``transform`` (optional) maps raw features to the space the layer was trained in (the model's feature scaler).
    """

    def __init__(self, layer: nn.Linear, device: torch.device, batch: int = 8192, head: str = "linear",
                 transform=None):
        self.layer = layer
        self.head = head
        self.transform = transform
        self.device = device
        self.batch = batch

    @torch.no_grad()
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, X.shape[0], self.batch):
            x = torch.as_tensor(X[start:start + self.batch], dtype=torch.float32, device=self.device)
            if self.transform is not None:
                x = self.transform(x)
            out.append(torch.log_softmax(logits(self.layer, x, self.head), dim=1).cpu())
        return torch.cat(out).numpy().astype(np.float32, copy=False)
