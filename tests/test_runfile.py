"""Runs as files: run.yaml in every run directory, ``zslkit train --config FILE`` (replay, options beside it,
bad files) and ``--set`` with several pairs after one flag."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from zslkit.cli import build_parser, main
from zslkit.cli.train_cmd import collect_overrides, run_fields
from zslkit.errors import ConfigError
from zslkit.experiment import RunSpec
from zslkit.runfile import KEYS, RUN_FILE, read_run_file, run_file_fields

ESZSL = ["--method", "eszsl", "--dataset", "synthetic-tiny", "--set", "grid=-1,0,1", "--no-progress", "--device", "cpu"]
TIMING = ("wall_time_s", "search_time_s", "time_s")  # seconds differ between two runs


def same_metrics(a, b) -> bool:
    """metrics.json of two runs equal, timing apart."""
    def strip(m):
        if isinstance(m, dict):
            return {k: strip(v) for k, v in m.items() if k not in TIMING}
        return m
    return strip(json.loads(a.read_text())) == strip(json.loads(b.read_text()))


@pytest.fixture(scope="module")
def eszsl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "eszsl"
    assert main(["train", *ESZSL, "--seed", "1", "--out", str(out)]) == 0
    return out


def test_a_run_directory_holds_its_run_file(eszsl_run):
    fields = yaml.safe_load((eszsl_run / RUN_FILE).read_text())
    assert (fields["method"], fields["dataset"], fields["seed"], fields["selection"]) == ("eszsl", "synthetic-tiny", 1,
                                                                                          "validation")
    assert fields["overrides"] == {"grid": [-1.0, 0.0, 1.0]}  # as the config holds it, not the text '-1,0,1'
    assert list(fields) == [k for k in KEYS if k in fields]  # in the order of runfile.KEYS


def test_replay_from_the_run_file_gives_the_same_metrics(eszsl_run, tmp_path, capsys):
    assert main(["train", "--config", str(eszsl_run / RUN_FILE), "--out", str(tmp_path / "again"),
                 "--no-progress"]) == 0
    assert "no option replaces its values" in capsys.readouterr().out
    assert same_metrics(eszsl_run / "metrics.json", tmp_path / "again" / "metrics.json")
    assert (tmp_path / "again" / RUN_FILE).read_text() == (eszsl_run / RUN_FILE).read_text()
    as_json = tmp_path / "run.json"  # the same run file as JSON
    as_json.write_text(json.dumps(yaml.safe_load((eszsl_run / RUN_FILE).read_text())))
    assert main(["train", "--config", str(as_json), "--out", str(tmp_path / "json"), "--no-progress"]) == 0
    assert same_metrics(eszsl_run / "metrics.json", tmp_path / "json" / "metrics.json")


def test_replay_of_a_trained_cvc_run(tmp_path):
    """A method with epochs, episodes and seeds: the replay's metrics are the original's (tiny budget)."""
    first = tmp_path / "cvc"
    assert main(["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--selection", "fixed", "--epochs",
                 "1", "--set", "episodes=2", "hidden_dim=16", "--seed", "2", "--out", str(first), "--no-progress",
                 "--device", "cpu"]) == 0
    assert yaml.safe_load((first / RUN_FILE).read_text())["overrides"] == {"epochs": 1, "episodes": 2,
                                                                            "hidden_dim": 16}
    assert main(["train", "--config", str(first / RUN_FILE), "--out", str(tmp_path / "again"), "--no-progress"]) == 0
    assert same_metrics(first / "metrics.json", tmp_path / "again" / "metrics.json")


def test_options_beside_the_file_replace_its_values_and_say_so(eszsl_run, tmp_path, capsys):
    out = tmp_path / "changed"
    assert main(["train", "--config", str(eszsl_run / RUN_FILE), "--seed", "0", "--set", "grid=-1,1",
                 "normalize_features=false", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "seed: 0 from the command line replaces 1" in printed
    assert "grid: '-1,1' from the command line replaces [-1.0, 0.0, 1.0]" in printed
    assert "normalize_features: 'false' from the command line (not in" in printed
    fields = yaml.safe_load((out / RUN_FILE).read_text())
    assert fields["seed"] == 0 and fields["method"] == "eszsl"  # replaced / kept from the file
    assert fields["overrides"] == {"grid": [-1.0, 1.0], "normalize_features": False}


def test_only_options_given_replace_file_values(tmp_path):
    """An option given with its default value still replaces the file's; one not given never does."""
    f = tmp_path / "run.yaml"
    f.write_text("method: eszsl\nseed: 5\nsetting: inductive\nselection: oracle\n")
    fields, _, _ = run_fields(args := build_parser().parse_args(["train", "--config", str(f), "--seed", "0"]),
                              collect_overrides(args))
    assert (fields["seed"], fields["selection"]) == (0, "oracle")
    fields, _, notes = run_fields(args := build_parser().parse_args(["train", "--config", str(f)]),
                                  collect_overrides(args))
    assert (fields["seed"], fields["selection"], fields["checkpoint_every"], notes) == (5, "oracle", 10, [])


