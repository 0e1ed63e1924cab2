"""Issue 22, results that mislead: report grouping, provenance through conversion, checks of reused and evaluated
models, reproduce labels, duplicate class names, refused overwrites. Tiny sizes."""

import json
from pathlib import Path

import numpy as np
import pytest

from fakedata import tiny_dataset
from zslkit.cli import main
from zslkit.data.matio import write_mat
from zslkit.data.xlsa17 import features_file_arrays, split_file_arrays
from zslkit.errors import DataError


def _raw_npz(path: Path, names) -> Path:
    ds = tiny_dataset()
    arrays = {"features": ds.features, "labels": ds.labels, "class_embeddings": ds.class_embeddings,
              "class_names": np.array(names)}
    arrays.update({k: v for k, v in ds.splits.items() if v is not None})
    np.savez(path, **arrays)
    return path


# ----- 6. duplicate class names, every layout ---------------------------------------------------------------

def test_duplicate_class_names_in_npz_are_rejected(tmp_path, capsys):
    names = [f"c{i}" for i in range(9)]
    names[4] = "c1"
    path = _raw_npz(tmp_path / "dup.npz", names)
    assert main(["data", "info", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "class_names" in out and "more than once" in out and "'c1'" in out
    from zslkit.data.npz import load_npz

    with pytest.raises(DataError) as exc:
        load_npz(path)
    assert exc.value.key == "class_names" and str(path) in str(exc.value)


def test_duplicate_class_names_in_xlsa17_name_the_split_file_key(tmp_path):
    ds = tiny_dataset()
    write_mat(tmp_path / "res101.mat", features_file_arrays(ds))
    arrays = split_file_arrays(ds)
    arrays["allclasses_names"] = ["same"] * len(ds.class_names)
    write_mat(tmp_path / "att_splits.mat", arrays)
    from zslkit.data.layouts import load_from_root

    with pytest.raises(DataError) as exc:
        load_from_root(tmp_path)
    assert exc.value.key == "allclasses_names" and "att_splits.mat" in exc.value.file
    assert "'same'" in str(exc.value)


def test_unique_class_names_still_load(tmp_path):
    from zslkit.data.npz import load_npz

    assert len(load_npz(_raw_npz(tmp_path / "ok.npz", [f"c{i}" for i in range(9)])).class_names) == 9
