"""A paper's protocol over seeds, side by side with its published numbers (``zslkit reproduce``).

``reproduce(paper, dataset, ...)`` runs validation-selected seeds and oracle (test-selected) seeds in
``OUT/<selection>-seed<S>`` (finished runs are reused, so an interrupted reproduction continues), then writes
``OUT/reproduce.{md,csv,json}``: published value and source, our mean ± std, our oracle numbers. The
published numbers are data in ``reporting/published.yaml``, each with its source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from zslkit.errors import ConfigError
from zslkit.experiment import RunSpec, execute
from zslkit.reporting.tables import METRIC_LABELS, METRICS, fmt, load_published, mean_std, published_entry, render
from zslkit.runs import atomic_write_bytes, atomic_write_json


def papers() -> list[str]:
    """The papers with published numbers (``reproduce --paper`` choices)."""
    return list(load_published())


def benchmark_of(dataset_name: str) -> str:
    """Real benchmark a dataset name refers to: 'synthetic-cub-sent' -> 'CUB', 'AWA1' -> 'AWA1'."""
    return dataset_name.removeprefix("synthetic-").split("-")[0].split("[")[0].upper()


def real_benchmark(bench: str) -> bool:
    """Whether ``bench`` (from ``benchmark_of``) names a real benchmark (synthetic-tiny's 'TINY' does not)."""
    from zslkit.data.catalog import REAL_BENCHMARKS

    return bench in REAL_BENCHMARKS


def default_out(paper: str, dataset: str) -> Path:
    return Path(f"runs/reproduce-{paper}-{dataset}")


@dataclass
class Reproduction:
    """What ``reproduce`` wrote: the Markdown table (also in ``out/reproduce.md``) and the JSON record."""

    out: Path
    markdown: str
    record: dict


def _resolve_data(paper: str, dataset: str, data_root: str | None, semantic: str | None, published: dict):
    """(dataset spec, semantic source, "SYNTHETIC" | "real") for a reproduction of ``paper`` on ``dataset``."""
    from zslkit.data.catalog import REAL_BENCHMARKS
    from zslkit.data.synthetic import PRESETS

    if dataset in PRESETS:
        return dataset, None, "SYNTHETIC"
    if dataset.upper() in REAL_BENCHMARKS:
        if not data_root:
            raise ConfigError(
                f"{dataset} is a real benchmark: its features are not shipped. Download the xlsa17 archive with "
                f"`zslkit data download xlsa17 --to DATA_DIR` and pass --data-root DATA_DIR/{dataset.upper()}, "
                f"or run the same protocol on the synthetic dataset of the same shape: "
                f"`zslkit reproduce --paper {paper} --dataset synthetic-{dataset.lower()}`")
        return data_root, semantic or published.get("semantic"), "real"
    raise ConfigError(f"unknown dataset {dataset!r}: use one of {', '.join(REAL_BENCHMARKS)} with "
                      f"--data-root, or a synthetic preset ({', '.join(PRESETS)})")


def reproduce(paper: str, dataset: str, *, data_root: str | None = None, semantic: str | None = None,
              seeds: int = 5, oracle_seeds: int = 1, out: str | Path | None = None, device: str = "auto",
              overrides: dict | None = None, progress: bool = False, address: str | None = None,
              on_run: Callable[[str, int, Path], None] | None = None, show_table=None) -> Reproduction:
    """Run the reproduction (see the module docstring). ``on_run(selection, seed, run_dir)`` is called before
    each run that is not finished yet; ``address`` runs them as Ray Tune trials on that cluster (as ``zslkit
    sweep`` does), with ``show_table(text)`` showing its live table."""
    from zslkit.data.catalog import open_dataset

    if seeds < 0 or oracle_seeds < 0:
        raise ConfigError("--seeds and --oracle-seeds must be 0 or more")
    if seeds + oracle_seeds == 0:
        raise ConfigError("--seeds 0 --oracle-seeds 0 runs nothing: give at least one seed (--seeds N, N >= 1, for "
                          "validation-selected runs, or --oracle-seeds N)")
    entry = published_entry(paper)
    bench = benchmark_of(dataset)
    published = entry["datasets"].get(bench, {"metrics": {}, "semantic": None})
    spec_dataset, semantic, data_kind = _resolve_data(paper, dataset, data_root, semantic, published)
    data = open_dataset(spec_dataset, semantic=semantic)
    out = Path(out) if out else default_out(paper, dataset)
    overrides = dict(overrides or {})
    if entry.get("variant"):
        overrides.setdefault("variant", entry["variant"])
    if address and Path(spec_dataset).exists():  # every node must find the data
        spec_dataset = str(Path(spec_dataset).resolve())

    def spec_of(selection: str, seed: int) -> RunSpec:
        return RunSpec(method=entry["method"], dataset=spec_dataset, semantic=semantic, setting=entry["setting"],
                       selection=selection, seed=seed, device=device, overrides=dict(overrides))

    runs = [(sel, s) for sel, n in (("validation", seeds), ("oracle", oracle_seeds)) for s in range(n)]
    todo = [(sel, s) for sel, s in runs if not (out / f"{sel}-seed{s}" / "metrics.json").is_file()]
    if address and todo:  # every run as a Ray Tune trial, the path zslkit sweep uses (docs/sweeps.md)
        from zslkit.sweep.engine import run_specs

        run_specs([(spec_of(sel, s), out / f"{sel}-seed{s}") for sel, s in todo], address=address, root=out,
                  progress=show_table)
    results: dict[str, list[dict]] = {"validation": [], "oracle": []}
    for sel, s in runs:
        run_dir = out / f"{sel}-seed{s}"
        if (run_dir / "metrics.json").is_file():  # resume a partly done reproduction
            results[sel].append(json.loads((run_dir / "metrics.json").read_text()))
            continue
        if on_run is not None:
            on_run(sel, s, run_dir)
        results[sel].append(execute(spec_of(sel, s), run_dir, progress=progress, dataset=data))
    return _write_tables(entry, paper, data, data_kind, bench, published, results, out)


def _write_tables(entry: dict, paper: str, data, data_kind: str, bench: str, published: dict, results: dict,
                  out: Path) -> Reproduction:
    val_runs, oracle_runs = results["validation"], results["oracle"]
    real = real_benchmark(bench)
    header = ["metric", f"published ({bench}, real data)" if real else "published (no real benchmark)", "source",
              f"ours: validation-selected, mean ± std over {len(val_runs)} seeds ({data_kind})",
              f"ours: ORACLE (test-selected), {len(oracle_runs)} seed(s) ({data_kind})"]
    body, rows = [], []
    for k in METRICS:
        pub = published["metrics"].get(k)
        v = mean_std([r[k] for r in val_runs if k in r])
        o = mean_std([r[k] for r in oracle_runs if k in r])
        body.append([METRIC_LABELS[k], f"{pub['value']:.1f}" if pub else ("n/f" if real else "–"),
                     f"[{pub['tag']}] {pub['source']}" if pub else "–", fmt(v), fmt(o)])
        rows.append({"metric": k, "published": pub["value"] / 100 if pub else None,
                     "published_source": pub["source"] if pub else None,
                     "published_tag": pub["tag"] if pub else None,
                     "validation_mean": v[0], "validation_std": v[1], "validation_n": v[2],
                     "oracle_mean": o[0], "oracle_std": o[1], "oracle_n": o[2]})
    title = (f"# {entry['title']}\n\nzslkit reproduction: {entry['method']}"
             f"{' (' + entry['variant'] + ')' if entry.get('variant') else ''}, {entry['setting']}, on "
             f"{data.name} ({data_kind} data, semantic {data.semantic_source}).\n")
    if data_kind == "SYNTHETIC" and not real:
        title += (f"\n{data.name} is shaped like no real benchmark (there is no real {bench}): there are no published "
                  f"numbers to compare with; our columns are on zslkit's SYNTHETIC data and check the protocol only.\n")
    elif data_kind == "SYNTHETIC":
        title += (f"\nThe published column is for the REAL {bench} benchmark; our columns are on zslkit's SYNTHETIC "
                  f"dataset of the same shape, so the numbers are not comparable, only the protocol is.\n")
    wall = sum(r.get("wall_time_s", 0.0) for r in val_runs + oracle_runs)
    md = title + "\n" + render(header, body) + f"\nTotal training time: {wall:.0f} s.\n"
    record = {"paper": paper, "title": entry["title"], "dataset": data.name, "data": data_kind,
              "benchmark": bench if real else None,
              "seeds": [r["seed"] for r in val_runs], "oracle_seeds": [r["seed"] for r in oracle_runs],
              "rows": rows, "wall_time_s": wall}
    atomic_write_bytes(md.encode("utf-8"), out / "reproduce.md")
    atomic_write_bytes(render(header, body, "csv").encode("utf-8"), out / "reproduce.csv")
    atomic_write_json(record, out / "reproduce.json")
    return Reproduction(out=out, markdown=md, record=record)
