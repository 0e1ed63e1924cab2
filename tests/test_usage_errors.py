"""Issue 22: bad values are usage errors (exit 2) naming the option and the bound, before any work; misleading
messages say what is wrong; the smaller CLI promises (predict's inputs, resume, logs, permissions, progress)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from zslkit.cli import bounded, build_parser, describe_os_error, main
from zslkit.errors import ConfigError
from zslkit.methods import available_methods, get_method
from zslkit.methods.config import apply_overrides, field_bounds, validate_config

FAST = ["--dataset", "synthetic-tiny", "--device", "cpu", "--no-progress"]


def walk(parser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, path + (name,))


COMMANDS = list(walk(build_parser()))
NUMERIC = [(path, a) for path, p in COMMANDS for a in p._actions if a.option_strings and a.type is not None
           and getattr(a.type, "kind", a.type) in (int, float)]


def outside(t) -> list[str]:
    """Values just outside a bounded type's bounds (and a non-finite one for floats)."""
    b, out = t.bounds, []
    step = 1 if t.kind is int else 0.5
    if b["min"] is not None:
        out.append(str(b["min"] - step))
    if b["above"] is not None:
        out.append(str(b["above"]))
    if b["max"] is not None:
        out.append(str(b["max"] + step))
    if b["below"] is not None:
        out.append(str(b["below"]))
    if t.kind is float:
        out.append("inf")
    return out


def test_every_numeric_option_declares_bounds():
    """The rule for the whole CLI: a number option uses zslkit.cli.bounded (or seed_type), which declares its
    bounds; a plain type=int / type=float would let -1 or inf through to an internal error."""
    assert len(NUMERIC) > 20
    plain = [f"zslkit {' '.join(path)} {a.option_strings[0]}" for path, a in NUMERIC if not hasattr(a.type, "bounds")]
    assert not plain, f"numeric options without declared bounds (use zslkit.cli.bounded): {plain}"
    unbounded = [f"zslkit {' '.join(path)} {a.option_strings[0]}" for path, a in NUMERIC
                 if hasattr(a.type, "bounds") and a.type.kind is int and not any(
                     v is not None for v in a.type.bounds.values())]
    assert not unbounded


@pytest.mark.parametrize("path,action", NUMERIC, ids=[f"{' '.join(p)} {a.option_strings[0]}" for p, a in NUMERIC])
def test_out_of_bounds_value_is_a_usage_error_before_any_work(path, action, capsys):
    """Each value outside the bounds: SystemExit(2) from the parser, so the command's function never runs; the
    message names the option and the bound."""
    for value in outside(action.type):
        with pytest.raises(SystemExit) as exc:
            main([*path, action.option_strings[0], value])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {action.option_strings[0]}" in err or action.option_strings[0] in err, err
        assert action.type.bounds_text in err and "internal error" not in err, err


