"""Run files: one YAML (or JSON) file that holds everything a run needs, so a run can be replayed.

Every run directory has ``run.yaml`` (written by ``experiment.execute``); ``zslkit train --config FILE
--out NEW`` reads one and trains the same run again (same data, method, recipe, overrides, selection and seed:
the same metrics). A file may also be written by hand; absent keys take the command line's defaults::

    method: cvc-zsl
    variant: null            # the named recipe: null / default, a method variant or preset variant (cvc-zsl: reference)
    preset: null             # a preset entry by name (e.g. AWA1) on any data; null: the dataset's own
    dataset: synthetic-tiny  # a synthetic preset or a path (relative paths: to the working directory)
    setting: inductive
    selection: validation
    seed: 0
    overrides: {epochs: 2, hidden_dim: 64}

This module reads, checks, writes and merges plain dicts of ``experiment.RunSpec`` fields (``variant`` is
``overrides["variant"]`` there); it does not import ``experiment``, which imports it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from pathlib import Path
from typing import Any, Callable

import yaml

from zslkit import __version__
from zslkit.errors import ConfigError
from zslkit.methods.config import apply_overrides
from zslkit.pipeline import CRITERIA, SETTINGS
from zslkit.protocol.selection import SELECTION_MODES
from zslkit.runs import atomic_write_bytes

RUN_FILE = "run.yaml"
ALIASES = {"data_root": "dataset"}  # the command line's --data-root, also accepted as a key


def _text(v) -> str | None:
    return None if isinstance(v, str) and v.strip() else "a non-empty string"


def _optional_text(v) -> str | None:
    return None if v is None else _text(v)


def _integer(v) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else "an integer"


def _positive(v) -> str | None:
    return _integer(v) or (None if v >= 1 else "an integer >= 1")


def _optional_positive(v) -> str | None:
    return None if v is None else _positive(v) and "an integer >= 1 or null"


def _flag(v) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _one_of(choices, optional: bool = False) -> Callable[[Any], str | None]:
    def check(v):
        if optional and v is None:
            return None
        return None if v in choices else f"one of {', '.join(map(str, choices))}" + (" or null" if optional else "")
    return check


def _mapping(v) -> str | None:
    if not isinstance(v, dict):
        return "a mapping of config field names to values (see `zslkit methods NAME`)"
    bad = [k for k, x in v.items() if not isinstance(k, str) or isinstance(x, dict)]
    return f"a mapping of field names to values; {bad[0]!r} is not" if bad else None


# key -> (check returning what the value must be, or None when it is fine; default)
KEYS: dict[str, tuple[Callable[[Any], str | None], Any]] = {
    "method": (_text, None),  # None: the command line's default method
    "variant": (_optional_text, None),
    "preset": (_optional_text, None),  # a preset entry by name for any data (None: the dataset's own)
    "dataset": (_text, None),
    "semantic": (_optional_text, None),
    "data_seed": (_integer, 0),
    "setting": (_one_of(SETTINGS), SETTINGS[0]),
    "selection": (_one_of(list(SELECTION_MODES)), "validation"),
    "criterion": (_one_of(CRITERIA, optional=True), None),
    "seed": (_integer, 0),
    "device": (_text, "auto"),
    "deterministic": (_flag, False),
    "checkpoint_every": (_positive, 10),
    "val_splits": (_optional_positive, None),  # validation class splits (None: the protocol's rule)
    "overrides": (_mapping, None),
}


def read_run_file(path: str | Path) -> dict:
    """The run file's keys as RunSpec fields (``variant`` moved into ``overrides``), checked: a missing file, a
    parse error, an unknown key or a bad value is a ConfigError naming the file, the key and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such run file" + (" (a run directory? give RUN_DIR/run.yaml)"
                                                          if path.is_dir() else ""))
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML ({where}{getattr(exc, 'problem', None) or exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the run file ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a run file is a mapping of keys ({', '.join(KEYS)}), got a "
                          f"{type(data).__name__}")
    return check_fields(data, source=str(path))


def check_fields(data: dict, *, source: str) -> dict:
    """``data`` (run file keys) checked and turned into RunSpec fields; errors name ``source`` and the key."""
    fields: dict[str, Any] = {}
    for key, value in data.items():
        name = ALIASES.get(key, key)
        if name not in KEYS:
            close = difflib.get_close_matches(str(key), [*KEYS, *ALIASES], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{source}: key {key!r}: unknown{hint}; a run file has {', '.join(KEYS)}")
        if name in fields:
            raise ConfigError(f"{source}: key {key!r}: given twice (dataset and data_root are the same key)")
        problem = KEYS[name][0](value)
        if problem:
            raise ConfigError(f"{source}: key {key!r}: must be {problem}, got {value!r}")
        fields[name] = value
    overrides = dict(fields.pop("overrides", None) or {})
    variant = fields.pop("variant", None)
    if variant is not None:
        if overrides.get("variant", variant) != variant:
            raise ConfigError(f"{source}: key 'variant': {variant!r} disagrees with overrides.variant "
                              f"{overrides['variant']!r} (give one of them)")
        overrides["variant"] = variant
    fields["overrides"] = overrides
    return fields


def check_overrides(method_cls, overrides: dict, *, source: str) -> None:
    """A run file's overrides against the method's config: an unknown field or a value of the wrong type is a
    ConfigError naming the file and the key (bounds are checked when the run starts, as for ``--set``)."""
    names = {f.name for f in dataclasses.fields(method_cls.config_class)}
    own = {k: v for k, v in overrides.items() if k != "variant" or "variant" in names}  # else a preset variant
    apply_overrides(method_cls.config_class(), own, source=f"{source}: key 'overrides'")


def run_file_fields(spec, config=None) -> dict:
    """A RunSpec as run file keys: data paths made absolute; override values as ``config`` (the built method
    config, if given) holds them, so ``hidden_dim: 16`` and not ``'16'``; tuples as lists."""
    fields = dataclasses.asdict(spec) if dataclasses.is_dataclass(spec) else dict(spec)
    overrides = dict(fields.get("overrides") or {})
    out = {"method": fields["method"], "variant": overrides.pop("variant", None)}
    for key in KEYS:
        if key not in ("method", "variant", "overrides") and key in fields:  # a key the spec has
            out[key] = fields[key]
    for key in ("dataset", "semantic"):
        if isinstance(out[key], str) and Path(out[key]).exists():
            out[key] = str(Path(out[key]).resolve())
    if config is not None:
        overrides = {k: getattr(config, k, v) for k, v in overrides.items()}
    out["overrides"] = {k: _plain(v) for k, v in overrides.items()}
    return out


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def run_file_text(fields: dict) -> str:
    """YAML text of run file keys, with a header saying how to replay it."""
    body = yaml.safe_dump(fields, sort_keys=False, default_flow_style=None, allow_unicode=True)
    return (f"# zslkit {__version__} run file: everything that defines this run.\n"
            f"# Replay: zslkit train --config {RUN_FILE} --out NEW_DIR (options given beside --config win)\n{body}")


def write_run_file(path: str | Path, spec, config=None) -> Path:
    """Write ``spec`` (a RunSpec) as a run file, atomically."""
    return atomic_write_bytes(run_file_text(run_file_fields(spec, config)).encode("utf-8"), Path(path))


def merge(file_fields: dict, given: dict, given_overrides: dict, *, source: str) -> tuple[dict, list[str]]:
    """The run file's fields with the command line's explicit values on top; returns the fields and one line
    per value the command line replaced or added (``given``: RunSpec fields; ``given_overrides``: config
    fields from ``--set`` and the other override options)."""
    fields = dict(file_fields)
    notes = []
    for key, value in given.items():
        if key in fields and fields[key] != value:
            notes.append(f"{key}: {value!r} from the command line replaces {fields[key]!r} of {source}")
        fields[key] = value
    overrides = dict(fields.get("overrides") or {})
    for key, value in given_overrides.items():
        if key in overrides and str(overrides[key]) != str(value):
            notes.append(f"{key}: {value!r} from the command line replaces {overrides[key]!r} of {source}")
        elif key not in overrides:
            notes.append(f"{key}: {value!r} from the command line (not in {source})")
        overrides[key] = value
    fields["overrides"] = overrides
    return fields, notes
