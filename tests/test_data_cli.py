"""``zslkit data info | convert | download`` called in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakedata import assert_same, shared_available, stage_real, tiny_dataset
from zslkit.cli import main
from zslkit.data.layouts import load_from_root
from zslkit.data.xlsa17 import write_xlsa17


@pytest.fixture()
def folder(tmp_path):
    return write_xlsa17(tiny_dataset(), tmp_path / "TINY")


def test_info_table(folder, capsys):
    assert main(["data", "info", str(folder)]) == 0
    out = capsys.readouterr().out
    for text in ("layout", "xlsa17", "TINY", "real", "9 (6 seen / 3 unseen)", "trainval 30", "test_unseen 18",
                 "att, 5-d", "feature dim", "split sha256", "[passed] disjoint", "[passed] no leak"):
        assert text in out, text


def test_info_json(folder, capsys):
    assert main(["data", "info", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["layout"] == "xlsa17" and out["num_unseen"] == 3
    assert out["split_sizes"]["val"] == 12 and len(out["split_sha256"]) == 64
    assert all(c["passed"] for c in out["checks"]) and len(out["checks"]) >= 8


def test_info_bad_file(folder, capsys):
    raw = (folder / "res101.mat").read_bytes()
    (folder / "res101.mat").write_bytes(raw[:150])
    assert main(["data", "info", str(folder)]) == 1  # bad data: a run-time error
    out = capsys.readouterr().out
    assert "FAILED" in out and "res101.mat" in out
    assert main(["data", "info", str(folder), "--json"]) == 1
    res = json.loads(capsys.readouterr().out)
    assert not res["ok"] and res["error_file"].endswith("res101.mat")


def test_info_missing_path(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err + ""


def test_info_synthetic_preset(capsys):
    pytest.importorskip("zslkit.data.catalog")
    assert main(["data", "info", "synthetic-tiny", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["synthetic"] is True


@pytest.mark.parametrize("layout", ["dem", "cyclewgan-h5", "npz", "xlsa17"])
def test_convert(folder, tmp_path, layout, capsys):
    out = tmp_path / f"out-{layout}"
    assert main(["data", "convert", str(folder), "--to", layout, "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    back = load_from_root(out)
    orig = load_from_root(folder)
    if layout == "cyclewgan-h5":
        assert back.summary()["split_sizes"] == orig.summary()["split_sizes"]
    else:
        assert_same(orig, back)


def test_convert_mat73(folder, tmp_path):
    assert main(["data", "convert", str(folder), "--to", "xlsa17", "--out", str(tmp_path / "v73"),
                 "--mat-version", "7.3"]) == 0
    assert (tmp_path / "v73" / "res101.mat").read_bytes().startswith(b"MATLAB 7.3")
    np.testing.assert_array_equal(load_from_root(tmp_path / "v73").features, load_from_root(folder).features)


def test_convert_bad_layout_is_usage_error(folder, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["data", "convert", str(folder), "--to", "parquet", "--out", str(tmp_path / "x")])
    assert e.value.code == 2


def test_download_unknown_and_flo(tmp_path, capsys):
    assert main(["data", "download", "FLO", "--to", str(tmp_path)]) == 2
    assert "--url" in capsys.readouterr().err
    assert main(["data", "download", "imagenet", "--to", str(tmp_path)]) == 2


def test_download_local(tmp_path, capsys):
    from test_download import PAYLOAD, SHA, _Server

    with _Server(PAYLOAD) as srv:
        rc = main(["data", "download", "toy", "--to", str(tmp_path), "--url", f"{srv.url}/toy.zip",
                   "--sha256", SHA, "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert SHA in out and "verified" in out and (tmp_path / "xlsa17").is_dir()


@pytest.mark.skipif(not shared_available(), reason="real split files (../shared/data/xlsa17) not available")
def test_info_real_cub_sent(tmp_path, capsys):
    cub = stage_real("CUB", tmp_path, feature_dim=4)
    assert main(["data", "info", str(cub), "--semantic", "sent", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["semantic_source"] == "sent" and out["embedding_dim"] == 1024 and out["num_classes"] == 200
