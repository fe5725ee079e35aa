"""Transforms against independent references: OpenCV and PyTorch resizing, NumPy padding/flipping."""
import cv2
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cnnkit.data import Compose, Normalize, RandomCrop, RandomHorizontalFlip, Resize, ToTensor


def test_normalize(rng):
    x = rng.random((3, 5, 6)).astype(np.float32)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    ref = torch.tensor(x).sub(torch.tensor(mean)[:, None, None]).div(torch.tensor(std)[:, None, None]).numpy()
    np.testing.assert_allclose(Normalize(mean, std)(x), ref, rtol=1e-6, atol=1e-6)
    batch = np.stack([x, x[::-1]])
    np.testing.assert_allclose(Normalize(mean, std)(batch)[1], Normalize(mean, std)(x[::-1]), rtol=1e-6)
    with pytest.raises(ValueError, match="image has 3 channels, but mean/std have 2 values"):
        Normalize((0.1, 0.2), (1, 1))(x)
    with pytest.raises(ValueError, match=r"std must be positive, got \(1.0, 0.0\)"):
        Normalize((0, 0), (1, 0))


@given(h=st.integers(2, 12), w=st.integers(2, 12), oh=st.integers(12, 40), ow=st.integers(12, 40))
def test_resize_up_matches_opencv(h, w, oh, ow):
    x = np.random.default_rng(h * 100 + w).random((2, h, w)).astype(np.float32)
    got = Resize((oh, ow))(x)
    ref = np.stack([cv2.resize(c, (ow, oh), interpolation=cv2.INTER_LINEAR) for c in x])
    np.testing.assert_allclose(got, ref, atol=1e-5)


@given(h=st.integers(20, 40), w=st.integers(20, 40), oh=st.integers(4, 19), ow=st.integers(4, 19))
def test_resize_down_matches_torch_antialiased_bilinear(h, w, oh, ow):
    x = np.random.default_rng(h * 100 + w).random((2, h, w)).astype(np.float32)
    got = Resize((oh, ow))(x)
    ref = torch.nn.functional.interpolate(torch.tensor(x)[None], size=(oh, ow), mode="bilinear",
                                          align_corners=False, antialias=True)[0].numpy()
    np.testing.assert_allclose(got, ref, atol=2e-3)


@given(h=st.integers(1, 30), w=st.integers(1, 30), oh=st.integers(1, 30), ow=st.integers(1, 30))
def test_resize_matches_pillow_bilinear(h, w, oh, ow):
    x = np.random.default_rng(h * 100 + w).random((h, w)).astype(np.float32)
    ref = np.asarray(Image.fromarray(x).resize((ow, oh), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(Resize((oh, ow))(x[None])[0], ref, atol=1e-5)


def test_resize_batch_and_errors(rng):
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(Resize(16)(x)[2], Resize(16)(x[2]))
    with pytest.raises(ValueError, match=r"size must be positive, got \(0, 4\)"):
        Resize((0, 4))
    with pytest.raises(ValueError, match=r"shape \(C, H, W\) or \(N, C, H, W\), got shape \(8, 8\)"):
        Resize(4)(x[0, 0])


def test_random_crop_is_a_window_of_the_padded_image(rng):
    x = rng.random((3, 6, 6)).astype(np.float32) + 1  # no zeros inside, so padding is recognisable
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    seen = set()
    g = np.random.default_rng(0)
    for _ in range(200):
        out = RandomCrop(6, padding=2)(x, rng=g)
        assert out.shape == (3, 6, 6) and out.dtype == np.float32
        hits = [(i, j) for i in range(5) for j in range(5) if np.array_equal(padded[:, i:i + 6, j:j + 6], out)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) == 25  # every offset 0..4 x 0..4 occurs
    a = RandomCrop(4, generator=np.random.default_rng(5))
    b = RandomCrop(4, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(a(x), b(x))
    with pytest.raises(ValueError, match=r"crop size \(9, 9\) is larger than the padded image \(6, 6\)"):
        RandomCrop(9)(x)


def test_random_horizontal_flip(rng):
    x = rng.random((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(x), x[:, :, ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x), x)
    g = np.random.default_rng(1)
    flips = sum(np.array_equal(RandomHorizontalFlip()(x, rng=g), x[:, :, ::-1]) for _ in range(400))
    assert 160 < flips < 240
    with pytest.raises(ValueError, match="p must be in"):
        RandomHorizontalFlip(1.5)


def test_to_tensor(rng):
    hwc = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = ToTensor()(hwc)
    assert out.shape == (3, 5, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out, torch.tensor(hwc).permute(2, 0, 1).float().div(255).numpy(), atol=1e-7)
    np.testing.assert_array_equal(ToTensor()(Image.fromarray(hwc)), out)
    assert ToTensor()(hwc[:, :, 0]).shape == (1, 5, 7)
    with pytest.raises(TypeError, match="expected uint8 or float pixels"):
        ToTensor()(hwc.astype(np.int32))


def test_compose_passes_rng_and_is_reproducible(rng):
    x = rng.random((1, 8, 8)).astype(np.float32)
    t = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip(), Normalize(0.5, 0.25)])
    a = [t(x, rng=np.random.default_rng(3)) for _ in range(3)]
    np.testing.assert_array_equal(a[0], a[1])
    assert t.batched and not Compose([Normalize(0, 1), lambda im: im]).batched
    assert "RandomCrop(size=(8, 8), padding=2)" in repr(t)


def test_batch_versions_of_random_transforms(rng):
    x = rng.random((64, 2, 6, 6)).astype(np.float32) + 1
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    out = RandomCrop(6, padding=2).apply_batch(x, rng=np.random.default_rng(0))
    assert out.shape == (64, 2, 6, 6)
    offsets = set()
    for k in range(64):  # each image is some window of its own padded image
        hits = [(i, j) for i in range(5) for j in range(5) if np.array_equal(padded[k, :, i:i + 6, j:j + 6], out[k])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 10  # drawn per image, not once per batch
    np.testing.assert_array_equal(out, RandomCrop(6, padding=2).apply_batch(x, rng=np.random.default_rng(0)))
    flipped = RandomHorizontalFlip().apply_batch(x, rng=np.random.default_rng(0))
    same = [np.array_equal(flipped[k], x[k]) for k in range(64)]
    mirrored = [np.array_equal(flipped[k], x[k, :, :, ::-1]) for k in range(64)]
    assert all(a != b for a, b in zip(same, mirrored)) and 16 < sum(mirrored) < 48
    t = Compose([RandomCrop(4), Normalize((0.5, 0.5), (2, 2))])
    assert t.apply_batch(x, rng=np.random.default_rng(1)).shape == (64, 2, 4, 4)
