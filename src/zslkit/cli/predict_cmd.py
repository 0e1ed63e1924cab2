"""``zslkit predict RUN_DIR --features F --classes EMBEDDINGS``: classify features among any classes."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from zslkit.cli import bounded
from zslkit.data.arrays import read_matrix, read_names
from zslkit.data.classtable import names_file, read_class_table
from zslkit.errors import ConfigError, DataError
from zslkit.methods.base import ZSLMethod


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict classes (described by embeddings) for new features",
                       description="Score features against candidate classes given by their embeddings "
                                   "(one row per class); new classes need no retraining.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (its model.pt is used)")
    p.add_argument("--features", required=True, help="N x D matrix (.npy, .npz, .csv, .txt, .mat)")
    p.add_argument("--features-key", help="array name inside a .npz/.mat features file")
    p.add_argument("--classes", required=True,
                   help="K x A class embeddings (.npy, .npz, .csv, .txt, .mat), or a class table (.csv/.tsv with a "
                        "header row and the class name first, as `zslkit classes embed` writes; .npy with "
                        "<stem>.classes.txt beside it): its class names are used")
    p.add_argument("--classes-key", help="array name inside a .npz/.mat embeddings file")
    p.add_argument("--class-names", help="text file with one name per class (default: the class table's names, "
                                         "else class_0..)")
    p.add_argument("--top-k", type=bounded(int, min=1), default=1,
                   help="classes (with probabilities) listed per feature row")
    p.add_argument("--out", help="CSV file to write (default: standard output)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=run)


def run(args) -> int:
    run_dir = Path(args.run_dir)
    for option, path in (("--features", args.features), ("--classes", args.classes)):
        if Path(path).is_dir():
            raise DataError(path, None, f"is a folder; {option} takes a file")
    model = ZSLMethod.load(run_dir / "model.pt", device=args.device)
    X = read_matrix(args.features, args.features_key)
    table_names, E = read_classes(args.classes, args.classes_key)
    if X.shape[1] != model.feature_dim_:
        raise DataError(args.features, args.features_key, f"features have {X.shape[1]} columns; the model in "
                        f"{run_dir} was trained on {model.feature_dim_}-d features")
    if E.shape[1] != model.embedding_dim_:
        raise DataError(args.classes, args.classes_key, f"class embeddings have {E.shape[1]} columns; the model "
                        f"in {run_dir} expects {model.embedding_dim_}-d embeddings")
    names = (read_names(args.class_names) if args.class_names else table_names
             or [f"class_{i}" for i in range(E.shape[0])])
    if len(names) != E.shape[0]:
        raise DataError(args.class_names, None, f"{len(names)} names for {E.shape[0]} class embeddings")
    check_classes(names, E, args.class_names or args.classes, args.classes, args.classes_key)
    if not 1 <= args.top_k <= E.shape[0]:
        raise ConfigError(f"--top-k must be between 1 and the number of classes ({E.shape[0]})")
    proba = model.predict_proba(X, E)
    order = np.argsort(-proba, axis=1)[:, :args.top_k]
    fh = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
    try:
        w = csv.writer(fh)
        header = ["index"]
        for k in range(args.top_k):
            header += [f"class_{k + 1}", f"name_{k + 1}", f"probability_{k + 1}"]
        w.writerow(header)
        for i in range(X.shape[0]):
            row = [i]
            for j in order[i]:
                row += [int(j), names[j], f"{proba[i, j]:.6f}"]
            w.writerow(row)
    finally:
        if args.out:
            fh.close()
    if args.out:
        print(f"wrote {X.shape[0]} predictions over {E.shape[0]} classes to {args.out}")
    return 0


def read_classes(path: str, key: str | None) -> tuple[list[str] | None, np.ndarray]:
    """(class names or None, K x A embeddings): a class table (.csv/.tsv with a header whose first field is not a
    number; .npy with ``<stem>.classes.txt`` beside it) gives its names, any other matrix file none."""
    p = Path(path)
    suffix = p.suffix.lower()
    if key is None and ((suffix == ".npy" and names_file(p).is_file()) or (suffix in (".csv", ".tsv")
                                                                           and _has_header(p, suffix))):
        return read_class_table(p)
    return None, read_matrix(path, key)


def _has_header(path: Path, suffix: str) -> bool:
    """Whether a .csv/.tsv starts with a header row (its first field is not a number): a class table."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip()), "")
    except (OSError, UnicodeDecodeError):
        return False  # read_matrix reports the problem
    field = first.split("\t" if suffix == ".tsv" else ",")[0].strip()
    try:
        float(field)
        return False
    except ValueError:
        return True


def check_classes(names: list[str], E: np.ndarray, names_source: str, path: str, key: str | None) -> None:
    """Candidate classes must be distinct: no name twice, no all-zero embedding (it scores every feature alike)."""
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(names_source, None, f"class names appear more than once: {dupes}")
    zero = [names[i] for i in np.flatnonzero(~np.any(E != 0, axis=1))]
    if zero:
        raise DataError(path, key, f"all-zero class embeddings (no information to score them by) for "
                                   f"{len(zero)} of {E.shape[0]} classes: {zero[:5]}{' ...' if len(zero) > 5 else ''}")
