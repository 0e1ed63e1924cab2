"""Resolve what a user names (``--dataset NAME`` or ``--data-root DIR``) into a ZSLDataset."""

from __future__ import annotations

import difflib
from pathlib import Path

from zslkit.data.dataset import ZSLDataset
from zslkit.data.synthetic import PRESETS, make_synthetic
from zslkit.errors import ConfigError

REAL_BENCHMARKS = ("AWA1", "AWA2", "CUB", "SUN", "APY", "FLO")
DEFAULT_DATASET = "synthetic-awa2"


def open_dataset(spec: str, *, semantic: str | None = None, seed: int = 0) -> ZSLDataset:
    """A synthetic preset name, or a path to a folder/file in any supported layout.

    ``semantic`` may also be a class table file (.csv/.tsv/.npy, see data/classtable.py): the dataset's class
    embeddings are then replaced by the file's rows, aligned by class name.
    """
    if semantic and Path(semantic).suffix.lower() in (".csv", ".tsv", ".npy"):
        from zslkit.data.classtable import with_class_table

        return with_class_table(open_dataset(spec, seed=seed), semantic)
    if spec in PRESETS:
        if semantic not in (None, "synthetic"):
            raise ConfigError(f"{spec} is synthetic; it has no {semantic!r} semantic source")
        return make_synthetic(spec, seed=seed)
    path = Path(spec)
    if path.exists():
        from zslkit.data.layouts import load_from_root

        return load_from_root(path, semantic=semantic)
    if spec.upper() in REAL_BENCHMARKS:
        twin = f"synthetic-{spec.lower()}"
        raise ConfigError(
            f"{spec} is a real benchmark whose features are not shipped with zslkit. Get them with "
            f"`zslkit data download xlsa17 --to DATA_DIR` and pass --data-root DATA_DIR/{spec.upper()}, "
            f"or try the synthetic dataset of the same shape: --dataset {twin}")
    close = difflib.get_close_matches(spec, list(PRESETS), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown dataset {spec!r} (not a synthetic preset and no such path).{hint} "
                      f"Synthetic presets: {', '.join(PRESETS)}")
