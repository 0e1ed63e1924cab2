"""SWEEP_DIR as a storage URI (``s3://``, ``gs://``, ``file://`` ..., anything ``pyarrow.fs`` opens, as
Ray Tune takes it), beside plain paths.

Run directories are written with ordinary file I/O, so with a URI every node works in a local staging
folder (the same path on every node, named by the URI) and copies to and from the URI: a trial downloads
its run directory before it starts (to resume on any node) and uploads it at every new checkpoint and at
the end; the driver downloads ``runs/`` to build the summary and uploads the summary files.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path


def is_uri(path) -> bool:
    return "://" in str(path)


def staging(uri: str) -> Path:
    """The local folder standing for ``uri`` (the same on every node)."""
    return Path(tempfile.gettempdir()) / "zslkit-sweeps" / hashlib.sha1(uri.encode()).hexdigest()[:12]


def _fs(uri: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)


def join(uri: str, rel: str | Path) -> str:
    return uri.rstrip("/") + "/" + str(rel).strip("/")


def exists(uri: str) -> bool:
    from pyarrow import fs

    filesystem, path = _fs(uri)
    return filesystem.get_file_info(path).type != fs.FileType.NotFound


def upload(local: Path, uri: str) -> None:
    """Copy a local file or folder to ``uri`` (folders recursively; existing files are replaced)."""
    from pyarrow import fs

    filesystem, path = _fs(uri)
    if Path(local).is_dir():
        filesystem.create_dir(path, recursive=True)
    else:
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    fs.copy_files(str(Path(local).resolve()), path, source_filesystem=fs.LocalFileSystem(),
                  destination_filesystem=filesystem)


def download(uri: str, local: Path) -> bool:
    """Copy ``uri`` (file or folder) to ``local``; False when it does not exist."""
    from pyarrow import fs

    if not exists(uri):
        return False
    filesystem, path = _fs(uri)
    info = filesystem.get_file_info(path)
    Path(local if info.type == fs.FileType.Directory else Path(local).parent).mkdir(parents=True, exist_ok=True)
    fs.copy_files(path, str(Path(local).resolve()), source_filesystem=filesystem,
                  destination_filesystem=fs.LocalFileSystem())
    return True


def remove(uri: str) -> None:
    """Delete a folder at ``uri`` if it is there."""
    if exists(uri):
        filesystem, path = _fs(uri)
        filesystem.delete_dir(path)


def local_root(sweep_dir: str | Path) -> Path:
    """A local folder holding the sweep: the path itself, or the staging copy of a URI (refreshed from it)."""
    if not is_uri(sweep_dir):
        return Path(sweep_dir)
    local = staging(str(sweep_dir))
    for name in ("sweep.json", "runs"):
        download(join(str(sweep_dir), name), local / name)
    return local
