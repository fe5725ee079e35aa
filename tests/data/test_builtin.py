"""The built-in sets: scikit-learn's digits and scikit-image's LFW faces subset."""
import cv2
import numpy as np
import pytest
from skimage.data import lfw_subset
from sklearn.datasets import load_digits

import cnnkit
from cnnkit.data import ArrayDataset, Splits


@pytest.fixture(scope="module")
def digits32():
    return cnnkit.data.load("digits")


@pytest.fixture(scope="module")
def digits8():
    return cnnkit.data.load("digits", size=8)


def _rows(images, labels):
    return sorted((int(y), np.round(x, 5).tobytes()) for x, y in zip(images, labels))


def test_digits_sizes_and_shapes(digits32, digits8):
    s = digits32
    assert isinstance(s, Splits) and s.name == "digits"
    assert s.classes == [str(i) for i in range(10)]
    assert (len(s.train), len(s.val), len(s.test)) == (1258, 180, 359)  # 70 / 10 / 20 % of 1,797
    assert s.input_size == (1, 32, 32) and s.train.images.shape == (1258, 1, 32, 32)
    assert s.train.images.dtype == np.float32 and s.train.labels.dtype == np.int64
    assert 0.0 <= s.train.images.min() and s.train.images.max() <= 1.0
    assert digits8.input_size == (1, 8, 8)
    x, y = s.train[0]
    assert x.shape == (1, 32, 32) and isinstance(y, int)


def test_digits_are_sklearns_images_partitioned(digits8):
    d = load_digits()
    s = digits8
    ours = _rows(np.concatenate([s.train.images, s.val.images, s.test.images])[:, 0],
                 np.concatenate([s.train.labels, s.val.labels, s.test.labels]))
    assert ours == _rows((d.images / 16.0).astype(np.float32), d.target)


def test_digits_split_is_stratified(digits32):
    counts = np.bincount(load_digits().target)
    for part, frac in ((digits32.test, 0.2), (digits32.val, 0.1)):
        got = part.class_counts()
        assert np.all(np.abs(got - counts * frac) < 1.0), (got, counts * frac)


def test_digits_32_is_bilinear_resize_of_8(digits32, digits8):
    # same seed → same split; OpenCV's bilinear (pixel-centre) upsampling is the reference
    ref = np.stack([cv2.resize(im[0], (32, 32), interpolation=cv2.INTER_LINEAR) for im in digits8.test.images])
    np.testing.assert_allclose(digits32.test.images[:, 0], ref, atol=1e-5)
    np.testing.assert_array_equal(digits32.test.labels, digits8.test.labels)


def test_digits_stats_and_seed(digits32):
    s = digits32
    assert s.mean[0] == pytest.approx(float(s.train.images.astype(np.float64).mean()), rel=1e-6)
    assert s.std[0] == pytest.approx(float(s.train.images.astype(np.float64).std()), rel=1e-6)
    other = cnnkit.data.load("digits", seed=1, size=8)
    again = cnnkit.data.load("digits", seed=1, size=8)
    np.testing.assert_array_equal(other.test.images, again.test.images)
    assert not np.array_equal(other.test.labels, cnnkit.data.load("digits", size=8).test.labels)


def test_digits_fractions(digits32):
    s = cnnkit.data.load("digits", val_fraction=0.0, test_fraction=0.5, size=8)
    assert s.val is None and (len(s.train), len(s.test)) == (898, 899)  # round(1797 / 2) = 899 to test
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \[0, 1\), got 1.5"):
        cnnkit.data.load("digits", val_fraction=1.5)
    with pytest.raises(ValueError, match="test_fraction \\+ val_fraction must be below 1"):
        cnnkit.data.load("digits", val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument mode"):
        cnnkit.data.load("digits", mode="RGB")
    with pytest.raises(ValueError, match="unknown data set 'digitz'"):
        cnnkit.data.load("digitz")


def test_faces():
    raw = lfw_subset()
    s = cnnkit.data.load("faces", size=25)
    assert s.classes == ["face", "non-face"] and s.input_size == (1, 25, 25)
    assert (len(s.train), len(s.val), len(s.test)) == (140, 20, 40)
    for part in (s.train, s.val, s.test):
        c = part.class_counts()
        assert c[0] == c[1]
    labels = np.r_[np.zeros(len(raw) // 2), np.ones(len(raw) - len(raw) // 2)].astype(int)
    ours = _rows(np.concatenate([s.train.images, s.val.images, s.test.images])[:, 0],
                 np.concatenate([s.train.labels, s.val.labels, s.test.labels]))
    assert ours == _rows(raw.astype(np.float32), labels)
    assert cnnkit.data.load("faces").input_size == (1, 32, 32)


def test_array_dataset_validation_and_subset(rng):
    x = rng.random((6, 1, 4, 4)).astype(np.float32)
    ds = ArrayDataset(x, np.array([0, 1, 2, 0, 1, 2]), ["a", "b", "c"])
    sub = ds.subset([4, 1])
    np.testing.assert_array_equal(sub.images, x[[4, 1]])
    assert sub.labels.tolist() == [1, 1] and sub.classes == ["a", "b", "c"] and len(sub) == 2
    with pytest.raises(TypeError, match="images must be floating point.*uint8"):
        ArrayDataset(np.zeros((2, 1, 4, 4), np.uint8), [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"images must have shape \(N, C, H, W\), got shape \(2, 4, 4\)"):
        ArrayDataset(np.zeros((2, 4, 4), np.float32), [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"2 images but labels have shape \(3,\)"):
        ArrayDataset(np.zeros((2, 1, 4, 4), np.float32), [0, 1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="label 5 out of range for 2 classes"):
        ArrayDataset(np.zeros((2, 1, 4, 4), np.float32), [0, 5], ["a", "b"])
    with pytest.raises(IndexError, match="index 6 out of range for 6 images"):
        ds[6]
