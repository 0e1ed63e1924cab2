"""zslkit features extract with small randomly initialised backbones: shapes, labels, class order, resume,
bad images, local checkpoints (by name and by position), offline errors. Offline and CPU-sized."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zslkit.cli import main
from zslkit.data.matio import read_mat
from zslkit.errors import ConfigError, DataError, MissingDependencyError
from zslkit.features.backbones import load_backbone
from zslkit.features.extract import extract_features
from zslkit.features.sources import list_images
from zslkit.optional import available, require

pytestmark = pytest.mark.skipif(not available("timm"), reason="needs the vision extra: pip install -e '.[vision]'")

CLASSES = {"cat": 4, "ant": 3, "bee": 5}  # folder order is sorted: ant, bee, cat
TINY = ["--backbone", "timm:test_efficientnet", "--weights", "random", "--image-size", "32", "--batch-size", "4",
        "--workers", "0", "--no-progress"]


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for cls, n in CLASSES.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            shape = (20 + i, 24) if i % 2 else (24, 24, 3)  # grey and colour, square and not
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / cls / f"img{i}.png")
    (root / "ant" / "notes.txt").write_text("not an image")  # ignored: not an image extension
    return root


def _read(out):
    mat = read_mat(out / "res101.mat")
    return mat, (out / "classes.txt").read_text().split(), json.loads((out / "provenance.json").read_text())


def test_folder_shapes_labels_class_order_and_values(image_folder, tmp_path, capsys):
    out = tmp_path / "feat"
    assert main(["features", "extract", str(image_folder), *TINY, "--chunk-size", "4", "--out", str(out)]) == 0
    mat, classes, prov = _read(out)
    assert classes == ["ant", "bee", "cat"]
    n = sum(CLASSES.values())
    bb = load_backbone("timm:test_efficientnet", weights="random", image_size=32)
    assert mat["features"].shape == (bb.dim, n) and mat["features"].dtype == np.float32
    labels = mat["labels"].reshape(-1)
    assert labels.tolist() == [1] * 3 + [2] * 5 + [3] * 4  # 1-based, in class order
    assert list(mat["image_files"])[:2] == ["ant/img0.png", "ant/img1.png"]
    assert prov["num_features"] == n and prov["weights"].startswith("random") and prov["weights_sha256"] is None
    assert prov["preprocess"]["size"] == 32 and prov["images_per_class"] == {"ant": 3, "bee": 5, "cat": 4}
    # the stored rows are the backbone's output on the preprocessed images (same seed, same random weights)
    images = list_images(image_folder)
    from PIL import Image

    with torch.inference_mode():
        x = torch.stack([bb.preprocess(Image.open(p)) for p in images.paths])
        direct = bb.module(x).numpy()
    np.testing.assert_allclose(mat["features"].T, direct, rtol=1e-4, atol=1e-5)
    assert "wrote 12 x" in capsys.readouterr().out


def test_resume_after_interruption_gives_identical_files(image_folder, tmp_path):
    images = list_images(image_folder)
    bb = load_backbone("timm:test_efficientnet", weights="random", image_size=32)
    ref = tmp_path / "ref"
    extract_features(images, bb, ref, batch_size=4, workers=0, chunk_size=4, progress=False)

    def stop(k):
        raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        extract_features(images, bb, out, batch_size=4, workers=0, chunk_size=4, progress=False, on_chunk=stop)
    assert sorted(p.name for p in (out / ".partial").glob("chunk_*")) == ["chunk_00000.npz"]
    assert not (out / "res101.mat").exists()
    prov = extract_features(images, bb, out, batch_size=4, workers=0, chunk_size=4, progress=False)
    assert prov["images_from_earlier_runs"] == 4
    a, b = read_mat(ref / "res101.mat"), read_mat(out / "res101.mat")
    assert np.array_equal(a["features"], b["features"]) and np.array_equal(a["labels"], b["labels"])
    assert list(a["image_files"]) == list(b["image_files"]) and not (out / ".partial").exists()
    # a finished job is not redone; another job in the same folder is refused without --overwrite
    assert extract_features(images, bb, out, batch_size=4, workers=0, chunk_size=4, progress=False)["up_to_date"]
    other = load_backbone("timm:test_efficientnet", weights="random", image_size=40)
    with pytest.raises(DataError, match="another job"):
        extract_features(images, other, out, batch_size=4, workers=0, progress=False)


def test_cli_rerun_overwrite_and_worker_processes(image_folder, tmp_path, capsys):
    out = tmp_path / "feat"
    args = ["features", "extract", str(image_folder), *TINY, "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(args[:-2] + ["--seed", "1", "--out", str(out)]) == 1  # other random weights: another job (DataError)
    assert "--overwrite" in capsys.readouterr().err
    before = read_mat(out / "res101.mat")["features"]
    assert main(args[:-2] + ["--seed", "1", "--workers", "1", "--interpolation", "bicubic", "--crop-fraction", "0.9",
                             "--device", "cpu", "--overwrite", "--out", str(out)]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["preprocess"]["interpolation"] == "bicubic" and prov["preprocess"]["crop_fraction"] == 0.9
    assert not np.array_equal(before, read_mat(out / "res101.mat")["features"])


def test_ctrl_c_exits_130_and_the_same_command_resumes(image_folder, tmp_path, monkeypatch, capsys):
    from zslkit.features import extract

    real = extract._write_chunk

    def write_then_interrupt(partial, k, *a):
        real(partial, k, *a)
        raise KeyboardInterrupt

    monkeypatch.setattr(extract, "_write_chunk", write_then_interrupt)
    args = ["features", "extract", str(image_folder), *TINY, "--chunk-size", "4", "--out", str(tmp_path / "f")]
    assert main(args) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    monkeypatch.setattr(extract, "_write_chunk", real)
    assert main(args) == 0
    assert "resumed: 4 images were done by an earlier run" in capsys.readouterr().out


def test_csv_list_and_npz_format(image_folder, tmp_path):
    lst = tmp_path / "list.csv"
    lst.write_text("path,class\nimages/cat/img0.png,cat\nimages/ant/img1.png,ant\nimages/cat/img2.png,cat\n")
    out = tmp_path / "feat"
    assert main(["features", "extract", str(lst), *TINY, "--format", "npz", "--out", str(out)]) == 0
    with np.load(out / "features.npz") as z:
        assert z["features"].shape[0] == 3 and z["labels"].tolist() == [0, 1, 0]  # classes in order of appearance
        assert z["class_names"].tolist() == ["cat", "ant"]
        assert z["image_files"].tolist()[1] == "images/ant/img1.png"
    bad = tmp_path / "bad.csv"
    bad.write_text("images/cat/img0.png,cat\nimages/cat/missing.png,cat\n")
    with pytest.raises(DataError, match="line 2.*image file not found"):
        list_images(bad)


def test_corrupt_image_is_a_clear_error_or_skipped(image_folder, tmp_path, capsys):
    (image_folder / "bee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    out = tmp_path / "feat"
    assert main(["features", "extract", str(image_folder), *TINY, "--out", str(out)]) == 1  # bad data: run-time
    err = capsys.readouterr().err
    assert "broken.png" in err and "--skip-bad" in err and "Traceback" not in err
    assert main(["features", "extract", str(image_folder), *TINY, "--skip-bad", "--out", str(out)]) == 0
    assert "skipped bee/broken.png" in capsys.readouterr().out
    mat, _, prov = _read(out)
    assert mat["features"].shape[1] == sum(CLASSES.values())
    assert [s["file"] for s in prov["skipped"]] == ["bee/broken.png"]
    assert "bee/broken.png" not in list(mat["image_files"])


def test_checkpoint_with_other_key_names_loads_by_position(image_folder, tmp_path):
    timm = require("timm", "test")
    torch.manual_seed(5)
    src = timm.create_model("test_efficientnet")
    renamed = {f"layer{i:03d}.{k.rsplit('.', 1)[-1]}": v for i, (k, v) in enumerate(src.state_dict().items())}
    ckpt = tmp_path / "other_impl.pth"
    torch.save({"state_dict": renamed}, ckpt)
    bb = load_backbone("timm:test_efficientnet", weights=str(ckpt), image_size=32)
    assert "by position" in bb.weights and len(bb.describe()["weights_sha256"]) == 64
    src.reset_classifier(0)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        np.testing.assert_allclose(bb.module(x).numpy(), src.eval()(x).numpy(), rtol=1e-5, atol=1e-6)
    # same key names load by name
    torch.save(timm.create_model("test_efficientnet").state_dict(), tmp_path / "same.pth")
    assert "by name" in load_backbone("timm:test_efficientnet", weights=str(tmp_path / "same.pth")).weights
    # a checkpoint of another architecture: one clear error naming the tensor and both shapes
    items = list(renamed.items())
    items[3] = (items[3][0], torch.zeros(7, 7))
    torch.save(dict(items), tmp_path / "wrong.pth")
    with pytest.raises(DataError, match=r"tensor #3 has shape \(7, 7\) but .* needs"):
        load_backbone("timm:test_efficientnet", weights=str(tmp_path / "wrong.pth"))
    torch.save(dict(items[:10]), tmp_path / "short.pth")
    with pytest.raises(DataError, match=r"holds 9 tensors but timm:test_efficientnet has 75"):
        load_backbone("timm:test_efficientnet", weights=str(tmp_path / "short.pth"))


def test_torchvision_backbone_and_offline_weights_message(image_folder, tmp_path, monkeypatch, capsys):
    out = tmp_path / "feat"
    assert main(["features", "extract", str(image_folder), "--backbone", "resnet18", "--weights", "random",
                 "--image-size", "32", "--batch-size", "8", "--workers", "0", "--no-progress",
                 "--out", str(out)]) == 0
    assert read_mat(out / "res101.mat")["features"].shape == (512, 12)
    bb = load_backbone("resnet101", weights="random")  # the xlsa17 recipe
    assert bb.dim == 2048 and (bb.preprocess.size, bb.preprocess.resize) == (224, 256)
    assert bb.preprocess.interpolation == "bilinear"

    def offline(*a, **k):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    capsys.readouterr()
    # weights that cannot be downloaded: a missing dependency, a run-time error (exit 1)
    assert main(["features", "extract", str(image_folder), "--backbone", "resnet18", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "resnet18-f37072fd.pth" in err and "--weights FILE" in err and err.count("\n") == 1
    assert main(["features", "extract", str(image_folder), "--backbone", "resnet1O1", "--out", str(out)]) == 2  # usage
    assert "Did you mean: resnet101" in capsys.readouterr().err


def test_open_clip_image_tower_random_init(image_folder, tmp_path):
    if not available("open_clip"):
        pytest.skip("needs open_clip_torch (the vision extra)")
    images = list_images(image_folder)
    bb = load_backbone("open_clip:ViT-S-32")
    assert "random" in bb.weights and bb.preprocess.mean[0] == pytest.approx(0.48145466)
    assert (bb.preprocess.size, bb.preprocess.crop_fraction, bb.preprocess.interpolation) == (224, 1.0, "bicubic")
    with pytest.raises(ConfigError, match="does not accept 32x32"):
        load_backbone("open_clip:ViT-S-32", image_size=32)
    prov = extract_features(images, bb, tmp_path / "clip", batch_size=6, workers=0, progress=False)
    assert prov["num_features"] == 12 and prov["feature_dim"] == bb.dim


def test_missing_optional_package_names_the_extra(monkeypatch):
    import importlib

    from zslkit import optional

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "sentence_transformers":
            raise ModuleNotFoundError("No module named 'sentence_transformers'", name="sentence_transformers")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(MissingDependencyError, match=r"sentence-transformers.*pip install 'zslkit\[text\]'"):
        optional.require("sentence_transformers", "text model x")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_extraction_with_float16_autocast_matches_cpu(image_folder, tmp_path):
    images = list_images(image_folder)
    bb = load_backbone("timm:test_efficientnet", weights="random", image_size=32)
    cpu = extract_features(images, bb, tmp_path / "cpu", batch_size=4, workers=0, progress=False, fmt="npz")
    gpu = extract_features(images, bb, tmp_path / "gpu", batch_size=4, workers=2, progress=False, fmt="npz",
                           device="cuda")
    assert cpu["num_features"] == gpu["num_features"] == 12 and gpu["device"].startswith("cuda")
    a, b = np.load(tmp_path / "cpu" / "features.npz"), np.load(tmp_path / "gpu" / "features.npz")
    assert b["features"].dtype == np.float32 and np.array_equal(a["labels"], b["labels"])
    np.testing.assert_allclose(b["features"], a["features"], rtol=0.05, atol=0.05)  # float16 autocast
