"""Method configurations: fields declared with their help and bounds, building, overriding and checking.

A method's hyperparameters are a dataclass whose fields are declared with :func:`option`, which keeps the
field's one-line help (shown by ``zslkit methods NAME``) and its bounds (checked by :func:`validate_config`)
on the field itself::

    @dataclass
    class MyConfig:
        lr: float = option(1e-3, "learning rate", above=0)
        mode: str = option("merge", "merge: real + synthetic; replace: synthetic only", choices=("merge", "replace"))
        lr_grid: tuple = option((), "learning rates tried on validation", item=float, above=0)

Values from the command line (``--set key=value``) and from presets are converted to the field's type by
:func:`apply_overrides`; a wrong name gets close matches, a wrong value a :class:`ConfigError`. Every float
must be finite (``lr=inf`` or ``gamma_exp=1e400`` are refused at the bounds, not found later as a divergence);
a tuple declared with ``length=N`` (and every ``betas`` field, e.g. ``betas_g``: Adam's (beta1, beta2)) holds exactly N values.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any

from zslkit.errors import ConfigError

_BOUNDS = ("min", "above", "max", "below")


def option(default, help: str, *, min=None, above=None, max=None, below=None, choices=None, item=None,
           length=None, min_length=None, infinite=False):
    """A config field with its help text and bounds: ``min`` <= value, ``above`` < value, value <= ``max``,
    value < ``below``, value in ``choices``; for tuples the bounds and choices apply to every element,
    ``item`` is the element type (used when the default is empty), ``length`` the number of elements and
    ``min_length`` the least number. Floats must be finite unless ``infinite=True`` (then +-inf is a value with
    a meaning, e.g. "-inf: all"); NaN never passes."""
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "item": item,
            "length": length, "min_length": min_length, "infinite": bool(infinite)}
    meta.update({k: v for k, v in zip(_BOUNDS, (min, above, max, below))})
    return dataclasses.field(default=default, metadata=meta)


def field_help(field: dataclasses.Field) -> str:
    """The one-line help of a config field ("" when it was declared without :func:`option`)."""
    return str(field.metadata.get("help", ""))


def field_length(field: dataclasses.Field) -> int | None:
    """The number of values a tuple field must hold (``length=``; 2 for Adam's ``betas``), else None."""
    if field.metadata.get("length") is not None:
        return int(field.metadata["length"])
    return 2 if "betas" in field.name.split("_") and isinstance(field.default, tuple) else None


def field_bounds(field: dataclasses.Field) -> str:
    """The field's declared bounds as text, e.g. ">= 1", "in (0, 1]", "one of merge, replace" ("" if none)."""
    m = field.metadata
    if m.get("choices"):
        return "one of " + ", ".join(map(str, m["choices"]))
    return bounds_text(m)


def bounds_text(m) -> str:
    """Numeric bounds (a mapping with any of ``min``, ``above``, ``max``, ``below``) as text: ">= 1", "in (0, 1]"
    ("" if none); config fields and the CLI's bounded options both say their bounds this way."""
    low = f"[{m['min']}" if m.get("min") is not None else f"({m['above']}" if m.get("above") is not None else None
    high = f"{m['max']}]" if m.get("max") is not None else f"{m['below']})" if m.get("below") is not None else None
    if low and high:
        return f"in {low}, {high}"
    if low:
        return (">= " if low[0] == "[" else "> ") + low[1:]
    if high:
        return ("<= " if high[-1] == "]" else "< ") + high[:-1]
    return ""


def validate_config(cfg, owner: str = "") -> None:
    """Check every field of ``cfg`` against its declared bounds and choices (ConfigError naming the field)."""
    prefix = f"{owner}: " if owner else ""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        values = value if isinstance(value, tuple) else (value,)
        length, least = field_length(f), f.metadata.get("min_length")
        example = ",".join(map(str, f.default)) if isinstance(f.default, tuple) and f.default else "..."
        if isinstance(value, tuple) and length is not None and len(value) != length:
            raise ConfigError(f"{prefix}{f.name} takes {length} values (e.g. {f.name}={example}), got {len(value)}: "
                              f"{value!r}")
        if isinstance(value, tuple) and least is not None and len(value) < least:
            raise ConfigError(f"{prefix}{f.name} takes at least {least} value{'s' if least > 1 else ''} (e.g. "
                              f"{f.name}={example}), got {len(value)}")
        for v in values:
            if isinstance(v, float) and (math.isnan(v) or (math.isinf(v) and not f.metadata.get("infinite"))):
                where = f"an entry of {f.name}" if isinstance(value, tuple) else f.name
                bounds = field_bounds(f)
                raise ConfigError(f"{prefix}{where} must be a finite number{' ' + bounds if bounds else ''}, got {v!r}")
            if not _within(v, f.metadata):
                where = f"an entry of {f.name}" if isinstance(value, tuple) else f.name
                raise ConfigError(f"{prefix}{where} must be {field_bounds(f)}, got {v!r}")


def empty_settings(cfg) -> list[str]:
    """``name=value`` of the settings that leave a fit nothing to train or try (a ``*epochs`` field of 0, an empty
    ``*grid`` or ``*space``): the likely reason a fit reported no validation point."""
    out = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if (f.name.endswith("epochs") and isinstance(v, int) and not isinstance(v, bool) and v == 0) or (
                isinstance(v, tuple) and not v and f.name.endswith(("grid", "space")) and f.default):
            out.append(f"{f.name}={v!r}" if not isinstance(v, tuple) else f"{f.name}=(empty)")
    return out


def _within(v, m) -> bool:
    if m.get("choices") and v not in m["choices"]:
        return False
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return True
    return within_bounds(v, m)


def within_bounds(v, m) -> bool:
    """Whether the number ``v`` lies within the bounds ``m`` (any of ``min``, ``above``, ``max``, ``below``)."""
    return ((m.get("min") is None or v >= m["min"]) and (m.get("above") is None or v > m["above"])
            and (m.get("max") is None or v <= m["max"]) and (m.get("below") is None or v < m["below"]))


def make_config(config_class: type, config: Any = None, overrides: dict | None = None):
    """Build a config dataclass from None / a dataclass / a dict, then apply ``overrides`` by name."""
    if config is None:
        cfg = config_class()
    elif isinstance(config, config_class):
        cfg = config
    elif isinstance(config, dict):
        cfg = apply_overrides(config_class(), config, source="config")
    else:
        raise ConfigError(f"config must be a {config_class.__name__} or a dict, got {type(config).__name__}")
    return apply_overrides(cfg, overrides or {}, source="override")


def unknown_name(cls: type, key: str, source: str) -> ConfigError:
    """The error for a setting ``key`` that config dataclass ``cls`` does not have, with close matches."""
    names = [f.name for f in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(names))}"
    return ConfigError(f"{source}: {cls.__name__} has no setting {key!r}{hint}")


def apply_overrides(cfg, overrides: dict, *, source: str = "override"):
    """A copy of dataclass ``cfg`` with ``overrides`` applied; unknown names get close matches."""
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in overrides.items():
        key = key.replace("-", "_")
        if key not in fields:
            raise unknown_name(type(cfg), key, source)
        changes[key] = _coerce(value, getattr(cfg, key), key, source, fields[key].metadata.get("item"))
    return dataclasses.replace(cfg, **changes)


def _coerce(value, current, key: str, source: str, item: type | None = None):
    """Convert a (possibly string) value to the type of the current value (tuples: to ``item`` per element)."""
    if value is None or current is None:
        return value
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(current, int):
            f = float(value)
            if f != int(f):
                raise ValueError(value)
            return int(f)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            like = item() if item is not None else (current[0] if current else None)
            return tuple(_coerce(v, like, key, source) if like is not None else _number_or_text(v) for v in value)
        if isinstance(current, str):
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key}={value!r} is not a valid {type(current).__name__}") from None
    return value


def _number_or_text(value):
    """An element of a tuple whose type is unknown (the default is empty): int, float, or the text itself."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
