"""What a sweep runs, without Ray: seeds, parameter lists, datasets, the trial list and run-directory names.

Everything here is checked on the driver before any worker starts, so a typo in ``--param`` or an
unreadable dataset is one clear error instead of a failed trial.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field

from zslkit.errors import ConfigError

SEARCHES = ("grid", "random", "optuna")
SCHEDULERS = ("fifo", "asha")
RANDOM_SEED = 0  # the sampling seed of --search random (fixed, so a sweep is reproducible)


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"`` and mixes such as ``"0-2,5"`` work too."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part) or re.fullmatch(r"(\d+)", part)
        if not m:
            raise ConfigError(f"--seeds: {part!r} is not a seed or a range (examples: 0-4, 0,2,5)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.lastindex == 2 else lo
        if hi < lo:
            raise ConfigError(f"--seeds: range {part!r} is empty")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds


def parse_params(items: list[str]) -> dict[str, list[str]]:
    """``["lr=1e-4,3e-4", "epochs=5,10"]`` -> {"lr": ["1e-4", "3e-4"], "epochs": ["5", "10"]} (values as text;
    the method's config types them)."""
    params: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not vals:
            raise ConfigError(f"--param expects KEY=V1,V2,..., got {item!r}")
        if key in params:
            raise ConfigError(f"--param {key} is given twice; list all its values in one --param")
        params[key] = list(dict.fromkeys(vals))
    return params


def check_keys(method_cls, params: dict, fixed: dict) -> None:
    """Every --param and --set key must be a field of the method's config, and every value must parse."""
    from zslkit.methods.config import apply_overrides

    base = method_cls.config_class()
    for key, values in params.items():
        if key in fixed:
            raise ConfigError(f"{key} is both swept (--param) and fixed (--set); keep one")
        for v in values:
            apply_overrides(base, {key: v}, source="--param")
    fixed = {k: v for k, v in fixed.items() if k != "variant"}
    apply_overrides(base, fixed, source="--set")


def configurations(params: dict[str, list[str]], search: str, samples: int | None) -> list[dict]:
    """The parameter settings a grid or random search tries (optuna proposes its own while it runs)."""
    keys = sorted(params)
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*(params[k] for k in keys))] or [{}]
    if search == "grid":
        return grid
    if search == "random":
        n = samples or len(grid)
        if n > len(grid):
            raise ConfigError(f"--samples {n}: the --param lists only give {len(grid)} distinct configurations")
        picked = sorted(random.Random(RANDOM_SEED).sample(range(len(grid)), n))
        return [grid[i] for i in picked]
    raise ConfigError(f"configurations are proposed during the run for --search {search}")


def slug(params: dict) -> str:
    """A stable folder name for a parameter setting: ``epochs=5,lr=0.001`` (``default`` when empty)."""
    if not params:
        return "default"
    text = ",".join(f"{k}={params[k]}" for k in sorted(params))
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


@dataclass
class DatasetEntry:
    spec: str  # what the user named (a preset or a path), as RunSpec.dataset takes it
    name: str  # the loaded dataset's name: the folder under runs/ and the summary's row label
    synthetic: bool


@dataclass
class SweepPlan:
    """Everything that defines a sweep; stored as SWEEP_DIR/sweep.json."""

    method: str
    datasets: list[DatasetEntry]
    setting: str
    seeds: list[int]
    params: dict[str, list[str]]
    fixed: dict = field(default_factory=dict)
    search: str = "grid"
    samples: int | None = None
    scheduler: str = "fifo"
    criterion: str = "gzsl_h"
    semantic: str | None = None
    data_seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    checkpoint_every: int = 10
    max_failures: int = 3
    plots: bool = True

    def to_json(self) -> dict:
        import dataclasses

        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "SweepPlan":
        obj = dict(obj)
        obj["datasets"] = [DatasetEntry(**d) for d in obj["datasets"]]
        return cls(**obj)

    def experiments(self) -> list[str]:
        """Ray Tune experiments of the sweep: one for grid/random, one per dataset for optuna (its model of
        the objective is per dataset)."""
        if self.search == "optuna":
            return [f"tune-{safe_name(d.name)}" for d in self.datasets]
        return ["tune"]
