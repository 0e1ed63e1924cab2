"""Episode sampling with tensor index arithmetic (no per-sample Python loops).

An episode is ``ways`` distinct classes and, for each, ``shots`` distinct samples of that class. The
sampler keeps a class-sorted index table on the device (CSR layout: ``order`` holds sample indices
grouped by class, ``offsets[c]`` / ``counts[c]`` locate class c's block) and draws many episodes at once
from an injected ``torch.Generator``:

* classes: the ``ways`` smallest of ``num_classes`` uniform random keys per episode (a uniformly random
  ordered subset, no ``randperm`` per episode);
* shots: Robert Floyd's algorithm for a uniform random ``shots``-subset of ``0..count-1``, vectorised over
  all (episode, class) rows at once; the Python loop runs over the ``shots`` positions only, so the cost is
  O(episodes * ways * shots^2) and independent of the class sizes.

Rows whose class has fewer than ``shots`` samples can be drawn with replacement (``allow_repeats``), which
the transductive pseudo-label pool needs; the labelled sampler refuses them (``EpisodeError``).
"""

from __future__ import annotations

import torch

from zslkit.errors import ConfigError


class EpisodeError(ConfigError):
    """An episode asks for more classes or samples than the data has."""


def distinct_positions(counts: torch.Tensor, shots: int, generator: torch.Generator,
                       allow_repeats: bool = False) -> torch.Tensor:
    """For each entry n of ``counts`` (any shape), ``shots`` distinct integers in [0, n) (uniform subset).

    Returns ``counts.shape + (shots,)`` int64. With ``allow_repeats``, rows with ``n < shots`` are drawn
    with replacement instead (``n`` must still be >= 1).
    """
    counts = counts.to(torch.int64)
    if shots < 1:
        raise EpisodeError(f"shots must be >= 1, got {shots}")
    small = counts < shots
    if bool(small.any()) and not allow_repeats:
        raise EpisodeError(f"cannot draw {shots} distinct samples from a class with {int(counts.min())}")
    dev = counts.device
    u = torch.rand(counts.shape + (shots,), generator=generator, device=dev)
    n = torch.clamp(counts, min=shots)  # Floyd needs n >= shots; small rows are replaced below
    out = torch.empty(counts.shape + (shots,), dtype=torch.int64, device=dev)
    for i in range(shots):  # loop over shot positions, never over samples
        j = n - shots + i  # candidate upper bound (inclusive)
        t = torch.floor(u[..., i] * (j + 1).to(u.dtype)).to(torch.int64)
        t = torch.minimum(t, j)  # guard the u -> 1 rounding edge
        if i:
            taken = (out[..., :i] == t.unsqueeze(-1)).any(-1)
            t = torch.where(taken, j, t)
        out[..., i] = t
    if allow_repeats and bool(small.any()):
        safe = torch.clamp(counts, min=1).unsqueeze(-1)
        rep = torch.minimum(torch.floor(u * safe.to(u.dtype)).to(torch.int64), safe - 1)
        out = torch.where(small.unsqueeze(-1), rep, out)
    return out


class EpisodeSampler:
    """Draws N-way K-shot episodes of sample indices from integer labels (kept on their device).

    ``labels``: int64 tensor of length N with values in [0, num_classes). Classes with no samples are
    never drawn. ``sample(n, ways, shots, gen)`` returns ``(indices, classes)``: ``indices`` is
    ``n x (ways*shots)`` (class-major: the first ``shots`` entries belong to ``classes[:, 0]``), ``classes``
    is ``n x ways`` (the label values). Episode-local labels are ``arange(ways).repeat_interleave(shots)``.
    """

    def __init__(self, labels: torch.Tensor, num_classes: int | None = None):
        labels = labels.to(torch.int64)
        if labels.ndim != 1 or labels.numel() == 0:
            raise EpisodeError("the episode sampler needs a non-empty 1-D label tensor")
        self.device = labels.device
        self.num_classes = int(num_classes if num_classes is not None else int(labels.max()) + 1)
        self.counts = torch.bincount(labels, minlength=self.num_classes)
        self.order = torch.argsort(labels, stable=True)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts
        self.classes = torch.nonzero(self.counts > 0).flatten()  # drawable classes
        self.num_available = int(self.classes.numel())
        self.min_count = int(self.counts[self.classes].min())

    def check(self, ways: int, shots: int) -> None:
        """Raise EpisodeError when (ways, shots) episodes cannot be drawn from this data."""
        if ways < 1 or shots < 1:
            raise EpisodeError(f"ways and shots must be >= 1 (got ways={ways}, shots={shots})")
        if ways > self.num_available:
            raise EpisodeError(f"an episode of {ways} ways needs {ways} distinct classes, but the training data has "
                               f"only {self.num_available}; lower ways (or set episode_overflow='clip')")
        if shots > self.min_count:
            raise EpisodeError(f"an episode of {shots} shots needs {shots} distinct samples per class, but the "
                               f"smallest training class has {self.min_count}; lower shots (or set "
                               f"episode_overflow='clip')")

    def sample_classes(self, n: int, ways: int, generator: torch.Generator) -> torch.Tensor:
        keys = torch.rand(n, self.num_available, generator=generator, device=self.device)
        pos = torch.argsort(keys, dim=1)[:, :ways]
        return self.classes[pos]

    def sample_members(self, classes: torch.Tensor, shots: int, generator: torch.Generator,
                       allow_repeats: bool = False) -> torch.Tensor:
        """``shots`` distinct sample indices of each class in ``classes`` (any shape) -> shape + (shots,)."""
        pos = distinct_positions(self.counts[classes], shots, generator, allow_repeats)
        return self.order[self.offsets[classes].unsqueeze(-1) + pos]

    def sample(self, n: int, ways: int, shots: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        self.check(ways, shots)
        classes = self.sample_classes(n, ways, generator)
        idx = self.sample_members(classes, shots, generator)
        return idx.reshape(n, ways * shots), classes


def local_labels(ways: int, shots: int, device) -> torch.Tensor:
    """Episode-local labels of the class-major index layout: 0,0,..,1,1,.. (``shots`` each)."""
    return torch.arange(ways, device=device).repeat_interleave(shots)
