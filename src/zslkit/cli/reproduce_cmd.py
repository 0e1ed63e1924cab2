"""``zslkit reproduce --paper P --dataset NAME``: the paper's protocol over seeds, side by side with the
published numbers (validation-selected mean ± std, and the oracle selection the reference codes use)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="run a paper's protocol over seeds and compare with its published numbers")
    p.add_argument("--paper", required=True, choices=["cvc-zsl", "cycle-wgan", "f-clswgan"])
    p.add_argument("--dataset", required=True,
                   help="a benchmark name (AWA1, AWA2, CUB, SUN, APY, FLO; needs --data-root) or a synthetic preset")
    p.add_argument("--data-root", help="folder holding the real benchmark (res101.mat + split file, or another layout)")
    p.add_argument("--semantic", help="override the semantic source the paper used for this dataset")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1) for the validation runs")
    p.add_argument("--oracle-seeds", type=int, default=1, help="seeds for the oracle (test-selected) runs")
    p.add_argument("--out", help="output folder (default runs/reproduce-<paper>-<dataset>)")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--address", help="run the seeds as Ray Tune trials on this Ray cluster (auto, HOST:PORT or "
                                     "ray://HOST:PORT), as zslkit sweep does; needs pip install 'zslkit[sweep]'")
    p.set_defaults(func=run)


def benchmark_of(dataset_name: str) -> str:
    """Real benchmark a dataset name refers to: 'synthetic-cub-sent' -> 'CUB', 'AWA1' -> 'AWA1'."""
    return dataset_name.removeprefix("synthetic-").split("-")[0].split("[")[0].upper()


def run(args) -> int:
    from zslkit.data.catalog import REAL_BENCHMARKS, open_dataset
    from zslkit.data.synthetic import PRESETS
    from zslkit.errors import ConfigError
    from zslkit.cli.train_cmd import collect_overrides
    from zslkit.experiment import RunSpec, execute
    from zslkit.reporting.tables import METRIC_LABELS, METRICS, fmt, mean_std, published_entry, render
    from zslkit.runs import atomic_write_bytes, atomic_write_json

    entry = published_entry(args.paper)
    bench = benchmark_of(args.dataset)
    published = entry["datasets"].get(bench, {"metrics": {}, "semantic": None})
    if args.dataset in PRESETS:
        spec_dataset, semantic, data_kind = args.dataset, None, "SYNTHETIC"
    elif args.dataset.upper() in REAL_BENCHMARKS:
        if not args.data_root:
            raise ConfigError(
                f"{args.dataset} is a real benchmark: its features are not shipped. Download the xlsa17 archive with "
                f"`zslkit data download xlsa17 --to DATA_DIR` and pass --data-root DATA_DIR/{args.dataset.upper()}, "
                f"or run the same protocol on the synthetic dataset of the same shape: "
                f"`zslkit reproduce --paper {args.paper} --dataset synthetic-{args.dataset.lower()}`")
        spec_dataset, semantic, data_kind = args.data_root, args.semantic or published.get("semantic"), "real"
    else:
        raise ConfigError(f"unknown dataset {args.dataset!r}: use one of {', '.join(REAL_BENCHMARKS)} with "
                          f"--data-root, or a synthetic preset ({', '.join(PRESETS)})")
    dataset = open_dataset(spec_dataset, semantic=semantic)
    out = Path(args.out or f"runs/reproduce-{args.paper}-{args.dataset}")
    overrides = collect_overrides(args)
    if entry.get("variant"):
        overrides.setdefault("variant", entry["variant"])

    def spec_of(selection: str, seed: int) -> RunSpec:
        return RunSpec(method=entry["method"], dataset=spec_dataset, semantic=semantic, setting=entry["setting"],
                       selection=selection, seed=seed, device=args.device, overrides=dict(overrides))

    def one(selection: str, seed: int) -> dict:
        run_dir = out / f"{selection}-seed{seed}"
        if (run_dir / "metrics.json").is_file():  # resume a partly done reproduction
            return json.loads((run_dir / "metrics.json").read_text())
        spec = spec_of(selection, seed)
        print(f"[{args.paper} on {dataset.name} ({data_kind})] {selection} run, seed {seed} -> {run_dir}")
        return execute(spec, run_dir, progress=not args.no_progress, dataset=dataset)

    if args.address:  # every run as a Ray Tune trial, the path zslkit sweep uses (docs/sweeps.md)
        from zslkit.sweep import SweepError
        from zslkit.sweep.engine import run_specs

        if Path(spec_dataset).exists():
            spec_dataset = str(Path(spec_dataset).resolve())
        runs = [(sel, s) for sel, n in (("validation", args.seeds), ("oracle", args.oracle_seeds)) for s in range(n)]
        try:
            run_specs([(spec_of(sel, s), out / f"{sel}-seed{s}") for sel, s in runs
                       if not (out / f"{sel}-seed{s}" / "metrics.json").is_file()], address=args.address, root=out,
                      progress=not args.no_progress)
        except SweepError as exc:
            print(f"zslkit: error: {exc}", file=sys.stderr)
            return 1
    val_runs = [one("validation", s) for s in range(args.seeds)]
    oracle_runs = [one("oracle", s) for s in range(args.oracle_seeds)]

    header = ["metric", f"published ({bench}, real data)", "source",
              f"ours: validation-selected, mean ± std over {len(val_runs)} seeds ({data_kind})",
              f"ours: ORACLE (test-selected), {len(oracle_runs)} seed(s) ({data_kind})"]
    body, records = [], []
    for k in METRICS:
        pub = published["metrics"].get(k)
        v = mean_std([r[k] for r in val_runs if k in r])
        o = mean_std([r[k] for r in oracle_runs if k in r])
        body.append([METRIC_LABELS[k], f"{pub['value']:.1f}" if pub else "n/f",
                     f"[{pub['tag']}] {pub['source']}" if pub else "–", fmt(v), fmt(o)])
        records.append({"metric": k, "published": pub["value"] / 100 if pub else None,
                        "published_source": pub["source"] if pub else None,
                        "published_tag": pub["tag"] if pub else None,
                        "validation_mean": v[0], "validation_std": v[1], "validation_n": v[2],
                        "oracle_mean": o[0], "oracle_std": o[1], "oracle_n": o[2]})
    title = (f"# {entry['title']}\n\nzslkit reproduction: {entry['method']}"
             f"{' (' + entry['variant'] + ')' if entry.get('variant') else ''}, {entry['setting']}, on "
             f"{dataset.name} ({data_kind} data, semantic {dataset.semantic_source}).\n")
    if data_kind == "SYNTHETIC":
        title += (f"\nThe published column is for the REAL {bench} benchmark; our columns are on zslkit's SYNTHETIC "
                  f"dataset of the same shape, so the numbers are not comparable, only the protocol is.\n")
    wall = sum(r.get("wall_time_s", 0.0) for r in val_runs + oracle_runs)
    md = title + "\n" + render(header, body) + f"\nTotal training time: {wall:.0f} s.\n"
    print(md)
    atomic_write_bytes(md.encode("utf-8"), out / "reproduce.md")
    atomic_write_bytes(render(header, body, "csv").encode("utf-8"), out / "reproduce.csv")
    atomic_write_json({"paper": args.paper, "title": entry["title"], "dataset": dataset.name, "data": data_kind,
                       "benchmark": bench, "seeds": list(range(args.seeds)),
                       "oracle_seeds": list(range(args.oracle_seeds)), "rows": records, "wall_time_s": wall},
                      out / "reproduce.json")
    print(f"tables written to {out}/reproduce.md, .csv, .json")
    return 0