def test_a_hand_written_file_with_typed_values(tmp_path):
    f = tmp_path / "mine.yml"
    f.write_text("method: eszsl\ndata_root: synthetic-tiny\nselection: fixed\noverrides: {gamma_exp: 1, "
                 "lambda_exp: 0}\n")
    assert main(["train", "--config", str(f), "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["method"], cfg["selection"], cfg["method_config"]["gamma_exp"]) == ("eszsl", "fixed", 1.0)


def test_variant_key_is_the_variant_override(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("method: cvc-zsl\nvariant: reference\n")
    assert read_run_file(f)["overrides"] == {"variant": "reference"}
    spec = RunSpec(method="cvc-zsl", overrides={"variant": "reference", "epochs": 3})
    fields = run_file_fields(spec)
    assert (fields["variant"], fields["overrides"]) == ("reference", {"epochs": 3})


def test_data_paths_are_written_absolute(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    fields = run_file_fields(RunSpec(method="eszsl", dataset="data"))
    assert fields["dataset"] == str((tmp_path / "data").resolve())


def test_a_run_file_holds_every_run_spec_field():
    spec = RunSpec(method="eszsl")
    assert {f.name for f in dataclasses.fields(RunSpec)} <= set(KEYS)
    assert set(run_file_fields(spec)) == {"variant", *dataclasses.asdict(spec)}


BAD_FILES = {  # file name, text -> what the error names
    "missing": (None, ["no such run file"]),
    "bad.yaml": ("method: [eszsl\n", ["not valid YAML", "line"]),
    "bad.json": ('{"method": "eszsl",}', ["not valid JSON", "line 1"]),
    "list.yaml": ("- eszsl\n", ["a run file is a mapping", "list"]),
    "typo.yaml": ("method: eszsl\nsed: 3\n", ["key 'sed'", "unknown", "did you mean seed"]),
    "seed.yaml": ("seed: three\n", ["key 'seed'", "must be an integer", "'three'"]),
    "flag.yaml": ("deterministic: 1\n", ["key 'deterministic'", "true or false"]),
    "setting.yaml": ("setting: semi\n", ["key 'setting'", "one of inductive, transductive"]),
    "criterion.yaml": ("criterion: acc\n", ["key 'criterion'", "gzsl_h"]),
    "every.yaml": ("checkpoint_every: 0\n", ["key 'checkpoint_every'", ">= 1"]),
    "splits.yaml": ("val_splits: 0\n", ["key 'val_splits'", ">= 1 or null"]),
    "overrides.yaml": ("overrides: [epochs, 2]\n", ["key 'overrides'", "a mapping"]),
    "variant.yaml": ("variant: reference\noverrides: {variant: default}\n", ["key 'variant'", "disagrees"]),
    "both.yaml": ("dataset: a\ndata_root: b\n", ["key 'data_root'", "given twice"]),
    "field.yaml": ("method: eszsl\noverrides: {gama_exp: 1}\n", ["key 'overrides'", "no setting 'gama_exp'",
                                                                   "did you mean gamma_exp"]),
    "value.yaml": ("method: eszsl\noverrides: {gamma_exp: high}\n", ["key 'overrides'", "gamma_exp='high'"]),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_run_files_are_usage_errors(name, tmp_path, capsys):
    text, expected = BAD_FILES[name]
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert all(e in err for e in expected), err
    assert str(path) in err
    assert not (tmp_path / "r").exists()


def test_config_and_resume_exclude_each_other(eszsl_run, tmp_path, capsys):
    assert main(["train", "--config", str(eszsl_run / RUN_FILE), "--resume", str(tmp_path / "x")]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_set_takes_several_pairs_after_one_flag():
    args = build_parser().parse_args(["train", "--set", "a=1", "b=x=y", "--epochs", "3", "--set", "c=3"])
    assert collect_overrides(args) == {"epochs": 3, "a": "1", "b": "x=y", "c": "3"}
    with pytest.raises(ConfigError, match="'b'"):
        collect_overrides(build_parser().parse_args(["train", "--set", "a=1", "b"]))
    with pytest.raises(SystemExit):  # --set with nothing after it
        build_parser().parse_args(["train", "--set"])
