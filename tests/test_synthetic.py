"""Synthetic presets: deterministic, benchmark-shaped, labelled synthetic, learnable."""

import numpy as np
import pytest

from zslkit.data.synthetic import PRESETS, make_synthetic
from zslkit.errors import ConfigError

# (classes, seen, unseen, embedding dim, trainval, test_seen, test_unseen) from the xlsa17 README table
BENCHMARK_SHAPES = {
    "synthetic-awa1": (50, 40, 10, 85, 19832, 4958, 5685),
    "synthetic-awa2": (50, 40, 10, 85, 23527, 5882, 7913),
    "synthetic-cub": (200, 150, 50, 312, 7057, 1764, 2967),
    "synthetic-sun": (717, 645, 72, 102, 10320, 2580, 1440),
    "synthetic-apy": (32, 20, 12, 64, 5932, 1483, 7924),
    "synthetic-flo": (102, 82, 20, 1024, 5631, 1403, 1155),
}


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (make_synthetic("synthetic-tiny", s) for s in (0, 0, 1))
    assert np.array_equal(a.features, b.features) and np.array_equal(a.labels, b.labels)
    assert all(np.array_equal(a.splits[k], b.splits[k]) for k in ("trainval", "test_seen", "test_unseen"))
    assert not np.array_equal(a.features, c.features)


@pytest.mark.parametrize("name", sorted(BENCHMARK_SHAPES))
def test_presets_are_shaped_like_their_benchmark(name):
    ds = make_synthetic(name, 0)
    C, S, U, A, tv, ts, tu = BENCHMARK_SHAPES[name]
    assert (ds.num_classes, len(ds.seen_classes), len(ds.unseen_classes), ds.embedding_dim) == (C, S, U, A)
    sizes = {k: len(v) for k, v in ds.splits.items() if v is not None}
    assert (sizes["trainval"], sizes["test_seen"], sizes["test_unseen"]) == (tv, ts, tu)
    assert ds.feature_dim == 2048 and ds.features.min() >= 0.0
    assert ds.synthetic and "SYNTHETIC" in ds.notes[0]
    assert len(np.unique(ds.labels[ds.splits["val"]])) == PRESETS[name].num_val_classes
    if PRESETS[name].val is not None:
        assert sizes["val"] == PRESETS[name].val


def test_unknown_preset_suggests_close_names():
    with pytest.raises(ConfigError, match="synthetic-awa2"):
        make_synthetic("synthetic-awa3")


def test_unseen_classes_are_learnable_from_embeddings():
    """Nearest predicted class mean (ridge from embeddings to seen means) beats chance by far."""
    ds = make_synthetic("synthetic-tiny", 0)
    X, y = ds.split("trainval")
    seen, unseen = ds.seen_classes, ds.unseen_classes
    means = np.stack([X[y == c].mean(0) for c in seen])
    E = ds.class_embeddings
    W = np.linalg.solve(E[seen].T @ E[seen] + np.eye(ds.embedding_dim), E[seen].T @ means)
    pred_means = E[unseen] @ W
    Xu, yu = ds.split("test_unseen")
    pred = unseen[((Xu[:, None, :] - pred_means[None]) ** 2).sum(-1).argmin(1)]
    acc = np.mean([np.mean(pred[yu == c] == c) for c in unseen])
    assert acc > 2.5 / len(unseen)
