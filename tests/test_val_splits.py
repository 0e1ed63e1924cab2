"""Validation over several class splits: the rule for k, class-disjoint deterministic splits, xlsa17 class lists,
the criterion averaged over splits, racing, and what metrics.json and the summary show."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from zslkit.cli import main
from zslkit.data.synthetic import make_synthetic
from zslkit.errors import DataError
from zslkit.methods.eszsl import ESZSL
from zslkit.pipeline import mean_rows, run_protocol
from zslkit.protocol.selection import class_splits, split_count, validation_views


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", 0)  # 24 seen classes with a train/val split


def test_split_count_rule():
    assert [split_count(n) for n in (3, 4, 7, 10, 19, 20, 49, 50, 99, 100, 645)] == [1, 2, 3, 4, 4, 1, 1, 1, 1, 1, 1]


def test_splits_are_class_disjoint_cover_the_seen_classes_and_are_deterministic(tiny):
    splits = class_splits(tiny, 3)
    assert len(splits) == 3 and split_count(tiny.seen_classes.size) == 1
    seen = set(tiny.seen_classes.tolist())
    for train, val, _ in splits:
        assert not set(train) & set(val) and set(train) | set(val) == seen and val.size >= 2
    vals = [set(v.tolist()) for _, v, _ in splits]
    assert not any(a & b for i, a in enumerate(vals) for b in vals[i + 1:])  # each class validates once at most
    assert vals[0] == set(np.unique(tiny.labels[tiny.splits["val"]]).tolist())  # the dataset's own split first
    again = class_splits(tiny, 3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))
    views = validation_views(tiny, 3)
    for view, (_, val, _) in zip(views, splits):
        assert set(np.unique(view.labels[view.splits["test_unseen"]]).tolist()) == set(val.tolist())
        used = np.concatenate([view.splits[s] for s in ("trainval", "test_seen", "test_unseen")])
        assert np.isin(used, tiny.splits["trainval"]).all()  # no test sample


def test_too_many_splits_is_a_data_error(tiny):
    with pytest.raises(DataError, match="fewer than 2 validation classes"):
        class_splits(tiny, 12)


def test_xlsa17_class_lists_are_read(tiny, tmp_path):
    names = list(tiny.class_names)
    seen = tiny.seen_classes
    lists = [seen[:6], seen[6:12], seen[12:18]]
    for i, val in enumerate(lists, 1):
        (tmp_path / f"valclasses{i}.txt").write_text("\n".join(names[c] for c in val) + "\n")
        (tmp_path / f"trainclasses{i}.txt").write_text("\n".join(names[c] for c in np.setdiff1d(seen, val)) + "\n")
    ds = dataclasses.replace(tiny, source_files=(str(tmp_path / "att_splits.mat"),))
    splits = class_splits(ds, 3)
    assert [s[1].tolist() for s in splits] == [np.sort(v).tolist() for v in lists]
    assert splits[1][2] == "trainclasses2.txt / valclasses2.txt"
    assert len(class_splits(ds, 2)) == 2
    (tmp_path / "valclasses3.txt").write_text("no_such_class\n")
    with pytest.raises(DataError, match="valclasses3.txt"):
        class_splits(ds, 3)


def test_mean_rows_average_the_splits_on_common_epochs():
    h = []
    for s, values in enumerate(([0.2, 0.6, 0.4], [0.4, 0.2])):  # split 1 stopped after epoch 2
        for e, v in enumerate(values, 1):
            h.append({"stage": "validation", "candidate": 0, "overrides": {}, "epoch": e, "split": s,
                      **{k: v for k in ("zsl_t1", "gzsl_u", "gzsl_s", "gzsl_h", "cs_gamma", "gzsl_cs_h")}})
    rows = mean_rows(h, "validation", 0, 2, "gzsl_h")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0]["gzsl_h"] == pytest.approx(0.3) and rows[1]["gzsl_h"] == pytest.approx(0.4)
    assert rows[1]["criterion_std"] == pytest.approx(0.2) and rows[1]["criterion_per_split"] == [0.6, 0.2]


def test_selection_chooses_on_the_mean_over_splits(tiny):
    r = run_protocol(ESZSL, tiny, config={"grid": (-1.0, 0.0, 1.0)}, criterion="gzsl_h", seed=0, device="cpu",
                     val_splits=3)
    means = [row for row in r.history if row.get("split") == "mean" and row["splits"] == 3]
    assert means  # (candidates raced out after a split have means over fewer splits and are not chosen)
    for row in means:
        per = [x["gzsl_h"] for x in r.history if isinstance(x.get("split"), int) and x["candidate"] == row["candidate"]
               and x["overrides"] == row["overrides"] and x["epoch"] == row["epoch"]]
        assert row["gzsl_h"] == pytest.approx(np.mean(per)) and len(per) == 3
    best = max(means, key=lambda row: row["gzsl_h"])
    val = r.metrics["selection"]["validation_metrics"]
    assert val["gzsl_h"] == pytest.approx(best["gzsl_h"])
    assert val["splits"]["count"] == 3 and val["splits"]["mean"] == pytest.approx(best["gzsl_h"])
    assert val["splits"]["std"] == pytest.approx(np.std(val["splits"]["per_split"]))
    assert set(r.metrics["time_s"]) == {"search", "final_fit", "evaluation", "total"}
    one = run_protocol(ESZSL, tiny, config={"grid": (-1.0, 0.0, 1.0)}, seed=0, device="cpu", val_splits=1)
    assert all("split" not in row for row in one.history) and one.metrics["selection"]["validation_metrics"][
        "splits"]["count"] == 1


def test_racing_drops_a_candidate_far_behind(tiny, monkeypatch):
    import zslkit.protocol.search as search

    monkeypatch.setattr(search, "RACE_MARGIN", -1.0)  # every candidate but the leader is "far behind"
    config = {"grid": (-3.0, 1.0), "lambda_min_exp": -1.0}  # 2 candidates (gamma -3 or 1, lambda 1), any default
    r = run_protocol(ESZSL, tiny, config=config, seed=0, device="cpu", val_splits=3)
    fitted = {(x["candidate"], x["split"]) for x in r.history if isinstance(x.get("split"), int)}
    assert len(fitted) == 2 + 2 + 1  # both candidates on splits 1 and 2 (no racing on one split), then the leader
    chosen = [row for row in r.history if row.get("split") == "mean" and row["splits"] == 3]
    assert chosen and r.metrics["selection"]["validation_metrics"]["splits"]["count"] == 3


def test_self_training_is_chosen_only_where_it_helps_every_split():
    from zslkit.protocol.search import helps_every_split

    def row(epoch, per):
        return {"candidate": 0, "overrides": {}, "epoch": epoch, "criterion_per_split": per}

    start = row(0, [0.4, 0.3, 0.2])
    rows = [start, row(1, [0.9, 0.5, 0.1]), row(2, [0.5, 0.3, 0.25])]
    assert [helps_every_split(r, rows) for r in rows] == [True, False, True]  # a higher mean is not enough


def test_train_val_splits_option(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(out), "--no-progress",
                 "--device", "cpu", "--val-splits", "2"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["selection"]["validation_metrics"]["splits"]["count"] == 2
    printed = capsys.readouterr().out
    assert "validation over 2 class splits" in printed and "wall time: search" in printed
    with pytest.raises(SystemExit) as exit_:  # bounds are checked at parse time (usage error)
        main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(tmp_path / "x"),
              "--val-splits", "0"])
    assert exit_.value.code == 2 and "--val-splits" in capsys.readouterr().err
