"""Features from images: image sources, backbones, batched resumable extraction (see docs/features.md)."""
