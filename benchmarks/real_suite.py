"""The real-data suite: chosen methods and settings with default options over every real dataset and fold.

    python benchmarks/real_suite.py --methods eszsl,cvc-zsl --settings inductive --out runs/real_suite \\
        --results benchmarks/results/real_suite
    python benchmarks/real_suite.py --row cvc-zsl --row "cvc-zsl transductive" \\
        --row "cvc-zsl inductive --variant reference" --row cycle-wgan --row "cycle-wgan --variant f-clswgan" \\
        --datasets digits-7seg --folds 0,1 --out runs/suite-cvc --results benchmarks/results/real_suite_cvc --merge

The rows are every (method, setting) of ``--methods`` x ``--settings``, or the ``--row`` specs ("METHOD [SETTING]
[zslkit train options]"); each (row, dataset, fold) is one ``zslkit train`` subprocess (default options plus the
row's options and ``--extra``, one thread each, ``--workers`` at a time) writing its run directory under
``OUT/runs``. Datasets are the folders of
``--data-dir`` (default ``../shared/data``) that hold a README.md and an att_splits.mat; fold 0 is the folder itself,
fold K > 0 a folder in ``OUT/folds`` with symlinks to its files and ``folds/foldK_att_splits.mat`` as att_splits.mat.
``OUT/suite.json`` and ``OUT/suite.md`` (and ``--results PREFIX``.json/.md) hold mean +- std over folds (sample std)
of ZSL T1 and GZSL U/S/H, the per-fold numbers, wall times, the rows of each README's "reference codes" table and,
the change against an earlier suite.json (``--compare``; by default the ``--results`` PREFIX.json recorded before,
if any), what got worse first. ``--merge`` keeps the rows of that earlier record that were not run again (each row
says its commit and date). Exit 0: every run finished;
1: some run failed (the others are still reported); 2: a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
EXCLUDED = ("xlsa17",)  # split files only, no features
METRICS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h")
LABELS = {"zsl_t1": "T1", "gzsl_u": "U", "gzsl_s": "S", "gzsl_h": "H", "gzsl_cs_h": "H calibrated"}
COMPARED = METRICS + ("gzsl_cs_h",)
HEADLINE = ("zsl_t1", "gzsl_h", "gzsl_cs_h")  # "worse" means one of these fell (U and S trade against each other)
# --quick: the smallest budgets that still run every stage (for tests and smoke checks, not for numbers)
QUICK = {
    "eszsl": ["--set", "grid=-1,0,1"],
    "cvc-zsl": ["--epochs", "2", "--episodes-per-epoch", "5", "--set", "inductive_epochs=2"],
    "cycle-wgan": ["--epochs", "2", "--set", "regressor_epochs=1", "--set", "pre_cls_epochs=1", "--set", "cls_epochs=2",
                   "--set", "hidden_g=64", "--set", "hidden_d=64"],
}
FOLD_FILE = re.compile(r"^fold(\d+)_att_splits\.mat$")
SETTINGS = ("inductive", "transductive")


class UsageError(Exception):
    """A bad command line (exit 2)."""


# ----------------------------------------------------------------------------------------------- datasets, folds

def discover_datasets(data_dir: Path) -> list[str]:
    """Folders of ``data_dir`` with a README.md and an att_splits.mat, sorted, except the split-only ones."""
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir()
                  if p.is_dir() and p.name not in EXCLUDED and (p / "README.md").is_file()
                  and (p / "att_splits.mat").is_file())


def dataset_folds(root: Path) -> list[int]:
    """Fold 0 (att_splits.mat) and every K of ``folds/foldK_att_splits.mat``."""
    extra = [int(m.group(1)) for p in (root / "folds").glob("fold*_att_splits.mat")
             if (m := FOLD_FILE.match(p.name)) and int(m.group(1)) > 0]
    return [0] + sorted(extra)


def fold_root(root: Path, fold: int, cache: Path) -> Path:
    """The folder to train fold ``fold`` on: ``root`` itself for fold 0, else a cached folder of symlinks."""
    if fold == 0:
        return root
    target = cache / root.name / f"fold{fold}"
    target.mkdir(parents=True, exist_ok=True)
    links = {p.name: p for p in root.iterdir() if p.is_file() and p.name not in ("att_splits.mat", "README.md")}
    links["att_splits.mat"] = root / "folds" / f"fold{fold}_att_splits.mat"
    for name, src in links.items():
        link = target / name
        if link.is_symlink() or link.exists():
            if link.is_symlink() and Path(os.readlink(link)) == src.resolve():
                continue
            link.unlink()
        link.symlink_to(src.resolve())
    return target


# ----------------------------------------------------------------------------------------------- README tables

def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_reference_table(readme: str, heading: str = "reference codes") -> list[dict]:
    """The rows of the first markdown table under the first heading that contains ``heading`` (case-insensitive),
    each as {"text": the row as written, "cells": {column header: cell}}; [] when there is no such table."""
    rows, header, in_section = [], None, False
    for line in readme.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if in_section and (header or rows):
                break
            in_section = heading.lower() in stripped.lower()
            continue
        if not in_section:
            continue
        if not stripped.startswith("|"):
            if header is not None:
                break  # the table ended
            continue
        cells = _cells(stripped)
        if header is None:
            header = cells
        elif all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
            continue  # the separator row
        else:
            cells += [""] * (len(header) - len(cells))
            rows.append({"text": stripped, "cells": dict(zip(header, cells))})
    return rows


def parse_reference_notes(readme: str, lead: str = "For scale") -> list[str]:
    """The README's paragraphs that hold ``lead``, from ``lead`` to the paragraph's end, each on one line (a set
    without a reference table states its numbers there)."""
    paragraphs = (" ".join(line.strip() for line in p.strip().splitlines()) for p in re.split(r"\n\s*\n", readme))
    return [p[p.index(lead):] for p in paragraphs if lead in p]


# ----------------------------------------------------------------------------------------------- runs

def run_key(method: str, setting: str, extra: str) -> str:
    return f"{method} {setting}" + (f" [{extra}]" if extra else "")


def parse_row(spec: str) -> tuple[str, str, list[str]]:
    """A ``--row`` spec "METHOD [SETTING] [zslkit train options]" as (method, setting, options); the setting
    defaults to inductive. UsageError for an empty spec or one that shlex cannot split."""
    try:
        words = shlex.split(spec)
    except ValueError as err:
        raise UsageError(f"--row {spec!r}: {err}") from None
    if not words or words[0].startswith("-"):
        raise UsageError(f"--row {spec!r}: give a method name first (e.g. \"cvc-zsl transductive --variant "
                         "reference\")")
    method, rest = words[0], words[1:]
    setting = rest.pop(0) if rest and rest[0] in SETTINGS else "inductive"
    return method, setting, rest


def train_command(method, setting, data_root, out, seed, extra_args) -> list[str]:
    return ["zslkit", "train", "--method", method, "--setting", setting, "--data-root", str(data_root),
            "--seed", str(seed), "--out", str(out), "--overwrite", "--no-progress", "--device", "cpu", *extra_args]


def run_one(job: dict) -> dict:
    """One ``zslkit train`` subprocess (one thread); its metrics.json read back, or the error it printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = Path(job["out"])
    started = time.perf_counter()
    try:
        proc = subprocess.run(job["command"], env=env, capture_output=True, text=True)
    except FileNotFoundError as err:
        return {**job, "ok": False, "error": f"cannot start {job['command'][0]}: {err}", "wall_s": 0.0}
    wall = round(time.perf_counter() - started, 2)
    result = {**job, "wall_s": wall, "returncode": proc.returncode}
    metrics_file = out / "metrics.json"
    if proc.returncode != 0 or not metrics_file.is_file():
        lines = [ln for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        return {**result, "ok": False, "error": lines[-1] if lines else f"exit {proc.returncode}, no metrics.json"}
    metrics = json.loads(metrics_file.read_text())
    sel = metrics.get("selection", {})
    return {**result, "ok": True, **{k: metrics[k] for k in METRICS},
            "gzsl_cs_h": metrics.get("gzsl_cs_h"), "chosen": sel.get("chosen"), "selection": sel.get("mode"),
            "criterion": sel.get("criterion"), "warnings": metrics.get("warnings", [])}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(results: list[dict]) -> list[dict]:
    """One row per (run key, dataset): mean and sample std over the finished folds, per-fold numbers, wall time."""
    rows = {}
    for r in sorted(results, key=lambda r: (r["key"], r["dataset"], r["fold"])):
        row = rows.setdefault((r["key"], r["dataset"]), {
            "key": r["key"], "method": r["method"], "setting": r["setting"], "extra": r["extra"],
            "dataset": r["dataset"], "folds": [], "failed": []})
        if r["ok"]:
            row["folds"].append({"fold": r["fold"], **{k: r[k] for k in METRICS}, "gzsl_cs_h": r["gzsl_cs_h"],
                                 "wall_s": r["wall_s"], "chosen": r["chosen"]})
        else:
            row["failed"].append({"fold": r["fold"], "error": r["error"]})
    for row in rows.values():
        done = row["folds"]
        for k in METRICS:
            if done:
                row[k], row[k + "_std"] = _mean_std([f[k] for f in done])
        if done and all(f["gzsl_cs_h"] is not None for f in done):  # calibrated H (calibration gamma from validation)
            row["gzsl_cs_h"], row["gzsl_cs_h_std"] = _mean_std([f["gzsl_cs_h"] for f in done])
        row["wall_s"] = round(sum(f["wall_s"] for f in done), 2)
    return sorted(rows.values(), key=lambda r: (r["dataset"], r["key"]))


# ----------------------------------------------------------------------------------------------- comparison

def compare(rows: list[dict], previous: dict) -> list[dict]:
    """Changes of the mean metrics against an earlier suite.json, matched by (run key, dataset), else by (method,
    setting, dataset) when the earlier suite has one such row (other extra options: a change of defaults tried
    through --extra); the worst change (most negative over T1, H and calibrated H) first, then the others by their
    worst."""
    before = {(r["key"], r["dataset"]): r for r in previous.get("rows", [])}
    by_method = {}  # (method, setting, dataset) -> rows: the fallback when the extra options differ
    for r in previous.get("rows", []):
        by_method.setdefault((r.get("method"), r.get("setting"), r["dataset"]), []).append(r)
    changes = []
    for row in rows:
        old = before.get((row["key"], row["dataset"]))
        if old is None:
            same = by_method.get((row.get("method"), row.get("setting"), row["dataset"]), [])
            old = same[0] if len(same) == 1 else None
        if old is None or "zsl_t1" not in row or "zsl_t1" not in old:
            continue
        delta = {k: row[k] - old[k] for k in COMPARED if row.get(k) is not None and old.get(k) is not None}
        changes.append({"key": row["key"], "dataset": row["dataset"], "delta": delta, "against": old["key"],
                        "worst": min(v for k, v in delta.items() if k in HEADLINE), "before": {k: old[k] for k in delta},
                        "after": {k: row[k] for k in delta}})
    return sorted(changes, key=lambda c: (c["worst"], c["key"], c["dataset"]))


# ----------------------------------------------------------------------------------------------- report

def _fmt(row: dict, k: str) -> str:
    return f"{row[k]:.3f} ± {row[k + '_std']:.3f}" if k in row else "–"


def markdown(report: dict) -> str:
    lines = [f"# Real-data suite ({report['finished']})", "",
             f"Real data, default options plus each row's options and `{report['extra'] or '(none)'}`, selection as "
             f"each run's default (validation unless the options say otherwise), seed {report['seed']}; commit "
             f"`{report['commit']}`{' (with uncommitted changes)' if report['dirty'] else ''} (each row: the "
             "commit it ran at, + = uncommitted changes in src/). Mean ± sample std over folds; per fold T1 / H; wall: "
             "seconds per fold (mean), on whatever else the machine was running.", ""]
    if report.get("quick"):
        lines += ["**`--quick` budgets: a smoke check, not numbers.**", ""]
    if report.get("changes") is not None:
        lines += [f"## Change against `{report['compared_with']}` (worst first)", ""]
        if not report["changes"]:
            lines.append("No row in common.")
        else:
            lines += ["| dataset | method, setting | against | ΔT1 | ΔU | ΔS | ΔH | ΔH calibrated |",
                      "|---|---|---|---|---|---|---|---|"]
            for c in report["changes"]:
                lines.append(f"| {c['dataset']} | {c['key']} | {c['against']} | " + " | ".join(
                    f"{c['delta'][k]:+.3f}" if k in c["delta"] else "–" for k in COMPARED) + " |")
        lines.append("")
    lines += ["## Rows", "",
              "| dataset | method, setting | folds | T1 | U | S | H | H calibrated | per fold T1 / H | wall s | commit |",
              "|---|---|---|---|---|---|---|---|---|---:|---|"]
    for row in report["rows"]:
        per_fold = ", ".join(f"{f['fold']}: {f['zsl_t1']:.3f} / {f['gzsl_h']:.3f}" for f in row["folds"])
        if row["failed"]:
            per_fold += "; FAILED " + ", ".join(str(f["fold"]) for f in row["failed"])
        wall = row["wall_s"] / len(row["folds"]) if row["folds"] else 0.0
        commit = (row.get("commit") or "?")[:7] + ("+" if row.get("dirty") else "")
        lines.append(f"| {row['dataset']} | {row['key']} | {len(row['folds'])} | " + " | ".join(
            _fmt(row, k) for k in METRICS + ("gzsl_cs_h",)) + f" | {per_fold} | {wall:.0f} | {commit} "
            f"{row.get('date', '')} |")
    for name, refs in report["references"].items():
        if refs:
            lines += ["", f"Reference rows from `{name}/README.md` (as written there):", ""]
            header = list(refs[0]["cells"])
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [r["text"] for r in refs]
    for name, notes in report.get("notes", {}).items():
        for note in notes:
            lines += ["", f"From `{name}/README.md`: {note}"]
    failures = [(r, f) for r in report["rows"] for f in r["failed"]]
    if failures:
        lines += ["", "## Failed runs", ""] + [f"- {r['dataset']} fold {f['fold']}, {r['key']}: {f['error']}"
                                                for r, f in failures]
    return "\n".join(lines) + "\n"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------- command line

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--methods", default="eszsl", help="comma-separated method names")
    p.add_argument("--settings", default="inductive", help="comma-separated: inductive, transductive")
    p.add_argument("--row", action="append", default=[], metavar="SPEC", help="a row \"METHOD [SETTING] "
                   "[zslkit train options]\" (repeatable; replaces --methods x --settings), e.g. "
                   "\"cvc-zsl transductive --variant reference\" or \"cycle-wgan --variant f-clswgan\"")
    p.add_argument("--extra", default="", help="more `zslkit train` options for every run, one string "
                   "(e.g. \"--variant reference\")")
    p.add_argument("--datasets", default=None, help="comma-separated dataset folder names (default: every "
                   "folder of --data-dir with a README.md and an att_splits.mat, except xlsa17)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="where the dataset folders are")
    p.add_argument("--folds", default=None, help="comma-separated fold numbers (default: all of each dataset)")
    p.add_argument("--seed", type=int, default=0, help="training seed of every run")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="runs at a time (one thread each)")
    p.add_argument("--out", type=Path, default=Path("runs/real_suite"), help="suite directory (runs/, folds/, "
                   "suite.json, suite.md)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where fold folders are built (default OUT/folds)")
    p.add_argument("--results", default=None, help="also write PREFIX.json and PREFIX.md (e.g. "
                   "benchmarks/results/real_suite)")
    p.add_argument("--compare", default=None, help="an earlier suite.json to compare with (default: the --results "
                   "PREFIX.json recorded before, if there is one; 'none': no comparison)")
    p.add_argument("--merge", action="store_true", help="keep the rows of the earlier record (--compare) that this "
                   "run does not repeat (other datasets, methods or settings; each row keeps its commit)")
    p.add_argument("--quick", action="store_true", help="tiny budgets (" + "; ".join(
        f"{m}: {' '.join(a)}" for m, a in QUICK.items()) + "), for tests; not for numbers")
    return p.parse_args(argv)


def plan(args) -> tuple[list[dict], dict, dict]:
    """The jobs of the suite, each dataset's reference rows and notes; UsageError for names that do not exist."""
    if not args.data_dir.is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such folder")
    known = discover_datasets(args.data_dir)
    names = [d for d in args.datasets.split(",") if d] if args.datasets else known
    unknown = [d for d in names if d not in known]
    if unknown:
        raise UsageError(f"--datasets: {', '.join(unknown)} not in {args.data_dir} (found: {', '.join(known)})")
    if not names:
        raise UsageError(f"--data-dir {args.data_dir}: no dataset folder with a README.md and an att_splits.mat")
    try:
        extra_args = shlex.split(args.extra)
    except ValueError as err:
        raise UsageError(f"--extra {args.extra!r}: {err}") from None
    if args.row:
        rows = [parse_row(spec) for spec in args.row]
    else:
        methods = [m for m in args.methods.split(",") if m]
        settings = [s for s in args.settings.split(",") if s]
        bad = [s for s in settings if s not in SETTINGS]
        if bad or not methods or not settings:
            raise UsageError(f"--settings: {', '.join(bad) or 'none given'}; choose inductive and/or transductive")
        rows = [(m, s, []) for m in methods for s in settings]
    wanted = None
    if args.folds:
        try:
            wanted = {int(f) for f in args.folds.split(",") if f}
        except ValueError:
            raise UsageError(f"--folds {args.folds!r}: comma-separated integers") from None
    cache = args.cache_dir or args.out / "folds"
    jobs, references, notes = [], {}, {}
    for name in names:
        root = args.data_dir / name
        readme = (root / "README.md").read_text(errors="replace")
        references[name], notes[name] = parse_reference_table(readme), parse_reference_notes(readme)
        folds = dataset_folds(root)
        if wanted is not None:
            missing = sorted(wanted - set(folds))
            if missing:
                raise UsageError(f"--folds: {name} has folds {folds}, not {missing}")
            folds = [f for f in folds if f in wanted]
        for fold in folds:
            data_root = fold_root(root, fold, cache)
            for method, setting, own in rows:
                quick = QUICK.get(method, []) if args.quick else []
                extra = shlex.join(own + extra_args)
                key = run_key(method, setting, extra)
                out = args.out / "runs" / re.sub(r"[^A-Za-z0-9_.=-]+", "_", key).strip("_") / name / f"fold{fold}"
                jobs.append({"key": key, "method": method, "setting": setting, "extra": extra,
                             "dataset": name, "fold": fold, "out": str(out),
                             "command": train_command(method, setting, data_root, out, args.seed,
                                                      own + extra_args + quick)})
    return jobs, references, notes


def previous_record(args) -> Path | None:
    """The earlier suite.json to compare with: --compare, else the --results PREFIX.json if it exists."""
    if args.compare is not None:
        return None if args.compare.lower() == "none" else Path(args.compare)
    if args.results and Path(f"{args.results}.json").is_file():
        return Path(f"{args.results}.json")
    return None


def merge_rows(rows: list[dict], previous: dict) -> list[dict]:
    """This run's rows plus the earlier record's rows for (run key, dataset) pairs this run did not repeat."""
    now = {(r["key"], r["dataset"]) for r in rows}
    kept = [r for r in previous.get("rows", []) if (r["key"], r["dataset"]) not in now]
    return sorted(rows + kept, key=lambda r: (r["dataset"], r["key"]))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.workers < 1:
            raise UsageError("--workers must be at least 1")
        compare_with = previous_record(args)
        previous = None
        if compare_with is not None:
            try:
                previous = json.loads(compare_with.read_text())
                if not isinstance(previous, dict) or not isinstance(previous.get("rows"), list):
                    raise ValueError("no 'rows' list")
            except (OSError, ValueError) as err:
                raise UsageError(f"--compare {compare_with}: cannot read it as a suite JSON ({err})") from None
        elif args.merge:
            raise UsageError("--merge needs an earlier record: --compare FILE, or --results PREFIX with a PREFIX.json")
        jobs, references, notes = plan(args)
    except UsageError as err:
        print(f"real_suite: error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} runs, {args.workers} at a time, into {args.out}", flush=True)
    started = time.perf_counter()
    commit, dirty = _git("rev-parse", "HEAD"), bool(_git("status", "--porcelain", "--", "src"))  # at the start

    def announce(job):
        r = run_one(job)
        status = (f"T1 {r['zsl_t1']:.3f} H {r['gzsl_h']:.3f}" if r["ok"] else f"FAILED: {r['error']}")
        print(f"  {r['dataset']} fold {r['fold']} {r['key']}: {status} ({r['wall_s']:.0f} s)", flush=True)
        return r

    try:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(announce, jobs))
    except KeyboardInterrupt:  # the runs share the terminal's process group: they got the signal too
        print("real_suite: interrupted; nothing recorded", file=sys.stderr)
        return 130
    rows = aggregate(results)
    for row in rows:
        row.update(commit=commit, dirty=dirty, date=time.strftime("%Y-%m-%d", time.gmtime()), quick=args.quick,
                   seed=args.seed)
    report = {"finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit, "dirty": dirty,
              "seed": args.seed, "extra": args.extra, "quick": args.quick, "workers": args.workers,
              "wall_s": round(time.perf_counter() - started, 1),
              "data": "real", "rows": rows, "references": references, "notes": notes, "runs": results}
    if previous is not None:
        report["compared_with"] = str(compare_with)
        report["changes"] = compare(rows, previous)
        if args.merge:
            report["rows"] = merge_rows(rows, previous)
            report["references"] = {**previous.get("references", {}), **references}
            report["notes"] = {**previous.get("notes", {}), **notes}
    text = markdown(report)
    targets = [args.out / "suite"] + ([Path(args.results)] if args.results else [])
    for prefix in targets:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        Path(f"{prefix}.json").write_text(json.dumps(report, indent=1) + "\n")
        Path(f"{prefix}.md").write_text(text)
    if previous is not None:
        worse = [c for c in report["changes"] if c["worst"] < 0]
        print(f"\nagainst {compare_with}: " + ("worse than before:" if worse else "nothing got worse than before"))
        for c in worse:
            print(f"  {c['dataset']} {c['key']}: " + ", ".join(f"{LABELS[k]} {v:+.3f}" for k, v in c["delta"].items()))
    print("\n" + text)
    print("wrote " + ", ".join(f"{p}.json/.md" for p in targets))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
