"""One test per row of docs/errors.md: each bad input gives zslkit's own error, and the message names the file,
the key and the problem. CLI rows run ``zslkit`` in-process and check for one clean ``zslkit: error:`` line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from fakedata import tiny_dataset
from zslkit.cli import main
from zslkit.data.layouts import load_from_root, write_layout
from zslkit.data.matio import write_mat
from zslkit.data.npz import load_npz, write_npz
from zslkit.data.synthetic import make_synthetic
from zslkit.data.xlsa17 import features_file_arrays, load_xlsa17, split_file_arrays
from zslkit.errors import DataError
from zslkit.methods.base import ZSLMethod

TINY = tiny_dataset()


def _folder(tmp_path, name="DS", *, feats=None, split=None, version="5"):
    f, s = features_file_arrays(TINY), split_file_arrays(TINY)
    f.update(feats or {})
    s.update(split or {})
    folder = tmp_path / name
    write_mat(folder / "res101.mat", {k: v for k, v in f.items() if v is not None}, version=version)
    write_mat(folder / "att_splits.mat", {k: v for k, v in s.items() if v is not None}, version=version)
    return folder


def _raises(fn, *parts, exc=DataError):
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for part in parts:
        assert str(part) in msg, (part, msg)
    return msg


def _cli(capsys, *argv, code=2):
    """Run zslkit; check its exit code (2 a usage error, 1 a run-time error such as bad data); return the error
    line (exactly one, no traceback)."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("zslkit: error: "), err
    return lines[0]


# ----- missing files and keys ---------------------------------------------------------------------------------

def test_missing_features_file(tmp_path):
    folder = _folder(tmp_path)
    (folder / "res101.mat").unlink()
    _raises(lambda: load_from_root(folder), "res101.mat", "features file not found")


def test_missing_split_file_for_semantic(tmp_path):
    folder = _folder(tmp_path)
    _raises(lambda: load_xlsa17(folder, semantic="sent"), "sent_splits.mat", "split file not found",
            "['att_splits.mat', 'res101.mat']")


def test_missing_path_cli(tmp_path, capsys):
    line = _cli(capsys, "train", "--method", "eszsl", "--data-root", tmp_path / "NOPE")
    assert "NOPE" in line and "no such path" in line


def test_missing_split_key(tmp_path):
    folder = _folder(tmp_path, split={"test_unseen_loc": None})
    _raises(lambda: load_from_root(folder), "att_splits.mat", "key 'test_unseen_loc'", "required key is missing",
            "keys present: [")


def test_missing_features_key(tmp_path):
    folder = _folder(tmp_path, feats={"features": None})
    _raises(lambda: load_from_root(folder), "res101.mat", "key 'features'", "required key is missing", "['labels']")


def test_missing_npz_key(tmp_path):
    arrays = dict(np.load(write_npz(TINY, tmp_path / "a.npz")))
    del arrays["test_seen"]
    np.savez(tmp_path / "b.npz", **arrays)
    _raises(lambda: load_npz(tmp_path / "b.npz"), "b.npz", "key 'test_seen'", "required key is missing")


# ----- truncated / corrupted files ---------------------------------------------------------------------------

