"""CVC-ZSL's building blocks: the classifier generator, cosine scores, the generalized cross-entropy, and the
classifier over a fixed list of candidate classes that ``build_classifier`` returns."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zslkit.errors import ConfigError
from zslkit.methods.base import CandidateClassifier

EVAL_BATCH = 8192


def generalized_cross_entropy(logits: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    """Mean generalized cross-entropy (Lq loss, Zhang & Sabuncu 2018): ``(1 - p_y^q) / q``.

    Computed as ``-expm1(q * log p_y) / q`` from ``log_softmax``, which is exact for small q and tends to the
    cross-entropy ``-log p_y`` as q -> 0 (q == 0 returns the cross-entropy itself).
    """
    logp = F.log_softmax(logits, dim=1).gather(1, target.view(-1, 1)).squeeze(1)
    if q == 0:
        return -logp.mean()
    if q < 0:
        raise ConfigError(f"gce_q must be >= 0, got {q}")
    return (-torch.expm1(q * logp) / q).mean()


def cosine_scores(x_normed: torch.Tensor, weights: torch.Tensor, scale: torch.Tensor,
                  bias: torch.Tensor) -> torch.Tensor:
    """``scale * (x_hat . w_hat + bias)`` for L2-normalised samples ``x_normed`` against weight rows."""
    w = F.normalize(weights, p=2, dim=1, eps=1e-12)
    return scale * (x_normed @ w.T + bias)


class ClassifierGenerator(nn.Module):
    """g(a) = relu(relu(a W1 + b1) W2 + b2), plus the cosine classifier's scale and bias."""

    def __init__(self, embedding_dim: int, hidden_dim: int, feature_dim: int, *, init_std: float = 0.02,
                 scale_init: float = 10.0, bias_init: float = 0.0, seed: int | None = None):
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        # initialised on the CPU from a seeded generator: identical start on every device
        self.w1 = nn.Parameter(torch.randn(embedding_dim, hidden_dim, generator=gen) * init_std)
        self.b1 = nn.Parameter(torch.zeros(hidden_dim))
        self.w2 = nn.Parameter(torch.randn(hidden_dim, feature_dim, generator=gen) * init_std)
        self.b2 = nn.Parameter(torch.zeros(feature_dim))
        self.scale = nn.Parameter(torch.full((1,), float(scale_init)))
        self.bias = nn.Parameter(torch.full((1,), float(bias_init)))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(embedding_dim, hidden_dim, feature_dim)."""
        return int(self.w1.shape[0]), int(self.w1.shape[1]), int(self.w2.shape[1])

    @classmethod
    def from_state_dict(cls, state: dict) -> "ClassifierGenerator":
        """A generator shaped like ``state`` (w1: embedding x hidden, w2: hidden x feature) holding its values."""
        net = cls(int(state["w1"].shape[0]), int(state["w1"].shape[1]), int(state["w2"].shape[1]))
        net.load_state_dict(state)
        return net

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.addmm(self.b2, F.relu(torch.addmm(self.b1, emb, self.w1)), self.w2))

    def scores(self, x_normed: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return cosine_scores(x_normed, weights, self.scale, self.bias)

    @torch.no_grad()
    def batched_scores(self, x_normed: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """Scores of many samples against the classifiers generated from ``embeddings`` (in batches)."""
        w = self(embeddings)
        return torch.cat([self.scores(x_normed[i:i + EVAL_BATCH], w) for i in range(0, x_normed.shape[0], EVAL_BATCH)])


class CVCClassifier(CandidateClassifier):
    """Cosine scores against a fixed stack of (already normalised) candidate weight rows."""

    def __init__(self, weights_normed: torch.Tensor, scale: float, bias: float, device: torch.device):
        self.weights = weights_normed
        self.scale = float(scale)
        self.bias = float(bias)
        self.device = device

    @torch.no_grad()
    def decision_function(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.weights.shape[0]), dtype=np.float32)
        for i in range(0, X.shape[0], EVAL_BATCH):
            x = torch.as_tensor(np.ascontiguousarray(X[i:i + EVAL_BATCH]), dtype=torch.float32).to(self.device)
            x = F.normalize(x, p=2, dim=1, eps=1e-12)
            out[i:i + x.shape[0]] = (self.scale * (x @ self.weights.T + self.bias)).cpu().numpy()
        return out
