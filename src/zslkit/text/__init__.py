"""Class embeddings from plain-text class descriptions (see docs/features.md)."""
