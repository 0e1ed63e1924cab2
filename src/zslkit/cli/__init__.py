"""The ``zslkit`` command. Each sub-command lives in a module ``zslkit.cli.<name>_cmd`` that defines
``add_parser(subparsers)``; modules are discovered, so a command is added by adding a module."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from zslkit import __version__
from zslkit.errors import ZslkitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zslkit",
        description="Zero-shot learning on pre-extracted features: CVC-ZSL, cycle-WGAN / f-CLSWGAN, ESZSL.")
    parser.add_argument("--version", action="version", version=f"zslkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import zslkit.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.endswith("_cmd"):
            importlib.import_module(f"zslkit.cli.{info.name}").add_parser(sub)
    return parser


def _console_warnings() -> None:
    """Show zslkit's warnings (e.g. a preset clipped to the data) on stderr, once."""
    logger = logging.getLogger("zslkit")
    if not any(getattr(h, "_zslkit_console", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("zslkit: warning: %(message)s"))
        handler._zslkit_console = True
        logger.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    _console_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from zslkit.checkpointing import TrainingInterrupted

    try:
        return int(args.func(args) or 0)
    except TrainingInterrupted as exc:  # Ctrl-C that saved a checkpoint: the shell's "interrupted" code
        print(f"zslkit: interrupted: {exc}", file=sys.stderr)
        return 130
    except ZslkitError as exc:
        print(f"zslkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zslkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
