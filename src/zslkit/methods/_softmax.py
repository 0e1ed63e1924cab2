"""The shared final softmax classifier (linear layer + log-softmax), trained on the device with batched tensors.

Used by the generative methods (cycle-WGAN / f-CLSWGAN) for the final GZSL/ZSL classifier and for the
pretrained seen-class classifier of the f-CLSWGAN loss. Training is a plain mini-batch loop over a random
permutation drawn from an explicit ``torch.Generator``: the data stay on the device, there is no per-sample
Python work, and the optimizer is a fused (or foreach) Adam.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from zslkit.errors import TrainingDivergedError
from zslkit.methods._optim import make_adam
from zslkit.methods.base import CandidateClassifier


def train_softmax(X: torch.Tensor, y: torch.Tensor, num_classes: int, *, epochs: int, lr: float, batch_size: int,
                  betas=(0.5, 0.999), weight_decay: float = 0.0,
                  generator: torch.Generator | None = None) -> nn.Linear:
    """Fit a linear softmax classifier ``X -> num_classes`` with cross-entropy; returns the layer.

    ``X`` (N x D float) and ``y`` (N, int64 in [0, num_classes)) must already be on the target device.
    Each epoch visits a fresh permutation in batches of ``batch_size`` (the last batch may be smaller).
    """
    device = X.device
    n, d = X.shape
    layer = nn.Linear(d, num_classes).to(device)
    if generator is not None:  # deterministic initialisation from the injected generator
        with torch.no_grad():
            bound = 1.0 / np.sqrt(d)  # torch's default range, drawn from the injected generator
            w = torch.rand(layer.weight.shape, generator=generator, device=device) * 2 - 1
            layer.weight.copy_(w * bound)
            layer.bias.zero_()
    opt = make_adam(layer.parameters(), lr, betas=betas, weight_decay=weight_decay)
    batch_size = max(1, min(int(batch_size), n))
    for _ in range(int(epochs)):
        perm = torch.randperm(n, generator=generator, device=device)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            loss = nn.functional.cross_entropy(layer(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    layer.requires_grad_(False)
    if not bool(torch.isfinite(layer.weight).all() and torch.isfinite(layer.bias).all()):
        raise TrainingDivergedError(f"softmax classifier training diverged (non-finite weights after {epochs} "
                                    f"epochs at lr {lr:g}); lower its learning rate")
    return layer


class SoftmaxClassifier(CandidateClassifier):
    """Log-softmax scores of a trained linear layer over the K candidates (column j = candidate j)."""

    def __init__(self, layer: nn.Linear, device: torch.device, batch: int = 8192, input_scale: float = 1.0):
        self.layer = layer
        self.input_scale = float(input_scale)  # inputs are multiplied by this before the layer
        self.device = device
        self.batch = batch

    @torch.no_grad()
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, X.shape[0], self.batch):
            x = torch.as_tensor(X[start:start + self.batch], dtype=torch.float32, device=self.device)
            if self.input_scale != 1.0:
                x = x * self.input_scale
            out.append(torch.log_softmax(self.layer(x), dim=1).cpu())
        return torch.cat(out).numpy().astype(np.float32, copy=False)
