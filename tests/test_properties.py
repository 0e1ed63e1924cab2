"""Property-based tests (Hypothesis): bad input only ever produces zslkit's own errors.

* arbitrary bytes (random, or a valid file with bytes flipped / cut) written as .mat, .h5, .npz, .npy, .csv and fed
  to every loader/reader give a ZslkitError or a valid dataset, never another exception;
* arbitrary small arrays fed to ZSLDataset (and through the npz writer/loader) give a valid dataset or a DataError
  naming the key;
* every sampled prefix of a valid file, in each layout, gives a DataError naming that file.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from fakedata import assert_same, tiny_dataset
from zslkit.data.arrays import read_matrix
from zslkit.data.cyclewgan_h5 import load_cyclewgan
from zslkit.data.dataset import SPLIT_NAMES, ZSLDataset
from zslkit.data.layouts import load_from_root, write_layout
from zslkit.data.npz import load_npz, write_npz
from zslkit.data.xlsa17 import load_xlsa17
from zslkit.errors import DataError, ZslkitError

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# one valid copy of every layout, written once (Hypothesis runs many examples per test)
_ROOT = Path(tempfile.mkdtemp(prefix="zslkit-props-"))
_TINY = tiny_dataset(n_per_class=3, n_seen=4, n_unseen=2, feature_dim=4, emb_dim=3)
GOOD = {
    "xlsa17": write_layout(_TINY, "xlsa17", _ROOT / "xlsa17" / "TINY"),
    "xlsa17-v7.3": write_layout(_TINY, "xlsa17", _ROOT / "xlsa17-73" / "TINY", version="7.3"),
    "dem": write_layout(_TINY, "dem", _ROOT / "dem" / "TINY_data"),
    "cyclewgan-h5": write_layout(_TINY, "cyclewgan-h5", _ROOT / "h5" / "tiny"),
    "npz": write_layout(_TINY, "npz", _ROOT / "npz" / "TINY.npz"),
}
GOOD_FILES = [(layout, f) for layout, p in GOOD.items() for f in (sorted(p.iterdir()) if p.is_dir() else [p])]


def teardown_module(module):
    shutil.rmtree(_ROOT, ignore_errors=True)


def _case_dir() -> Path:
    return Path(tempfile.mkdtemp(dir=_ROOT, prefix="case-"))


def _only_zslkit_errors(fn, *args, **kwargs):
    """Call ``fn``: a ZSLDataset or a ZslkitError are fine; any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = fn(*args, **kwargs)
        except ZslkitError as exc:
            assert str(exc), "an error without a message"
            return exc
    return out


# ----- 1. arbitrary bytes ------------------------------------------------------------------------------------

@st.composite
def damaged_bytes(draw):
    """(bytes, the good file it came from or None)."""
    mode = draw(st.sampled_from(["random", "flip", "cut", "cut+flip"]))
    if mode == "random":
        return draw(st.binary(max_size=2048)), None
    layout, src = draw(st.sampled_from(GOOD_FILES))
    data = bytearray(src.read_bytes())
    if "cut" in mode:
        data = data[:draw(st.integers(0, len(data) - 1))]
    if "flip" in mode and data:
        for pos, val in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)),
                                      min_size=1, max_size=16)):
            data[pos] = val
    return bytes(data), (layout, src)


@settings(max_examples=200, **SETTINGS)
@given(damaged_bytes())
def test_arbitrary_bytes_in_a_dataset_layout(case):
    """The damaged bytes replace one file of a valid dataset folder (or stand alone as .mat/.h5/.npz)."""
    data, origin = case
    d = _case_dir()
    try:
        if origin is None:
            targets = []
            for suffix in (".mat", ".h5", ".npz"):
                (d / f"x{suffix}").write_bytes(data)
                targets.append(d / f"x{suffix}")
            folder = d / "DS"
            folder.mkdir()
            (folder / "res101.mat").write_bytes(data)
            shutil.copyfile(GOOD["xlsa17"] / "att_splits.mat", folder / "att_splits.mat")
            targets.append(folder)
        else:
            layout, src = origin
            if src.parent.is_dir() and layout != "npz":
                folder = d / src.parent.name
                shutil.copytree(src.parent, folder)
                (folder / src.name).write_bytes(data)
                targets = [folder]
            else:
                targets = [d / src.name]
                targets[0].write_bytes(data)
        for target in targets:
            out = _only_zslkit_errors(load_from_root, target)
            assert isinstance(out, (ZSLDataset, ZslkitError))
            if target.suffix == ".h5" or (target.is_dir() and (target / "data.h5").exists()):
                assert isinstance(_only_zslkit_errors(load_cyclewgan, target), (ZSLDataset, ZslkitError))
            if target.suffix == ".npz":
                assert isinstance(_only_zslkit_errors(load_npz, target), (ZSLDataset, ZslkitError))
            if target.is_dir() and (target / "att_splits.mat").exists():
                for semantic in ("att", "original_att"):
                    out = _only_zslkit_errors(load_xlsa17, target, semantic=semantic)
                    assert isinstance(out, (ZSLDataset, ZslkitError))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@settings(max_examples=200, **SETTINGS)
