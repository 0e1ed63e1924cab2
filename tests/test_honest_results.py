"""Issue 22, results that mislead: report grouping, provenance through conversion, checks of reused and evaluated
models, reproduce labels, duplicate class names, refused overwrites. Tiny sizes."""

import json
from pathlib import Path

import numpy as np
import pytest

from fakedata import tiny_dataset
from zslkit.cli import main
from zslkit.data.matio import write_mat
from zslkit.data.xlsa17 import features_file_arrays, split_file_arrays
from zslkit.errors import DataError


def _raw_npz(path: Path, names) -> Path:
    ds = tiny_dataset()
    arrays = {"features": ds.features, "labels": ds.labels, "class_embeddings": ds.class_embeddings,
              "class_names": np.array(names)}
    arrays.update({k: v for k, v in ds.splits.items() if v is not None})
    np.savez(path, **arrays)
    return path


# ----- 6. duplicate class names, every layout ---------------------------------------------------------------

def test_duplicate_class_names_in_npz_are_rejected(tmp_path, capsys):
    names = [f"c{i}" for i in range(9)]
    names[4] = "c1"
    path = _raw_npz(tmp_path / "dup.npz", names)
    assert main(["data", "info", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "class_names" in out and "more than once" in out and "'c1'" in out
    from zslkit.data.npz import load_npz

    with pytest.raises(DataError) as exc:
        load_npz(path)
    assert exc.value.key == "class_names" and str(path) in str(exc.value)


def test_duplicate_class_names_in_xlsa17_name_the_split_file_key(tmp_path):
    ds = tiny_dataset()
    write_mat(tmp_path / "res101.mat", features_file_arrays(ds))
    arrays = split_file_arrays(ds)
    arrays["allclasses_names"] = ["same"] * len(ds.class_names)
    write_mat(tmp_path / "att_splits.mat", arrays)
    from zslkit.data.layouts import load_from_root

    with pytest.raises(DataError) as exc:
        load_from_root(tmp_path)
    assert exc.value.key == "allclasses_names" and "att_splits.mat" in exc.value.file
    assert "'same'" in str(exc.value)


def test_unique_class_names_still_load(tmp_path):
    from zslkit.data.npz import load_npz

    assert len(load_npz(_raw_npz(tmp_path / "ok.npz", [f"c{i}" for i in range(9)])).class_names) == 9


# ----- 7. no silent overwrites ------------------------------------------------------------------------------

@pytest.mark.parametrize("layout,first", [("npz", "TINY.npz"), ("xlsa17", "res101.mat"), ("dem", "res101.mat"),
                                          ("cyclewgan-h5", "data.h5")])
def test_convert_refuses_to_replace_outputs_without_overwrite(tmp_path, capsys, layout, first):
    src = tmp_path / "src.npz"
    from zslkit.data.npz import write_npz

    write_npz(tiny_dataset(), src)
    out = tmp_path / "out"
    out.mkdir()
    (out / first).write_bytes(b"keep me")
    assert main(["data", "convert", str(src), "--to", layout, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exist" in err and "--overwrite" in err and first in err
    assert (out / first).read_bytes() == b"keep me"
    assert main(["data", "convert", str(src), "--to", layout, "--out", str(out), "--overwrite"]) == 0
    assert (out / first).read_bytes() != b"keep me"
    assert main(["data", "info", str(out / first if layout == "npz" else out)]) == 0


def test_convert_to_an_existing_npz_file_is_refused_before_reading(tmp_path, capsys):
    out = tmp_path / "x.npz"
    out.write_bytes(b"keep me")
    assert main(["data", "convert", str(tmp_path / "missing-src"), "--to", "npz", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def _extracted(tmp_path):
    from zslkit.data.classtable import write_class_table

    rng = np.random.default_rng(0)
    names = [f"k{i}" for i in range(6)]
    att = rng.random((6, 4)) + np.eye(6, 4)
    labels = np.repeat(np.arange(6), 10)
    feats = (att[labels] @ rng.normal(size=(4, 8)) + 0.05 * rng.normal(size=(60, 8))).astype(np.float32)
    feat = tmp_path / "feat"
    feat.mkdir()
    write_mat(feat / "res101.mat", {"features": feats.T, "labels": (labels + 1).reshape(-1, 1).astype(float)})
    (feat / "classes.txt").write_text("\n".join(names) + "\n")
    return feat, write_class_table(tmp_path / "att.csv", names, att, columns=[f"a{j}" for j in range(4)])


def test_build_refuses_to_replace_outputs_without_overwrite(tmp_path, capsys):
    feat, table = _extracted(tmp_path)
    out = tmp_path / "built"
    args = ["data", "build", "--features", str(feat), "--classes", str(table), "--unseen", "k1,k4", "--out", str(out)]
    assert main(args) == 0
    before = (out / "att_splits.mat").read_bytes()
    assert main([*args[:-3], "k2,k5", "--out", str(out)]) == 2
    assert "already exist" in capsys.readouterr().err and (out / "att_splits.mat").read_bytes() == before
    assert main([*args[:-3], "k2,k5", "--out", str(out), "--overwrite"]) == 0
    assert (out / "att_splits.mat").read_bytes() != before


# ----- 1. report: one row per configuration, each seed once -------------------------------------------------

def _eszsl(out: Path, seed: int, grid: str, data_seed: int = 0) -> Path:
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--seed", str(seed), "--data-seed",
                 str(data_seed), "--out", str(out), "--no-progress", "--device", "cpu", "--set", f"grid={grid}"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    _eszsl(root / "a0", 0, "-1,0,1")
    _eszsl(root / "a1", 1, "-1,0,1")
    _eszsl(root / "a1-again", 1, "-1,0,1")  # the same seed and configuration a second time
    _eszsl(root / "b0", 0, "0,1")  # another configuration
    _eszsl(root / "c0", 0, "-1,0,1", data_seed=1)  # other data
    return root


def test_report_separates_configurations_and_counts_a_seed_once(runs, capsys):
    from zslkit.reporting.tables import aggregate, load_run

    rows = aggregate([load_run(runs / d) for d in ("a0", "a1", "a1-again", "b0", "c0")])
    assert len(rows) == 3
    by_seeds = {tuple(r["seeds"]): r for r in rows if r["seeds"] == [0, 1]}
    main_row = by_seeds[(0, 1)]
    assert main_row["zsl_t1"][2] == 2  # three runs, two seeds: the repeated seed is counted once
    assert [d["seed"] for d in main_row["duplicates"]] == [1]
    assert main_row["config"]["grid"] == [-1.0, 0.0, 1.0] and main_row["config"]["data_seed"] == 0
    others = [r for r in rows if r is not main_row]
    assert sorted((r["config"]["data_seed"], r["config"]["data.source"], r["config"]["grid"]) for r in others) == [
        (0, "zslkit.data.synthetic:synthetic-tiny:seed=0", [0.0, 1.0]),
        (1, "zslkit.data.synthetic:synthetic-tiny:seed=1", [-1.0, 0.0, 1.0])]
    assert main(["report", str(runs)]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| eszsl")]
    assert len(table) == 3 and sum("| 0,1 |" in line for line in table) == 1
    assert "seed 1 of eszsl on synthetic-tiny was run more than once" in out and "a1-again" in out
    assert "rows differ in" in out and "grid" in out and "data_seed" in out


def test_report_of_one_configuration_has_no_config_notes(runs, capsys):
    assert main(["report", str(runs / "a0"), str(runs / "a1")]) == 0
    out = capsys.readouterr().out
    assert "differ in" not in out and "more than once" not in out
    assert [line for line in out.splitlines() if line.startswith("| eszsl")][0].count("| - |") == 1


# ----- 2. provenance survives conversion ----------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["npz", "xlsa17", "dem", "cyclewgan-h5"])
def test_converted_synthetic_data_stays_synthetic(tmp_path, capsys, layout):
    out = tmp_path / layout
    assert main(["data", "convert", "synthetic-tiny", "--to", layout, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert [line for line in info.splitlines() if line.startswith("kind")] == ["kind          synthetic"]
    assert "SYNTHETIC data generated by zslkit (preset synthetic-tiny" in info and "differ" not in info
    assert main(["data", "info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["synthetic"] is True
    assert summary["origin"]["source"] == "zslkit.data.synthetic:synthetic-tiny:seed=0"
    # and again through a second conversion: the chain is kept, with the first file's sha256
    again = tmp_path / "again"
    assert main(["data", "convert", str(out), "--to", "npz", "--out", str(again / "x.npz")]) == 0
    from zslkit.data.layouts import load_from_root
    from zslkit.data.matio import file_sha256

    back = load_from_root(again / "x.npz")
    assert back.synthetic and back.origin["derived_from"]["source"] == "zslkit.data.synthetic:synthetic-tiny:seed=0"
    assert set(back.origin["source_sha256"].values()) >= {file_sha256(next(iter(sorted(
        p for p in Path(out if out.is_dir() else out.parent).iterdir() if p.suffix in (".npz", ".mat", ".h5")))))}


def test_a_run_on_converted_synthetic_data_says_synthetic(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "convert", "synthetic-tiny", "--to", "xlsa17", "--out", str(out)]) == 0
    run = tmp_path / "run"
    assert main(["train", "--method", "eszsl", "--data-root", str(out), "--out", str(run), "--no-progress",
                 "--device", "cpu", "--set", "grid=0"]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "(real data)" not in printed
    assert json.loads((run / "metrics.json").read_text())["synthetic"] is True
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["dataset"]["synthetic"] is True and prov["dataset"]["origin"]["synthetic"] is True


def test_real_data_written_by_zslkit_stays_real_and_changed_arrays_are_noted(tmp_path):
    from zslkit.data.layouts import load_from_root, write_layout

    write_layout(tiny_dataset(), "xlsa17", tmp_path / "r")
    back = load_from_root(tmp_path / "r")
    assert back.synthetic is False and back.origin["synthetic"] is False
    assert not any("differ" in n for n in back.notes)
    write_mat(tmp_path / "r" / "res101.mat", features_file_arrays(tiny_dataset(seed=1)))
    assert any("arrays differ" in n for n in load_from_root(tmp_path / "r").notes)


def test_a_damaged_provenance_record_names_its_file(tmp_path):
    from zslkit.data.layouts import load_from_root, write_layout

    write_layout(tiny_dataset(), "dem", tmp_path / "d")
    (tmp_path / "d" / "zslkit_provenance.json").write_text("{not json")
    with pytest.raises(DataError) as exc:
        load_from_root(tmp_path / "d")
    assert "zslkit_provenance.json" in exc.value.file and "not valid JSON" in str(exc.value)


# ----- 4. evaluate checks the model and the data against the run --------------------------------------------

FAST_CVC = ["--set", "epochs=2", "--set", "episodes=10", "--set", "hidden_dim=64", "--set", "eval_every=1"]


def test_evaluate_refuses_another_methods_model(runs, tmp_path, capsys):
    import shutil

    cvc = tmp_path / "cvc"
    assert main(["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--selection", "fixed", "--out",
                 str(cvc), "--no-progress", "--device", "cpu", *FAST_CVC]) == 0
    run = tmp_path / "copy"
    shutil.copytree(runs / "a0", run)
    shutil.copy(cvc / "model.pt", run / "model.pt")  # an ESZSL run holding a CVC-ZSL model
    capsys.readouterr()
    assert main(["evaluate", str(run), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "model.pt" in err and "holds a cvc-zsl model" in err and "eszsl" in err
    assert not (run / "evaluation.json").exists()


def test_evaluate_on_another_split_needs_other_split(tmp_path, capsys):
    data, other = tmp_path / "data", tmp_path / "other"
    assert main(["data", "convert", "synthetic-tiny", "--to", "xlsa17", "--out", str(data)]) == 0
    from zslkit.data.layouts import load_from_root, write_layout

    ds = load_from_root(data)  # the same features, another split: two unseen classes swapped with seen ones
    unseen, seen = list(ds.unseen_classes[:2]), list(ds.seen_classes[:2])
    swap = {**{u: s for u, s in zip(unseen, seen)}, **{s: u for u, s in zip(unseen, seen)}}
    relabelled = np.array([swap.get(int(c), int(c)) for c in ds.labels])
    import dataclasses

    write_layout(dataclasses.replace(ds, labels=relabelled, origin=None), "xlsa17", other)
    run = tmp_path / "run"
    assert main(["train", "--method", "eszsl", "--data-root", str(data), "--out", str(run), "--no-progress",
                 "--device", "cpu", "--set", "grid=0"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0  # its own data: fine
    assert main(["evaluate", str(run), "--data-root", str(data), "--device", "cpu"]) == 0
    assert "OTHER data" not in capsys.readouterr().out
    assert main(["evaluate", str(run), "--data-root", str(other), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "not the split" in err and "split_classes_sha256" in err and "--other-split" in err
    assert main(["evaluate", str(run), "--data-root", str(other), "--device", "cpu", "--other-split"]) == 0
    assert "scored on OTHER data" in capsys.readouterr().out
    got = json.loads((run / "evaluation.json").read_text())
    assert got["other_split"]["data"] == str(other) and got["other_split"]["differences"]


def test_evaluate_warnings_come_from_the_numbers_it_prints(runs, tmp_path, capsys):
    import shutil

    from zslkit.protocol.health import health_warnings

    run = tmp_path / "stale"
    shutil.copytree(runs / "a0", run)
    m = json.loads((run / "metrics.json").read_text())
    m["warnings"] = ["a stale warning of another model"]
    (run / "metrics.json").write_text(json.dumps(m))
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0
    assert "stale" not in capsys.readouterr().out
    got = json.loads((run / "evaluation.json").read_text())
    assert got["warnings"] == health_warnings(got, num_unseen=6, unseen_share=got["gzsl_unseen_share"])


def test_evaluate_epoch_warning_is_that_epochs(tmp_path, capsys):
    out = tmp_path / "cwgan"
    assert main(["train", "--method", "cycle-wgan", "--dataset", "synthetic-tiny", "--no-progress", "--device", "cpu",
                 "--out", str(out), "--set", "hidden_g=32", "--set", "hidden_d=32", "--set", "regressor_epochs=2",
                 "--set", "syn_per_unseen=10", "--set", "cls_epochs=2", "--set", "batch_size=32",
                 "--selection", "fixed", "--epochs", "3", "--savepoints", "[1,2]"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    m["warnings"] = ["ZSL T1 99.9% on test is at or below chance (final epoch)"]
    (out / "metrics.json").write_text(json.dumps(m))
    capsys.readouterr()
    assert main(["evaluate", str(out), "--epoch", "1", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    got = json.loads((out / "evaluation-epoch1.json").read_text())
    assert "99.9" not in printed and not any("99.9" in w for w in got["warnings"])
    for w in got["warnings"]:
        if w.startswith("ZSL T1"):
            assert w.startswith(f"ZSL T1 {100 * got['zsl_t1']:.1f}%")


# ----- 5. reproduce: nothing to run is a usage error; no claims about a benchmark that does not exist ----------

def test_reproduce_with_no_seeds_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "--paper", "cvc-zsl", "--dataset", "synthetic-tiny", "--seeds", "0", "--oracle-seeds",
                 "0", "--out", str(out), "--device", "cpu"]) == 2
    assert "runs nothing" in capsys.readouterr().err and not (out / "reproduce.md").exists()


def test_reproduce_on_synthetic_tiny_claims_no_real_benchmark(tmp_path, capsys):
    from zslkit.reproduce import real_benchmark

    out = tmp_path / "rep"
    assert main(["reproduce", "--paper", "cvc-zsl", "--dataset", "synthetic-tiny", "--seeds", "1", "--oracle-seeds",
                 "0", "--out", str(out), "--device", "cpu", "--no-progress", *FAST_CVC]) == 0
    md = (out / "reproduce.md").read_text()
    assert "REAL TINY" not in md and "TINY, real data" not in md
    assert "published (no real benchmark)" in md and "there is no real TINY" in md and "SYNTHETIC" in md
    assert json.loads((out / "reproduce.json").read_text())["benchmark"] is None
    assert "(TINY, real data)" not in capsys.readouterr().out
    assert real_benchmark("AWA2") and real_benchmark("CUB") and not real_benchmark("TINY")


# ----- 3. transductive CVC-ZSL from a saved inductive model -------------------------------------------------

def test_inductive_checkpoint_is_refused_in_validation_and_recorded_in_fixed(tmp_path, capsys):
    import hashlib

    ind = tmp_path / "ind"
    assert main(["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--selection", "fixed", "--out",
                 str(ind), "--no-progress", "--device", "cpu", *FAST_CVC]) == 0
    trans = ["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--setting", "transductive",
             "--no-progress", "--device", "cpu", *FAST_CVC, "--set", f"inductive_checkpoint={ind}"]  # a run directory
    capsys.readouterr()
    assert main([*trans, "--out", str(tmp_path / "val")]) == 2
    err = capsys.readouterr().err
    assert "inductive_checkpoint" in err and "validation" in err and "--selection fixed" in err
    assert not (tmp_path / "val" / "metrics.json").exists()
    assert main([*trans, "--selection", "fixed", "--out", str(tmp_path / "fixed")]) == 0
    reused = json.loads((tmp_path / "fixed" / "provenance.json").read_text())["reused_stages"]["inductive"]
    assert reused["sha256"] == hashlib.sha256((ind / "model.pt").read_bytes()).hexdigest()
    assert reused["path"] == str((ind / "model.pt").resolve()) and reused["field"] == "inductive_checkpoint"
