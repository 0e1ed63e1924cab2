"""zslkit: zero-shot learning from pre-extracted visual features and class embeddings."""

__version__ = "0.1.0"
