"""Learning a filter from data: a single Conv2d trained on Sobel responses recovers the Sobel kernel."""
import time

import cv2
import numpy as np
import pytest
import skimage.data

import cnnkit
from cnnkit.filters import learn

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)   # OpenCV's, typed in


@pytest.fixture(scope="module")
def camera():
    return skimage.data.camera()[100:228, 200:328].astype(np.float32) / 255     # (128, 128) crop, 0–1


@pytest.mark.slow
def test_learned_kernel_is_sobel(camera):
    target = cv2.Sobel(camera, cv2.CV_32F, 1, 0, ksize=3)                       # OpenCV computes the targets
    t0 = time.perf_counter()
    res = learn(camera, target, kernel_size=3, seed=0)
    seconds = time.perf_counter() - t0
    print(f"\nlearn: 3×3 Sobel from a 128×128 camera crop in {seconds:.2f} s ({len(res.losses)} steps), "
          f"max |w − sobel| = {np.abs(res.kernel - SOBEL_X).max():.2e}")
    assert res.kernel.shape == (3, 3) and res.bias is None
    np.testing.assert_allclose(res.kernel, SOBEL_X, atol=0.02)
    assert seconds < 30
    assert res.losses[0] > 1e3 * res.losses[-1]        # it started far away: a random start, not Sobel
    np.testing.assert_array_equal(res.model.weight.data[0, 0], res.kernel.astype(np.float32))


def test_initial_kernel_is_random_and_seeded(camera):
    target = cv2.Sobel(camera, cv2.CV_32F, 1, 0, ksize=3)
    a = learn(camera, target, steps=1, lr=1e-9, seed=3)
    b = learn(camera, target, steps=1, lr=1e-9, seed=3)
    c = learn(camera, target, steps=1, lr=1e-9, seed=4)
    np.testing.assert_array_equal(a.kernel, b.kernel)
    assert np.abs(a.kernel - c.kernel).max() > 1e-3
    assert np.abs(a.kernel).max() <= 1 / 3 + 1e-6              # Conv2d's U(−1/√9, 1/√9)
    assert np.abs(a.kernel - SOBEL_X).max() > 0.5


@pytest.mark.slow
def test_valid_targets_and_bias(camera):
    # 'valid' targets (no border) from OpenCV, plus a constant offset the bias must absorb
    crop = camera[:64, :64]
    target = cv2.filter2D(crop, cv2.CV_32F, np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32))[1:-1, 1:-1]
    res = learn(crop[None], (target + 0.25)[None], kernel_size=3, bias=True, steps=3000, seed=1)
    np.testing.assert_allclose(res.kernel, [[0, -1, 0], [-1, 5, -1], [0, -1, 0]], atol=0.02)
    assert abs(res.bias - 0.25) < 0.02


@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel_size=4), r"learn: kernel_size must be a positive odd int, got kernel_size=4"),
    (dict(steps=0), r"learn: steps must be a positive int, got steps=0"),
    (dict(lr=-1.0), r"learn: lr must be a positive number, got lr=-1.0"),
    (dict(border="mirror"), r"learn: border must be one of constant, reflect_101"),
    (dict(targets=np.zeros((10, 10))), r"targets of size 10×10 match neither the inputs' 16×16 \('same'\) "
                                       r"nor 14×14 \('valid' with kernel_size=3\)"),
    (dict(targets=np.zeros((2, 16, 16))), r"learn: 1 input image\(s\) but 2 target\(s\)"),
    (dict(inputs=np.zeros(16)), r"inputs must be \(H, W\) or \(N, H, W\) greyscale, got shape \(16,\)"),
    (dict(inputs=np.full((16, 16), np.nan)), r"inputs has NaN or infinite values"),
])
def test_learn_errors(kwargs, match):
    args = dict(inputs=np.zeros((16, 16)), targets=np.zeros((16, 16)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        learn(args.pop("inputs"), args.pop("targets"), **args)


@pytest.mark.slow
def test_example_script_prints_learned_and_hand_made():
    import os
    import re
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, os.path.join(root, "examples", "learn_sobel.py"), "--size", "96"],
                       capture_output=True, text=True, cwd=root, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "learned kernel:" in p.stdout and "hand-made sobel_x:" in p.stdout
    assert float(re.search(r"largest difference per weight: (\S+)", p.stdout).group(1)) < 0.02
