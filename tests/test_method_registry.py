"""Third-party methods through the ``zslkit.methods`` entry point (docs/extending.md), and ``zslkit methods NAME``."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest

from zslkit.cli import main
from zslkit.methods import registry
from zslkit.methods.config import field_bounds
from zslkit.methods.registry import config_fields, get_method, variants_of

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
ENTRY_POINTS = """[zslkit.methods]
ridge-embed = zslkit_ridge:RidgeEmbedding
broken = zslkit_no_such_module
not-a-method = zslkit_ridge:RidgeConfig
eszsl-again = zslkit_clash
"""
CLASH = """from zslkit.methods import get_method, register

Base = get_method("eszsl")


@register
class Again(Base):
    name = "eszsl"  # taken by the built-in method: refused, with a warning
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """A fake installed distribution: the docs' example module and a dist-info with entry points on sys.path."""
    site = tmp_path / "site"
    (site / "zslkit_ridge-0.1.dist-info").mkdir(parents=True)
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    (site / "zslkit_ridge.py").write_text(code)
    (site / "zslkit_clash.py").write_text(CLASH)
    (site / "zslkit_ridge-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: zslkit-ridge\n"
                                                                  "Version: 0.1\n")
    (site / "zslkit_ridge-0.1.dist-info" / "entry_points.txt").write_text(ENTRY_POINTS)
    registry.available_methods()  # the built-in methods registered before the copy below
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # restored after the test
    monkeypatch.setattr(registry, "_discovered", False)
    yield site
    for name in ("zslkit_ridge", "zslkit_clash"):
        sys.modules.pop(name, None)


def test_installed_method_is_listed_and_broken_entry_points_warn(installed, capsys):
    assert main(["methods"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"^ridge-embed\s+settings: inductive\s+ridge regression", out, re.M)
    assert "eszsl" in out and "cvc-zsl" in out  # the built-in ones are all still there
    warnings = [line for line in err.splitlines() if line.startswith("zslkit: warning: method entry point")]
    assert len(warnings) == 3, err
    assert any("'broken' (zslkit_no_such_module)" in w and "ModuleNotFoundError" in w for w in warnings)
    assert any("'not-a-method'" in w and "not a subclass of zslkit.methods.ZSLMethod" in w for w in warnings)
    assert any("'eszsl-again'" in w and "already registered" in w for w in warnings)
    assert get_method("eszsl").__module__.startswith("zslkit.methods")  # the clash did not replace it


def test_installed_method_trains_predicts_and_describes_itself(installed, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "ridge-embed", "--dataset", "synthetic-tiny", "--out", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "ridge-embed" and metrics["zsl_t1"] > 1.5 / 6  # above chance on 6 unseen classes
    assert metrics["selection"]["chosen"]["alpha_exp"] in (-2.0, 0.0, 2.0)
    assert main(["evaluate", str(out), "--device", "cpu"]) == 0  # model.pt rebuilds it through the registry
    capsys.readouterr()
    assert main(["methods", "ridge-embed"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^  alpha_exp\s+float\s+0\.0\s+ridge penalty 10\*\*alpha_exp \(in \[-6\.0, 6\.0\]\)$", text, re.M), text
    assert re.search(r"^  grid\s+tuple\s+\(-2\.0, 0\.0, 2\.0\)\s+alpha_exp values tried", text, re.M), text


def test_methods_name_lists_fields_settings_variants_and_presets(capsys):
    for name in ("cvc-zsl", "cycle-wgan", "eszsl"):
        cls = get_method(name)
        capsys.readouterr()
        assert main(["methods", name]) == 0
        text = capsys.readouterr().out
        assert f"settings: {', '.join(cls.settings)}" in text and cls.default_criterion in text
        for f in dataclasses.fields(cls.config_class):  # every field, with its help from the field's metadata
            line = next(line for line in text.splitlines() if line.startswith(f"  {f.name} "))
            bounds = field_bounds(f)
            assert line.rstrip().endswith(f.metadata.get("help", "").strip() + (f" ({bounds})" if bounds else "")), line
    capsys.readouterr()
    main(["methods", "cvc-zsl"])
    text = capsys.readouterr().out
    assert re.search(r"variants \(--variant\): .*reference", text)
    assert re.search(r"^  transductive, variant -: .*synthetic-awa2", text, re.M)
    assert re.search(r"^  inductive, variant reference: .*AWA1", text, re.M)


def test_config_fields_and_variants_read_the_dataclass():
    @dataclasses.dataclass
    class Cfg:
        variant: str = dataclasses.field(default="a", metadata={"help": "which one", "choices": ("a", "b")})
        rate: float = dataclasses.field(default=0.1, metadata={"help": "learning rate"})
        sizes: tuple = (1, 2)  # no metadata: no help

    class Fake:
        name = "no-such-method-presets"
        config_class = Cfg

    fields = {f.name: f for f in config_fields(Fake)}
    assert (fields["rate"].type, fields["rate"].default, fields["rate"].help) == ("float", 0.1, "learning rate")
    assert fields["sizes"].help == "" and fields["sizes"].default == (1, 2)
    assert fields["variant"].choices == ("a", "b") and variants_of(Fake) == ("a", "b")
    assert "reference" in variants_of(get_method("cvc-zsl")) and variants_of(get_method("eszsl")) == ()
    assert "f-clswgan" in variants_of(get_method("cycle-wgan"))
