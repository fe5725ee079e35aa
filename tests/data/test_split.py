"""The stratified split: a partition with the requested sizes and each class in proportion."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.data import channel_stats, stratified_split


@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
       f1=st.floats(0, 0.45), f2=st.floats(0, 0.45), seed=st.integers(0, 5))
def test_stratified_split_partitions_in_proportion(counts, f1, f2, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    a, b, rest = stratified_split(labels, (f1, f2), seed)
    every = np.concatenate([a, b, rest])
    assert sorted(every.tolist()) == list(range(len(labels)))  # a partition
    for part in (a, b, rest):
        assert np.all(np.diff(part) > 0)
    for part, f in ((a, f1), (b, f2)):
        n_part = np.bincount(labels[part], minlength=len(counts))
        # each class gets floor or ceil of its share (or less only where a class must keep one image)
        assert np.all(n_part <= np.ceil(np.array(counts) * f) + 1e-9)
        assert np.all(n_part >= np.minimum(np.floor(np.array(counts) * f), np.array(counts) - 1) - 1)
    assert np.all(np.bincount(labels[rest], minlength=len(counts)) >= 1)  # every class keeps a training image
    if all(c >= 4 for c in counts):
        assert len(a) == int(np.floor(len(labels) * f1 + 0.5))
    again = stratified_split(labels, (f1, f2), seed)
    assert all(np.array_equal(x, y) for x, y in zip(again, (a, b, rest)))


def test_channel_stats_match_numpy(rng):
    x = rng.random((9, 3, 5, 4)).astype(np.float32)
    mean, std = channel_stats(x, chunk=2)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, x.astype(np.float64).std(axis=(0, 2, 3)), rtol=1e-6)
    assert channel_stats(np.ones((2, 1, 3, 3), np.float32))[1] == (1.0,)  # constant channel: std 1, not 0
