"""``zslkit data info | convert | download | build``."""

from __future__ import annotations

import json
from pathlib import Path

from zslkit.cli import bounded, seed_type
from zslkit.data.build import build_dataset, write_built
from zslkit.data.catalog import open_dataset
from zslkit.data.download import ALIASES, download
from zslkit.data.layouts import LAYOUTS, detect_layout, load_from_root, output_files, refuse_overwrite, write_layout
from zslkit.data.xlsa17 import SEMANTICS
from zslkit.errors import DataError

#: the invariants ZSLDataset checks on construction (zslkit.data.dataset.validate_arrays), in order
CHECKS = (
    ("features", "features form a non-empty 2-D numeric matrix with no NaN/inf"),
    ("class_embeddings", "class embeddings form a non-empty 2-D numeric matrix with no NaN/inf"),
    ("labels", "one integer label per feature row, each a valid class id"),
    ("class_names", "one class name per class embedding, no name twice"),
    ("splits", "split index sets are integers, in range, non-empty, without duplicates"),
    ("train/val", "train and val are given together (or both absent)"),
    ("disjoint", "trainval, test_seen and test_unseen are pairwise disjoint"),
    ("no leak", "no unseen (test_unseen) class has trainval samples"),
    ("test_seen", "every test_seen class has trainval samples"),
    ("validation", "train/val are disjoint, split by class, and cover only seen classes"),
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("data", help="inspect, convert, download and build datasets",
                              description="Inspect, convert and download ZSL datasets (xlsa17, DEM, cycle-WGAN h5, "
                                          "npz), or build one from extracted features and class embeddings. See "
                                          "docs/data.md and docs/features.md.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    info = sub.add_parser("info", help="summary and validation checks of a dataset folder/file or preset",
                          description="Print a dataset's layout, sizes, splits, provenance (real or synthetic) and "
                                      "the result of each validation check ZSLDataset makes on construction.")
    info.add_argument("path", metavar="PATH", help="dataset folder or file, or a synthetic preset name")
    info.add_argument("--semantic", default=None,
                      help=f"semantic source: {' | '.join(SEMANTICS)} (default: the layout's)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=_info)

    conv = sub.add_parser("convert", help="convert a dataset to another layout",
                          description="Load a dataset in any supported layout (or a synthetic preset) and write it "
                                      "in another one; the written files are read back and validated.")
    conv.add_argument("src", metavar="SRC", help="dataset folder or file (or a preset name)")
    conv.add_argument("--to", required=True, choices=LAYOUTS, help="target layout")
    conv.add_argument("--out", required=True, metavar="DST", help="output folder (npz: a .npz file or a folder)")
    conv.add_argument("--semantic", default=None, help="semantic source to read from SRC")
    conv.add_argument("--mat-version", default="5", choices=["5", "7.3"],
                      help="MAT-file version for the xlsa17/dem layouts (default 5)")
    conv.add_argument("--overwrite", action="store_true", help="replace dataset files that already exist in DST")
    conv.set_defaults(func=_convert)

    dl = sub.add_parser("download", help="download and unpack a public benchmark archive",
                        description="Download a public benchmark archive (resumable, sha256-checked) and unpack it.")
    dl.add_argument("name", metavar="NAME", help=f"archive or benchmark name: {', '.join(ALIASES)} (the benchmarks "
                                                 f"all come from one archive)")
    dl.add_argument("--to", required=True, metavar="DIR", help="target folder")
    dl.add_argument("--url", default=None, help="download from this URL instead of the built-in one")
    dl.add_argument("--sha256", default=None, metavar="HEX", help="expected sha256 of the archive")
    dl.add_argument("--no-extract", action="store_true", help="keep the archive, do not unpack it")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    dl.set_defaults(func=_download)

    bd = sub.add_parser("build", help="join extracted features and class embeddings into a ZSL dataset with a "
                                      "proposed-split style split",
                        description="Join the output of `zslkit features extract` with a class table (aligned by "
                                    "class name) and draw a proposed-split style split (unseen classes, validation "
                                    "classes, test_seen samples); write it in a layout and validate it.")
    bd.add_argument("--features", required=True, metavar="DIR",
                    help="output folder of `zslkit features extract` (res101.mat + classes.txt, or features.npz)")
    bd.add_argument("--classes", required=True, metavar="FILE",
                    help="class table: what `zslkit classes embed` writes, or a CSV with a header row naming the "
                         "attributes and the class name in the first column")
    which = bd.add_mutually_exclusive_group(required=True)
    which.add_argument("--unseen", metavar="A,B,C", help="comma-separated unseen class names")
    which.add_argument("--unseen-fraction", type=bounded(float, above=0, below=1), metavar="F",
                       help="fraction of the classes drawn as unseen")
    bd.add_argument("--val-fraction", type=bounded(float, above=0, below=1), default=0.3, metavar="F",
                    help="fraction of the seen classes used as validation classes (default 0.3)")
    bd.add_argument("--seed", type=seed_type(), default=0, help="seed of the random choices (default 0)")
    bd.add_argument("--to", default=LAYOUTS[0], choices=LAYOUTS, help="layout to write")
    bd.add_argument("--out", required=True, metavar="DIR", help="output folder")
    bd.add_argument("--overwrite", action="store_true", help="replace dataset files that already exist in DIR")
    bd.set_defaults(func=_build)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _build(args) -> int:
    refuse_overwrite(output_files(args.to, args.out, Path(args.out).name), args.overwrite)  # before any work
    unseen = [u.strip() for u in args.unseen.split(",") if u.strip()] if args.unseen is not None else None
    ds, raw, files = build_dataset(args.features, args.classes, unseen=unseen, unseen_fraction=args.unseen_fraction,
                                   val_fraction=args.val_fraction, seed=args.seed, name=Path(args.out).name)
    out = write_built(ds, raw, files, args.out, args.to)
    check = load_from_root(out)  # read back through the loaders: the written files pass every validation check
    print(f"wrote {args.to} layout to {out}: {check!r}")
    print(f"  {ds.notes[0]}")
    print(f"  splits: {_fmt_splits(check.summary()['split_sizes'])}; all {len(CHECKS)} validation checks passed")
    return 0


def _open(spec: str, semantic: str | None):
    """(dataset, layout) for a path, or for a preset name (zslkit.data.catalog)."""
    path = Path(spec)
    if path.exists():
        layout = detect_layout(path)
        return load_from_root(path, semantic=semantic), layout
    ds = open_dataset(spec, semantic=semantic)
    return ds, ("synthetic" if ds.synthetic else "catalog")


def _fmt_splits(sizes: dict) -> str:
    return " | ".join(f"{k} {'-' if v is None else v}" for k, v in sizes.items())


def _info(args) -> int:
    layout = None
    try:
        try:
            layout = detect_layout(args.path) if Path(args.path).exists() else None
        except DataError:
            layout = None
        ds, layout = _open(args.path, args.semantic)
    except DataError as exc:
        result = {"path": args.path, "layout": layout, "ok": False, "error": str(exc),
                  "error_file": exc.file, "error_key": exc.key}
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"path     {args.path}")
            print(f"layout   {layout or '(not detected)'}")
            print("checks   FAILED")
            print(f"  error: {exc}")
        return 1  # bad data: a run-time error (docs/errors.md)
    summary = ds.summary()
    checks = [{"check": name, "description": desc, "passed": True} for name, desc in CHECKS]
    if args.json:
        out = {"path": args.path, "layout": layout, "ok": True, **summary, "checks": checks}
        print(json.dumps(out, indent=2))
        return 0
    rows = [
        ("layout", layout),
        ("name", summary["name"]),
        ("kind", "synthetic" if summary["synthetic"] else "real"),
        ("classes", f"{summary['num_classes']} ({summary['num_seen']} seen / {summary['num_unseen']} unseen)"),
        ("samples", summary["num_samples"]),
        ("split sizes", _fmt_splits(summary["split_sizes"])),
        ("validation", (f"{summary['num_val_train_classes']} train / {summary['num_val_classes']} val classes"
                        if "num_val_classes" in summary else "none (derived from seen classes when needed)")),
        ("feature dim", summary["feature_dim"]),
        ("embedding", f"{summary['semantic_source']}, {summary['embedding_dim']}-d"),
        ("split sha256", summary["split_sha256"] or "-"),
        ("source", summary["source"]),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("notes" if summary["notes"] else "notes         -")
    for note in summary["notes"]:
        print(f"  - {note}")
    print("checks")
    for c in checks:
        print(f"  [passed] {c['check']}: {c['description']}")
    return 0


def _convert(args) -> int:
    if args.to != "npz" or Path(args.out).suffix.lower() == ".npz":  # the file names do not depend on the data
        refuse_overwrite(output_files(args.to, args.out, ""), args.overwrite)
    ds, layout = _open(args.src, args.semantic)
    refuse_overwrite(output_files(args.to, args.out, ds.name), args.overwrite)
    out = write_layout(ds, args.to, args.out, version=args.mat_version)
    print(f"read {args.src} ({layout}): {ds!r}")
    print(f"wrote {args.to} layout to {out}")
    return 0


def _download(args) -> int:
    res = download(args.name, args.to, url=args.url, sha256=args.sha256, progress=not args.quiet,
                   extract=not args.no_extract)
    print(f"downloaded {res['url']}")
    print(f"archive   {res['archive']}")
    print(f"sha256    {res['sha256']} ({'verified' if res['verified'] else 'no expected checksum known; recorded'})")
    if res["extracted_to"]:
        print(f"extracted {res['members']} entries into {res['extracted_to']}")
    return 0