@given(damaged_bytes(), st.sampled_from([None, "features", "att", "x"]))
def test_arbitrary_bytes_to_read_matrix(case, key):
    data, _ = case
    d = _case_dir()
    try:
        for suffix in (".npy", ".npz", ".csv", ".txt", ".mat"):
            path = d / f"m{suffix}"
            path.write_bytes(data)
            out = _only_zslkit_errors(read_matrix, path, key)
            if isinstance(out, np.ndarray):  # whatever it read is a clean float32 matrix
                assert out.ndim == 2 and out.size and out.dtype == np.float32 and np.all(np.isfinite(out))
            else:
                assert isinstance(out, DataError) and str(path) in str(out)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ----- 2. arbitrary arrays -------------------------------------------------------------------------------------

_DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint8", "uint64", "bool", "str", "object"]


@st.composite
def small_array(draw, *, max_dims: int = 2, max_side: int = 5, index_like: bool = False):
    ndim = draw(st.integers(0, max_dims))
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim)))
    kind = draw(st.sampled_from(_DTYPES))
    size = int(np.prod(shape)) if shape else 1
    if kind.startswith("float"):
        elems = st.one_of(st.integers(-3, 12).map(float), st.floats(allow_nan=True, allow_infinity=True),
                          st.sampled_from([np.nan, np.inf, -np.inf, 0.5, 1e300]))
        vals = draw(st.lists(elems, min_size=size, max_size=size))
        with np.errstate(all="ignore"):
            return np.array(vals, dtype=np.float64).astype(kind).reshape(shape)
    if kind.startswith(("int", "uint")):
        info = np.iinfo(kind)
        elems = st.one_of(st.integers(max(-3, int(info.min)), 12), st.integers(int(info.min), int(info.max)))
        return np.array(draw(st.lists(elems, min_size=size, max_size=size)), dtype=kind).reshape(shape)
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool).reshape(shape)
    if kind == "str":
        return np.array(draw(st.lists(st.text(max_size=3), min_size=size, max_size=size)), dtype=str).reshape(shape)
    arr = np.empty(size, dtype=object)
    arr[:] = draw(st.lists(st.one_of(st.none(), st.integers(0, 5), st.text(max_size=2)), min_size=size,
                           max_size=size))
    return arr.reshape(shape)


@st.composite
def dataset_arrays(draw):
    """Mostly-plausible arrays with one or more parts replaced by arbitrary ones (or index sets perturbed)."""
    n = draw(st.integers(1, 12))
    c = draw(st.integers(1, 5))
    feats = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    emb = np.arange(c * 2, dtype=np.float64).reshape(c, 2) + 1
    names = tuple(f"c{i}" for i in range(c))

    def index_set():
        return np.array(draw(st.lists(st.integers(-2, n + 1), max_size=n)), dtype=np.int64)

    splits = {k: index_set() for k in ("trainval", "test_seen", "test_unseen")}
    if draw(st.booleans()):
        splits["train"], splits["val"] = index_set(), index_set()
    # a consistent dataset half of the time (before the perturbations below), so valid ones are generated too
    if n >= 3 and c >= 2 and draw(st.booleans()):
        perm = np.array(draw(st.permutations(range(n))))
        cut1 = draw(st.integers(1, n - 2))
        cut2 = draw(st.integers(cut1 + 1, n - 1))
        splits = {"trainval": perm[:cut1], "test_seen": perm[cut1:cut2], "test_unseen": perm[cut2:]}
        n_seen = draw(st.integers(1, c - 1))
        labels[perm[:cut1]] = draw(st.lists(st.integers(0, n_seen - 1), min_size=cut1, max_size=cut1))
        labels[perm[cut1:cut2]] = draw(st.lists(st.sampled_from(sorted(set(labels[perm[:cut1]].tolist()))),
                                                min_size=cut2 - cut1, max_size=cut2 - cut1))
        labels[perm[cut2:]] = draw(st.lists(st.integers(n_seen, c - 1), min_size=n - cut2, max_size=n - cut2))
    for key in draw(st.lists(st.sampled_from(["features", "labels", "class_embeddings", *SPLIT_NAMES]),
                             max_size=2, unique=True) | st.just([])):
        arr = draw(small_array(max_dims=3 if key in ("features", "class_embeddings") else 2))
        if key == "features":
            feats = arr
        elif key == "labels":
            labels = arr
        elif key == "class_embeddings":
            emb = arr
        else:
            splits[key] = arr
    if draw(st.booleans()) and np.ndim(emb) == 2:
        names = tuple(draw(st.lists(st.text(max_size=3), min_size=np.shape(emb)[0], max_size=np.shape(emb)[0])))
    return dict(features=feats, labels=labels, class_embeddings=emb, class_names=names, splits=splits)


