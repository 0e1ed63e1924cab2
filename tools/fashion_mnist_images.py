"""Write Fashion-MNIST images as an image folder (one sub-folder per class, PNG files), for the worked example
in docs/examples/images-and-text.md and the tests.

    python tools/fashion_mnist_images.py --per-class 500 --seed 0 --out data/fashion-images

Reads the IDX files of the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``;
``--idx-dir`` for another copy). Images are drawn per class at random (``--seed``) from the training file, the
same way as ``../shared/data/fashion-zsl`` (500 per class, seed 0); each file is named by its index in the
training file (``train_00003.png``). ``--like res101.mat`` writes exactly the images that file's ``image_files``
names (``fashion-mnist/train/<index>``), e.g. those of fashion-zsl.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np

IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format: big-endian magic, dimensions, then uint8 data)."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def select(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices: ``per_class`` random images of each class (numpy default_rng(seed), class by class)."""
    rng = np.random.default_rng(seed)
    picked = [np.sort(rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False))
              for c in range(len(CLASSES))]
    return np.concatenate(picked)


def indices_like(mat_file: Path) -> np.ndarray:
    """The training-file indices named by a res101.mat's ``image_files`` (``fashion-mnist/train/<index>``)."""
    from zslkit.data.matio import read_mat

    names = read_mat(mat_file, ["image_files"])["image_files"]
    return np.asarray([int(str(n).rsplit("/", 1)[1]) for n in names], dtype=np.int64)


def write_folder(out: Path, per_class: int, seed: int = 0, idx_dir: Path = IDX_DIR, indices=None) -> list[Path]:
    from PIL import Image

    images = read_idx(idx_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(idx_dir / "train-labels-idx1-ubyte.gz")
    written = []
    for i in (select(labels, per_class, seed) if indices is None else indices):
        folder = out / CLASSES[labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"train_{i:05d}.png"
        Image.fromarray(images[i], mode="L").save(path)
        written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--idx-dir", type=Path, default=IDX_DIR)
    ap.add_argument("--like", type=Path, default=None, metavar="RES101_MAT",
                    help="write the images named in this file's image_files instead of a random draw")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    indices = indices_like(args.like) if args.like else None
    files = write_folder(args.out, args.per_class, args.seed, args.idx_dir, indices)
    print(f"wrote {len(files)} images into {args.out}")


if __name__ == "__main__":
    main()
