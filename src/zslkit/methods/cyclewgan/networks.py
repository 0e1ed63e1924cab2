"""The GAN parts of cycle-WGAN / f-CLSWGAN: networks, initialisations, gradient penalty and the feature scaler.

* generator  G([a; z]) -> Linear(hidden) -> LeakyReLU(0.2) -> Linear(feature_dim) -> ReLU, z ~ N(0, I);
* critic     D([x; a]) -> Linear(hidden) -> LeakyReLU(0.2) -> Linear(1); the first layer is stored as two blocks,
  ``W_x x + W_a a + b`` (the same function as one Linear on the concatenation), so that a critic step computes
  ``W_a a`` once for the real, fake and interpolated batches.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

INITS = ("normal", "xavier")  # f-CLSWGAN: N(0, 0.02); cycle-WGAN (TensorFlow): Glorot uniform
GP_ALPHAS = ("sample", "element")  # one interpolation weight per sample (f-CLSWGAN) or per element (cycle-WGAN)
FEATURE_NORMS = ("none", "max", "minmax")


def init_linear(layer: nn.Linear, gen: torch.Generator, how: str = "normal", fan_in: int | None = None) -> None:
    """Zero bias and weights drawn from ``gen`` (CPU): ``normal`` N(0, 0.02); ``xavier`` U(+-sqrt(6 / (fan_in +
    fan_out))). ``fan_in`` overrides the layer's own (a block of a larger layer, e.g. the critic's split input)."""
    out_f, in_f = layer.weight.shape
    with torch.no_grad():
        if how == "xavier":
            bound = math.sqrt(6.0 / ((fan_in or in_f) + out_f))
            layer.weight.copy_((torch.rand(layer.weight.shape, generator=gen) * 2 - 1) * bound)
        else:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 0.02)
        if layer.bias is not None:
            layer.bias.zero_()


class Generator(nn.Module):
    """G([a; z]) -> hidden LeakyReLU -> feature_dim ReLU."""

    def __init__(self, emb_dim: int, noise_dim: int, hidden: int, feat_dim: int, slope: float = 0.2):
        super().__init__()
        self.fc1 = nn.Linear(emb_dim + noise_dim, hidden)
        self.fc2 = nn.Linear(hidden, feat_dim)
        self.slope = slope

    def forward(self, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.fc1(torch.cat([a, z], dim=1)), self.slope)
        return F.relu(self.fc2(h))

    def init(self, gen: torch.Generator, how: str) -> None:
        init_linear(self.fc1, gen, how)
        init_linear(self.fc2, gen, how)


class Critic(nn.Module):
    """D([x; a]) -> hidden LeakyReLU -> 1, with the first layer split as W_x x + W_a a + b."""

    def __init__(self, feat_dim: int, emb_dim: int, hidden: int, slope: float = 0.2):
        super().__init__()
        self.fc_x = nn.Linear(feat_dim, hidden)
        self.fc_a = nn.Linear(emb_dim, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, 1)
        self.slope = slope

    def project(self, a: torch.Tensor) -> torch.Tensor:
        return self.fc_a(a)

    def forward(self, x: torch.Tensor, a: torch.Tensor | None = None, *, a_proj: torch.Tensor | None = None):
        if a_proj is None:
            a_proj = self.fc_a(a)
        return self.fc2(F.leaky_relu(self.fc_x(x) + a_proj, self.slope))

    def init(self, gen: torch.Generator, how: str) -> None:
        joint = self.fc_x.in_features + self.fc_a.in_features  # the reference's one layer on [x; a]
        init_linear(self.fc_x, gen, how, fan_in=joint)
        init_linear(self.fc_a, gen, how, fan_in=joint)
        init_linear(self.fc2, gen, how)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, cond, *, lam: float = 10.0,
                     alpha: torch.Tensor | None = None, per_element: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP term lam * mean_i (||grad_x D(x^_i, cond_i)||_2 - 1)^2 on x^ = alpha x + (1 - alpha) x~.

    ``critic(x, cond)`` is any callable. ``alpha`` is drawn U(0, 1) from ``generator`` when not given: N x 1 (one
    weight per sample, f-CLSWGAN) or, with ``per_element``, N x D (one per element, as the cycle-WGAN code's
    ``random_uniform(shape(fake))``). The graph is kept (create_graph), so the result back-propagates into the critic.
    """
    if alpha is None:
        shape = real.shape if per_element else (real.shape[0], 1)
        alpha = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    interp = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    out = critic(interp, cond)
    (grad,) = torch.autograd.grad(out.sum(), interp, create_graph=True)
    return lam * ((grad.norm(2, dim=1) - 1.0) ** 2).mean()


class FeatureScaler:
    """Features are modelled as (x - shift) * inv_scale and returned as y / inv_scale + shift.

    ``none``: identity; ``max``: divided by the largest training value (one number); ``minmax``: each dimension mapped
    to [0, 1] on the training data (f-CLSWGAN's MinMaxScaler; constant dimensions are only shifted).
    """

    def __init__(self, kind: str = "none", shift=None, inv_scale=None):
        self.kind = kind
        self.shift = shift  # None or a (D,) tensor
        self.inv_scale = inv_scale  # None, a float or a (D,) tensor

    @classmethod
    def fit(cls, kind: str, X: torch.Tensor) -> "FeatureScaler":
        if kind == "max":
            top = float(X.max())
            return cls(kind, None, 1.0 / top if top > 0 else 1.0)
        if kind == "minmax":
            lo, hi = X.min(0).values, X.max(0).values
            span = hi - lo
            return cls(kind, lo, torch.where(span > 0, 1.0 / span.clamp_min(1e-12), torch.ones_like(span)))
        return cls("none")

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        if self.shift is not None:
            X = X - self.shift.to(X.device)
        if self.inv_scale is None:
            return X
        return X * (self.inv_scale.to(X.device) if isinstance(self.inv_scale, torch.Tensor) else self.inv_scale)

    def inverse(self, Y: torch.Tensor) -> torch.Tensor:
        if self.inv_scale is not None:
            Y = Y / (self.inv_scale.to(Y.device) if isinstance(self.inv_scale, torch.Tensor) else self.inv_scale)
        return Y if self.shift is None else Y + self.shift.to(Y.device)

    def state(self) -> dict:
        cpu = lambda t: t.detach().cpu().clone() if isinstance(t, torch.Tensor) else t  # noqa: E731
        return {"kind": self.kind, "shift": cpu(self.shift), "inv_scale": cpu(self.inv_scale)}

    @classmethod
    def from_state(cls, state: dict | None, legacy_scale: float = 1.0) -> "FeatureScaler":
        """From ``state()``; checkpoints before the scaler stored one number (``feature_scale``) instead."""
        if state is None:
            return cls("max", None, 1.0 / legacy_scale) if legacy_scale != 1.0 else cls("none")
        return cls(state["kind"], state["shift"], state["inv_scale"])
