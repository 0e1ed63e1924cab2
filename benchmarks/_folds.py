"""The xlsa17 folder of one fold of a real dev set in ``../shared/data`` (the parity scripts' shared helper)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def fold_root(data: Path, fold: int, tmp: Path, prog: str = "benchmarks") -> Path:
    """``data`` itself for fold 0, else ``tmp/foldK`` with links to res101.mat and ``folds/foldK_att_splits.mat``."""
    if fold == 0:
        return data
    split = data / "folds" / f"fold{fold}_att_splits.mat"
    if not split.is_file():
        raise SystemExit(f"{prog}: {split}: no such fold file")
    out = tmp / f"fold{fold}"
    out.mkdir(parents=True, exist_ok=True)
    for name, target in (("res101.mat", data / "res101.mat"), ("att_splits.mat", split)):
        if not (out / name).exists():
            (out / name).symlink_to(target)
    return out


def dataset_and_reference(data_arg: str, reference: str, shared: Path, prog: str):
    """(dataset folder, its recorded reference runs) for ``--data`` (a folder, or a name under ``shared``); None
    after a message on stderr when the features or the dataset's reference runs are missing (a usage error)."""
    data = Path(data_arg) if Path(data_arg).is_dir() else shared / data_arg
    if not (data / "res101.mat").is_file():
        print(f"{prog}: {data}/res101.mat: not found", file=sys.stderr)
        return None
    recorded = json.loads(Path(reference).read_text())["datasets"]
    if data.name not in recorded:
        print(f"{prog}: {reference}: no reference runs recorded for {data.name} (recorded: {', '.join(recorded)})",
              file=sys.stderr)
        return None
    return data, recorded[data.name]
