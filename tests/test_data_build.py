"""zslkit data build (features + class table -> validated dataset with a proposed-split structure) and
train --semantic FILE (class embeddings replaced by a class table, aligned by name)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zslkit.cli import main
from zslkit.data.catalog import open_dataset
from zslkit.data.classtable import write_class_table
from zslkit.data.layouts import load_from_root
from zslkit.data.matio import write_mat
from zslkit.errors import DataError

NAMES = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"]
PER_CLASS = 25


@pytest.fixture
def extracted(tmp_path):
    """What `features extract` writes, for features that are a linear image of the class attributes + noise
    (so a zero-shot method can recognise unseen classes: the right answer is known)."""
    rng = np.random.default_rng(0)
    att = rng.random((len(NAMES), 6)) + np.eye(len(NAMES), 6)
    proj = rng.normal(size=(6, 20))
    labels = np.repeat(np.arange(len(NAMES)), PER_CLASS)
    feats = (att[labels] @ proj + 0.05 * rng.normal(size=(labels.size, 20))).astype(np.float32)
    out = tmp_path / "feat"
    out.mkdir()
    write_mat(out / "res101.mat", {"features": feats.T, "labels": (labels + 1).reshape(-1, 1).astype(float),
                                   "image_files": [f"{NAMES[c]}/{i}.png" for i, c in enumerate(labels)]})
    (out / "classes.txt").write_text("\n".join(NAMES) + "\n")
    order = rng.permutation(len(NAMES))  # the table lists the classes in another order
    table = write_class_table(tmp_path / "att.csv", [NAMES[i] for i in order], att[order],
                              columns=[f"a{j}" for j in range(6)])
    return out, table, att


def test_build_writes_a_valid_proposed_split_dataset_that_trains(extracted, tmp_path, capsys, one_thread):
    feat, table, att = extracted
    out = tmp_path / "ds"
    assert main(["data", "build", "--features", str(feat), "--classes", str(table), "--unseen", "cat,fox",
                 "--val-fraction", "0.34", "--seed", "3", "--out", str(out)]) == 0
    assert "validation checks passed" in capsys.readouterr().out
    ds = load_from_root(out)
    assert list(ds.class_names) == NAMES
    np.testing.assert_allclose(ds.class_embeddings, att / np.linalg.norm(att, axis=1, keepdims=True), atol=1e-6)
    assert [NAMES[c] for c in ds.unseen_classes] == ["cat", "fox"]
    s = ds.splits
    assert len(s["test_unseen"]) == 2 * PER_CLASS
    for c in ds.seen_classes:  # 20 % of each seen class is test_seen
        assert np.sum(ds.labels[s["test_seen"]] == c) == 5 and np.sum(ds.labels[s["trainval"]] == c) == 20
    assert np.array_equal(np.sort(np.concatenate([s["train"], s["val"]])), s["trainval"])
    val_classes = np.unique(ds.labels[s["val"]])
    assert len(val_classes) == 2 and not set(val_classes) & set(ds.labels[s["train"]])
    assert main(["data", "info", str(out)]) == 0
    run = tmp_path / "run"
    assert main(["train", "--method", "eszsl", "--data-root", str(out), "--out", str(run), "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["zsl_t1"] > 0.9  # two unseen classes: chance is 0.5


def test_build_options_fraction_seed_and_layout(extracted, tmp_path):
    feat, table, _ = extracted
    a, b, c = (load_from_root(main_build(feat, table, tmp_path / n, *extra)) for n, extra in [
        ("a", ["--seed", "1"]), ("b", ["--seed", "1"]), ("c", ["--seed", "2", "--to", "npz"])])
    assert len(a.unseen_classes) == 2  # round(0.25 * 8)
    assert all(np.array_equal(a.splits[k], b.splits[k]) for k in a.splits)
    assert any(not np.array_equal(a.splits[k], c.splits[k]) for k in a.splits)


def main_build(feat, table, out, *extra):
    assert main(["data", "build", "--features", str(feat), "--classes", str(table), "--unseen-fraction", "0.25",
                 "--out", str(out), *extra]) == 0
    return out


def test_build_errors_are_one_clear_line(extracted, tmp_path, capsys):
    feat, table, att = extracted
    bad = write_class_table(tmp_path / "bad.csv", NAMES[:-1] + ["zebra"], att)
    assert main(["data", "build", "--features", str(feat), "--classes", str(bad), "--unseen", "cat",
                 "--out", str(tmp_path / "x")]) == 1  # files that disagree: bad data, a run-time error
    err = capsys.readouterr().err
    assert "missing from the table: ['hen']" in err and "not in the features" in err and "'zebra'" in err
    assert main(["data", "build", "--features", str(feat), "--classes", str(table), "--unseen", "cat,lion",
                 "--out", str(tmp_path / "x")]) == 2  # an unknown name in an option: usage error
    assert "['lion']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # exactly one of --unseen / --unseen-fraction
        main(["data", "build", "--features", str(feat), "--classes", str(table), "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    (tmp_path / "text.csv").write_text("class,a,b\nant,1,x\n")
    assert main(["data", "build", "--features", str(feat), "--classes", str(tmp_path / "text.csv"), "--unseen", "cat",
                 "--out", str(tmp_path / "x")]) == 1
    assert "line 2" in capsys.readouterr().err


def test_semantic_file_replaces_embeddings_by_class_name(extracted, tmp_path, capsys):
    feat, table, att = extracted
    out = main_build(feat, table, tmp_path / "ds")
    rng = np.random.default_rng(1)
    text = rng.normal(size=(len(NAMES), 5)).astype(np.float32)
    order = rng.permutation(len(NAMES))
    write_class_table(tmp_path / "text.npy", [NAMES[i] for i in order], text[order])
    ds = open_dataset(str(out), semantic=str(tmp_path / "text.npy"))
    np.testing.assert_allclose(ds.class_embeddings, text, atol=1e-6)
    assert ds.semantic_source == "file:text.npy" and "aligned by class name" in ds.notes[-1]
    write_class_table(tmp_path / "short.csv", NAMES[:-1], text[:-1])
    assert main(["train", "--method", "eszsl", "--data-root", str(out), "--semantic", str(tmp_path / "short.csv"),
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    assert "missing from the table: ['hen']" in capsys.readouterr().err
    with pytest.raises(DataError, match="classes.txt beside it"):
        np.save(tmp_path / "lonely.npy", text)
        open_dataset(str(out), semantic=str(tmp_path / "lonely.npy"))
