"""Comparison tables over run directories (mean +- std over seeds) and published numbers as data."""

from __future__ import annotations

import csv
import io
import json
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


#: config.json fields that do not define a configuration (how and where it ran, not what)
NOT_CONFIG = {"seed", "device", "checkpoint_every", "deterministic", "method_config", "method", "setting",
              "selection", "dataset_name", "synthetic", "dataset", "data_root"}  # the data: by source / split hash
#: the columns every row shows; runs with the same labels and another configuration get a "config" entry
LABELS = ("method", "dataset", "data", "setting", "selection")


def config_fields(cfg: dict, metrics: dict, provenance: dict) -> dict[str, str]:
    """The fields that define a run's configuration, as canonical JSON strings: the command's settings, the
    resolved method config less the fields selection chose (an outcome, not a setting), the data (source and
    split sha256) and the selection criterion. The seed is not one of them."""
    out = {}
    for key, value in cfg.items():
        if key not in NOT_CONFIG:
            out[key] = value
    chosen = set(((metrics.get("selection") or {}).get("chosen") or {}))
    for key, value in (cfg.get("method_config") or {}).items():
        if key not in chosen:
            out[f"method_config.{key}"] = value
    data = provenance.get("dataset") or {}
    out["data.split_sha256"] = data.get("split_sha256")
    if data.get("split_classes_sha256"):
        out["data.split_classes_sha256"] = data["split_classes_sha256"]
    out["data.source"] = None if data.get("split_sha256") else data.get("source")  # a path only when no hash
    out["data.semantic_source"] = data.get("semantic_source", metrics.get("semantic_source"))
    out["selection.criterion"] = (metrics.get("selection") or {}).get("criterion")
    resolved = set(cfg.get("method_config") or {}) - chosen
    if isinstance(out.get("overrides"), dict):  # one entry per override (the resolved value when there is one)
        for key, value in out.pop("overrides").items():
            if key not in resolved:
                out[f"overrides.{key}"] = value
    return {k: json.dumps(v, sort_keys=True, default=str) for k, v in out.items()}


def load_run(path: str | Path) -> dict:
    info = open_finished_run(path)
    cfg, m = info["config"], info["metrics"]
    variant = (cfg.get("method_config") or {}).get("variant")
    return {"path": str(path), "method": m["method"] + (f" ({variant})" if variant and variant != m["method"] else ""),
            "dataset": m["dataset"], "synthetic": bool(m.get("synthetic")), "setting": m["setting"],
            "selection": m["selection"]["mode"], "seed": m["seed"], "metrics": m,
            "config": config_fields(cfg, m, info["provenance"]),
            "wall_time_s": m.get("wall_time_s", info["provenance"].get("wall_time_s"))}


def mean_std(values: list[float]) -> tuple[float, float, int]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return float("nan"), float("nan"), 0
    arr = np.asarray(vals, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size)


def _label(r: dict) -> tuple:
    return (r["method"], r["dataset"], "synthetic" if r["synthetic"] else "real", r["setting"], r["selection"])


def aggregate(runs: list[dict]) -> list[dict]:
    """One row per configuration (the labels of ``LABELS`` and every field of ``config_fields``), mean/std over
    its seeds, each seed counted once: a seed run twice keeps its first run (by path) and the row lists the
    others in ``duplicates``. Rows with the same labels say in ``config`` which fields set them apart."""
    groups: dict[tuple, list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["path"]):
        key = _label(r) + (tuple(sorted(r["config"].items())),)
        groups.setdefault(key, []).append(r)
    by_label: dict[tuple, list[dict]] = {}
    for key, members in groups.items():
        by_label.setdefault(key[:len(LABELS)], []).append(members[0]["config"])
    rows = []
    for key, members in sorted(groups.items(), key=lambda kv: kv[0][:len(LABELS)]):
        kept: dict[int, dict] = {}
        duplicates = []
        for r in members:
            if r["seed"] in kept:
                duplicates.append({"seed": r["seed"], "kept": kept[r["seed"]]["path"], "dropped": r["path"]})
            else:
                kept[r["seed"]] = r
        use = [kept[s] for s in sorted(kept)]
        row = dict(zip(LABELS, key[:len(LABELS)]), seeds=sorted(kept), runs=[r["path"] for r in use],
                   config=_differences(members[0]["config"], by_label[key[:len(LABELS)]]), duplicates=duplicates)
        for k in METRICS:
            row[k] = mean_std([r["metrics"].get(k) for r in use])
        row["wall_time_s"] = mean_std([r["wall_time_s"] for r in use])
        rows.append(row)
    return rows


def _differences(config: dict, others: list[dict]) -> dict[str, object]:
    """The fields of ``config`` whose values are not the same in every configuration of ``others``."""
    names = sorted(set().union(*others))
    out = {}
    for name in names:
        if len({o.get(name, "(absent)") for o in others}) > 1:
            out[name.removeprefix("overrides.").removeprefix("method_config.")] = (
                json.loads(config[name]) if name in config else "(absent)")
    return out


def config_text(config: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items()) or "-"


def notes(rows: list[dict]) -> list[str]:
    """What a reader must know about a table of ``aggregate`` rows: duplicate seeds left out, and what sets apart
    rows with the same labels."""
    out = []
    for r in rows:
        for d in r["duplicates"]:
            out.append(f"seed {d['seed']} of {r['method']} on {r['dataset']} was run more than once with the same "
                       f"configuration: counted once ({d['kept']}); left out: {d['dropped']}")
    seen = set()
    for r in rows:
        label = tuple(r[k] for k in LABELS)
        if r["config"] and label not in seen:
            seen.add(label)
            fields = ", ".join(sorted(r["config"]))
            out.append(f"{r['method']} / {r['dataset']} / {r['setting']} / {r['selection']}: rows differ in "
                       f"{fields} (column config); they are separate configurations, not seeds of one")
    return out


def fmt(ms: tuple[float, float, int], scale: float = 100.0, digits: int = 1) -> str:
    mean, std, n = ms
    if n == 0:
        return "–"
    if n == 1:
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def render_rows(rows: list[dict], fmt_kind: str = "markdown") -> str:
    header = ["method", "dataset", "data", "setting", "selection", "config", "seeds"] \
        + [METRIC_LABELS[k] for k in METRICS] + ["wall time (s)"]
    body = []
    for r in rows:
        body.append([r["method"], r["dataset"], r["data"], r["setting"], r["selection"], config_text(r["config"]),
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
