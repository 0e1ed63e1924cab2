"""Download and unpack the public benchmark archive (standard library ``urllib`` only).

* ``xlsa17`` (aliases ``AWA1``, ``AWA2``, ``CUB``, ``SUN``, ``APY``): Xian et al.'s ``xlsa17.zip`` from the
  MPI-INF data server. It holds ``xlsa17/data/<DS>/{res101.mat, att_splits.mat, ...}`` for the five
  attribute datasets (and ``binaryAtt_splits.mat`` for AWA2). No official checksum is published, so by default
  the computed sha256 is recorded (``<archive>.sha256``) and printed; pass ``sha256=`` to enforce one.
* ``FLO`` (Oxford Flowers with 1024-d sentence embeddings) is not part of xlsa17: it was distributed by the
  f-CLSWGAN authors through a page/cloud-drive link that is not a stable public URL, so there is no built-in
  URL. Pass ``url=`` (``--url``) pointing at a zip/tar archive you are allowed to use.

Partial downloads are kept as ``<archive>.part`` and resumed with an HTTP ``Range`` request.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from zslkit.errors import ConfigError, DataError
from zslkit.runs import atomic_write_bytes

__all__ = ["ARCHIVES", "ALIASES", "download", "resolve"]

ARCHIVES: dict[str, dict] = {
    "xlsa17": {
        "url": "http://datasets.d2.mpi-inf.mpg.de/xian/xlsa17.zip",
        "sha256": None,  # not published by the authors; the computed one is recorded
        "about": "Xian et al. 2017/2018 proposed splits + ResNet-101 features: AWA1, AWA2, CUB, SUN, APY",
    },
}
ALIASES = {"awa1": "xlsa17", "awa2": "xlsa17", "cub": "xlsa17", "sun": "xlsa17", "apy": "xlsa17",
           "xlsa17": "xlsa17"}
_NO_URL = {"flo": "FLO is not in the xlsa17 archive and has no stable public URL known to zslkit (it was shared "
                  "by the f-CLSWGAN authors via a cloud-drive link); pass --url with an archive you may use"}


def resolve(name: str, url: str | None = None, sha256: str | None = None) -> tuple[str, str | None]:
    """(url, expected sha256 or None) for an archive name, or the explicit ``url``."""
    key = name.lower()
    if url:
        known = ARCHIVES.get(ALIASES.get(key, ""), {})
        return url, sha256 or (known.get("sha256") if known.get("url") == url else None)
    if key in _NO_URL:
        raise ConfigError(_NO_URL[key])
    if key not in ALIASES:
        raise ConfigError(f"unknown dataset archive {name!r}; known: {sorted(ALIASES)} (or pass --url)")
    entry = ARCHIVES[ALIASES[key]]
    return entry["url"], sha256 or entry["sha256"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, part: Path, *, progress: bool, timeout: float, chunk: int) -> None:
    """Download ``url`` into ``part``, resuming from its current size."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "zslkit-download"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # nothing left to fetch: the .part file is already complete
        raise DataError(url, None, f"download failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(url, None, f"download failed: {getattr(exc, 'reason', exc)}") from None
    with resp:
        status = getattr(resp, "status", 200)
        mode = "ab"
        if offset and status != 206:
            offset, mode = 0, "wb"  # the server ignored the Range request: start over
        elif status == 206:
            crange = resp.headers.get("Content-Range", "")
            start = crange.split(" ")[-1].split("-")[0] if crange else str(offset)
            if start.strip() != str(offset):  # the server resumed from elsewhere: start over
                offset, mode = 0, "wb"
                resp.close()
                part.unlink(missing_ok=True)
                return _fetch(url, part, progress=progress, timeout=timeout, chunk=chunk)
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        got = offset
        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                           desc=part.name[: -len(".part")], disable=not progress) as bar:
            try:
                while True:
                    block = resp.read(chunk)
                    if not block:
                        break
                    out.write(block)
                    got += len(block)
                    bar.update(len(block))
            except (OSError, urllib.error.URLError) as exc:
                raise DataError(url, None, f"download interrupted after {got} bytes ({exc}); the partial file "
                                           f"{part} is kept: run the same command again to resume") from None
    if total is not None and got < total:
        raise DataError(url, None, f"download interrupted after {got} of {total} bytes; the partial file {part} "
                                   f"is kept: run the same command again to resume")


def _extract(archive: Path, dest: Path) -> list[str]:
    dest = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for member in names:
                target = (dest / member).resolve()
                if dest != target and dest not in target.parents:
                    raise DataError(str(archive), member, "archive member would be written outside the target folder")
            try:
                zf.extractall(dest)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(str(archive), None, f"cannot extract (corrupted archive?): {exc}") from None
            return names
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            try:
                tf.extractall(dest, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise DataError(str(archive), None, f"cannot extract: {exc}") from None
            return tf.getnames()
    raise DataError(str(archive), None, "downloaded file is neither a zip nor a tar archive")


def download(name: str, to_dir: str | Path, *, url: str | None = None, sha256: str | None = None,
             progress: bool = True, extract: bool = True, timeout: float = 60.0, chunk: int = 1 << 16) -> dict:
    """Download (resuming a ``.part`` file), verify and extract an archive into ``to_dir``.

    Returns ``{"url", "archive", "sha256", "verified", "extracted_to", "members"}``. ``verified`` says whether an
    expected checksum was known and matched; the computed sha256 is always written to ``<archive>.sha256``.
    """
    url, expected = resolve(name, url, sha256)
    expected = expected.lower().strip() if expected else None
    to_dir = Path(to_dir)
    to_dir.mkdir(parents=True, exist_ok=True)
    filename = os.path.basename(urllib.parse.urlparse(url).path) or f"{name}.zip"
    archive = to_dir / filename
    part = to_dir / (filename + ".part")
    if not archive.is_file():
        _fetch(url, part, progress=progress, timeout=timeout, chunk=chunk)
        digest = _sha256(part)
        if expected and digest != expected:
            part.unlink(missing_ok=True)
            raise DataError(str(archive), "sha256", f"checksum mismatch: expected {expected}, got {digest}; the "
                                                    f"download was deleted (wrong URL, corrupted transfer, or a "
                                                    f"changed file: check it, or pass --sha256 to override)")
        os.replace(part, archive)
    else:
        digest = _sha256(archive)
        if expected and digest != expected:
            raise DataError(str(archive), "sha256", f"checksum mismatch of the existing archive: expected "
                                                    f"{expected}, got {digest}; delete it to download again")
    atomic_write_bytes(f"{digest}  {filename}\n".encode(), to_dir / (filename + ".sha256"))
    members: list[str] = []
    if extract:
        members = _extract(archive, to_dir)
    return {"url": url, "archive": str(archive), "sha256": digest, "verified": bool(expected),
            "extracted_to": str(to_dir) if extract else None, "members": len(members)}
