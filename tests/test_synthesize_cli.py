"""``zslkit synthesize``: both output formats, embeddings from .npy/.csv/.txt, clear errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from zslkit.cli import main
from zslkit.data.synthetic import make_synthetic
from zslkit.methods.cyclewgan import CycleWGAN
from zslkit.pipeline import fit_on


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    ds = make_synthetic("synthetic-tiny", seed=0)
    cfg = dict(epochs=2, hidden_g=32, hidden_d=32, regressor_epochs=2, syn_per_unseen=10, cls_epochs=2)
    model = fit_on(CycleWGAN(cfg, seed=0, device="cpu"), ds, False)
    d = tmp_path_factory.mktemp("run")
    model.save(d / "model.pt")
    emb = ds.class_embeddings[ds.unseen_classes]
    np.save(d / "classes.npy", emb)
    np.savetxt(d / "classes.csv", emb, delimiter=",")
    np.savetxt(d / "classes.txt", emb)
    return d, model, emb


def test_npz_output(run_dir, capsys):
    d, model, emb = run_dir
    out = d / "syn.npz"
    rc = main(["synthesize", str(d), "--classes", str(d / "classes.npy"), "--per-class", "5", "--out", str(out),
               "--seed", "4", "--device", "cpu"])
    assert rc == 0 and "wrote 30 features" in capsys.readouterr().out
    z = np.load(out)
    assert z["features"].shape == (5 * emb.shape[0], model.feature_dim_)
    np.testing.assert_array_equal(z["labels"], np.repeat(np.arange(emb.shape[0]), 5))
    np.testing.assert_allclose(z["class_embeddings"], emb)
    ref, _ = model.synthesize(emb, 5, generator=4)
    np.testing.assert_array_equal(z["features"], ref)  # same seed, same features


@pytest.mark.parametrize("src", ["classes.csv", "classes.txt"])
def test_h5_output(run_dir, src):
    d, model, emb = run_dir
    out = d / f"syn_{src}.h5"
    rc = main(["synthesize", str(d), "--classes", str(d / src), "--per-class", "3", "--out", str(out),
               "--device", "cpu"])
    assert rc == 0
    with h5py.File(out, "r") as fh:
        X, Y, A = fh["train/X"][()], fh["train/Y"][()], fh["train/A/continuous"][()]
        info = {k: fh[f"info/{k}"][()] for k in fh["info"]}
    assert X.shape == (3 * emb.shape[0], model.feature_dim_)
    assert Y.min() == 1 and Y.max() == emb.shape[0]  # 1-based ids
    np.testing.assert_allclose(A, emb[Y - 1], rtol=1e-6)
    assert {"dataset", "num_features", "domain", "architecture", "architecture_file", "timestamp"} <= set(info)
    assert info["num_features"].decode() == str(X.shape[0])


def test_errors(run_dir, capsys, tmp_path):
    d, _, emb = run_dir
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, emb.shape[1] + 1), np.float32))
    rc = main(["synthesize", str(d), "--classes", str(bad), "--per-class", "2", "--out", str(tmp_path / "x.npz")])
    assert rc == 1 and "embedding dimension mismatch" in capsys.readouterr().err  # bad data: run-time error
    rc = main(["synthesize", str(d), "--classes", str(d / "classes.npy"), "--per-class", "2",
               "--out", str(tmp_path / "x.mat")])
    assert rc == 2 and "unknown extension" in capsys.readouterr().err  # a bad option: usage error
    rc = main(["synthesize", str(tmp_path / "nope"), "--classes", str(d / "classes.npy"), "--per-class", "2",
               "--out", str(tmp_path / "x.npz")])
    assert rc == 2 and "not found" in capsys.readouterr().err  # no such run directory: a usage error


def test_existing_out_is_kept_unless_overwrite(run_dir, tmp_path, capsys):
    d, model, emb = run_dir
    out = tmp_path / "kept.npz"
    out.write_bytes(b"mine")
    args = ["synthesize", str(d), "--classes", str(d / "classes.npy"), "--per-class", "2", "--out", str(out),
            "--device", "cpu"]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main([*args, "--overwrite"]) == 0
    assert np.load(out)["features"].shape[0] == 2 * emb.shape[0]


def test_synthesized_features_carry_their_provenance(run_dir, tmp_path):
    import hashlib
    import json

    d, model, emb = run_dir
    for name in ("p.npz", "p.h5"):
        out = tmp_path / name
        assert main(["synthesize", str(d), "--classes", str(d / "classes.npy"), "--per-class", "2", "--out", str(out),
                     "--seed", "3", "--device", "cpu"]) == 0
        if name.endswith(".npz"):
            rec = json.loads(str(np.load(out)["zslkit_provenance"]))
        else:
            with h5py.File(out, "r") as fh:
                rec = json.loads(fh["info/zslkit_provenance"][()].decode())
        assert rec["synthetic"] is True and rec["seed"] == 3 and rec["method"] == "cycle-wgan"
        assert rec["model_sha256"] == hashlib.sha256((d / "model.pt").read_bytes()).hexdigest()
        assert rec["classes_sha256"] == hashlib.sha256((d / "classes.npy").read_bytes()).hexdigest()
