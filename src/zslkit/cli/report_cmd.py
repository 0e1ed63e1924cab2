"""``zslkit report RUN_DIR...``: one comparison table over runs, mean +- std over seeds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zslkit.errors import RunDirError, ZslkitError
from zslkit.reporting.tables import aggregate, load_run, notes, render_rows
from zslkit.runs import atomic_write_bytes
from zslkit.sweep.summary import build, is_sweep, render_summary

FORMATS = ("markdown", "csv", "json")  # the command's own output formats (reporting.tables renders the first two)


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="compare finished runs (methods x datasets x settings, mean ± std over seeds)",
                       description="One table over finished run directories (folders are searched): one row per "
                                   "configuration, mean ± std over its seeds, with how each was selected and on what "
                                   "data. A damaged run directory is skipped and listed; a sweep folder gives its "
                                   "summary.")
    p.add_argument("run_dirs", nargs="+", help="run directories (folders holding several runs are searched); a sweep "
                                               "folder (zslkit sweep) gives its summary")
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="table format")
    p.add_argument("--out", help="write the table to this file as well")
    p.set_defaults(func=run)


def find_runs(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if (p / "metrics.json").is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(m.parent for m in p.rglob("metrics.json")  # a sweep's trials: `zslkit report SWEEP_DIR`
                            if not any((a / "sweep.json").is_file() for a in m.parents if p in a.parents))
    return found


def run(args) -> int:
    sweeps = [p for p in args.run_dirs if is_sweep(p)]  # a sweep: its summary, chosen on validation
    text = "".join(render_summary(build(p), args.format) for p in sweeps)
    print(text, end="")
    if sweeps and len(sweeps) == len(args.run_dirs):
        if args.out:
            atomic_write_bytes(text.encode("utf-8"), Path(args.out))
        return 0
    dirs = find_runs([p for p in args.run_dirs if p not in sweeps])
    if not dirs:
        raise RunDirError(f"no finished runs (metrics.json) under {', '.join(args.run_dirs)}")
    runs, skipped = [], []
    for d in dirs:  # one damaged run directory does not hide the others: it is skipped and listed
        try:
            runs.append(load_run(d))
        except (ZslkitError, KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{d}: {exc if isinstance(exc, ZslkitError) else f'{type(exc).__name__}: {exc}'}")
    for line in skipped:
        print(f"zslkit: warning: skipped damaged run {line}", file=sys.stderr)
    if not runs:
        raise RunDirError(f"no readable finished runs under {', '.join(args.run_dirs)} ({len(skipped)} damaged)")
    rows = aggregate(runs)
    if args.format == "json":
        text = json.dumps(rows, indent=2) + "\n"
    else:
        text = render_rows(rows, args.format)
    print(text, end="")
    for line in notes(rows):
        print(f"note: {line}")
    if any(r["selection"] == "oracle" for r in rows):
        print("note: rows with selection 'oracle' were selected on the TEST set (comparison with published tables only)")
    if any(r["data"] == "synthetic" for r in rows):
        print("note: rows with data 'synthetic' come from zslkit's generated datasets, not the real benchmarks")
    if skipped:
        print(f"note: {len(skipped)} damaged run director{'y' if len(skipped) == 1 else 'ies'} skipped (not in the "
              f"table): {'; '.join(skipped)}")
    if args.out:
        atomic_write_bytes(text.encode("utf-8"), Path(args.out))
    return 0
