"""Model selection on validation classes (the honest default), fixed configs, and the labelled oracle.

The validation view of a dataset turns the seen classes into a small ZSL problem of their own:

* "unseen" = the validation classes (``val`` split, restricted to trainval samples);
* "seen"   = the other seen classes (``train`` split, restricted to trainval samples), of which a
  stratified 20% of samples is held out as the view's ``test_seen``.

No test sample (test_seen or test_unseen) is used. When the dataset has no train/val split,
20% of the seen classes (at least one) are drawn as validation classes with a fixed seed, and the
view's notes say so.

Several class splits (:func:`class_splits`, :func:`validation_views`): with few seen classes one split's
two or three validation classes cannot rank configurations, so the protocol averages its criterion over k
class-disjoint train/validation splits. k follows :func:`split_count` (the written rule) unless given. The
splits are xlsa17's ``trainclasses{i}.txt`` / ``valclasses{i}.txt`` when the dataset's folder ships them, else
the dataset's own train/val split first and then the remaining seen classes dealt into k - 1 more validation
groups with a fixed seed (every split has at least 2 validation and 2 train classes).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from zslkit.data.dataset import ZSLDataset
from zslkit.data.xlsa17 import read_class_list
from zslkit.errors import DataError
from zslkit.runtime import stream_seed

SELECTION_MODES = {
    "validation": "hyperparameters and epochs chosen on validation classes (train vs val), then retrained on "
                  "trainval and tested once",
    "fixed": "configuration used as given, no selection; tested once",
    "oracle": "ORACLE: epochs/hyperparameters chosen by the best test H, as the reference codes do; only for "
              "comparing with published tables, not an honest estimate",
}
HELDOUT_FRACTION = 0.2
VALIDATION_SPLIT_SEED = 0


# the written rule for k (protocol/selection.py, docs/protocol.md): (fewest seen classes, splits), first match
SPLIT_RULE = ((20, 1), (0, 4))
MIN_SPLIT_CLASSES = 2  # validation classes per split, and train classes left beside them


def split_count(num_seen: int) -> int:
    """k, the number of validation class splits, from the number of seen classes: 4 below 20 seen classes, else
    1 (a single split then already holds 4+ validation classes, and more splits multiply the search's cost on
    the many-class data where it is already the slowest part); never more than leave ``MIN_SPLIT_CLASSES``
    validation classes per split, and 1 below 4 seen classes."""
    k = next(n for least, n in SPLIT_RULE if num_seen >= least)
    return max(1, min(k, num_seen // MIN_SPLIT_CLASSES if num_seen >= 4 else 1))


def _xlsa17_lists(dataset: ZSLDataset) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """The class splits of xlsa17's ``trainclasses{i}.txt`` / ``valclasses{i}.txt`` (i = 1, 2, 3) beside the
    dataset's files, as class ids; [] when none is there. Names must be the dataset's seen classes."""
    seen = set(int(c) for c in dataset.seen_classes)
    out = []
    for folder in dict.fromkeys(Path(f).parent for f in dataset.source_files):
        for i in (1, 2, 3):
            files = folder / f"trainclasses{i}.txt", folder / f"valclasses{i}.txt"
            if not all(f.is_file() for f in files):
                continue
            ids = [read_class_list(f, list(dataset.class_names), allowed=seen,
                                   unknown="not a seen class of this dataset (class list of another dataset or "
                                           "split?)") for f in files]
            if np.intersect1d(*ids).size:
                raise DataError(str(files[1]), None, f"shares classes with {files[0].name}")
            out.append((ids[0], ids[1], f"{files[0].name} / {files[1].name}"))
        if out:
            return out
    return out


def class_splits(dataset: ZSLDataset, k: int | None = None,
                 seed: int = VALIDATION_SPLIT_SEED) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """k (default :func:`split_count`) class-disjoint (train classes, validation classes, how) splits of the
    seen classes; deterministic. xlsa17 class lists when shipped (their number caps k), else the dataset's own
    split (or the derived one) first, then the other seen classes dealt into k - 1 groups (seeded)."""
    seen = dataset.seen_classes
    k = split_count(int(seen.size)) if k is None else int(k)
    if k < 1:
        raise DataError(dataset.source, "val_splits", f"needs at least 1 split, got {k}")
    listed = _xlsa17_lists(dataset) if k > 1 else []
    if listed:
        return listed[:k]
    if dataset.has_validation_split:
        first = np.unique(dataset.labels[dataset.splits["val"]])
        how = "the dataset's train/val split"
    else:
        first = derive_validation_classes(dataset)[1]
        how = f"derived: {first.size} of {seen.size} seen classes drawn with seed {seed}"
    splits = [(np.setdiff1d(seen, first), first, how)]
    if k == 1:
        return splits
    rng = np.random.default_rng(stream_seed(seed, "protocol.validation_classes"))
    rest = rng.permutation(np.setdiff1d(seen, first))
    groups = [g for g in np.array_split(rest, k - 1) if g.size]
    if seen.size - max(g.size for g in groups) < MIN_SPLIT_CLASSES or min(g.size for g in groups) < \
            min(MIN_SPLIT_CLASSES, first.size):
        raise DataError(dataset.source, "val_splits", f"{k} validation splits of {seen.size} seen classes leave "
                        f"fewer than {MIN_SPLIT_CLASSES} validation classes in a split; use fewer splits")
    for j, g in enumerate(groups):
        val = np.sort(g)
        splits.append((np.setdiff1d(seen, val), val, f"drawn split {j + 2}: {val.size} of the other seen classes "
                       f"(seed {seed})"))
    return splits


def derive_validation_classes(dataset: ZSLDataset, fraction: float = HELDOUT_FRACTION,
                              seed: int = VALIDATION_SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train classes, val classes): a fixed random ``fraction`` of the seen classes for validation."""
    seen = dataset.seen_classes
    if seen.size < 3:
        raise DataError(dataset.source, "trainval", f"only {seen.size} seen classes: validation selection needs at "
                        "least 3 (2 to train, 1 to validate); use --selection fixed")
    rng = np.random.default_rng(stream_seed(seed, "protocol.validation_classes"))
    n_val = max(1, int(round(fraction * seen.size)))
    val = np.sort(rng.choice(seen, n_val, replace=False))
    return np.setdiff1d(seen, val), val


