"""The tensor episode sampler of CVC-ZSL (zslkit.methods.cvc.episodes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zslkit.errors import ConfigError
from zslkit.methods.cvc.episodes import EpisodeError, EpisodeSampler, distinct_positions, local_labels


def _labels(counts, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    rng.shuffle(y)
    return torch.as_tensor(y)


def _check_episodes(y, idx, cls, ways, shots):
    n = idx.shape[0]
    assert idx.shape == (n, ways * shots) and cls.shape == (n, ways)
    for e in range(n):
        c = cls[e].tolist()
        assert len(set(c)) == ways  # distinct classes
        block = idx[e].view(ways, shots)
        for k in range(ways):
            members = block[k].tolist()
            assert len(set(members)) == shots  # distinct samples
            assert all(int(y[i]) == c[k] for i in members)  # from the right class


def test_episodes_have_distinct_classes_and_shots_of_the_right_class():
    y = _labels([7, 5, 9, 4, 12, 6, 5, 8])
    s = EpisodeSampler(y)
    idx, cls = s.sample(200, 5, 4, torch.Generator().manual_seed(0))
    _check_episodes(y, idx, cls, 5, 4)
    # every class and many different samples show up over many episodes
    assert set(cls.flatten().tolist()) == set(range(8))
    assert len(set(idx.flatten().tolist())) > 0.9 * y.numel()


def test_episodes_are_reproducible_for_a_seed_and_differ_across_seeds():
    y = _labels([10] * 12)
    s = EpisodeSampler(y)
    a = s.sample(20, 6, 3, torch.Generator().manual_seed(5))
    b = s.sample(20, 6, 3, torch.Generator().manual_seed(5))
    c = s.sample(20, 6, 3, torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_shots_equal_to_class_size_take_the_whole_class():
    y = _labels([3, 3, 3])
    idx, cls = EpisodeSampler(y).sample(10, 3, 3, torch.Generator().manual_seed(1))
    _check_episodes(y, idx, cls, 3, 3)
    for e in range(10):
        assert sorted(idx[e].tolist()) == list(range(9))


def test_distinct_positions_is_roughly_uniform():
    counts = torch.full((20000,), 6)
    pos = distinct_positions(counts, 2, torch.Generator().manual_seed(0))
    assert (pos[:, 0] != pos[:, 1]).all()
    freq = torch.bincount(pos.flatten(), minlength=6).double() / pos.numel()
    assert torch.allclose(freq, torch.full((6,), 1 / 6, dtype=torch.double), atol=0.01)


def test_repeats_only_where_allowed():
    counts = torch.tensor([1, 2, 8])
    with pytest.raises(EpisodeError):
        distinct_positions(counts, 3, torch.Generator().manual_seed(0))
    pos = distinct_positions(counts, 3, torch.Generator().manual_seed(0), allow_repeats=True)
    assert (pos[0] == 0).all() and ((pos[1] >= 0) & (pos[1] < 2)).all()
    assert len(set(pos[2].tolist())) == 3


def test_impossible_episodes_raise_config_errors():
    s = EpisodeSampler(_labels([5, 5, 2]))
    with pytest.raises(ConfigError, match="distinct classes"):
        s.sample(1, 4, 1, torch.Generator())
    with pytest.raises(ConfigError, match="smallest training class has 2"):
        s.sample(1, 2, 3, torch.Generator())


def test_local_labels_match_the_class_major_layout():
    assert local_labels(3, 2, "cpu").tolist() == [0, 0, 1, 1, 2, 2]


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(1, 9), min_size=2, max_size=10), data=st.data())
def test_sampler_property(counts, data):
    y = _labels(counts, seed=len(counts))
    s = EpisodeSampler(y)
    ways = data.draw(st.integers(1, len(counts)))
    shots = data.draw(st.integers(1, min(counts)))
    idx, cls = s.sample(8, ways, shots, torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    _check_episodes(y, idx, cls, ways, shots)
