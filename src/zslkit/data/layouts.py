"""Detect a dataset's on-disk layout, load it, write it.

Layouts: ``xlsa17`` (res101.mat + att_splits.mat / binaryAtt_splits.mat / sent_splits.mat),
``dem`` (res101.mat + original_att_splits.mat, the CVC-ZSL reference's ``<DS>_data`` folders),
``cyclewgan-h5`` (data.h5 + knn.h5) and ``npz`` (one .npz file, see :mod:`zslkit.data.npz`).
"""

from __future__ import annotations

from pathlib import Path

from zslkit.data.dataset import ZSLDataset
from zslkit.errors import DataError

__all__ = ["LAYOUTS", "detect_layout", "load_from_root", "write_layout", "output_files", "refuse_overwrite"]

LAYOUTS = ("xlsa17", "dem", "cyclewgan-h5", "npz")

_LOOKED_FOR = ("a .npz file; data.h5 (+ knn.h5) for cycle-WGAN; original_att_splits.mat (+ res101.mat) for the "
               "DEM layout; att_splits.mat / binaryAtt_splits.mat / sent_splits.mat (+ res101.mat) for xlsa17")


def detect_layout(path: str | Path) -> str:
    """``"xlsa17" | "dem" | "cyclewgan-h5" | "npz"`` for a dataset folder or one of its files."""
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), None, "no such file or folder")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            return "npz"
        if suffix in (".h5", ".hdf5"):
            return "cyclewgan-h5"
        if suffix == ".mat":
            if path.name == "original_att_splits.mat":
                return "dem"
            if path.name == "res101.mat" and (path.parent / "original_att_splits.mat").is_file() and not any(
                    (path.parent / f).is_file() for f in ("att_splits.mat", "binaryAtt_splits.mat",
                                                          "sent_splits.mat")):
                return "dem"
            return "xlsa17"
        raise DataError(str(path), None, f"unknown dataset file type '{suffix}'; looked for {_LOOKED_FOR}")
    names = {p.name for p in path.iterdir()}
    if "data.h5" in names:
        return "cyclewgan-h5"
    if names & {"att_splits.mat", "binaryAtt_splits.mat", "sent_splits.mat"}:
        return "xlsa17"
    if "original_att_splits.mat" in names:
        return "dem"
    npzs = sorted(n for n in names if n.endswith(".npz"))
    if len(npzs) == 1:
        return "npz"
    found = sorted(names)[:20]
    raise DataError(str(path), None, f"no known dataset layout in this folder; looked for {_LOOKED_FOR}. "
                                     f"Found: {found}{' (several .npz files: pass one)' if len(npzs) > 1 else ''}")


def load_from_root(path: str | Path, *, semantic: str | None = None, name: str | None = None) -> ZSLDataset:
    """Load whatever layout ``path`` (folder or file) holds."""
    path = Path(path)
    layout = detect_layout(path)
    if layout == "npz":
        from zslkit.data.npz import load_npz

        if path.is_dir():
            path = next(p for p in sorted(path.iterdir()) if p.name.endswith(".npz"))
        return load_npz(path, name=name, semantic=semantic)
    if layout == "cyclewgan-h5":
        from zslkit.data.cyclewgan_h5 import load_cyclewgan

        return load_cyclewgan(path, name=name)
    if layout == "dem":
        from zslkit.data.dem import load_dem

        return load_dem(path, semantic=semantic, name=name)
    from zslkit.data.xlsa17 import load_xlsa17

    if semantic is None and path.is_dir() and not (path / "att_splits.mat").is_file():
        semantic = "sent" if (path / "sent_splits.mat").is_file() else "binary_att"
    return load_xlsa17(path, semantic=semantic or "att", name=name)


#: the files each layout's writer creates in its output folder (npz: one file)
LAYOUT_FILES = {"xlsa17": ("res101.mat", "att_splits.mat"), "dem": ("res101.mat", "original_att_splits.mat"),
                "cyclewgan-h5": ("data.h5", "knn.h5")}


def output_files(layout: str, out_path: str | Path, name: str) -> list[Path]:
    """The paths ``write_layout(dataset named name, layout, out_path)`` writes (dataset files only)."""
    out_path = Path(out_path)
    if layout == "npz":
        return [out_path if out_path.suffix.lower() == ".npz" else out_path / f"{name}.npz"]
    return [out_path / f for f in LAYOUT_FILES.get(layout, ())]


def refuse_overwrite(paths: list[Path], overwrite: bool, option: str = "--out") -> None:
    """A usage error (ConfigError) when one of ``paths`` exists and ``overwrite`` is false, or when a folder is
    needed where a file is."""
    from zslkit.errors import ConfigError

    for path in paths:
        for parent in path.parents:
            if parent.exists() and not parent.is_dir():
                raise ConfigError(f"{option} {parent}: is a file, not a folder")
        if path.is_dir():
            raise ConfigError(f"{option}: {path} is a folder; the output file cannot replace it")
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{option}: {', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                          f"choose another {option} or pass --overwrite to replace "
                          f"{'it' if len(existing) == 1 else 'them'}")


def write_layout(dataset: ZSLDataset, layout: str, out_path: str | Path, *, version: str = "5") -> Path:
    """Write ``dataset`` in ``layout`` to ``out_path`` (a folder; for npz a ``.npz`` file or a folder)."""
    out_path = Path(out_path)
    if layout == "xlsa17":
        from zslkit.data.xlsa17 import write_xlsa17

        return write_xlsa17(dataset, out_path, version=version)
    if layout == "dem":
        from zslkit.data.dem import write_dem

        return write_dem(dataset, out_path, version=version)
    if layout == "cyclewgan-h5":
        from zslkit.data.cyclewgan_h5 import write_cyclewgan

        return write_cyclewgan(dataset, out_path)
    if layout == "npz":
        from zslkit.data.npz import write_npz

        if out_path.suffix.lower() != ".npz":
            out_path = out_path / f"{dataset.name}.npz"
        return write_npz(dataset, out_path)
    raise DataError(str(out_path), "layout", f"unknown layout {layout!r}; choose one of {list(LAYOUTS)}")
