"""ZSLDataset validation: every inconsistency is a DataError naming the key and the problem."""

import numpy as np
import pytest

from zslkit.data.dataset import ZSLDataset
from zslkit.errors import DataError


def _parts(**changes):
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1, 3, 3, 4, 4])
    parts = dict(features=rng.random((12, 5)).astype(np.float32), labels=labels,
                 class_embeddings=rng.random((5, 3)), class_names=[f"c{i}" for i in range(5)],
                 splits={"trainval": [0, 1, 2, 3, 4, 5], "test_seen": [6, 7], "test_unseen": [8, 9, 10, 11],
                         "train": [0, 1, 2, 3, 6, 7], "val": [4, 5]},
                 source="toy.mat")
    parts.update(changes)
    return parts


def test_valid_dataset_derives_seen_and_unseen():
    ds = ZSLDataset(**_parts())
    assert ds.seen_classes.tolist() == [0, 1, 2]
    assert ds.unseen_classes.tolist() == [3, 4]
    assert ds.features.dtype == np.float32 and ds.labels.dtype == np.int64
    assert ds.summary()["split_sizes"]["trainval"] == 6


@pytest.mark.parametrize("change, key, phrase", [
    ({"splits": {"trainval": [0, 1, 2, 3, 4, 99], "test_seen": [6], "test_unseen": [8]}}, "trainval", "out of range"),
    ({"splits": {"trainval": [0, 0, 2], "test_seen": [6], "test_unseen": [8]}}, "trainval", "duplicated"),
    ({"splits": {"trainval": [0, 1, 6], "test_seen": [6], "test_unseen": [8]}}, "test_seen", "both"),
    ({"splits": {"trainval": [0, 1, 8], "test_seen": [6], "test_unseen": [9]}}, "trainval", "unseen classes"),
    ({"splits": {"trainval": [], "test_seen": [6], "test_unseen": [8]}}, "trainval", "empty"),
    ({"splits": {"trainval": [0], "test_seen": [6]}}, "test_unseen", "missing"),
    ({"labels": np.arange(11) % 5}, "labels", "11 labels but 12"),
    ({"labels": np.array([0, 0, 1, 1, 2, 2, 0, 1, 3, 3, 4, 7])}, "labels", "5 class embeddings"),
    ({"class_names": ["a", "b"]}, "class_names", "2 class names"),
    ({"features": np.full((12, 5), np.nan)}, "features", "NaN"),
    ({"class_embeddings": np.array([[np.inf, 0, 0]] * 5)}, "class_embeddings", "NaN or inf"),
    ({"features": np.ones(12)}, "features", "2-D"),
])
def test_invalid_datasets_raise_clear_errors(change, key, phrase):
    parts = _parts(**change)
    if "splits" in change:
        parts["splits"] = change["splits"]
    with pytest.raises(DataError) as err:
        ZSLDataset(**parts)
    msg = str(err.value)
    assert "toy.mat" in msg and f"'{key}'" in msg and phrase in msg


def test_train_val_must_split_seen_classes_by_class():
    parts = _parts()
    parts["splits"] = dict(parts["splits"], train=[0, 2, 4], val=[1, 3, 5])  # class 0 in both
    with pytest.raises(DataError, match="both 'train' and 'val'"):
        ZSLDataset(**parts)
    parts["splits"] = dict(_parts()["splits"], val=None)
    with pytest.raises(DataError, match="together"):
        ZSLDataset(**parts)


def test_boolean_masks_become_indices_and_splits_are_read_only():
    parts = _parts()
    mask = np.zeros(12, bool)
    mask[[8, 9, 10, 11]] = True
    parts["splits"] = dict(parts["splits"], test_unseen=mask)
    ds = ZSLDataset(**parts)
    assert ds.splits["test_unseen"].tolist() == [8, 9, 10, 11]
    with pytest.raises(TypeError):
        ds.splits["val"] = np.array([0])
    with pytest.raises(ValueError):
        ds.labels[0] = 4
    parts["splits"] = dict(parts["splits"], test_unseen=np.array([True, False]))
    with pytest.raises(DataError, match="boolean mask"):
        ZSLDataset(**parts)
