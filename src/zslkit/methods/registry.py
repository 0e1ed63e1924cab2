"""Method registry: ``@register`` on a ZSLMethod subclass makes it available by name.

Every module of ``zslkit.methods`` (except the private and infrastructure ones) is imported on first
lookup, so adding a method is adding a module; there is no central list to edit. Installed packages add
methods through the entry-point group ``zslkit.methods`` (docs/extending.md): an entry point names a
module (importing it runs its ``@register``) or a ZSLMethod subclass (registered here). A broken entry
point is skipped with a warning that names it.

Dependencies go one way: ``base`` imports this module (``ZSLMethod.load`` finds a checkpoint's class by
name); this module does not import ``base`` (an entry point's class is checked by its class hierarchy).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import logging
import pkgutil
import sys
import typing
from pathlib import Path

from zslkit.errors import ConfigError
from zslkit.methods.config import field_bounds, field_help
from zslkit.presets import list_presets

log = logging.getLogger("zslkit.methods")

ENTRY_POINT_GROUP = "zslkit.methods"
_REGISTRY: dict[str, type] = {}
_INFRASTRUCTURE = {"base", "registry", "config", "model_file", "recipe", "options"}
_BASE_CLASS = "zslkit.methods.base.ZSLMethod"  # by name: base imports this module, not the other way round
_discovered = False


def register(cls):
    """Class decorator: register a ZSLMethod subclass under ``cls.name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} must define a non-empty 'name'")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TypeError(f"method name {cls.name!r} is already registered by {_REGISTRY[cls.name].__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True  # first, so that a method module looking names up does not recurse
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_") or info.name in _INFRASTRUCTURE:
            continue
        importlib.import_module(f"zslkit.methods.{info.name}")
    _load_entry_points()


def _load_entry_points() -> None:
    """Register the methods of installed packages (entry-point group ``zslkit.methods``)."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r}"
        try:
            obj = ep.load()
            if isinstance(obj, type):
                if not is_method_class(obj):
                    raise TypeError(f"{obj.__name__} is not a subclass of zslkit.methods.ZSLMethod")
                register(obj)
            elif not isinstance(obj, type(sys)):
                raise TypeError(f"it names a {type(obj).__name__}, not a module or a ZSLMethod subclass")
        except Exception as exc:  # a broken third-party package must not break zslkit
            log.warning("method %s was skipped: %s: %s", where, type(exc).__name__, exc)


def is_method_class(obj) -> bool:
    """Whether ``obj`` is a subclass of ``zslkit.methods.base.ZSLMethod`` (checked on its class hierarchy)."""
    return isinstance(obj, type) and any(f"{c.__module__}.{c.__qualname__}" == _BASE_CLASS for c in obj.__mro__)


def available_methods() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get_method(name: str) -> type:
    """The method class registered as ``name``; unknown names get the close matches."""
    _discover()
    key = (name or "").strip().lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown method {name!r}.{hint} Available: {', '.join(sorted(_REGISTRY))}")


def variants_of(cls) -> tuple[str, ...]:
    """What ``--variant`` accepts for a method besides ``default``: its recipe's named recipes (the method's own
    variants and the variants its presets are written for, e.g. cvc-zsl "reference")."""
    recipe = getattr(cls, "recipe", None)
    if recipe is not None:
        return tuple(n for n in recipe.names() if n != "default")
    field = next((f for f in dataclasses.fields(cls.config_class) if f.name == "variant"), None)
    declared = (field.metadata.get("choices") if field is not None else None) or ()
    return tuple(dict.fromkeys([*declared, *(p.variant for p in list_presets(cls.name) if p.variant)]))


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One config field as ``--set`` sees it."""

    name: str
    type: str
    default: object
    help: str
    choices: tuple | None = None
    bounds: str = ""  # the declared bounds as text, e.g. ">= 1", "in (0, 1]", "one of merge, replace"


def config_fields(cls) -> list[FieldInfo]:
    """The method's config fields (what ``--set KEY=VALUE`` accepts) with type, default and one-line help
    (``dataclasses.field(metadata={"help": ...})``; "" when a field has none)."""
    config_class = cls.config_class
    try:
        hints = typing.get_type_hints(config_class)
    except Exception:  # an annotation that does not resolve: show it as written
        hints = {}
    out = []
    for f in dataclasses.fields(config_class):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append(FieldInfo(f.name, _type_name(hints.get(f.name, f.type)), default, field_help(f),
                             tuple(f.metadata["choices"]) if f.metadata.get("choices") else None, field_bounds(f)))
    return out


def _type_name(t) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, type) and not typing.get_args(t):
        return t.__name__
    return str(t).replace("typing.", "")