def test_bounded_type_accepts_values_inside():
    seed = bounded(int, min=0, max=2**32 - 1)
    assert seed("0") == 0 and seed(str(2**32 - 1)) == 2**32 - 1
    frac = bounded(float, above=0, below=1)
    assert frac("0.5") == 0.5
    for bad in ("0", "1", "nan", "-inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"in \(0, 1\)"):
            frac(bad)


@pytest.mark.parametrize("args,needle", [
    (["train", "--checkpoint-every", "0"], "--checkpoint-every: must be an integer >= 1, got 0"),
    (["train", "--data-seed", "-1"], "--data-seed: must be an integer in [0, 4294967295], got -1"),
    (["train", "--seed", "99999999999999999999"], "--seed: must be an integer in [0, 4294967295]"),
    (["data", "build", "--seed", "-1"], "--seed: must be an integer in [0, 4294967295], got -1"),
    (["train", "--epochs", "0"], "--epochs: must be an integer >= 1, got 0"),
    (["train", "--lr", "inf"], "--lr: must be a finite number > 0, got inf"),
])
def test_issue_cases_at_parse_time(args, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


# ----- config fields: the same rule for --set ------------------------------------------------------------------

BOUNDED_FIELDS = [(m, f.name) for m in available_methods() for f in dataclasses.fields(get_method(m).config_class)
                  if any(f.metadata.get(k) is not None for k in ("min", "above", "max", "below"))]


@pytest.mark.parametrize("method,name", BOUNDED_FIELDS)
def test_every_bounded_config_field_refuses_a_value_outside(method, name):
    cls = get_method(method).config_class
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    m = f.metadata
    kind = f.metadata.get("item") or type(f.default)
    kind = float if kind is tuple else kind
    bad = (m["min"] - 1 if m.get("min") is not None else m["above"] if m.get("above") is not None
           else m["max"] + 1 if m.get("max") is not None else m["below"])
    value = ",".join([str(bad)] * (2 if "betas" in name.split("_") else 1))
    with pytest.raises(ConfigError, match=rf"{name} must be {field_bounds(f)[:2]}"):
        validate_config(apply_overrides(cls(), {name: value}), method)
    if kind is float:
        with pytest.raises(ConfigError, match=rf"{name} must be a finite number"):
            validate_config(apply_overrides(cls(), {name: ",".join(["inf"] * (2 if "betas" in name else 1))}))


@pytest.mark.parametrize("value,needle", [("0.5", "betas_g takes 2 values (e.g. betas_g=0.5,0.999), got 1"),
                                          ("0.5,0.9,0.1", "betas_g takes 2 values"),
                                          ("0.5,1.0", "an entry of betas_g must be in [0, 1)")])
def test_betas_need_two_values(value, needle, tmp_path, capsys):
    assert main(["train", "--method", "cycle-wgan", *FAST, "--set", f"betas_g={value}",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert needle in err and "internal error" not in err


def test_non_finite_set_values_are_refused_before_training(tmp_path, capsys):
    assert main(["train", "--method", "eszsl", *FAST, "--set", "gamma_exp=400", "--out", str(tmp_path / "c")]) == 2
    assert "gamma_exp must be in [-300, 300], got 400.0" in capsys.readouterr().err  # was an OverflowError
    assert main(["train", "--method", "eszsl", *FAST, "--set", "gamma_exp=1e400", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "gamma_exp must be a finite number in [-300, 300], got inf" in err and "learning rate" not in err
    assert main(["train", "--method", "cvc-zsl", *FAST, "--set", "lr=inf", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "lr must be a finite number > 0, got inf" in err and "diverged" not in err
    # the failed run's log.txt holds the error (not an empty file)
    assert "lr must be a finite number" in (tmp_path / "b" / "log.txt").read_text()


def test_nothing_to_select_names_the_empty_setting(tmp_path, capsys):
    assert main(["train", "--method", "eszsl", *FAST, "--set", "grid=", "--out", str(tmp_path / "a")]) == 2
    assert "grid takes at least 1 value" in capsys.readouterr().err
    assert main(["train", "--method", "cvc-zsl", *FAST, "--set", "epochs=0", "--out", str(tmp_path / "b")]) == 2
    assert "epochs=0" in capsys.readouterr().err


def test_option_of_another_method_names_the_option(tmp_path, capsys):
    assert main(["train", "--method", "cvc-zsl", *FAST, "--savepoints", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--savepoints" in err and "cycle-wgan" in err and "did you mean" not in err


def test_option_and_set_disagreeing_is_said(tmp_path, capsys):
    assert main(["train", "--method", "cvc-zsl", *FAST, "--epochs", "2", "--set", "epochs=1",
                 "--out", str(tmp_path / "r")]) == 2
    assert "--epochs 2 and --set epochs=1" in capsys.readouterr().err
    from zslkit.cli.train_cmd import collect_overrides

    same = collect_overrides(build_parser().parse_args(["train", "--epochs", "2", "--set", "epochs=2"]))
    assert same["epochs"] == "2"


def test_missing_mat_key_lists_every_variable_of_the_file(tmp_path):
    import scipy.io

    from zslkit.data.matio import read_mat
    from zslkit.errors import DataError

    scipy.io.savemat(tmp_path / "res101.mat", {"feats": np.zeros((3, 5)), "labels": np.ones((5, 1))})
    with pytest.raises(DataError, match=r"'features'.*keys present: \['feats', 'labels'\]"):
        read_mat(tmp_path / "res101.mat", ["features", "labels"])


def test_os_errors_in_words(tmp_path):
    (tmp_path / "d").write_text("a file")
    with pytest.raises(OSError) as exc:
        (tmp_path / "d").mkdir(parents=True, exist_ok=True)  # what --out d/feat.npy does to its folder
    text = describe_os_error(exc.value)
    assert "exists and is not a folder" in text and "Errno" not in text
    with pytest.raises(OSError) as exc:
        open(tmp_path / "d" / "feat.npy", "w")
    assert "is a file, not a folder" in describe_os_error(exc.value)


# ----- predict -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def eszsl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "eszsl"
    assert main(["train", "--method", "eszsl", *FAST, "--selection", "fixed", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def unseen(eszsl_run):
    from zslkit.data.synthetic import make_synthetic

    ds = make_synthetic("synthetic-tiny", seed=0)
    X = ds.split("test_unseen")[0][:5]
    ids = ds.unseen_classes
    return X, ds.class_embeddings[ids], [ds.class_names[i] for i in ids]


def _predict(run, *args):
    return main(["predict", str(run), "--device", "cpu", *map(str, args)])


def test_predict_reads_class_tables_and_their_names(eszsl_run, unseen, tmp_path, capsys):
    from zslkit.data.classtable import write_class_table

    X, E, names = unseen
    np.save(tmp_path / "x.npy", X)
    write_class_table(tmp_path / "table.csv", names, E)
    write_class_table(tmp_path / "table.npy", names, E)
    for table in ("table.csv", "table.npy"):
        capsys.readouterr()
        assert _predict(eszsl_run, "--features", tmp_path / "x.npy", "--classes", tmp_path / table) == 0
        rows = capsys.readouterr().out.splitlines()[1:]
        assert len(rows) == 5 and all(r.split(",")[2] in names for r in rows), (table, rows)


def test_predict_refuses_folders_zero_embeddings_and_duplicate_names(eszsl_run, unseen, tmp_path, capsys):
    X, E, names = unseen
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "e.npy", E)
    assert _predict(eszsl_run, "--features", tmp_path, "--classes", tmp_path / "e.npy") == 1
    err = capsys.readouterr().err
    assert "is a folder; --features takes a file" in err and "not found" not in err
    zero = E.copy()
    zero[1] = 0
    np.save(tmp_path / "z.npy", zero)
    assert _predict(eszsl_run, "--features", tmp_path / "x.npy", "--classes", tmp_path / "z.npy") == 1
    assert "all-zero class embeddings" in capsys.readouterr().err
    (tmp_path / "names.txt").write_text("\n".join([names[0]] * len(names)) + "\n")
    assert _predict(eszsl_run, "--features", tmp_path / "x.npy", "--classes", tmp_path / "e.npy",
                    "--class-names", tmp_path / "names.txt") == 1
    assert "more than once" in capsys.readouterr().err


# ----- runs: resume, log, permissions, wall time, progress ------------------------------------------------------

def test_resume_refuses_options_it_would_ignore(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"method": "eszsl", "dataset": "synthetic-tiny"}))
    assert main(["train", "--resume", str(run), "--epochs", "99"]) == 2
    err = capsys.readouterr().err
    assert "--epochs" in err and "ignored" in err


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["train", "--method", "eszsl", *FAST, "--selection", "fixed", "--out", str(tmp_path / "r")]) == 0
    finally:
        os.umask(old)
    for name in ("config.json", "metrics.json", "provenance.json", "model.pt"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == 0o644, name


def test_resumed_run_counts_the_earlier_sessions_wall_time(tmp_path, monkeypatch):
    """An earlier session that trained for 1000 s (as its checkpoint says) counts in wall_time_s."""
    import zslkit.experiment as experiment
    from zslkit.checkpointing import ProgressStore, TrainingInterrupted

    class StopAtFirst(ProgressStore):
        def hook(self, make_state):
            inner = super().hook(make_state)

            def checkpoint(epoch, model):
                self.stop_requested = True
                self.earlier_s = 1000.0  # as if the session had run that long
                inner(epoch, model)

            return checkpoint

    spec = experiment.RunSpec(method="cvc-zsl", dataset="synthetic-tiny", selection="fixed", device="cpu",
                              checkpoint_every=1, overrides={"epochs": 3, "episodes": 2, "hidden_dim": 8})
    monkeypatch.setattr(experiment, "ProgressStore", StopAtFirst)
    with pytest.raises(TrainingInterrupted):
        experiment.execute(spec, tmp_path / "r", progress=False, plots=False)
    monkeypatch.setattr(experiment, "ProgressStore", ProgressStore)
    metrics = experiment.execute(spec, tmp_path / "r", progress=False, plots=False, resume=True)
    assert metrics["wall_time_s"] >= 1000
    assert json.loads((tmp_path / "r" / "provenance.json").read_text())["wall_time_s"] >= 1000
    assert "run interrupted" in (tmp_path / "r" / "log.txt").read_text()


def test_progress_names_the_stage_in_plain_lines(tmp_path, capsys):
    """stderr that is not a terminal (here: captured) gets plain lines, no carriage returns."""
    assert main(["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--device", "cpu", "--epochs", "2",
                 "--set", "episodes=3", "hidden_dim=8", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "[validation candidate 1 of 1" in err and "[final fit on trainval]" in err
    assert any(line.endswith("/6 episode") or "/6 episode (" in line for line in err.splitlines())


def test_every_command_and_sub_action_has_a_description():
    missing = [" ".join(("zslkit",) + path) for path, p in COMMANDS if path and not p.description]
    assert not missing
    build = dict(COMMANDS)[("data", "build")]
    assert next(a for a in build._actions if "--features" in a.option_strings).metavar == "DIR"


def test_non_finite_float_check_covers_tuples():
    cls = get_method("eszsl").config_class
    with pytest.raises(ConfigError, match="an entry of grid must be a finite number"):
        validate_config(apply_overrides(cls(), {"grid": "1,nan"}))
    assert math.isfinite(cls().gamma_exp)


def test_report_skips_a_damaged_run_and_lists_it(eszsl_run, tmp_path, capsys):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(eszsl_run, runs / "good")
    shutil.copytree(eszsl_run, runs / "bad")
    (runs / "bad" / "metrics.json").write_text("{not json")
    capsys.readouterr()
    assert main(["report", str(runs)]) == 0
    out, err = capsys.readouterr()
    assert "eszsl" in out and "damaged run" in err and str(runs / "bad") in err
    assert "1 damaged run directory skipped" in out
