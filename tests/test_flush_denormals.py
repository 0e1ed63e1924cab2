"""Subnormal floats are flushed to zero while a method trains (runtime.flush_denormals): on the CPU they slow
training steps several times over (benchmarks/README.md, "Subnormal floats"); the caller's setting comes back."""

import numpy as np
import pytest
import torch

from zslkit.methods.registry import get_method
from zslkit.runtime import flush_denormals, flushing_denormals

pytestmark = pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush subnormals")


def test_context_sets_and_restores():
    assert not flushing_denormals()
    with flush_denormals():
        assert flushing_denormals()
        assert float(torch.tensor(1e-39) * 1.0) == 0.0
        with flush_denormals(False):
            assert not flushing_denormals()
        assert flushing_denormals()
    assert not flushing_denormals()


def test_context_keeps_a_callers_setting_on():
    torch.set_flush_denormal(True)
    try:
        with flush_denormals():
            pass
        assert flushing_denormals()  # not switched off behind the caller's back
    finally:
        torch.set_flush_denormal(False)


def test_restored_after_an_error():
    with pytest.raises(RuntimeError):
        with flush_denormals():
            raise RuntimeError("boom")
    assert not flushing_denormals()


@pytest.mark.parametrize("name", ["cvc-zsl", "eszsl"])
def test_fit_flushes_while_training(name):
    rng = np.random.default_rng(0)
    E = rng.normal(size=(4, 6)).astype(np.float32)
    y = np.repeat(np.arange(4), 8)
    X = (E[y] @ rng.normal(size=(6, 10)) + 0.1 * rng.normal(size=(32, 10))).astype(np.float32)
    seen = []
    model = get_method(name)(seed=0)
    if name == "cvc-zsl":
        model.set_params(epochs=1, episodes=2, ways=4, shots=2, hidden_dim=8)
    model.fit(X, y, E, monitor=lambda epoch, m: seen.append(flushing_denormals()))
    if name == "cvc-zsl":
        assert seen and all(seen)
    assert not flushing_denormals()