def validation_views(dataset: ZSLDataset, k: int | None = None) -> list[ZSLDataset]:
    """One :func:`validation_view` per class split of :func:`class_splits` (k = 1: the single legacy view)."""
    splits = class_splits(dataset, k)
    if len(splits) == 1 and (dataset.has_validation_split or not _xlsa17_lists(dataset)):
        return [validation_view(dataset)]
    return [validation_view(dataset, classes=(tr, va), how=f"validation split {i + 1} of {len(splits)}: {how}",
                            tag=f"split {i + 1}/{len(splits)}")
            for i, (tr, va, how) in enumerate(splits)]


def validation_view(dataset: ZSLDataset, fraction: float = HELDOUT_FRACTION,
                    seed: int = VALIDATION_SPLIT_SEED, *, classes=None, how: str = "",
                    tag: str = "") -> ZSLDataset:
    """The ZSL problem made of seen classes only, used to choose epochs and hyperparameters; ``classes``
    (train classes, validation classes) replaces the dataset's own split."""
    trainval = dataset.splits["trainval"]
    labels = dataset.labels
    notes = list(dataset.notes)
    if classes is not None:
        train_cls, val_cls = (np.asarray(c, dtype=np.int64) for c in classes)
    elif dataset.has_validation_split:
        train_cls = np.unique(labels[dataset.splits["train"]])
        val_cls = np.unique(labels[dataset.splits["val"]])
        how = "validation classes from the dataset's train/val split"
    else:
        train_cls, val_cls = derive_validation_classes(dataset, fraction, seed)
        how = (f"validation classes DERIVED: {val_cls.size} of {dataset.seen_classes.size} seen classes drawn "
               f"with seed {seed} (the dataset has no train/val split)")
    if classes is None:
        notes.append(how)
    else:
        notes.append(how or f"validation classes given: {val_cls.size}")
    in_train = trainval[np.isin(labels[trainval], train_cls)]
    in_val = trainval[np.isin(labels[trainval], val_cls)]
    if in_train.size == 0 or in_val.size == 0:
        raise DataError(dataset.source, "val", "the validation split leaves no trainval samples for the train or the "
                        "val classes")
    rng = np.random.default_rng(stream_seed(seed, "protocol.heldout_seen"))
    held = []
    for c in np.unique(labels[in_train]):
        members = in_train[labels[in_train] == c]
        k = int(np.floor(fraction * members.size))
        if k >= 1 and members.size - k >= 1:
            held.append(rng.choice(members, k, replace=False))
    if not held:
        raise DataError(dataset.source, "train", "too few samples per train class to hold out validation samples")
    held = np.sort(np.concatenate(held))
    fit = np.setdiff1d(in_train, held)
    return replace(dataset, splits={"trainval": fit, "test_seen": held, "test_unseen": in_val,
                                    "train": None, "val": None},
                   name=f"{dataset.name}[validation view{', ' + tag if tag else ''}]", notes=tuple(notes))
