"""Comparison tables over run directories (mean +- std over seeds) and published numbers as data."""

from __future__ import annotations

import csv
import io
import math
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from zslkit.errors import ConfigError
from zslkit.runs import open_finished_run

METRICS = ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "gzsl_cs_h", "ausuc")
METRIC_LABELS = {"zsl_t1": "ZSL T1", "gzsl_u": "GZSL U", "gzsl_s": "GZSL S", "gzsl_h": "GZSL H",
                 "gzsl_cs_h": "GZSL H (calibrated)", "ausuc": "AUSUC"}


def load_published() -> dict:
    text = resources.files("zslkit.reporting").joinpath("published.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def published_entry(paper: str) -> dict:
    table = load_published()
    if paper not in table:
        raise ConfigError(f"unknown paper {paper!r}; choose one of {', '.join(table)}")
    return table[paper]


def load_run(path: str | Path) -> dict:
    info = open_finished_run(path)
    cfg, m = info["config"], info["metrics"]
    variant = (cfg.get("method_config") or {}).get("variant")
    return {"path": str(path), "method": m["method"] + (f" ({variant})" if variant and variant != m["method"] else ""),
            "dataset": m["dataset"], "synthetic": bool(m.get("synthetic")), "setting": m["setting"],
            "selection": m["selection"]["mode"], "seed": m["seed"], "metrics": m,
            "wall_time_s": m.get("wall_time_s", info["provenance"].get("wall_time_s"))}


def mean_std(values: list[float]) -> tuple[float, float, int]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return float("nan"), float("nan"), 0
    arr = np.asarray(vals, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size)


def aggregate(runs: list[dict]) -> list[dict]:
    """One row per (method, dataset, data kind, setting, selection) with mean/std over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        key = (r["method"], r["dataset"], r["synthetic"], r["setting"], r["selection"])
        groups.setdefault(key, []).append(r)
    rows = []
    for (method, dataset, synthetic, setting, selection), members in sorted(groups.items(), key=lambda kv: kv[0]):
        row = {"method": method, "dataset": dataset, "data": "synthetic" if synthetic else "real",
               "setting": setting, "selection": selection, "seeds": sorted(r["seed"] for r in members)}
        for k in METRICS:
            row[k] = mean_std([r["metrics"].get(k) for r in members])
        row["wall_time_s"] = mean_std([r["wall_time_s"] for r in members])
        rows.append(row)
    return rows


def fmt(ms: tuple[float, float, int], scale: float = 100.0, digits: int = 1) -> str:
    mean, std, n = ms
    if n == 0:
        return "–"
    if n == 1:
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def render_rows(rows: list[dict], fmt_kind: str = "markdown") -> str:
    header = ["method", "dataset", "data", "setting", "selection", "seeds"] + [METRIC_LABELS[k] for k in METRICS] \
        + ["wall time (s)"]
    body = []
    for r in rows:
        body.append([r["method"], r["dataset"], r["data"], r["setting"], r["selection"],
                     ",".join(map(str, r["seeds"]))] + [fmt(r[k]) for k in METRICS]
                    + [fmt(r["wall_time_s"], scale=1.0, digits=1)])
    return render(header, body, fmt_kind)


def render(header: list[str], body: list[list], fmt_kind: str = "markdown") -> str:
    if fmt_kind == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(body)
        return buf.getvalue()
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"
