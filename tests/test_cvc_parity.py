"""CVC-ZSL parity harness (issue 19): the reference log parser, the last / best-test-H readings, the zslkit command
it runs, and the recorded reference file's shape."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("parity_cvc", ROOT / "benchmarks" / "parity_cvc.py")
parity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parity)

LOG = """Namespace(dataset='fold0', ways=7)
ep: 0,  lr: 0.001000, loss: 0.8387,  zsl: 0.3126, gzsl: seen=0.7322, unseen=0.1588, h=0.2610
ep: 1,  lr: 0.001000, loss: 0.7466,  zsl: 0.3603, gzsl: seen=0.6338, unseen=0.2328, h=0.3405
ep: 2,  lr: 0.000500, loss: 0.7264,  zsl: 0.3052, gzsl: seen=0.6256, unseen=0.2285, h=0.3347
best_ep: 1, zsl: 0.3603, gzsl: seen=0.6338, unseen=0.2328, h=0.3405
zsl: 0.3603, gzsl: seen=0.6338, unseen=0.2328, h=0.3405
"""


def test_parse_log_reads_every_epoch_line_with_seen_and_unseen_in_the_codes_order():
    c = parity.parse_log(LOG)
    assert c["zsl_t1"] == [0.3126, 0.3603, 0.3052]
    assert c["gzsl_s"] == [0.7322, 0.6338, 0.6256]  # printed as seen= first
    assert c["gzsl_u"] == [0.1588, 0.2328, 0.2285]
    assert c["gzsl_h"] == [0.2610, 0.3405, 0.3347]
    assert c["lr"] == [0.001, 0.001, 0.0005]


def test_parse_log_without_epoch_lines_is_an_error():
    with pytest.raises(SystemExit, match="no epoch lines"):
        parity.parse_log("best_ep: 1, zsl: 0.3\n")


def test_last_and_best_test_h_readings():
    c = parity.parse_log(LOG)
    assert parity.pick(c, "last") == {"epoch": 3, "zsl_t1": 0.3052, "gzsl_u": 0.2285, "gzsl_s": 0.6256,
                                      "gzsl_h": 0.3347}
    best = parity.pick(c, "best")  # what train.py prints as best_ep (0-based 1 -> epoch 2)
    assert best["epoch"] == 2 and best["gzsl_h"] == 0.3405 and best["zsl_t1"] == 0.3603
    tie = {k: [0.5, 0.5] for k in parity.KEYS}
    assert parity.pick(tie, "best")["epoch"] == 1  # the first of equal H, as train.py's strict '>'


def test_zslkit_command_sets_every_reference_setting(tmp_path):
    settings = {"ways": 7, "shots": 4, "lr": 0.001, "step_size": 100, "epochs": 200, "episodes": 200,
                "weight_decay": 0.0001}
    cmd = parity.zslkit_command(tmp_path, tmp_path / "run", settings, 3, False, ["hidden_dim=64"])
    assert cmd[cmd.index("--variant") + 1] == "reference"
    assert cmd[cmd.index("--selection") + 1] == "oracle"
    assert cmd[cmd.index("--seed") + 1] == "3"
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert sets == ["ways=7", "shots=4", "lr=0.001", "step_size=100", "epochs=200", "episodes=200",
                    "weight_decay=0.0001", "hidden_dim=64"]
    fixed = parity.zslkit_command(tmp_path, tmp_path / "run", settings, 0, True, [])
    assert fixed[fixed.index("--selection") + 1] == "fixed"


def test_fold_root_links_the_fold_split(tmp_path):
    data = tmp_path / "d"
    (data / "folds").mkdir(parents=True)
    (data / "res101.mat").write_text("x")
    (data / "folds" / "fold2_att_splits.mat").write_text("y")
    assert parity.fold_root(data, 0, tmp_path) == data
    out = parity.fold_root(data, 2, tmp_path / "t")
    assert (out / "att_splits.mat").resolve() == (data / "folds" / "fold2_att_splits.mat").resolve()
    with pytest.raises(SystemExit, match="no such fold file"):
        parity.fold_root(data, 3, tmp_path / "t")


def test_record_adds_a_run_to_the_reference_file(tmp_path):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"datasets": {}}))
    log = tmp_path / "a.log"
    log.write_text(LOG)
    assert parity.main(["record", str(log), "--data", "digits-7seg", "--fold", "1", "--seed", "5",
                        "--settings", '{"ways": 7}', "--reference", str(ref)]) == 0
    got = json.loads(ref.read_text())["datasets"]["digits-7seg"]
    assert got["settings"] == {"ways": 7}
    assert got["runs"]["1"]["5"]["gzsl_h"] == [0.2610, 0.3405, 0.3347]


def test_recorded_reference_file_has_settings_and_patches():
    ref = json.loads((ROOT / "benchmarks" / "results" / "parity_cvc_reference.json").read_text())
    assert ref["patches"] and ref["commit"]
    d7 = ref["datasets"]["digits-7seg"]
    assert set(d7["settings"]) == {"ways", "shots", "lr", "step_size", "epochs", "episodes", "weight_decay"}
    for fold, seeds in d7["runs"].items():
        for curves in seeds.values():
            assert len(curves["gzsl_h"]) == d7["settings"]["epochs"]
