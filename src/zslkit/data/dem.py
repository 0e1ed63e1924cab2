"""The DEM layout used by the CVC-ZSL reference code (kailigo/cvcZSL, inherited from DEM).

One folder per dataset, ``<DS>_data/`` (``AwA1_data``, ``AwA2_data``, ``CUB_data``, ``SUN_data``, ``APY_data``)::

    res101.mat                 features (2048 x N), labels (N x 1, 1-based) - as in xlsa17
    original_att_splits.mat    the keys of xlsa17's att_splits.mat (allclasses_names, att, original_att,
                               trainval_loc, train_loc, val_loc, test_seen_loc, test_unseen_loc)

The reference code reads the class embeddings from ``att``, except for AwA2 where it reads
``original_att``; this loader does the same unless ``semantic`` says otherwise.
"""

from __future__ import annotations

from pathlib import Path

from zslkit.data.dataset import ZSLDataset
from zslkit.data.matio import write_mat
from zslkit.data.xlsa17 import FEATURES_FILE, features_file_arrays, load_pair, split_file_arrays
from zslkit.errors import DataError

__all__ = ["DEM_SPLIT_FILE", "load_dem", "write_dem", "dem_embedding_key"]

DEM_SPLIT_FILE = "original_att_splits.mat"


def _dataset_name(folder: Path) -> str:
    name = folder.name
    return name[: -len("_data")] if name.endswith("_data") else name


def dem_embedding_key(name: str) -> str:
    """The key the CVC-ZSL reference reads: ``original_att`` for AwA2, ``att`` otherwise."""
    return "original_att" if name.lower() in ("awa2", "awa2_data") else "att"


def load_dem(folder_or_file: str | Path, *, semantic: str | None = None, name: str | None = None) -> ZSLDataset:
    """Load ``<DS>_data/`` (or a file inside it). ``semantic``: ``att`` or ``original_att`` (default: as the
    reference code reads it for that dataset)."""
    path = Path(folder_or_file)
    if not path.exists():
        raise DataError(str(path), None, "no such file or folder")
    folder = path if path.is_dir() else path.parent
    split_path, features_path = folder / DEM_SPLIT_FILE, folder / FEATURES_FILE
    for p in (split_path, features_path):
        if not p.is_file():
            raise DataError(str(p), None, f"file not found (the DEM layout needs {FEATURES_FILE} and "
                                          f"{DEM_SPLIT_FILE} in {folder})")
    ds_name = name or _dataset_name(folder)
    if semantic is None:
        key = dem_embedding_key(_dataset_name(folder))
    elif semantic in ("att", "original_att"):
        key = semantic
    else:
        raise DataError(str(split_path), "semantic", f"the DEM layout has 'att' and 'original_att', not {semantic!r}")
    return load_pair(features_path, split_path, embedding_key=key, semantic_source=key, name=ds_name,
                     extra_notes=[f"DEM layout: class embeddings from '{key}' of {DEM_SPLIT_FILE}"])


def write_dem(dataset: ZSLDataset, folder: str | Path, *, version: str = "5") -> Path:
    """Write ``res101.mat`` + ``original_att_splits.mat`` into ``folder`` (conventionally ``<DS>_data``).

    The class embeddings go into both ``att`` and ``original_att``, so the reference code reads them whichever
    key it uses for this dataset.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_mat(folder / FEATURES_FILE, features_file_arrays(dataset), version=version)
    write_mat(folder / DEM_SPLIT_FILE, split_file_arrays(dataset, embedding_keys=("att", "original_att")),
              version=version)
    from zslkit.data.provenance import write_sidecar

    write_sidecar(dataset, folder, "dem")
    return folder
