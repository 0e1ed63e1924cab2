"""The flat public API (``from zslkit import ...``, docs/api.md) and the import structure behind it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zslkit
from zslkit import (ZSLClassifier, ZSLDataset, ZSLMethod, available_methods, execute, get_method, load,
                    load_dataset, load_run_file, make_synthetic, run_protocol)
from zslkit.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "zslkit"


@pytest.fixture(scope="module")
def tiny():
    return load_dataset("synthetic-tiny")


@pytest.fixture(scope="module")
def result(tiny):
    return run_protocol(get_method("eszsl"), tiny, selection="fixed", seed=0, device="cpu")


def test_every_public_name_resolves():
    for name in zslkit.__all__:
        assert getattr(zslkit, name) is not None, name
        assert name in dir(zslkit)
    with pytest.raises(AttributeError, match="no_such_name"):
        zslkit.no_such_name  # noqa: B018


def test_import_zslkit_is_light():
    """Names are imported on first use: ``import zslkit`` alone loads neither torch nor scikit-learn."""
    code = "import sys, zslkit; print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_load_dataset_and_methods(tiny):
    assert isinstance(tiny, ZSLDataset) and tiny.synthetic
    assert np.array_equal(make_synthetic("synthetic-tiny").features, tiny.features)
    assert "eszsl" in available_methods() and issubclass(get_method("eszsl"), ZSLMethod)
    with pytest.raises(ConfigError, match="Did you mean"):
        get_method("esszl")


def test_run_protocol_then_load_a_file_or_a_run_directory(tiny, result, tmp_path):
    assert 0.0 <= result.metrics["gzsl_h"] <= 1.0 and result.metrics["selection"]["mode"] == "fixed"
    X, _ = tiny.split("test_unseen")
    E = tiny.class_embeddings[tiny.unseen_classes]
    path = result.model.save(tmp_path / "run" / "model.pt")
    for where in (path, tmp_path / "run"):
        model = load(where, device="cpu")
        assert np.array_equal(model.predict(X, E), result.model.predict(X, E))


def test_zsl_classifier(tiny):
    X, y = tiny.split("trainval")
    clf = ZSLClassifier("eszsl", class_embeddings=tiny.class_embeddings, candidates="unseen").fit(X, y)
    Xu, yu = tiny.split("test_unseen")
    assert set(clf.predict(Xu)) <= set(tiny.unseen_classes.tolist())
    assert 0.0 <= clf.score(Xu, yu) <= 1.0


def test_run_file_and_execute(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("method: eszsl\ndataset: synthetic-tiny\nselection: fixed\nseed: 3\n")
    spec = load_run_file(f)
    assert (spec.method, spec.seed, spec.overrides) == ("eszsl", 3, {})
    metrics = execute(spec, tmp_path / "out", progress=False, plots=False)
    assert metrics == {**json.loads((tmp_path / "out" / "metrics.json").read_text()), "wall_time_s":
                       metrics["wall_time_s"]}
    assert load_run_file(tmp_path / "out" / "run.yaml") == spec  # the run directory's run file is the spec
    f.write_text("dataset: synthetic-tiny\n")
    with pytest.raises(ConfigError, match="key 'method': missing"):
        load_run_file(f)


def _imports(path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(modules imported at the top of ``path``, (line, module) of imports inside functions)."""
    tree = ast.parse(path.read_text())
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)} | {
        a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    inner = [(n.lineno, n.module or "") for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return top, inner


def test_methods_base_and_registry_do_not_import_each_other():
    base_top, base_inner = _imports(SRC / "methods" / "base.py")
    reg_top, reg_inner = _imports(SRC / "methods" / "registry.py")
    assert "zslkit.methods.registry" in base_top
    assert not any(m.startswith("zslkit.methods.base") or m == "zslkit.methods" for m in reg_top | {
        m for _, m in reg_inner})


@pytest.mark.parametrize("name", ["__init__.py", "runfile.py", "experiment.py", "methods/base.py",
                                  "methods/registry.py"])
def test_function_level_imports_say_why(name):
    """An import inside a function is kept only with its reason beside it (a comment on its line)."""
    path = SRC / name
    lines = path.read_text().splitlines()
    _, inner = _imports(path)
    bare = [(n, lines[n - 1].strip()) for n, _ in inner if "#" not in lines[n - 1]]
    assert not bare, f"{name}: function-level imports without a reason: {bare}"
