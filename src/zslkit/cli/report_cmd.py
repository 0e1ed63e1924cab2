"""``zslkit report RUN_DIR...``: one comparison table over runs, mean +- std over seeds."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("markdown", "csv", "json")  # the command's own output formats (reporting.tables renders the first two)


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="compare finished runs (methods x datasets x settings, mean ± std over seeds)")
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
    import json

    from zslkit.errors import RunDirError
    from zslkit.reporting.tables import aggregate, load_run, notes, render_rows
    from zslkit.runs import atomic_write_bytes
    from zslkit.sweep.summary import build, is_sweep, render_summary

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
    rows = aggregate([load_run(d) for d in dirs])
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
    if args.out:
        atomic_write_bytes(text.encode("utf-8"), Path(args.out))
    return 0
