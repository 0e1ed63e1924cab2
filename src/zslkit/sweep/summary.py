"""Choosing a configuration per dataset on validation, and ``SWEEP_DIR/summary.{md,csv,json}``.

Built from the run directories alone (``runs/<dataset>/<configuration>/seed<S>/``: ``sweep_trial.json``
and, for finished runs, ``metrics.json``), so ``zslkit report SWEEP_DIR`` rebuilds it without Ray.
A configuration is eligible when all the sweep's seeds finished; the chosen one has the best mean over
seeds of the validation criterion (ties: the first in name order). Only its test numbers are shown;
with ``show_all_test`` the others' are added, labelled ORACLE (picking among them would be selection
on the test set).
"""

from __future__ import annotations

import json
from pathlib import Path

from zslkit.reporting.tables import METRIC_LABELS, METRICS, fmt, mean_std, render
from zslkit.runs import atomic_write_bytes, atomic_write_json, read_json
from zslkit.sweep.space import SweepPlan
from zslkit.sweep.trial import RECORD

PLAN_FILE = "sweep.json"
SUMMARY_FILES = ("summary.md", "summary.csv", "summary.json")


def is_sweep(path: str | Path) -> bool:
    from zslkit.sweep import storage

    if storage.is_uri(path):
        return storage.exists(storage.join(str(path), PLAN_FILE))
    return (Path(path) / PLAN_FILE).is_file()


def collect(root: Path) -> list[dict]:
    """One entry per trial run directory: dataset, configuration, seed, status, validation and test numbers."""
    trials = []
    for rec_path in sorted(Path(root, "runs").glob(f"*/*/seed*/{RECORD}")):
        run_dir = rec_path.parent
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
        metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else None
        val = (metrics["selection"].get("validation_metrics") if metrics else rec.get("best")) or {}
        status = "finished" if metrics else rec.get("status", "?")
        if status == "running":  # killed with the sweep (Ctrl-C) or still running
            status = "unfinished"
        trials.append({"dataset": rec["dataset"], "configuration": run_dir.parent.name, "params": rec["params"],
                       "seed": rec["seed"], "status": status, "attempts": rec.get("attempts", 1),
                       "evaluations": rec.get("evaluations", 0), "validation": val, "error": rec.get("error"),
                       "test": {k: metrics[k] for k in METRICS if k in metrics} if metrics else None,
                       "synthetic": bool(metrics["synthetic"]) if metrics else None, "run_dir": str(run_dir)})
    return trials


def choose(trials: list[dict], plan: SweepPlan) -> dict:
    """Per dataset: every configuration's validation mean ± std over seeds, and the chosen one."""
    crit, seeds = plan.criterion, set(plan.seeds)
    out = {}
    for ds in sorted({t["dataset"] for t in trials}):
        configs = {}
        for t in (t for t in trials if t["dataset"] == ds):
            configs.setdefault(t["configuration"], []).append(t)
        rows = []
        for name in sorted(configs):
            members = configs[name]
            done = [t for t in members if t["status"] == "finished"]
            rows.append({"configuration": name, "params": members[0]["params"],
                         "seeds_finished": sorted(t["seed"] for t in done),
                         "eligible": {t["seed"] for t in done} >= seeds,
                         "validation": mean_std([t["validation"].get(crit) for t in done]),
                         "test": {k: mean_std([t["test"].get(k) for t in done]) for k in METRICS},
                         "synthetic": any(t["synthetic"] for t in done)})
        eligible = [r for r in rows if r["eligible"]]
        best = max(eligible, key=lambda r: r["validation"][0], default=None)
        for r in rows:
            r["chosen"] = r is best
        out[ds] = {"configurations": rows, "chosen": best["configuration"] if best else None}
    return out


