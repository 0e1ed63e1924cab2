"""``zslkit methods``: list the registered methods with their settings."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("methods", help="list available methods")
    p.set_defaults(func=run)


def run(args) -> int:
    from zslkit.methods.registry import available_methods, get_method

    for name in available_methods():
        cls = get_method(name)
        print(f"{name:12s} settings: {', '.join(cls.settings):25s} {cls.description}")
    return 0
