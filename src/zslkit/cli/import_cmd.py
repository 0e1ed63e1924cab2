"""``zslkit import FORMAT FILE ...``: turn a model saved by a reference code into a zslkit run directory.

One sub-command per format, registered in ``IMPORTERS`` (name -> help, argument adder, runner); an importer
reads the file, checks it against the dataset and hands the model to ``interop.imported_run``.
"""

from __future__ import annotations

import argparse

from zslkit.cli import seed_type
from zslkit.cli.train_cmd import format_metrics
from zslkit.data.catalog import open_dataset
from zslkit.interop.cvczsl import REFERENCE, load_reference_model
from zslkit.interop.imported_run import write_imported_run


def _data_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="synthetic preset the model was trained on (e.g. synthetic-tiny)")
    src.add_argument("--data-root", help="the data folder the model was trained on, in any supported layout (e.g. "
                                         "the reference's DEM folder data/AwA1_data)")
    p.add_argument("--semantic", help="semantic source the model was trained with (att, original_att, ...; default: "
                                      "the layout's own, which for the DEM layout is the reference's choice)")
    p.add_argument("--data-seed", type=seed_type(), default=0, help="seed of a synthetic dataset (default 0)")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--device", default="auto", help="device that scores the imported model: auto, cpu, cuda, cuda:N")


def _add_cvczsl(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_file", metavar="MODEL.pt", help="a checkpoint written by kailigo/cvcZSL (train.py, "
                                                          "trans_train.py)")
    p.add_argument("--transductive", action="store_true",
                   help="the file is a transductive model (trans_train.py: it holds cls_weight_all)")
    _data_arguments(p)


def _run_cvczsl(args) -> int:
    spec = args.data_root or args.dataset
    dataset = open_dataset(spec, semantic=args.semantic, seed=args.data_seed)
    model = load_reference_model(args.model_file, dataset, transductive=args.transductive, device=args.device)
    setting = "transductive" if args.transductive else "inductive"
    script = "trans_train.py" if args.transductive else "train.py"
    metrics = write_imported_run(
        args.out, model, dataset, source=args.model_file, reference=REFERENCE,
        file_format=f"cvczsl-{setting}", setting=setting, overwrite=args.overwrite,
        selection_note=f"the reference's {script} keeps the epoch with the best H on the TEST set (an ORACLE choice)",
        data={"dataset": spec, "semantic": args.semantic, "data_seed": args.data_seed})

    print(format_metrics(metrics))
    print(f"run directory: {args.out}")
    return 0


# name -> (help, add_arguments(parser), run(args) -> exit code)
IMPORTERS = {
    "cvczsl": ("a CVC-ZSL model saved by kailigo/cvcZSL (dict of tensors w1, b1, w2, b2, scale_cls, bias "
               "[, cls_weight_all])", _add_cvczsl, _run_cvczsl),
}


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="turn a reference code's saved model into a zslkit run directory",
                       description="Import a model saved by a reference code; the run directory it writes works "
                                   "with zslkit evaluate, predict and report.")
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    for name, (text, add_arguments, run) in IMPORTERS.items():
        fp = formats.add_parser(name, help=text, description=text)
        add_arguments(fp)
        fp.set_defaults(func=run)
