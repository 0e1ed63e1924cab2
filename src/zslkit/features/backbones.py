"""Backbones by name: torchvision models (``resnet101``, ``vit_b_16``...), timm models (``timm:NAME``) and
CLIP towers (``open_clip:ARCH/PRETRAINED``), each as a module from images to pooled feature vectors with
its preprocessing and a record of the weights it runs.

Weights (``weights=``): ``None`` = the published pretrained ones (downloaded or from the local cache; when
that is impossible, one line names the file to pass), ``"random"`` = random initialisation (baselines,
tests), or a local checkpoint file (:func:`zslkit.features.weights.load_weights`).

``resnet101`` is the recipe of the xlsa17 features (Xian et al., "Zero-Shot Learning - the Good, the Bad
and the Ugly", CVPR 2017, Sec. 4.1 / TPAMI 2018): the 2048-d top-layer average-pooled units of the
original ImageNet-1K ResNet-101, not fine-tuned; torchvision's ``IMAGENET1K_V1`` weights are that network.
The paper does not give the pixel pipeline, so the torchvision evaluation transform of those weights is
used: shorter side 256 (bilinear), centre crop 224, ImageNet mean/std. See docs/features.md.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zslkit.errors import ConfigError, MissingDependencyError
from zslkit.features.sources import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from zslkit.features.weights import file_sha256, load_weights
from zslkit.optional import require

HEAD_ATTRS = ("fc", "classifier", "heads", "head")


@dataclass
class Backbone:
    spec: str
    module: torch.nn.Module  # images (B, 3, H, W) -> features (B, D)
    preprocess: Preprocess
    weights: str  # what was loaded, in words
    weights_sha256: str | None = None
    dim: int = 0
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        return {"backbone": self.spec, "weights": self.weights, "weights_sha256": self.weights_sha256,
                "feature_dim": self.dim, "notes": list(self.notes)}


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """``(family, name, pretrained tag)`` of ``resnet101`` | ``timm:NAME`` | ``open_clip:ARCH[/PRETRAINED]``."""
    family, _, rest = spec.partition(":") if ":" in spec else ("torchvision", "", spec)
    if family not in ("torchvision", "timm", "open_clip") or not rest:
        raise ConfigError(f"unknown backbone {spec!r}: use a torchvision model name (resnet101), timm:NAME or "
                          f"open_clip:ARCH/PRETRAINED")
    name, _, tag = rest.partition("/") if family == "open_clip" else (rest, "", "")
    return family, name, tag or None


def _offline_error(spec: str, what: str, exc: BaseException) -> MissingDependencyError:
    return MissingDependencyError(
        f"backbone {spec} needs its pretrained weights {what}, which could not be downloaded "
        f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}); download that file on a "
        f"machine with network and pass it with --weights FILE (or --weights random for an untrained network)")


def _close(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def _finish(bb: Backbone, size: int) -> Backbone:
    bb.module.eval()
    try:
        with torch.inference_mode():
            bb.dim = int(bb.module(torch.zeros(1, 3, size, size)).reshape(1, -1).shape[1])
    except RuntimeError as exc:
        raise ConfigError(f"backbone {bb.spec} does not accept {size}x{size} inputs (a fixed input size?): "
                          f"{str(exc).splitlines()[0][:160]}; leave --image-size at the recipe's value") from None
    return bb


def _local(model, weights, spec, head_keys=()) -> tuple[str, str | None]:
    info = load_weights(model, weights, arch=spec, head_keys=head_keys)
    return f"local file {Path(weights).name} (loaded {info['mode']}, {info['tensors']} tensors)", file_sha256(weights)


def load_backbone(spec: str, *, weights: str | None = None, image_size: int | None = None,
                  crop_fraction: float | None = None, interpolation: str | None = None, seed: int = 0) -> Backbone:
    """The backbone ``spec`` with ``weights`` (None | "random" | FILE); preprocessing from its recipe,
    with ``image_size`` / ``crop_fraction`` / ``interpolation`` overriding it."""
    family, name, tag = parse_spec(spec)
    torch.manual_seed(seed)  # random initialisation is reproducible
    loader = {"torchvision": _torchvision, "timm": _timm, "open_clip": _open_clip}[family]
    bb = loader(spec, name, tag, weights)
    if bb.weights.startswith("random"):
        bb.weights += f" [seed {seed}]"
    p = bb.preprocess
    bb.preprocess = Preprocess(size=image_size or p.size, crop_fraction=crop_fraction or p.crop_fraction,
                               interpolation=interpolation or p.interpolation, mean=p.mean, std=p.std)
    return _finish(bb, bb.preprocess.size)


def _torchvision(spec, name, tag, weights) -> Backbone:
    tv = require("torchvision", f"backbone {spec}")
    if name not in tv.models.list_models():
        raise ConfigError(f"unknown torchvision model {name!r}.{_close(name, tv.models.list_models())} "
                          f"(timm models: timm:NAME; CLIP: open_clip:ARCH/PRETRAINED)")
    model = tv.models.get_model(name, weights=None)
    head = next((a for a in HEAD_ATTRS if hasattr(model, a)), None)
    head_keys = [k for k in model.state_dict() if head and k.startswith(head + ".")]
    enum = tv.models.get_model_weights(name)
    published = enum.IMAGENET1K_V1 if name == "resnet101" else enum.DEFAULT
    tf = published.transforms()
    preprocess = Preprocess(size=tf.crop_size[0], crop_fraction=tf.crop_size[0] / tf.resize_size[0],
                            interpolation=tf.interpolation.value, mean=tuple(tf.mean), std=tuple(tf.std))
    if weights == "random":
        desc, sha = "random initialisation (untrained)", None
    elif weights:
        desc, sha = _local(model, weights, spec, head_keys)
    else:
        filename = Path(published.url).name
        try:
            state = torch.hub.load_state_dict_from_url(published.url, progress=True, check_hash=True)
        except Exception as exc:  # URLError, OSError, HTTPError, timeouts...
            raise _offline_error(spec, f"'{filename}' ({published}, {published.url})", exc) from None
        model.load_state_dict(state)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
        desc, sha = f"torchvision {published} ({filename})", file_sha256(cached) if cached.is_file() else None
    if head:
        setattr(model, head, torch.nn.Identity())
    return Backbone(spec, model, preprocess, desc, sha)


def _timm(spec, name, tag, weights) -> Backbone:
    timm = require("timm", f"backbone {spec}")
    if not timm.is_model(name):
        raise ConfigError(f"unknown timm model {name!r}.{_close(name, timm.list_models())}")
    model = timm.create_model(name, pretrained=False)
    cfg = model.pretrained_cfg or {}
    classifier = cfg.get("classifier") or ""
    head_keys = [k for k in model.state_dict() if classifier and k.startswith(classifier + ".")]
    if weights == "random":
        desc, sha = "random initialisation (untrained)", None
    elif weights:
        desc, sha = _local(model, weights, spec, head_keys)
    else:
        try:
            model = timm.create_model(name, pretrained=True)
        except Exception as exc:
            where = cfg.get("hf_hub_id") or cfg.get("url") or "(no published weights)"
            raise _offline_error(spec, f"from {where}", exc) from None
        desc, sha = f"timm pretrained {cfg.get('hf_hub_id') or cfg.get('url')}", None
    model.reset_classifier(0)
    size = (cfg.get("input_size") or (3, 224, 224))[-1]
    preprocess = Preprocess(size=size, crop_fraction=cfg.get("crop_pct") or 0.875,
                            interpolation=cfg.get("interpolation") or "bicubic",
                            mean=tuple(cfg.get("mean") or IMAGENET_MEAN), std=tuple(cfg.get("std") or IMAGENET_STD))
    return Backbone(spec, model, preprocess, desc, sha)


class _ClipImage(torch.nn.Module):
    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, x):
        return self.clip.encode_image(x)


def load_open_clip(spec: str, arch: str, tag: str | None, weights: str | None):
    """(CLIP model, weights description, sha256) for ``open_clip:ARCH[/TAG]``; no TAG and no file = random."""
    oc = require("open_clip", f"{spec}")
    if arch not in oc.list_models():
        raise ConfigError(f"unknown open_clip architecture {arch!r}.{_close(arch, oc.list_models())}")
    model = oc.create_model(arch, pretrained=None)
    if weights and weights != "random":
        desc, sha = _local(model, weights, spec)
    elif tag and weights != "random":
        cfg = oc.get_pretrained_cfg(arch, tag)
        if not cfg:
            raise ConfigError(f"open_clip has no pretrained tag {tag!r} for {arch}; known: "
                              f"{[t for a, t in oc.list_pretrained() if a == arch]}")
        try:
            model = oc.create_model(arch, pretrained=tag)
        except Exception as exc:
            raise _offline_error(spec, f"({cfg.get('hf_hub') or cfg.get('url')})", exc) from None
        desc, sha = f"open_clip pretrained {arch}/{tag}", None
    else:
        desc, sha = "random initialisation (untrained; no PRETRAINED tag and no --weights)", None
    return model, desc, sha


def _open_clip(spec, arch, tag, weights) -> Backbone:
    model, desc, sha = load_open_clip(spec, arch, tag, weights)
    pcfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = pcfg.get("size", getattr(model.visual, "image_size", 224))
    size = size[0] if isinstance(size, (tuple, list)) else size
    preprocess = Preprocess(size=int(size), crop_fraction=1.0, interpolation=pcfg.get("interpolation", "bicubic"),
                            mean=tuple(pcfg.get("mean", IMAGENET_MEAN)), std=tuple(pcfg.get("std", IMAGENET_STD)))
    return Backbone(spec, _ClipImage(model), preprocess, desc, sha,
                    notes=["features are CLIP image embeddings (encode_image, not normalised), in the space of "
                           "the same model's text embeddings"])