def test_truncated_mat_v5(tmp_path):
    folder = _folder(tmp_path)
    data = (folder / "res101.mat").read_bytes()
    (folder / "res101.mat").write_bytes(data[: len(data) // 2])
    _raises(lambda: load_from_root(folder), "res101.mat", "truncated or corrupted")


def test_truncated_mat_v73(tmp_path):
    folder = _folder(tmp_path, version="7.3")
    data = (folder / "res101.mat").read_bytes()
    (folder / "res101.mat").write_bytes(data[: len(data) // 2])
    _raises(lambda: load_from_root(folder), "res101.mat", "not a readable MATLAB v7.3 (HDF5) file", "truncated")


def test_corrupted_mat(tmp_path):
    folder = _folder(tmp_path)
    data = bytearray((folder / "att_splits.mat").read_bytes())
    data[200:260] = b"\xff" * 60
    (folder / "att_splits.mat").write_bytes(bytes(data))
    _raises(lambda: load_from_root(folder), "att_splits.mat", "truncated or corrupted")


def test_truncated_h5(tmp_path):
    folder = write_layout(TINY, "cyclewgan-h5", tmp_path / "h5")
    data = (folder / "data.h5").read_bytes()
    (folder / "data.h5").write_bytes(data[: len(data) // 2])
    _raises(lambda: load_from_root(folder), "data.h5", "not a readable HDF5 file", "truncated")


def test_truncated_npz(tmp_path):
    path = write_npz(TINY, tmp_path / "t.npz")
    path.write_bytes(path.read_bytes()[:1000])
    _raises(lambda: load_from_root(path), "t.npz", "not a readable .npz file", "BadZipFile")


def test_not_an_npz(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"plain text, not a zip archive\n" * 5)
    _raises(lambda: load_from_root(tmp_path / "x.npz"), "x.npz", "not a readable .npz file")


# ----- disagreeing files, 0-/1-based confusion ------------------------------------------------------------

def test_res101_rows_disagree_with_split_file(tmp_path):
    f = features_file_arrays(TINY)
    folder = _folder(tmp_path, feats={"features": f["features"][:, :40], "labels": f["labels"][:40]})
    _raises(lambda: load_from_root(folder), "att_splits.mat", "res101.mat has only 40 rows",
            "the split file and the features file disagree")


def test_res101_more_rows_than_split_file_uses_is_a_note(tmp_path):
    f = features_file_arrays(TINY)
    extra = {"features": np.concatenate([f["features"], f["features"][:, :3]], axis=1),
             "labels": np.concatenate([f["labels"], f["labels"][:3]])}
    ds = load_from_root(_folder(tmp_path, feats=extra))
    assert any("uses only 54 of them" in n for n in ds.notes), ds.notes


def test_zero_based_split_file_detected_by_index_zero(tmp_path):
    s = split_file_arrays(TINY)
    folder = _folder(tmp_path, split={"test_seen_loc": s["test_seen_loc"].astype(np.int64) - 1})
    _raises(lambda: load_from_root(folder), "att_splits.mat", "key 'test_seen_loc'", "contains index 0",
            "looks 0-based")


def test_zero_based_split_without_index_zero_shows_as_overlap(tmp_path):
    s = split_file_arrays(TINY)  # trainval has no image 1, so its 0-based copy has no 0: seen only as an overlap
    folder = _folder(tmp_path, split={"trainval_loc": s["trainval_loc"].astype(np.int64) - 1})
    _raises(lambda: load_from_root(folder), "att_splits.mat", "samples are in both 'trainval' and 'test_seen'",
            "0-based indices")


def test_zero_based_labels(tmp_path):
    f = features_file_arrays(TINY)
    folder = _folder(tmp_path, feats={"labels": f["labels"] - 1})
    _raises(lambda: load_from_root(folder), "res101.mat", "key 'labels'", "contains class id 0", "looks 0-based")


def test_zero_based_h5_labels(tmp_path):
    import h5py

    folder = write_layout(TINY, "cyclewgan-h5", tmp_path / "h5")
    with h5py.File(folder / "data.h5", "r+") as fh:
        y = fh["train/Y"][()]
        del fh["train/Y"]
        fh["train/Y"] = y - 1
    _raises(lambda: load_from_root(folder), "data.h5", "key 'train/Y'", "looks 0-based")


def test_one_based_npz_labels(tmp_path):
    arrays = dict(np.load(write_npz(TINY, tmp_path / "a.npz")))
    arrays["labels"] = arrays["labels"] + 1
    np.savez(tmp_path / "b.npz", **arrays)
    _raises(lambda: load_npz(tmp_path / "b.npz"), "b.npz", "key 'labels'", "label ids span [1, 9]",
            "expected 0-based ids 0..8")


# ----- NaN / inf / out-of-range values ----------------------------------------------------------------------

def test_nan_features(tmp_path):
    feats = features_file_arrays(TINY)["features"].copy()
    feats[2, 4] = np.nan
    folder = _folder(tmp_path, feats={"features": feats})
    _raises(lambda: load_from_root(folder), "res101.mat", "key 'features'", "NaN or inf values",
            "first at row 4, column 2")


def test_inf_embedding(tmp_path):
    att = split_file_arrays(TINY)["att"].copy()
    att[1, 3] = np.inf
    folder = _folder(tmp_path, split={"att": att})
    _raises(lambda: load_from_root(folder), "att_splits.mat", "key 'att'", "NaN or inf values",
            "first at class 3, dim 1")


def test_nan_embedding_npz(tmp_path):
    arrays = dict(np.load(write_npz(TINY, tmp_path / "a.npz")))
    arrays["class_embeddings"] = arrays["class_embeddings"].copy()
    arrays["class_embeddings"][0, 1] = np.nan
    np.savez(tmp_path / "b.npz", **arrays)
    _raises(lambda: load_npz(tmp_path / "b.npz"), "b.npz", "key 'class_embeddings'", "NaN or inf")


def test_features_beyond_float32(tmp_path):
    feats = features_file_arrays(TINY)["features"].astype(np.float64) * 1e300
    folder = _folder(tmp_path, feats={"features": feats})
    _raises(lambda: load_from_root(folder), "res101.mat", "key 'features'", "too large for float32")


# ----- predict-time dimension mismatch ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "eszsl"
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(out), "--device", "cpu",
                 "--no-progress"]) == 0
    return out


def test_predict_cli_wrong_width_classes(run_dir, tmp_path, capsys):
    ds = make_synthetic("synthetic-tiny")
    np.save(tmp_path / "feats.npy", ds.features[:5])
    np.save(tmp_path / "classes7.npy", np.ones((4, 7), np.float32))
    line = _cli(capsys, "predict", run_dir, "--features", tmp_path / "feats.npy", "--classes",
                tmp_path / "classes7.npy", code=1)  # bad data: a run-time error
    assert "classes7.npy" in line and "class embeddings have 7 columns" in line
    assert f"expects {ds.embedding_dim}-d embeddings" in line


def test_predict_cli_nan_features(run_dir, tmp_path, capsys):
    ds = make_synthetic("synthetic-tiny")
    feats = ds.features[:5].copy()
    feats[1, 2] = np.nan
    np.save(tmp_path / "nan.npy", feats)
    np.save(tmp_path / "classes.npy", ds.class_embeddings)
    line = _cli(capsys, "predict", run_dir, "--features", tmp_path / "nan.npy", "--classes", tmp_path / "classes.npy",
                code=1)
    assert "nan.npy" in line and "NaN or inf values (first at row 1, column 2)" in line


def test_predict_python_wrong_width(run_dir):
    ds = make_synthetic("synthetic-tiny")
    model = ZSLMethod.load(run_dir / "model.pt")
    _raises(lambda: model.predict(ds.features[:5], np.ones((4, 7))), "key 'candidate_embeddings'",
            "embedding dimension mismatch: got 7 columns", f"expects {ds.embedding_dim}")
    _raises(lambda: model.predict(ds.features[:5, :10], ds.class_embeddings), "key 'features'",
            "feature dimension mismatch: got 10 columns", f"expects {ds.feature_dim}")


# ----- names, devices, run directories, checkpoints ------------------------------------------------------------

def test_unknown_method_cli(capsys):
    line = _cli(capsys, "train", "--method", "cvc-zls")
    assert "unknown method 'cvc-zls'" in line and "Did you mean: cvc-zsl?" in line


def test_unknown_dataset_cli(capsys):
    line = _cli(capsys, "train", "--method", "eszsl", "--dataset", "synthetic-awa3")
    assert "unknown dataset 'synthetic-awa3'" in line and "Did you mean: synthetic-awa2" in line


@pytest.mark.parametrize("option,words", [("--ways", "an episode of 1000 ways needs 1000 distinct classes"),
                                          ("--shots", "an episode of 1000 shots needs 1000 distinct samples")])
def test_impossible_episode_cli(tmp_path, capsys, option, words):
    pytest.importorskip("zslkit.methods.cvc")
    capsys.readouterr()
    code = main(["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", option, "1000", "--set",
                 "episode_overflow=error", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("zslkit: error: ") and words in err, err


def test_cuda_without_gpu_cli(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    line = _cli(capsys, "train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--device", "cuda")
    assert "--device cuda was asked for, but no CUDA device is available" in line and "--device cpu" in line


def test_finished_run_without_overwrite_cli(run_dir, capsys):
    capsys.readouterr()
    assert main(["train", "--method", "eszsl", "--dataset", "synthetic-tiny", "--out", str(run_dir),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"zslkit: error: {run_dir}: holds a finished run (metrics.json exists)" in err and "--overwrite" in err


@pytest.mark.parametrize("content,words", [("truncated", "cannot read checkpoint"),
                                           ("foreign", "key 'format': not a zslkit checkpoint")])
def test_corrupt_model_pt_cli(run_dir, tmp_path, capsys, content, words):
    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    if content == "truncated":
        (bad / "model.pt").write_bytes((run_dir / "model.pt").read_bytes()[:3000])
    else:
        torch.save({"hello": 1}, bad / "model.pt")
    ds = make_synthetic("synthetic-tiny")
    np.save(tmp_path / "f.npy", ds.features[:3])
    np.save(tmp_path / "c.npy", ds.class_embeddings)
    for argv in (["predict", bad, "--features", tmp_path / "f.npy", "--classes", tmp_path / "c.npy"],
                 ["evaluate", bad]):
        line = _cli(capsys, *argv, code=1)  # a damaged file: a run-time error
        assert str(bad / "model.pt") in line and words in line, line


def test_explicit_impossible_ways_is_not_silently_clipped(tmp_path, capsys):
    pytest.importorskip("zslkit.methods.cvc")
    code = main(["train", "--method", "cvc-zsl", "--dataset", "synthetic-tiny", "--ways", "1000", "--epochs", "1",
                 "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 or "clipped" in err, err


def test_incomplete_checkpoint_names_the_missing_key(tmp_path):
    import torch

    from zslkit.methods.model_file import read_checkpoint

    path = tmp_path / "model.pt"
    torch.save({"format": "zslkit-checkpoint", "version": 1, "method": "eszsl", "config": {}}, path)
    with pytest.raises(DataError, match="key 'dims': incomplete checkpoint"):
        read_checkpoint(path)


def test_every_trainer_reports_divergence_clearly():
    """ESZSL's closed form, the shared softmax and cycle-WGAN's regressor stop with TrainingDivergedError."""
    import torch

    from zslkit.errors import TrainingDivergedError
    from zslkit.methods import get_method
    from zslkit.methods.cyclewgan.softmax import train_softmax

    X = torch.ones(8, 3) * 1e30
    y = torch.tensor([0, 1] * 4)
    with pytest.raises(TrainingDivergedError, match="softmax classifier training diverged"):
        train_softmax(X * X, y, 2, epochs=2, lr=1.0, batch_size=4)
    model = get_method("eszsl")(gamma_exp=-300, lambda_exp=-300, normalize_features=False, center_features=False,
                                device="cpu")
    with pytest.raises(TrainingDivergedError, match="not finite"):
        model.fit(np.full((4, 3), 1e30), np.array([0, 1, 0, 1]), np.full((2, 2), 1e30))
