"""Options of the commands that no other test passes: each one changes what the command does."""

from __future__ import annotations

import csv
import io
import json

import h5py
import numpy as np
import pytest

from zslkit.cli import build_parser, main
from zslkit.cli.train_cmd import OPTION_FIELDS, OVERRIDE_OPTIONS, collect_overrides
from zslkit.data.synthetic import make_synthetic
from zslkit.errors import ConfigError
from zslkit.experiment import RunSpec, build_config
from zslkit.methods import available_methods, get_method

# a value each override option can take on synthetic-tiny, and the config field it lands in
OVERRIDE_VALUES = {"epochs": "3", "episodes_per_epoch": "7", "ways": "4", "shots": "2", "lr": "0.0003",
                   "variant": None}


@pytest.fixture(scope="module")
def tiny():
    return make_synthetic("synthetic-tiny", seed=0)


@pytest.mark.parametrize("method", available_methods())
@pytest.mark.parametrize("option", list(OVERRIDE_OPTIONS))
def test_every_override_option_with_every_method(tiny, method, option):
    """``train --<option> V`` sets the config field it names, or is refused (exit 2) naming the field; never
    a traceback. ``--variant`` takes each variant the method lists."""
    from zslkit.methods.registry import variants_of

    cls = get_method(method)
    flag = "--" + option.replace("_", "-")
    values = list(variants_of(cls)) or ["no-such-variant"] if option == "variant" else [OVERRIDE_VALUES[option]]
    fields = {f.name for f in __import__("dataclasses").fields(cls.config_class)}
    for value in values:
        args = build_parser().parse_args(["train", "--method", method, flag, value])
        overrides = collect_overrides(args)
        field = OPTION_FIELDS.get(option, option)
        spec = RunSpec(method=method, dataset="synthetic-tiny", overrides=overrides)
        if option == "variant":
            if value == "no-such-variant" or not variants_of(cls):
                with pytest.raises(ConfigError, match="variant"):
                    build_config(cls, tiny, spec)
                continue
            cfg = build_config(cls, tiny, spec)  # a preset variant (cvc-zsl reference) or the config field
            assert "variant" not in fields or cfg.variant == value
            continue
        if field not in fields:
            with pytest.raises(ConfigError, match=field):
                build_config(cls, tiny, spec)
            continue
        cfg = build_config(cls, tiny, spec)
        assert getattr(cfg, field) == OVERRIDE_OPTIONS[option](value), (method, option)


def test_override_options_reach_a_trained_run(tmp_path):
    out = tmp_path / "cvc"
    assert main(["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--selection", "fixed",
                 "--epochs", "1", "--episodes-per-epoch", "2", "--ways", "4", "--shots", "2", "--lr", "0.0003",
                 "--set", "hidden_dim=16", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    cfg = json.loads((out / "config.json").read_text())["method_config"]
    assert (cfg["epochs"], cfg["episodes"], cfg["ways"], cfg["shots"], cfg["lr"]) == (1, 2, 4, 2, 3e-4)


def test_unsupported_override_is_a_usage_error(tmp_path, capsys):
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--episodes-per-epoch", "5",
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "episodes" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def eszsl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "eszsl"
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(out), "--no-progress",
                 "--device", "cpu"]) == 0
    return out


def test_predict_reads_named_arrays_and_class_names(eszsl_run, tiny, tmp_path, capsys):
    X, _ = tiny.split("test_unseen")
    E = tiny.class_embeddings[tiny.unseen_classes]
    np.savez(tmp_path / "feats.npz", other=np.zeros(3), X=X[:4])
    np.savez(tmp_path / "classes.npz", E=E, junk=np.ones(2))
    names = [f"animal_{i}" for i in range(E.shape[0])]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    capsys.readouterr()
    assert main(["predict", str(eszsl_run), "--features", str(tmp_path / "feats.npz"), "--features-key", "X",
                 "--classes", str(tmp_path / "classes.npz"), "--classes-key", "E",
                 "--class-names", str(tmp_path / "names.txt"), "--top-k", "2", "--device", "cpu"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:4] == ["index", "class_1", "name_1", "probability_1"] and len(rows) == 5
    assert all(r[2] == names[int(r[1])] for r in rows[1:])
    # a file with several arrays and no key: one line naming the file and its arrays (a DataError: exit 1)
    assert main(["predict", str(eszsl_run), "--features", str(tmp_path / "feats.npz"), "--classes",
                 str(tmp_path / "classes.npz"), "--classes-key", "E"]) == 1
    err = capsys.readouterr().err
    assert "feats.npz" in err and "['other', 'X']" in err and "Traceback" not in err


def test_synthesize_classes_key_and_domain(tiny, tmp_path):
    from zslkit.pipeline import fit_on

    cls = get_method("cycle-wgan")
    cfg = dict(epochs=2, hidden_g=32, hidden_d=32, regressor_epochs=2, syn_per_unseen=10, cls_epochs=2)
    model = fit_on(cls(cfg, seed=0, device="cpu"), tiny, False)
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.pt")
    E = tiny.class_embeddings[tiny.unseen_classes]
    np.savez(tmp_path / "classes.npz", unseen=E, seen=tiny.class_embeddings[tiny.seen_classes])
    out = tmp_path / "syn.h5"
    assert main(["synthesize", str(run), "--classes", str(tmp_path / "classes.npz"), "--classes-key", "unseen",
                 "--per-class", "3", "--domain", "novel", "--out", str(out), "--device", "cpu"]) == 0
    with h5py.File(out, "r") as fh:
        assert fh["info/domain"][()].decode() == "novel"
        assert fh["train/X"].shape[0] == 3 * E.shape[0]
        np.testing.assert_allclose(fh["train/A/continuous"][()][::3], E, rtol=1e-6)


def test_download_no_extract_keeps_only_the_archive(tmp_path, capsys):
    from test_download import PAYLOAD, SHA, _Server

    with _Server(PAYLOAD) as srv:
        assert main(["data", "download", "toy", "--to", str(tmp_path), "--url", f"{srv.url}/toy.zip",
                     "--sha256", SHA, "--quiet", "--no-extract"]) == 0
    out = capsys.readouterr().out
    assert "verified" in out and "extracted" not in out
    assert not (tmp_path / "xlsa17").exists() and any(p.suffix == ".zip" for p in tmp_path.iterdir())
