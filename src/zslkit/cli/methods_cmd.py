"""``zslkit methods [NAME]``: the registered methods, or one method's config fields, variants and presets."""

from __future__ import annotations

from zslkit.methods.registry import available_methods, config_fields, get_method, variants_of
from zslkit.presets import list_presets


def add_parser(sub) -> None:
    p = sub.add_parser("methods", help="list available methods, or describe one (config fields, variants, presets)",
                       description="Without NAME: every registered method (built in or installed through the "
                                   "zslkit.methods entry point). With NAME: its config fields (what --set accepts) "
                                   "with type, default and help, its settings, variants and presets.")
    p.add_argument("name", nargs="?", metavar="NAME", help="a method to describe (default: list them all)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.name:
        print(describe(get_method(args.name)))
        return 0
    for name in available_methods():
        cls = get_method(name)
        print(f"{name:12s} settings: {', '.join(cls.settings):25s} {cls.description}")
    return 0


def describe(cls) -> str:
    """The text of ``zslkit methods NAME``."""
    lines = [f"{cls.name}: {cls.description}".rstrip(": "),
             f"  settings: {', '.join(cls.settings)}",
             f"  default selection criterion: {cls.default_criterion}",
             f"  variants (--variant): {', '.join(variants_of(cls)) or '(none)'} (and default: the dataset's preset, "
             f"else the rules on the data)",
             "", f"config fields (--set KEY=VALUE; {cls.config_class.__name__}):"]
    fields = config_fields(cls)
    rows = [(f.name, f.type, repr(f.default), f.help + (f" ({f.bounds})" if f.bounds else "")) for f in fields]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("field", "type", "default"))]
    lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(("field", "type", "default"), widths)) + "  help")
    for r in rows:
        lines.append(("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3]).rstrip())
    groups: dict[tuple[str, str], list[str]] = {}
    for p in list_presets(cls.recipe.presets):
        groups.setdefault((p.setting, p.variant or "-"), []).append(p.name)
    lines += ["", "presets (dataset names with their own hyperparameters, --preset NAME on any data; others get scaled "
              "defaults):"]
    if not groups:
        lines.append("  (none)")
    for (setting, variant), names in sorted(groups.items()):
        lines.append(f"  {setting}, variant {variant}: {', '.join(names)}")
    return "\n".join(lines)
