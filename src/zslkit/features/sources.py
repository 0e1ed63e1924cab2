"""Where images come from: an ImageFolder-style folder or a CSV/TSV list, and how each becomes a tensor.

* A folder with one sub-folder per class (torchvision's ``ImageFolder`` convention): classes are the
  sub-folder names in sorted order, images the files with an image extension, sorted, at any depth.
* A ``.csv`` / ``.tsv`` file of ``path,class`` rows (an optional header row ``path,class``); relative
  paths are relative to the list's folder; classes in the order they first appear.

Preprocessing is plain PIL + torch (no torchvision needed): decode with PIL, scale to [0, 1] float32,
resize the shorter side to ``round(size / crop_fraction)`` with torch's antialiased interpolation (what
torchvision's tensor ``Resize(antialias=True)`` does), centre-crop ``size`` x ``size``, grey repeated to 3
channels, normalise by mean/std.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from zslkit.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp", ".gif")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageList:
    """Image paths with 0-based labels into ``class_names``; ``names`` are the paths as recorded (relative)."""

    root: Path
    paths: tuple[Path, ...]
    names: tuple[str, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.paths)

    def sha256(self) -> str:
        """Fingerprint of the list (names and classes), for resuming only the same job."""
        h = hashlib.sha256()
        for name, label in zip(self.names, self.labels):
            h.update(f"{name}\t{self.class_names[label]}\n".encode("utf-8"))
        return h.hexdigest()


def list_images(source: str | Path) -> ImageList:
    """The images of a class-per-sub-folder folder or of a ``path,class`` CSV/TSV list."""
    source = Path(source)
    if not source.exists():
        raise DataError(source, None, "no such folder or image list")
    if source.is_dir():
        return _from_folder(source)
    if source.suffix.lower() in (".csv", ".tsv", ".txt"):
        return _from_list(source)
    raise DataError(source, None, "expected a folder with one sub-folder per class, or a .csv/.tsv list of "
                                  "path,class rows")


def _from_folder(root: Path) -> ImageList:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(root, None, "no class sub-folders (expected ROOT/<class>/<image> as in torchvision's "
                                    "ImageFolder)")
    paths, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(root / cls, None, f"class folder holds no images (extensions {IMAGE_EXTENSIONS})")
        paths += files
        labels += [label] * len(files)
    names = tuple(p.relative_to(root).as_posix() for p in paths)
    return ImageList(root, tuple(paths), names, np.asarray(labels, dtype=np.int64), tuple(classes), str(root))


def _from_list(path: Path) -> ImageList:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, f"cannot read the image list as UTF-8 text ({exc})") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" or ("\t" in text and "," not in text.split("\n", 1)[0]) \
        else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    classes: dict[str, int] = {}
    paths, names, labels = [], [], []
    for lineno, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if lineno == 1 and [c.strip().lower() for c in row[:2]] == ["path", "class"]:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise DataError(path, f"line {lineno}", f"expected two fields 'path{delimiter}class', got {row!r}")
        rel, cls = row[0].strip(), row[1].strip()
        full = Path(rel) if Path(rel).is_absolute() else path.parent / rel
        if not full.is_file():
            raise DataError(path, f"line {lineno}", f"image file not found: {full}")
        labels.append(classes.setdefault(cls, len(classes)))
        paths.append(full)
        names.append(rel)
    if not paths:
        raise DataError(path, None, "the image list has no rows")
    return ImageList(path.parent, tuple(paths), tuple(names), np.asarray(labels, dtype=np.int64),
                     tuple(classes), str(path))


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the network's input (recorded in the provenance)."""

    size: int = 224
    crop_fraction: float = 0.875  # shorter side resized to size / crop_fraction, then centre crop
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def resize(self) -> int:
        return int(round(self.size / self.crop_fraction))

    def describe(self) -> dict:
        return asdict(self) | {"resize_shorter_side": self.resize, "colour": "RGB (grey repeated to 3 channels)",
                               "implementation": "PIL decode, float32 in [0, 1], torch antialiased resize of the "
                                                 "shorter side, centre crop, (x - mean) / std"}

    def __call__(self, image) -> torch.Tensor:
        import torch.nn.functional as F

        grey = image.mode in ("L", "I;16", "I", "F", "1")
        arr = np.asarray(image.convert("L" if grey else "RGB"), dtype=np.float32)
        x = torch.from_numpy(arr).div_(255.0)
        x = x.unsqueeze(0) if grey else x.permute(2, 0, 1)
        h, w = x.shape[1:]
        scale = self.resize / min(w, h)
        new_h, new_w = max(self.size, round(h * scale)), max(self.size, round(w * scale))
        if (new_h, new_w) != (h, w):
            smooth = self.interpolation != "nearest"
            x = F.interpolate(x.unsqueeze(0), size=(new_h, new_w), mode=self.interpolation,
                              **({"align_corners": False, "antialias": True} if smooth else {}))[0]
        top, left = (new_h - self.size) // 2, (new_w - self.size) // 2
        x = x[:, top:top + self.size, left:left + self.size].expand(3, -1, -1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return ((x - mean) / std).contiguous()


INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


class ImageFiles(torch.utils.data.Dataset):
    """Item i: (tensor or None, i, error message or ""); a failure never raises inside a worker."""

    def __init__(self, paths, indices, preprocess: Preprocess):
        self.paths, self.indices, self.preprocess = paths, list(indices), preprocess

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k):
        from PIL import Image

        i = self.indices[k]
        try:
            with Image.open(self.paths[i]) as im:
                return self.preprocess(im), i, ""
        except Exception as exc:  # PIL raises many kinds (UnidentifiedImageError, OSError, SyntaxError...)
            return None, i, f"{type(exc).__name__}: {exc}"


def collate(items):
    """(stacked good images or None, their indices, [(index, error)] for the unreadable ones)."""
    good = [(x, i) for x, i, err in items if not err]
    bad = [(i, err) for _, i, err in items if err]
    batch = torch.stack([x for x, _ in good]) if good else None
    return batch, [i for _, i in good], bad
