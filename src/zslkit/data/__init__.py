"""Data layer: one validated dataset type, loaders and writers for every layout, synthetic data."""

from zslkit.data.dataset import SPLIT_NAMES, ZSLDataset

__all__ = ["SPLIT_NAMES", "ZSLDataset"]
