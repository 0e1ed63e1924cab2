"""Defaults on real data: a slice of ../shared/data/fashion-zsl (real EfficientNet-Lite0 features of Fashion-MNIST,
hand-written attributes), where every method's default options must transfer to the unseen classes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from zslkit.data.catalog import open_dataset
from zslkit.data.dataset import ZSLDataset
from zslkit.methods.cvc import CVCZSL
from zslkit.methods.eszsl import ESZSL
from zslkit.pipeline import best_row, run_protocol
from zslkit.protocol.evaluate import TestScores as Scores  # (not a test class)
from zslkit.protocol.selection import validation_view

FASHION = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-zsl"

pytestmark = [pytest.mark.skipif(not (FASHION / "res101.mat").is_file(), reason="../shared/data/fashion-zsl absent"),
              pytest.mark.usefixtures("one_thread")]


def subsample(ds: ZSLDataset, per_class: int, seed: int = 0) -> ZSLDataset:
    """At most ``per_class`` samples of every class in every split (train/val stay inside trainval)."""
    rng = np.random.default_rng(seed)
    keep = []
    for name in ("trainval", "test_seen", "test_unseen"):
        idx = ds.splits[name]
        for c in np.unique(ds.labels[idx]):
            members = idx[ds.labels[idx] == c]
            keep.append(rng.choice(members, min(per_class, members.size), replace=False))
    keep = np.sort(np.concatenate(keep))
    splits = {}
    for name, idx in ds.splits.items():
        if idx is None:
            splits[name] = None
            continue
        inside = np.intersect1d(idx, keep)
        splits[name] = np.searchsorted(keep, inside)
    return ZSLDataset(features=ds.features[keep], labels=ds.labels[keep], class_embeddings=ds.class_embeddings,
                      class_names=ds.class_names, splits=splits, name="fashion-slice", source=ds.source)


@pytest.fixture(scope="module")
def fashion():
    return subsample(open_dataset(str(FASHION)), per_class=40)


def chance(ds: ZSLDataset) -> float:
    return 1.0 / ds.unseen_classes.size


def test_slice_is_real_and_shaped_like_the_folds(fashion):
    assert not fashion.synthetic and fashion.feature_dim == 1280
    assert fashion.unseen_classes.size == 3 and fashion.seen_classes.size == 7 and fashion.has_validation_split


def test_eszsl_defaults_transfer(fashion):
    r = run_protocol(ESZSL, fashion, seed=0, device="cpu")
    assert r.metrics["selection"]["criterion"] == "gzsl_cs_h"  # its default criterion
    assert r.metrics["zsl_t1"] > 1.5 * chance(fashion)
    assert r.metrics["gzsl_cs_h"] > 0.2


def test_cvc_inductive_defaults_transfer(fashion):
    # the default rules (lr searched in {1e-4, 1e-3}, epochs, patience); epoch length and width cut for speed
    cfg = dataclasses.replace(CVCZSL.default_config(fashion), episodes=10, hidden_dim=512)
    r = run_protocol(CVCZSL, fashion, config=cfg, seed=0, device="cpu")
    assert r.metrics["zsl_t1"] > 1.5 * chance(fashion)
    assert r.metrics["gzsl_h"] > 0.1
    assert r.metrics["warnings"] == []
    assert r.metrics["selection"]["chosen"]["lr"] in (1e-4, 1e-3)


def test_cvc_transductive_chooses_its_warmup_on_validation(fashion):
    cfg = dataclasses.replace(CVCZSL.default_config(fashion, "transductive"), episodes=10, hidden_dim=256)
    r = run_protocol(CVCZSL, fashion, config=cfg, setting="transductive", seed=0, device="cpu")
    warm = [row for row in r.history if row.get("stage") == "warmup"]
    trans = [row for row in r.history if row.get("stage") == "validation"]
    assert warm and trans
    best_warm = best_row(warm, "gzsl_h")
    assert r.config.inductive_epochs == best_warm["epoch"]
    assert r.metrics["selection"]["chosen"]["inductive_epochs"] == best_warm["epoch"]  # reported with the rest
    assert r.config.lr == best_warm["overrides"].get("lr", cfg.lr)
    assert r.metrics["zsl_t1"] > 1.5 * chance(fashion)
    assert r.metrics["gzsl_h"] > 0.1


class KeptESZSL(ESZSL):
    """ESZSL that keeps its validation model (its V does not depend on which classes are seen)."""

    keeps_validated_model = True
    adopted = None

    def adopt_seen_classes(self, X, y, class_embeddings) -> None:
        type(self).adopted = (X.shape[0], int(y.max()) + 1, class_embeddings.shape[0])
        self.num_train_classes_ = class_embeddings.shape[0]


def test_kept_validation_model_is_the_tested_model(fashion, tmp_path):
    cfg = {"grid": (-1.0, 1.0)}
    several = run_protocol(KeptESZSL, fashion, config=cfg, seed=0, device="cpu")  # 7 seen classes: 3 splits
    assert several.metrics["selection"]["validation_metrics"]["final_model"] == "retrained on trainval"
    r = run_protocol(KeptESZSL, fashion, config=cfg, seed=0, device="cpu", val_splits=1)
    sel = r.metrics["selection"]
    assert sel["validation_metrics"]["final_model"] == "kept from validation"
    n_trainval = fashion.splits["trainval"].size
    assert KeptESZSL.adopted == (n_trainval, 7, 7)
    # the saved model, scored again on the validation view, gives the validation numbers it was chosen by
    path = r.model.save(tmp_path / "model.pt")
    again = Scores(KeptESZSL.load(path, device="cpu"), validation_view(fashion))
    recomputed = again.metrics(sel["validation_metrics"]["cs_gamma"])
    for key in ("zsl_t1", "gzsl_h", "gzsl_cs_h"):
        assert recomputed[key] == pytest.approx(sel["validation_metrics"][key], abs=1e-9)
