"""Device choice, seeding and determinism: the only place that touches global torch state."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager

import numpy as np
import torch

from zslkit.errors import ConfigError


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cpu``; ``cuda`` / ``cuda:N`` (error if absent)."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device {spec} was asked for, but no CUDA device is available to this torch build "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False); use --device cpu or auto")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        return dev
    raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Methods also take explicit generators."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# the smallest positive normal float32; a product with a subnormal operand reads as zero when the CPU flushes
_SUBNORMAL = 1e-39


def flushing_denormals() -> bool:
    """Whether the CPU currently treats subnormal float32 values as zero (``torch.set_flush_denormal``), read from
    the arithmetic itself (torch has no getter)."""
    return float(torch.tensor(_SUBNORMAL, dtype=torch.float32) * 1.0) == 0.0


@contextmanager
def flush_denormals(enabled: bool = True):
    """Inside: subnormal float32 values are flushed to zero on the CPU (x86 FTZ/DAZ; no effect where unsupported
    or on CUDA); afterwards the previous setting is restored.

    Why: training steps slow down several times over once values fall into the subnormal range (1e-45..1e-38),
    where the CPU takes a slow microcode path for every operation touching them. Measured on real data
    (icons, CVC-ZSL, lr 1e-3 halved at epoch 12, one thread): an epoch of 100 episodes took 1.5 s before the
    halving and 12 s eight epochs after it; flushed, 1.6 s throughout (benchmarks/README.md, "Subnormal floats").
    Values below 1.2e-38 carry no information at the scales these models train at."""
    before = flushing_denormals()
    if enabled != before:
        torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        if enabled != before:
            torch.set_flush_denormal(before)


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed`` (for samplers and noise)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


# The named random streams of the methods: name -> (factor, offset), the stream's seed is factor x run seed + offset.
# Each stream is independent of the others, so e.g. evaluating more often never changes the training episodes. The
# numbers are the seed offsets each stream had before it was named (results are unchanged); a new stream takes a
# new offset.
STREAMS = {
    "cvc-zsl.weights": (1, 0),  # the classifier generator's initial weights
    "cvc-zsl.episodes": (2, 1),  # the episodes of the inductive and self-training stages
    "cvc-zsl.finetune": (2, 7919),  # the learned seen rows' fine-tuning episodes (apart from the generator's)
    "cycle-wgan.weights": (1, 0),  # G, D (and their Glorot init)
    "cycle-wgan.regressor": (1, 1),  # the regressor's init and batches
    "cycle-wgan.aux_classifier": (1, 2),  # the auxiliary seen-class softmax's batches
    "cycle-wgan.noise": (1, 3),  # the GAN's noise and batches
    "cycle-wgan.synthesis": (1, 4),  # the final classifier's synthetic features
    "cycle-wgan.final_classifier": (1, 5),  # the final classifier's init and batches
    "cycle-wgan.train_fraction": (1, 6),  # which training rows are kept (train_fraction)
    "cycle-wgan.diagnostics": (1, 7),  # the generator diagnostics' synthetic features
    "protocol.heldout_seen": (1, 1),  # a validation view's held-out samples of its train classes (numpy)
    "protocol.validation_classes": (1, 0),  # derived validation classes and the extra class splits (numpy; seeded
    # by the split seed, a constant of the protocol, not by the run's seed)
}


def stream_seed(seed: int, name: str) -> int:
    """The seed of the named random stream ``name`` of a run seeded ``seed`` (``STREAMS``)."""
    try:
        factor, offset = STREAMS[name]
    except KeyError:
        raise ValueError(f"unknown random stream {name!r}; known: {', '.join(STREAMS)}") from None
    return factor * int(seed) + offset


def stream(seed: int, name: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on ``device`` for the named random stream ``name`` of a run seeded ``seed``."""
    return make_generator(stream_seed(seed, name), torch.device(device))


def set_deterministic(enabled: bool = True) -> None:
    """Ask torch for deterministic kernels (CPU results are then identical run to run).

    On CUDA some kernels (e.g. index_add/scatter backward) have no deterministic version; with
    ``warn_only`` they run anyway and torch warns, see docs/determinism.md.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not enabled
        torch.backends.cudnn.deterministic = enabled


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
