"""`zslkit train --data-root` on a real xlsa17 split file paired with generated features (same layout)."""

import hashlib
import json

import pytest

from fakedata import SHARED_XLSA17, shared_available, stage_real
from zslkit.cli import main

pytestmark = pytest.mark.skipif(not shared_available(), reason="../shared/data/xlsa17 not present")


def test_train_eszsl_on_real_apy_split(tmp_path, capsys):
    folder = stage_real("APY", tmp_path / "data", feature_dim=16)
    out = tmp_path / "run"
    assert main(["train", "--method", "eszsl", "--data-root", str(folder), "--out", str(out), "--no-progress",
                 "--device", "cpu", "--set", "grid=-1,1"]) == 0
    printed = capsys.readouterr().out
    assert "(real data)" in printed and "selection: validation" in printed
    m = json.loads((out / "metrics.json").read_text())
    assert m["synthetic"] is False and m["dataset"] == "APY"
    prov = json.loads((out / "provenance.json").read_text())
    expected = hashlib.sha256((SHARED_XLSA17 / "APY" / "att_splits.mat").read_bytes()).hexdigest()
    assert prov["dataset"]["split_sha256"] == expected
    assert prov["dataset"]["num_seen"] == 20 and prov["dataset"]["num_unseen"] == 12
