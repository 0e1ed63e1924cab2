"""tools/tune_cvc_presets.py: the search record and the preset file it writes, and the committed presets
agreeing with their records."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml

from zslkit.presets import list_presets

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location("tune_cvc_presets", ROOT / "tools" / "tune_cvc_presets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tool(tmp_path, monkeypatch):
    mod = load_tool()
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "tuning")
    preset_copy = tmp_path / "cvc_zsl.yaml"
    shutil.copy(mod.PRESET_FILE, preset_copy)
    monkeypatch.setattr(mod, "PRESET_FILE", preset_copy)
    small = mod.search_base

    def short_budget(dataset=None, setting="inductive"):  # the search procedure, on a test-sized budget
        return dataclasses.replace(small(dataset, setting), epochs=3, episodes=10, inductive_epochs=2,
                                   finetune_episodes=10)

    monkeypatch.setattr(mod, "search_base", short_budget)
    return mod


def test_search_then_write_replaces_only_the_searched_entries(tool, one_thread):
    with pytest.raises(SystemExit, match="run --setting inductive first"):
        tool.search("synthetic-tiny", "transductive", [1e-4], 0, "cpu")
    ind = tool.search("synthetic-tiny", "inductive", [1e-4, 3e-4], 0, "cpu")
    assert ind["dataset"] == "synthetic-tiny" and ind["synthetic"]
    assert {row["candidate"] for row in ind["history"]} == {0, 1} and len(ind["history"]) == 6
    best = max(ind["history"], key=lambda r: r["gzsl_h"])
    assert ind["validation"]["gzsl_h"] == pytest.approx(best["gzsl_h"])
    assert ind["chosen_config"]["lr"] == ind["lr_grid"][best["candidate"]]
    assert ind["chosen_config"]["epochs"] == best["epoch"]
    trans = tool.search("synthetic-tiny", "transductive", [1e-4], 0, "cpu", shapes=["4x1", "6x2"])
    assert trans["base_config"]["lr"] == ind["chosen_config"]["lr"]  # warm-up at the inductive choice
    assert {row["candidate"] for row in trans["history"]} == {0, 1}
    # each shape: epoch 0 (the warm-up model, no self-training) and the 3 self-training epochs
    assert [row["overrides"]["trans_ways"] for row in trans["history"]] == [4] * 4 + [6] * 4
    assert [row["epoch"] for row in trans["history"]] == [0, 1, 2, 3] * 2
    best = max(trans["history"], key=lambda r: r["gzsl_h"])
    assert (trans["chosen_config"]["trans_ways"], trans["chosen_config"]["trans_shots"]) == \
        ((4, 1) if best["candidate"] == 0 else (6, 2))
    assert "episode shape in {4x1, 6x2}" in tool.source_text(trans)
    before = yaml.safe_load(tool.PRESET_FILE.read_text())
    assert tool.write_presets() == 2
    text = tool.PRESET_FILE.read_text()
    assert text.startswith("#")  # the header comments survive
    after = yaml.safe_load(text)
    assert set(after) == set(before)
    for key in before:
        if key.startswith("synthetic-tiny/"):
            setting = key.split("/")[1]
            rec = json.loads(tool.result_path("synthetic-tiny", setting).read_text())
            assert after[key]["params"] == rec["chosen_config"]
            assert "validation classes" in after[key]["source"] and "never test" in after[key]["source"]
        else:
            assert after[key] == before[key]


def test_committed_synthetic_presets_match_their_search_records():
    tool = load_tool()
    tuned = [p for p in list_presets("cvc-zsl") if p.name.startswith("synthetic-") and p.variant is None]
    assert tuned
    for preset in tuned:
        path = tool.result_path(preset.name, preset.setting)
        assert path.is_file(), f"{preset.name}/{preset.setting} has no search record"
        rec = json.loads(path.read_text())
        assert preset.params == rec["chosen_config"], path.name
        assert preset.source == tool.source_text(rec)
