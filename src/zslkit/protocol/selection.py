"""Model selection on validation classes (the honest default), fixed configs, and the labelled oracle.

The validation view of a dataset turns the seen classes into a small ZSL problem of their own:

* "unseen" = the validation classes (``val`` split, restricted to trainval samples);
* "seen"   = the other seen classes (``train`` split, restricted to trainval samples), of which a
  stratified 20% of samples is held out as the view's ``test_seen``.

No test sample (test_seen or test_unseen) is used. When the dataset has no train/val split,
20% of the seen classes (at least one) are drawn as validation classes with a fixed seed, and the
view's notes say so.
"""

from __future__ import annotations

import numpy as np

from zslkit.data.dataset import ZSLDataset
from zslkit.errors import DataError

SELECTION_MODES = {
    "validation": "hyperparameters and epochs chosen on validation classes (train vs val), then retrained on "
                  "trainval and tested once",
    "fixed": "configuration used as given, no selection; tested once",
    "oracle": "ORACLE: epochs/hyperparameters chosen by the best test H, as the reference codes do; only for "
              "comparing with published tables, not an honest estimate",
}
HELDOUT_FRACTION = 0.2
VALIDATION_SPLIT_SEED = 0


def derive_validation_classes(dataset: ZSLDataset, fraction: float = HELDOUT_FRACTION,
                              seed: int = VALIDATION_SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train classes, val classes): a fixed random ``fraction`` of the seen classes for validation."""
    seen = dataset.seen_classes
    if seen.size < 3:
        raise DataError(dataset.source, "trainval", f"only {seen.size} seen classes: validation selection needs at "
                        "least 3 (2 to train, 1 to validate); use --selection fixed")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(fraction * seen.size)))
    val = np.sort(rng.choice(seen, n_val, replace=False))
    return np.setdiff1d(seen, val), val


def validation_view(dataset: ZSLDataset, fraction: float = HELDOUT_FRACTION,
                    seed: int = VALIDATION_SPLIT_SEED) -> ZSLDataset:
    """The ZSL problem made of seen classes only, used to choose epochs and hyperparameters."""
    from dataclasses import replace

    trainval = dataset.splits["trainval"]
    labels = dataset.labels
    notes = list(dataset.notes)
    if dataset.has_validation_split:
        train_cls = np.unique(labels[dataset.splits["train"]])
        val_cls = np.unique(labels[dataset.splits["val"]])
        how = "validation classes from the dataset's train/val split"
    else:
        train_cls, val_cls = derive_validation_classes(dataset, fraction, seed)
        how = (f"validation classes DERIVED: {val_cls.size} of {dataset.seen_classes.size} seen classes drawn "
               f"with seed {seed} (the dataset has no train/val split)")
    notes.append(how)
    in_train = trainval[np.isin(labels[trainval], train_cls)]
    in_val = trainval[np.isin(labels[trainval], val_cls)]
    if in_train.size == 0 or in_val.size == 0:
        raise DataError(dataset.source, "val", "the validation split leaves no trainval samples for the train or the "
                        "val classes")
    rng = np.random.default_rng(seed + 1)
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
                   name=f"{dataset.name}[validation view]", notes=tuple(notes))