_KEYS = {"features", "labels", "class_embeddings", "class_names", "splits", *SPLIT_NAMES}


def _check_dataset_error(exc: DataError, file: str) -> None:
    assert isinstance(exc, DataError), exc
    assert exc.key in _KEYS, (exc.key, str(exc))
    assert f"key '{exc.key}'" in str(exc) and str(exc).startswith(file), str(exc)


@settings(max_examples=300, **SETTINGS)
@given(dataset_arrays())
def test_arbitrary_arrays_give_a_dataset_or_a_keyed_data_error(arrays):
    out = _only_zslkit_errors(ZSLDataset, **arrays, source="<mem>")
    event("valid dataset" if isinstance(out, ZSLDataset) else f"DataError on {getattr(out, 'key', None)}")
    if isinstance(out, ZslkitError):
        _check_dataset_error(out, "<mem>")
        return
    # valid: normalised and checked
    assert out.features.dtype == np.float32 and np.all(np.isfinite(out.features))
    assert out.labels.min() >= 0 and out.labels.max() < out.num_classes
    # and it survives the npz writer/loader unchanged
    d = _case_dir()
    try:
        path = write_npz(out, d / "ds.npz")
        back = load_npz(path)
        assert_same(out, back)
    except DataError as exc:  # only a name that .npz cannot store (trailing NUL) may refuse, and it says so
        assert "NUL" in str(exc), str(exc)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@settings(max_examples=200, **SETTINGS)
@given(dataset_arrays(), st.sampled_from([None, "class_names", "name"]))
def test_arbitrary_arrays_in_an_npz_file(arrays, extra):
    """The same arrays saved raw with np.savez: load_npz gives a dataset or a DataError naming file and key."""
    d = _case_dir()
    try:
        payload = {k: v for k, v in arrays.items() if k not in ("splits", "class_names")}
        payload.update({k: v for k, v in arrays["splits"].items()})
        if extra == "class_names":
            payload["class_names"] = np.array(arrays["class_names"], dtype=object)  # not loadable without pickle
        elif extra == "name":
            payload["name"] = np.array([1, 2])
        path = d / "raw.npz"
        try:
            np.savez(path, **{k: np.asarray(v) for k, v in payload.items()})
        except ValueError:
            assume(False)
        out = _only_zslkit_errors(load_npz, path)
        if isinstance(out, ZslkitError):
            assert isinstance(out, DataError) and str(out).startswith(str(path)), str(out)
            assert out.key is None or f"key '{out.key}'" in str(out)
            has_object = any(np.asarray(v).dtype == object for v in payload.values())
            assert out.key is not None or has_object, str(out)
        else:
            assert isinstance(out, ZSLDataset) and extra is None
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ----- 3. truncated files ----------------------------------------------------------------------------------

@settings(max_examples=150, **SETTINGS)
@given(st.sampled_from(GOOD_FILES), st.floats(0.0, 1.0, exclude_max=True))
def test_every_truncated_file_gives_a_data_error_naming_it(item, fraction):
    layout, src = item
    size = src.stat().st_size
    cut = int(fraction * size)
    d = _case_dir()
    try:
        if layout == "npz":
            target = d / src.name
            target.write_bytes(src.read_bytes()[:cut])
            loader_arg = target
        else:
            folder = d / src.parent.name
            shutil.copytree(src.parent, folder)
            target = folder / src.name
            target.write_bytes(src.read_bytes()[:cut])
            loader_arg = folder
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(DataError) as info:
                load_from_root(loader_arg)
        assert str(target) in str(info.value), (cut, size, str(info.value))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("layout,src", GOOD_FILES, ids=[f"{lay}-{f.name}" for lay, f in GOOD_FILES])
def test_truncation_edges(tmp_path, layout, src):
    """The shortest and longest prefixes (0 bytes, 1 byte short) of every file, deterministically."""
    data = src.read_bytes()
    for cut in (0, 1, 127, 128, 512, len(data) - 1):
        if cut >= len(data):
            continue
        folder = tmp_path / f"cut{cut}"
        if layout == "npz":
            folder.mkdir()
            target = folder / src.name
            arg = target
        else:
            shutil.copytree(src.parent, folder)
            target, arg = folder / src.name, folder
        target.write_bytes(data[:cut])
        with pytest.raises(DataError) as info:
            load_from_root(arg)
        assert str(target) in str(info.value), (cut, str(info.value))


# ----- known gaps outside the data loaders --------------------------------------------------------------------

def test_complex_features_rejected_by_zsldataset():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="features"):
            ZSLDataset(features=np.ones((3, 2)) * (1 + 2j), labels=[0, 0, 1], class_embeddings=np.eye(2),
                       class_names=("a", "b"), splits={"trainval": [0], "test_seen": [1], "test_unseen": [2]})
