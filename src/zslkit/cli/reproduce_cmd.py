"""``zslkit reproduce --paper P --dataset NAME``: the paper's protocol over seeds, side by side with the
published numbers; the work is ``zslkit.reproduce.reproduce``, this module parses and prints."""

from __future__ import annotations

from zslkit.cli import bounded
from zslkit.cli.sweep_cmd import show_table
from zslkit.cli.train_cmd import SEMANTIC_HELP, collect_overrides
from zslkit.data.catalog import REAL_BENCHMARKS
from zslkit.reproduce import papers, reproduce


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="run a paper's protocol over seeds and compare with its published numbers",
                       description="Validation-selected runs over seeds and oracle (test-selected) runs, side by "
                                   "side with the published numbers and their sources; tables in OUT/reproduce.md, "
                                   ".csv, .json. Finished runs in OUT are reused.")
    p.add_argument("--paper", required=True, choices=papers(), help="the paper whose protocol and numbers to use")
    p.add_argument("--dataset", required=True,
                   help=f"a benchmark name ({', '.join(REAL_BENCHMARKS)}; needs --data-root) or a synthetic preset")
    p.add_argument("--data-root", help="folder holding the real benchmark (res101.mat + split file, or another layout)")
    p.add_argument("--semantic", help="override the semantic source the paper used for this dataset; " + SEMANTIC_HELP)
    p.add_argument("--seeds", type=bounded(int, min=0), default=5, help="number of seeds (0..N-1) for the validation runs")
    p.add_argument("--oracle-seeds", type=bounded(int, min=0), default=1, help="seeds for the oracle (test-selected) runs")
    p.add_argument("--out", help="output folder (default runs/reproduce-<paper>-<dataset>)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (and the live table of trials)")
    p.add_argument("--address", help="run the seeds as Ray Tune trials on this Ray cluster (auto, HOST:PORT or "
                                     "ray://HOST:PORT), as zslkit sweep does; needs pip install 'zslkit[sweep]'")
    p.set_defaults(func=run)


def run(args) -> int:
    def announce(selection: str, seed: int, run_dir) -> None:
        print(f"[{args.paper} on {args.dataset}] {selection} run, seed {seed} -> {run_dir}", flush=True)

    result = reproduce(args.paper, args.dataset, data_root=args.data_root, semantic=args.semantic, seeds=args.seeds,
                       oracle_seeds=args.oracle_seeds, out=args.out, device=args.device,
                       overrides=collect_overrides(args), progress=not args.no_progress, address=args.address,
                       on_run=announce, show_table=None if args.no_progress else show_table)
    print(result.markdown)
    print(f"tables written to {result.out}/reproduce.md, .csv, .json")
    return 0
