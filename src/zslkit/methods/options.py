"""Command-line options a method adds to ``zslkit train`` (``ZSLMethod.train_options``): each option says how its
value becomes config overrides, so the CLI names no method's settings. ``zslkit train --help`` lists every
installed method's options; an option given with a method that lacks it is a usage error naming the methods that
have it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class TrainOption:
    """One ``zslkit train`` option of a method.

    ``to_overrides(value, dataset)`` turns the parsed value into config fields (``dataset`` is None unless
    ``needs_data``); a bad value raises ConfigError. ``needs_data`` options (e.g. files checked against the data's
    dimensions) are read after the dataset is loaded and apply like a preset: above a run file's overrides, below
    the other options. ``repeat``: the option may be given several times (its value is the list)."""

    flag: str
    help: str
    to_overrides: Callable[[Any, Any], dict]
    metavar: str | None = None
    choices: tuple | None = None
    repeat: bool = False
    needs_data: bool = False
    kwargs: dict = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def argparse_kwargs(self, methods: list[str]) -> dict:
        kw = {"dest": self.dest, "help": f"{', '.join(methods)}: {self.help}", **self.kwargs}
        if self.metavar:
            kw["metavar"] = self.metavar
        if self.choices is not None:
            kw["choices"] = list(self.choices)
        if self.repeat:
            kw.update(action="append", default=[])
        return kw
