"""The one episode loop of CVC-ZSL's three training stages (inductive, fine-tuning of the learned seen rows,
transductive self-training), with what every stage shares: the episode shape the data allows, the StepLR
schedule, and the TF32 switch around training steps.

An epoch draws its episodes ``SAMPLE_CHUNK`` at a time from the stage's samplers (``draw(n)`` returns tensors
with ``n`` rows: one episode each) and trains on each chunk in order (``train(*chunk)``); episodes are drawn
and consumed in one fixed order, so a seed fixes the whole run.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable

import torch

from zslkit.methods.cvc.episodes import EpisodeSampler

log = logging.getLogger("zslkit.methods.cvc")

SAMPLE_CHUNK = 256  # episodes drawn per sampler call (bounds the index tables' memory)


def run_episodes(total: int, draw: Callable[[int], tuple], train: Callable[..., None], *, tf32: bool = False,
                 device: torch.device | None = None) -> None:
    """Train on ``total`` episodes: ``draw(n)`` at most ``SAMPLE_CHUNK`` of them, ``train(*chunk)`` (inside
    :func:`tf32_matmuls`), until all are done."""
    done = 0
    while done < total:
        n = min(SAMPLE_CHUNK, total - done)
        chunk = draw(n)
        with tf32_matmuls(tf32, device):
            train(*chunk)
        done += n


def each_episode(step: Callable[..., None]) -> Callable[..., None]:
    """A chunk trainer for :func:`run_episodes` that calls ``step`` with row e of every chunk tensor, in order."""
    def train(*chunk: torch.Tensor) -> None:
        for e in range(chunk[0].shape[0]):
            step(*(t[e] for t in chunk))

    return train


def step_lr(base: float, gamma: float, step_size: int, epoch: int) -> float:
    """StepLR as a pure function of the (0-based) epoch: the schedule never depends on the total epochs."""
    return base * gamma ** (epoch // max(1, step_size))


def episode_shape(sampler: EpisodeSampler, ways: int, shots: int, *, overflow: str, what: str,
                  warned: set) -> tuple[int, int]:
    """(ways, shots) that the data allows: ``EpisodeError`` (a ConfigError), or with ``overflow == "clip"``
    clipped with a warning (once per ``what`` and shape, remembered in ``warned``)."""
    if overflow == "clip":
        new_ways, new_shots = min(ways, sampler.num_available), min(shots, sampler.min_count)
        if (new_ways, new_shots) != (ways, shots) and (what, ways, shots) not in warned:
            warned.add((what, ways, shots))
            log.warning("%s episodes of %d ways x %d shots do not fit the training data (%d classes, smallest "
                        "has %d samples): clipped to %d x %d (episode_overflow='clip')", what, ways, shots,
                        sampler.num_available, sampler.min_count, new_ways, new_shots)
        ways, shots = new_ways, new_shots
    sampler.check(ways, shots)
    return ways, shots


@contextlib.contextmanager
def tf32_matmuls(enabled: bool, device: torch.device | None):
    """Inside: float32 matmuls on ``device`` may use TF32 tensor cores (CUDA only; the previous setting
    comes back on exit). Evaluation never runs inside, so scores and selection stay in full float32."""
    if not enabled or device is None or device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    key, value = ("fp32_precision", "tf32") if hasattr(matmul, "fp32_precision") else ("allow_tf32", True)
    before = getattr(matmul, key)  # (torch < 2.9 has only the legacy allow_tf32 switch)
    setattr(matmul, key, value)
    try:
        yield
    finally:
        setattr(matmul, key, before)
