"""DataLoader: batching, shuffling, seeds, drop_last, set_epoch for resumed runs."""
import numpy as np
import pytest

import cnnkit
from cnnkit.data import ArrayDataset, Compose, DataLoader, Normalize, RandomCrop, RandomHorizontalFlip


class CountingDataset(ArrayDataset):
    calls = 0

    def __getitem__(self, i):
        CountingDataset.calls += 1
        return super().__getitem__(i)


def _ds(n=10, rng=None, cls=ArrayDataset):
    rng = rng or np.random.default_rng(0)
    x = rng.random((n, 1, 4, 4)).astype(np.float32)
    x[:, 0, 0, 0] = np.arange(n)  # image i is recognisable by its first pixel
    return cls(x, np.arange(n) % 3, ["a", "b", "c"])


def _ids(loader):
    return [x.data[:, 0, 0, 0].astype(int).tolist() for x, _ in loader]


def test_batches_in_order():
    ds = _ds(10)
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    x, y = batches[0]
    assert isinstance(x, cnnkit.Tensor) and x.shape == (4, 1, 4, 4) and x.dtype == np.float32
    assert isinstance(y, cnnkit.Tensor) and y.dtype == np.int64 and y.data.tolist() == [0, 1, 2, 0]
    assert _ids(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(batches[1][0].data, ds.images[4:8])


def test_drop_last():
    loader = DataLoader(_ds(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and _ids(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(_ds(8), batch_size=4, drop_last=True)) == 2
    assert len(DataLoader(_ds(3), batch_size=4, drop_last=True)) == 0


def test_no_per_image_loop_without_per_image_transform():
    ds = _ds(10, cls=CountingDataset)
    CountingDataset.calls = 0
    list(DataLoader(ds, batch_size=4, shuffle=True, seed=0, transform=Normalize(0.5, 0.2)))
    assert CountingDataset.calls == 0


def test_shuffle_is_a_permutation_seeded_and_new_each_epoch():
    loader = DataLoader(_ds(50), batch_size=7, shuffle=True, seed=123)
    e0, e1 = sum(_ids(loader), []), sum(_ids(loader), [])
    assert sorted(e0) == list(range(50)) and sorted(e1) == list(range(50))
    assert e0 != e1 and e0 != list(range(50))
    again = DataLoader(_ds(50), batch_size=7, shuffle=True, seed=123)
    assert sum(_ids(again), []) == e0 and sum(_ids(again), []) == e1
    assert sum(_ids(DataLoader(_ds(50), batch_size=7, shuffle=True, seed=124)), []) != e0


def test_set_epoch_reproduces_an_uninterrupted_run_with_augmentation():
    t = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip()])
    full = DataLoader(_ds(20), batch_size=6, shuffle=True, seed=7, transform=t)
    epochs = [[(x.data.copy(), y.data.copy()) for x, y in full] for _ in range(4)]
    resumed = DataLoader(_ds(20), batch_size=6, shuffle=True, seed=7, transform=t)
    resumed.set_epoch(2)
    for k in (2, 3):
        got = list(resumed)
        assert len(got) == len(epochs[k])
        for (x, y), (rx, ry) in zip(got, epochs[k]):
            np.testing.assert_array_equal(x.data, rx)
            np.testing.assert_array_equal(y.data, ry)
    assert not np.array_equal(epochs[0][0][0], epochs[1][0][0])


def test_seed_none_follows_manual_seed():
    cnnkit.manual_seed(3)
    a = sum(_ids(DataLoader(_ds(30), batch_size=5, shuffle=True)), [])
    cnnkit.manual_seed(3)
    b = sum(_ids(DataLoader(_ds(30), batch_size=5, shuffle=True)), [])
    assert a == b


def test_batched_and_per_image_transforms_agree():
    ds = _ds(9)
    norm = Normalize(0.3, 0.7)
    whole = np.concatenate([x.data for x, _ in DataLoader(ds, batch_size=4, transform=norm)])
    per_image = np.concatenate([x.data for x, _ in DataLoader(ds, batch_size=4, transform=lambda im: norm(im))])
    np.testing.assert_allclose(whole, per_image, rtol=1e-6)
    np.testing.assert_allclose(whole, (ds.images - 0.3) / 0.7, rtol=1e-5, atol=1e-6)


def test_generic_dataset():
    class Pairs:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((2, 3, 3), i, np.float32), i % 2

    x, y = next(iter(DataLoader(Pairs(), batch_size=5)))
    assert x.shape == (5, 2, 3, 3) and y.data.tolist() == [0, 1, 0, 1, 0]


def test_validation():
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        DataLoader(_ds(), batch_size=0)
    with pytest.raises(ValueError, match="seed must be a non-negative int or None, got -1"):
        DataLoader(_ds(), seed=-1)
    with pytest.raises(ValueError, match="epoch must be a non-negative int"):
        DataLoader(_ds()).set_epoch(-2)
    with pytest.raises(TypeError, match="dataset must have __len__ and __getitem__"):
        DataLoader(42)
