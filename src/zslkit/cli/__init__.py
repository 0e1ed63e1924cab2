"""The ``zslkit`` command. Each sub-command lives in a module ``zslkit.cli.<name>_cmd`` that defines
``add_parser(subparsers)``; modules are discovered, so a command is added by adding a module.

Exit codes (docs/errors.md): 0 success, 1 a run-time error, 2 a usage error, 130 interrupted. Every error
is printed as one line, ``zslkit: error: <message>``; no input prints a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import math
import os
import pkgutil
import sys

from zslkit import __version__
from zslkit.checkpointing import TrainingInterrupted
from zslkit.errors import (ConfigError, DataError, MissingDependencyError, NotFittedError, RunDirError,
                           TrainingDivergedError, ZslkitError)
from zslkit.methods.config import bounds_text, within_bounds
from zslkit.sweep import SweepError

OK, RUNTIME_ERROR, USAGE_ERROR, INTERRUPTED = 0, 1, 2, 130

#: exception class -> exit code. The most specific listed class of an exception (its MRO) decides, so
#: MissingDependencyError (a ConfigError) is 1. Reasons for each row: docs/errors.md "Exit codes".
EXIT_CODES: dict[type[BaseException], int] = {
    TrainingInterrupted: INTERRUPTED,  # Ctrl-C that saved a checkpoint
    KeyboardInterrupt: INTERRUPTED,
    ConfigError: USAGE_ERROR,  # bad option value, unknown method / dataset / variant / setting / key
    RunDirError: USAGE_ERROR,  # the named run directory cannot be used for this command (finished, locked ...)
    MissingDependencyError: RUNTIME_ERROR,  # the command is right; the environment lacks a package or file
    DataError: RUNTIME_ERROR,  # the data files are missing, malformed or inconsistent
    TrainingDivergedError: RUNTIME_ERROR,
    NotFittedError: RUNTIME_ERROR,
    SweepError: RUNTIME_ERROR,  # Ray missing, cluster unreachable, trials failed
    ZslkitError: RUNTIME_ERROR,
    OSError: RUNTIME_ERROR,  # disk full, permission denied, a broken pipe ...
    MemoryError: RUNTIME_ERROR,
    Exception: RUNTIME_ERROR,  # anything else is a bug: one line, the traceback only with ZSLKIT_TRACEBACK=1
}


def exit_code(exc: BaseException) -> int:
    """The exit code of an exception: the entry of its most specific class in ``EXIT_CODES``."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return RUNTIME_ERROR


SEED_MAX = 2**32 - 1  # numpy's RandomState and torch both take seeds in [0, 2**32 - 1]


def bounded(kind: type, *, min=None, above=None, max=None, below=None):
    """An argparse ``type`` for a number with bounds: ``min`` <= value, ``above`` < value, value <= ``max``,
    value < ``below``; floats must also be finite. A value outside is a usage error at parse time (exit 2, before
    any work), and argparse names the option: ``argument --seed: must be an integer in [0, 4294967295], got -1``.
    Every numeric option of the CLI uses one (tests/test_usage_errors.py walks them all)."""
    what = "an integer" if kind is int else "a finite number"
    bounds = {"min": min, "above": above, "max": max, "below": below}
    text = bounds_text(bounds)

    def convert(value: str):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {what}{' ' + text if text else ''}, got {value!r}") from None
        if not ((kind is int or math.isfinite(number)) and within_bounds(number, bounds)):
            raise argparse.ArgumentTypeError(f"must be {what}{' ' + text if text else ''}, got {value}")
        return number

    convert.__name__ = kind.__name__
    convert.kind, convert.bounds, convert.bounds_text = kind, bounds, text
    return convert


def seed_type():
    """The type of every ``--seed`` / ``--data-seed`` option: an integer in [0, 2**32 - 1]."""
    return bounded(int, min=0, max=SEED_MAX)


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: the path and what is wrong, in words (``d: exists and is not a folder`` instead of
    ``[Errno 17] File exists: 'd'``)."""
    path = exc.filename
    if path is None:
        return str(exc) or type(exc).__name__
    if exc.errno == errno.EEXIST and os.path.exists(path) and not os.path.isdir(path):
        return f"{path}: exists and is not a folder, but an output needs it as one (choose another --out)"
    if exc.errno == errno.ENOTDIR:
        return f"{path}: a part of this path is a file, not a folder (choose another path)"
    if exc.errno == errno.EISDIR:
        return f"{path}: is a folder, not a file"
    return f"{path}: {exc.strerror or exc}"


class HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to an option's help unless the help already states its default; options that
    default to None / False / [] (absent) show no default."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or not action.option_strings or absent(default):
            return text
        shown = str(default).replace("%", "%%")
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


def absent(default) -> bool:
    """Whether an option's default means "not given" (None, False of a flag, [] of a list), so none is shown.
    By identity: 0 is a default to show, though 0 == False."""
    return default is None or default is False or default is argparse.SUPPRESS or (isinstance(default, list)
                                                                                   and not default)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-parsers share its help formatter."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="zslkit",
        description="Zero-shot learning on pre-extracted features: CVC-ZSL, cycle-WGAN / f-CLSWGAN, ESZSL. "
                    "Exit codes: 0 success, 1 run-time error, 2 usage error, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"zslkit {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import zslkit.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.endswith("_cmd"):
            importlib.import_module(f"zslkit.cli.{info.name}").add_parser(sub)
    fill_descriptions(parser)
    return parser


def fill_descriptions(parser: argparse.ArgumentParser) -> None:
    """Every (sub-)command's ``-h`` opens with a description: its one-line help where it declares none."""
    for action in parser._actions:  # argparse has no public list of sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    text = helps[name]
                    sub.description = text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
                fill_descriptions(sub)


class _Console(logging.StreamHandler):
    """zslkit's warnings on stderr, one line each (``sys.stderr`` looked up at each message)."""

    def __init__(self):
        super().__init__()
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter("zslkit: warning: %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _configure_logging() -> None:
    """The command is the application: zslkit's INFO records go to each run's log.txt, warnings to stderr."""
    logger = logging.getLogger("zslkit")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not any(isinstance(h, _Console) for h in logger.handlers):
        logger.addHandler(_Console())


def main(argv: list[str] | None = None) -> int:
    _configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: argparse prints usage + message and exits 2
    if not getattr(args, "func", None):
        parser.print_help()
        return USAGE_ERROR
    try:
        return int(args.func(args) or OK)
    except BaseException as exc:  # noqa: B036 - every exception becomes one line and an exit code
        if isinstance(exc, SystemExit):
            raise
        if isinstance(exc, BrokenPipeError):  # the reader stopped reading (`| head`): nothing left to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return OK
        code = exit_code(exc)
        if code == INTERRUPTED:
            detail = f": {exc}" if str(exc) else ""
            print(f"zslkit: interrupted{detail}", file=sys.stderr)
        elif isinstance(exc, OSError):
            print(f"zslkit: error: {describe_os_error(exc)}", file=sys.stderr)
        elif isinstance(exc, (ZslkitError, MemoryError)):
            print(f"zslkit: error: {exc or type(exc).__name__}", file=sys.stderr)
        else:
            if os.environ.get("ZSLKIT_TRACEBACK"):
                raise
            print(f"zslkit: error: internal error, please report it: {type(exc).__name__}: {exc} "
                  f"(set ZSLKIT_TRACEBACK=1 to see the traceback)", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
