"""Hyperparameter presets as data files: ``presets/<method>.yaml``, each entry citing its source.

File format::

    <preset name>:                # a dataset name (AWA1, CUB, synthetic-awa1, ...) or "default"
      setting: inductive          # or transductive (optional, default inductive)
      variant: f-clswgan          # optional: the method variant the entry is for
      source: "where these numbers were read (paper / reference code file @ commit / chosen on val)"
      semantic: original_att      # optional: the semantic source the entry was made for (used when the user
                                  # names none, e.g. the CVC-ZSL reference reads original_att for AwA2)
      params: {ways: 16, shots: 4, ...}   # fields of the method's config dataclass

Lookup (``find_preset``): "<DATASET>/<setting>" keys are written as separate entries named
``<DATASET>`` with ``setting:``; dataset names match case-insensitively, and a synthetic dataset
shaped like a benchmark falls back to its own entry only (never silently to the real one).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml

from zslkit.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    method: str
    name: str
    setting: str
    source: str
    params: dict
    variant: str | None = None
    semantic: str | None = None


def _load_file(method: str) -> dict:
    fname = f"{method.replace('-', '_')}.yaml"
    try:
        text = resources.files("zslkit.presets").joinpath(fname).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"presets/{fname}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"presets/{fname}: top level must be a mapping of preset name -> entry")
    return data


def list_presets(method: str) -> list[Preset]:
    out = []
    for key, entry in _load_file(method).items():
        if not isinstance(entry, dict) or "params" not in entry or "source" not in entry:
            raise ConfigError(f"presets/{method}: entry {key!r} needs 'source' and 'params'")
        name = entry.get("dataset", key.split("/")[0])
        out.append(Preset(method=method, name=str(name), setting=str(entry.get("setting", "inductive")),
                          source=str(entry["source"]), params=dict(entry["params"] or {}),
                          variant=entry.get("variant"), semantic=entry.get("semantic")))
    return out


def find_preset(method: str, dataset_name: str | None, setting: str = "inductive",
                variant: str | None = None) -> Preset | None:
    """The preset for (method, dataset, setting[, variant]), else the method's "default" entry, else None."""
    presets = [p for p in list_presets(method) if p.setting == setting and p.variant == variant]
    if dataset_name:
        for p in presets:
            if p.name.lower() == dataset_name.lower():
                return p
    for p in presets:
        if p.name == "default":
            return p
    return None
