"""Method registry: ``@register`` on a ZSLMethod subclass makes it available by name.

Every module of ``zslkit.methods`` (except the private and infrastructure ones) is imported on first
lookup, so adding a method is adding a module; there is no central list to edit.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from zslkit.errors import ConfigError

_REGISTRY: dict[str, type] = {}
_INFRASTRUCTURE = {"base", "registry"}
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
    import zslkit.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name in _INFRASTRUCTURE:
            continue
        importlib.import_module(f"zslkit.methods.{info.name}")
    _discovered = True


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
