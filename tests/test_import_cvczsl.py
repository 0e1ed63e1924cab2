"""``zslkit import cvczsl``: reference (kailigo/cvcZSL) checkpoints written here in its format, imported onto
synthetic-tiny, scored against a direct computation of the reference's forward pass."""

import json

import numpy as np
import pytest
import torch

from zslkit.cli import main
from zslkit.data.matio import file_sha256
from zslkit.data.synthetic import make_synthetic
from zslkit.errors import DataError
from zslkit.interop.cvczsl import checkpoint_from_reference, load_reference_model, read_reference_checkpoint
from zslkit.methods.base import ZSLMethod
from zslkit.protocol.metrics import per_class_accuracy

HIDDEN = 40


@pytest.fixture(scope="module")
def data():
    return make_synthetic("synthetic-tiny", seed=0)


def reference_tensors(data, *, transductive=False, seed=0):
    """Random tensors in the reference's format: dict of w1 (A x H), b1, w2 (H x D), b2, scale_cls (1), bias (1)
    [, cls_weight_all ((S + U) x D)], float32 as the reference's torch.FloatTensor."""
    g = torch.Generator().manual_seed(seed)
    A, D = data.embedding_dim, data.feature_dim
    out = {"w1": torch.randn(A, HIDDEN, generator=g) * 0.3, "b1": torch.randn(HIDDEN, generator=g) * 0.1,
           "w2": torch.randn(HIDDEN, D, generator=g) * 0.3, "b2": torch.randn(D, generator=g) * 0.1,
           "scale_cls": torch.tensor([7.5]), "bias": torch.tensor([0.25])}
    if transductive:
        out["cls_weight_all"] = torch.randn(data.seen_classes.size + data.unseen_classes.size, D, generator=g)
    return out