def build(root: str | Path, show_all_test: bool = False) -> dict:
    from zslkit.sweep import storage

    root = storage.local_root(root)  # a storage URI is read through its local staging copy
    plan = SweepPlan.from_json(read_json(root / PLAN_FILE))
    trials = collect(root)
    chosen = choose(trials, plan)
    if not show_all_test:
        for t in trials:
            t["test"] = None
        for ds in chosen.values():
            for r in ds["configurations"]:
                if not r["chosen"]:
                    r["test"] = None
    return {"plan": plan.to_json(), "criterion": plan.criterion, "seeds": plan.seeds, "show_all_test": show_all_test,
            "datasets": chosen, "trials": trials}


def _config_rows(summary: dict) -> tuple[list[str], list[list]]:
    crit = summary["criterion"]
    header = ["dataset", "data", "configuration", "seeds finished", f"validation {crit} (mean ± std)", "chosen",
              "test numbers"] + [METRIC_LABELS[k] for k in METRICS]
    body = []
    for ds, info in summary["datasets"].items():
        for r in info["configurations"]:
            label = ("chosen on validation" if r["chosen"] else "ORACLE (not chosen; test-set comparison only)"
                     if r["test"] else "hidden (not chosen)")
            tests = [fmt(r["test"][k]) if r["test"] else "–" for k in METRICS]
            body.append([ds, "synthetic" if r["synthetic"] else "real", r["configuration"],
                         ",".join(map(str, r["seeds_finished"])) or "–", fmt(r["validation"]),
                         "yes" if r["chosen"] else "", label] + tests)
    return header, body


def _trial_rows(summary: dict) -> tuple[list[str], list[list]]:
    crit = summary["criterion"]
    header = ["dataset", "configuration", "seed", "status", "attempts", "evaluations", f"validation {crit}",
              "validation ZSL T1", "validation GZSL H"]
    body = [[t["dataset"], t["configuration"], t["seed"], t["status"], t["attempts"], t["evaluations"],
             fmt((t["validation"].get(crit), 0, 1) if crit in t["validation"] else (0, 0, 0)),
             fmt((t["validation"].get("zsl_t1"), 0, 1) if "zsl_t1" in t["validation"] else (0, 0, 0)),
             fmt((t["validation"].get("gzsl_h"), 0, 1) if "gzsl_h" in t["validation"] else (0, 0, 0))]
            for t in summary["trials"]]
    return header, body


def render_summary(summary: dict, fmt_kind: str = "markdown") -> str:
    if fmt_kind == "json":
        return json.dumps(summary, indent=2, default=str) + "\n"
    header, body = _config_rows(summary)
    if fmt_kind == "csv":
        return render(header, body, "csv")
    plan = summary["plan"]
    seeds = ",".join(map(str, summary["seeds"]))
    lines = [f"# Sweep: {plan['method']} ({plan['setting']}), search {plan['search']}, scheduler {plan['scheduler']}",
             "",
             f"Each configuration is chosen per dataset by its validation {summary['criterion']} (validation classes "
             f"of trainval, never test), mean over seeds {seeds}; test numbers (percent, mean ± std over seeds) are "
             f"shown for the chosen configuration only"
             + (", and labelled ORACLE for the others (--show-all-test)." if summary["show_all_test"] else "."),
             ""]
    for ds, info in summary["datasets"].items():
        lines.append(f"- {ds}: chosen {info['chosen'] or 'none (no configuration finished every seed)'}")
    lines += ["", "## Configurations", "", render(header, body).rstrip(), "", "## Trials", "",
              render(*_trial_rows(summary)).rstrip(), ""]
    if any(r["synthetic"] for info in summary["datasets"].values() for r in info["configurations"]):
        lines.append("Rows with data 'synthetic' come from zslkit's generated datasets, not the real benchmarks.")
    return "\n".join(lines) + "\n"


def write(root: str | Path, show_all_test: bool = False) -> dict:
    summary = build(root, show_all_test)
    root = Path(root)
    atomic_write_bytes(render_summary(summary).encode("utf-8"), root / "summary.md")
    atomic_write_bytes(render_summary(summary, "csv").encode("utf-8"), root / "summary.csv")
    atomic_write_json(summary, root / "summary.json")
    return summary