def save(tmp_path, obj, name="model.pt"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


# ----- the reference's forward pass, computed here from its architecture (float64 numpy) --------------------
def _unit_rows(m):
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def generated_classifiers(t, att):
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    w1, b1, w2, b2 = (t[k].double().numpy() for k in ("w1", "b1", "w2", "b2"))
    return relu(relu(att.astype(np.float64) @ w1 + b1) @ w2 + b2)


def reference_scores(t, x, weights):
    """scale_cls * (x_hat . w_hat + bias) for every sample / classifier row."""
    scale, bias = float(t["scale_cls"][0]), float(t["bias"][0])
    return scale * (_unit_rows(x.astype(np.float64)) @ _unit_rows(weights).T + bias)


def reference_heads(t, data, transductive):
    """(ZSL weights over the unseen classes, GZSL weights over seen then unseen classes), as test.py /
    trans_test.py build them: sorted seen ids, then sorted unseen ids."""
    E = data.class_embeddings
    unseen_w = generated_classifiers(t, E[data.unseen_classes])
    if transductive:
        seen_w = t["cls_weight_all"][:data.seen_classes.size].double().numpy()
    else:
        seen_w = generated_classifiers(t, E[data.seen_classes])
    return unseen_w, np.concatenate([seen_w, unseen_w])


# ----- library -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transductive", [False, True])
def test_imported_scores_equal_the_reference_forward_pass(data, tmp_path, transductive):
    t = reference_tensors(data, transductive=transductive, seed=3)
    path = save(tmp_path, t)
    model = load_reference_model(path, data, transductive=transductive, device="cpu")
    zsl_w, gzsl_w = reference_heads(t, data, transductive)
    Xu, _ = data.split("test_unseen")
    Xs, _ = data.split("test_seen")
    E = data.class_embeddings
    ours_zsl = model.decision_function(Xu, E[data.unseen_classes])
    np.testing.assert_allclose(ours_zsl, reference_scores(t, Xu, zsl_w), rtol=1e-4, atol=1e-4)
    classes = np.concatenate([data.seen_classes, data.unseen_classes])
    seen_labels = np.concatenate([np.arange(data.seen_classes.size), -np.ones(data.unseen_classes.size, int)])
    X = np.concatenate([Xs, Xu])
    ours_gzsl = model.decision_function(X, E[classes], seen_labels)
    np.testing.assert_allclose(ours_gzsl, reference_scores(t, X, gzsl_w), rtol=1e-4, atol=1e-4)
    # the transductive seen rows differ from the generated ones, so this checks that they are used
    if transductive:
        generated = reference_scores(t, X, np.concatenate([generated_classifiers(t, E[data.seen_classes]),
                                                           zsl_w]))
        assert np.abs(ours_gzsl - generated).max() > 1e-2


def test_checkpoint_dict_is_a_zslkit_checkpoint(data):
    ckpt = checkpoint_from_reference(reference_tensors(data, transductive=True), data, transductive=True)
    assert ckpt["format"] == "zslkit-checkpoint" and ckpt["method"] == "cvc-zsl"
    assert ckpt["dims"] == {"feature_dim": data.feature_dim, "embedding_dim": data.embedding_dim,
                            "num_train_classes": int(data.seen_classes.size)}
    assert ckpt["config"]["hidden_dim"] == HIDDEN and ckpt["config"]["gzsl_seen_classifiers"] == "learned"
    model = ZSLMethod.from_checkpoint(ckpt, device="cpu")
    assert model.name == "cvc-zsl" and model.state_dict()["seen_rows"].shape == (data.seen_classes.size,
                                                                                 data.feature_dim)
    inductive = checkpoint_from_reference(reference_tensors(data), data, transductive=False)
    assert inductive["config"]["gzsl_seen_classifiers"] == "generated" and inductive["state"]["seen_rows"] is None


def test_scalar_and_double_tensors_are_accepted(data, tmp_path):
    t = reference_tensors(data)
    t["scale_cls"], t["bias"] = torch.tensor(7.5), torch.tensor(0.25)  # 0-d instead of (1,)
    t["w1"] = t["w1"].double()  # other float types are converted
    path = save(tmp_path, t)
    model = load_reference_model(path, data, device="cpu")
    assert float(model.state_dict()["generator"]["scale"][0]) == 7.5


def test_legacy_serialisation_of_old_torch_is_read(data, tmp_path):
    """The reference ran on PyTorch 0.4, whose torch.save wrote the legacy (non-zip) format."""
    t = reference_tensors(data, seed=9)
    path = tmp_path / "legacy.pt"
    torch.save(t, path, _use_new_zipfile_serialization=False)
    model = load_reference_model(path, data, device="cpu")
    Xu, _ = data.split("test_unseen")
    zsl_w, _ = reference_heads(t, data, False)
    np.testing.assert_allclose(model.decision_function(Xu, data.class_embeddings[data.unseen_classes]),
                               reference_scores(t, Xu, zsl_w), rtol=1e-4, atol=1e-4)


# ----- command line ------------------------------------------------------------------------------------------
def run_import(tmp_path, path, *extra, out="run"):
    return main(["import", "cvczsl", str(path), "--dataset", "synthetic-tiny", "--out", str(tmp_path / out),
                 "--device", "cpu", *extra])


@pytest.mark.parametrize("transductive", [False, True])
def test_cli_import_writes_a_run_that_evaluate_and_predict_accept(data, tmp_path, capsys, transductive):
    t = reference_tensors(data, transductive=transductive, seed=5)
    path = save(tmp_path, t, "awa1.pt")
    extra = ["--transductive"] if transductive else []
    assert run_import(tmp_path, path, *extra) == 0
    out = capsys.readouterr().out
    assert "selection: imported" in out and "ORACLE" in out
    run = tmp_path / "run"
    for name in ("config.json", "metrics.json", "provenance.json", "model.pt", "per_class.json", "curves.json",
                 "history.json", "log.txt"):
        assert (run / name).is_file(), name
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["imported"]["sha256"] == file_sha256(path)
    assert prov["imported"]["reference"] == "kailigo/cvcZSL"
    assert prov["imported"]["format"] == ("cvczsl-transductive" if transductive else "cvczsl-inductive")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["selection"]["mode"] == "imported"
    assert metrics["setting"] == ("transductive" if transductive else "inductive")
    # ZSL T1 from the reference's own forward pass
    zsl_w, _ = reference_heads(t, data, transductive)
    Xu, yu = data.split("test_unseen")
    pred = data.unseen_classes[np.argmax(reference_scores(t, Xu, zsl_w), axis=1)]
    assert metrics["zsl_t1"] == pytest.approx(per_class_accuracy(yu, pred), abs=1e-9)

    assert main(["evaluate", str(run), "--device", "cpu"]) == 0
    ev = capsys.readouterr().out
    assert "differs" not in ev
    again = json.loads((run / "evaluation.json").read_text())
    assert again["zsl_t1"] == pytest.approx(metrics["zsl_t1"]) and again["gzsl_h"] == pytest.approx(metrics["gzsl_h"])

    assert main(["report", str(run)]) == 0  # the selection mode "imported" is a row of its own
    assert "| imported |" in capsys.readouterr().out

    np.save(tmp_path / "x.npy", Xu)
    np.save(tmp_path / "e.npy", data.class_embeddings[data.unseen_classes])
    assert main(["predict", str(run), "--features", str(tmp_path / "x.npy"), "--classes", str(tmp_path / "e.npy"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[1]) for r in rows] == list(np.argmax(reference_scores(t, Xu, zsl_w), axis=1))


def test_cli_refuses_a_finished_run_without_overwrite(data, tmp_path, capsys):
    path = save(tmp_path, reference_tensors(data))
    assert run_import(tmp_path, path) == 0
    code = run_import(tmp_path, path)
    assert code in (1, 2) and "--overwrite" in capsys.readouterr().err
    assert run_import(tmp_path, path, "--overwrite") == 0


class _Module(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.zeros(2, 2))


def _bad_inputs(data, tmp_path):
    """(name, file, extra arguments, expected words in the message)."""
    t = reference_tensors(data)
    cases = []

    def case(name, obj, words, extra=(), raw=None):
        path = tmp_path / f"{name}.pt"
        if raw is not None:
            path.write_bytes(raw)
        else:
            torch.save(obj, path)
        cases.append((name, path, list(extra), words))

    case("missing_key", {k: v for k, v in t.items() if k != "w2"},
         ["'w2'", "missing", "the file has: b1, b2, bias, scale_cls, w1"])
    case("not_a_dict", [t["w1"], t["b1"]], ["not a dict of tensors"])
    case("pickled_module", _Module(), ["pickled Python objects"])
    case("damaged", None, ["damaged"], raw=b"not a torch file at all")
    case("wrong_attribute_dim", {**t, "w1": torch.randn(data.embedding_dim + 3, HIDDEN)},
         ["'w1'", f"{data.embedding_dim + 3}", f"{data.embedding_dim}", "class-embedding dimension"])
    case("wrong_feature_dim", {**t, "w2": torch.randn(HIDDEN, 2048), "b2": torch.zeros(2048)},
         ["'w2'", "2048", "feature dimension"])
    case("hidden_mismatch", {**t, "b1": torch.zeros(HIDDEN + 1)}, ["'b1'", "hidden width"])
    case("scale_not_scalar", {**t, "scale_cls": torch.ones(3)}, ["'scale_cls'", "one number"])
    case("not_a_tensor", {**t, "bias": 0.5}, ["'bias'", "tensor"])
    case("integer_tensor", {**t, "b2": torch.zeros(data.feature_dim, dtype=torch.int64)}, ["'b2'", "floating"])
    case("nan", {**t, "b1": torch.full((HIDDEN,), float("nan"))}, ["'b1'", "NaN"])
    case("transductive_rows", {**t, "cls_weight_all": torch.randn(7, data.feature_dim)},
         ["'cls_weight_all'", "7", "30", "24 seen + 6 unseen"], extra=["--transductive"])
    case("transductive_missing", t, ["'cls_weight_all'", "missing"], extra=["--transductive"])
    case("transductive_without_flag", reference_tensors(data, transductive=True), ["--transductive"])
    return cases


def test_cli_bad_files_get_one_clear_line(data, tmp_path, capsys):
    for name, path, extra, words in _bad_inputs(data, tmp_path):
        code = run_import(tmp_path, path, *extra, out=f"run-{name}")
        err = capsys.readouterr().err
        assert code in (1, 2), name
        assert "Traceback" not in err and str(path) in err, (name, err)
        for w in words:
            assert w in err, (name, w, err)
        assert not (tmp_path / f"run-{name}" / "metrics.json").exists(), name


def test_cli_usage_errors(data, tmp_path, capsys):
    path = save(tmp_path, reference_tensors(data))
    with pytest.raises(SystemExit) as exc:  # the data must be named
        main(["import", "cvczsl", str(path), "--out", str(tmp_path / "r")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:  # a format is required
        main(["import"])
    assert exc.value.code == 2
    code = main(["import", "cvczsl", str(tmp_path / "absent.pt"), "--dataset", "synthetic-tiny", "--out",
                 str(tmp_path / "r")])
    assert code in (1, 2) and "not found" in capsys.readouterr().err
    code = main(["import", "cvczsl", str(path), "--dataset", "synthetic-tiny", "--semantic", "att", "--out",
                 str(tmp_path / "r")])
    assert code in (1, 2) and "synthetic" in capsys.readouterr().err


def test_data_root_and_seed_are_stored_for_evaluate(data, tmp_path):
    from zslkit.data.npz import write_npz

    root = tmp_path / "tiny.npz"
    write_npz(data, root)
    path = save(tmp_path, reference_tensors(data))
    assert main(["import", "cvczsl", str(path), "--data-root", str(root), "--data-seed", "0", "--out",
                 str(tmp_path / "r"), "--device", "cpu"]) == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["data_root"] == str(root.resolve()) and cfg["method"] == "cvc-zsl" and cfg["selection"] == "imported"
    assert main(["evaluate", str(tmp_path / "r"), "--device", "cpu"]) == 0


def test_read_reference_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_reference_checkpoint(tmp_path / "nothing.pt")
