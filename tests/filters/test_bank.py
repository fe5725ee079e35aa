"""The kernel bank against OpenCV's own kernels and the lecture's matrices."""
import re

import cv2
import numpy as np
import pytest

from cnnkit import filters
from cnnkit.filters import bank

LECTURE = {  # the lecture's "Common Filters in CV" table and edge-detection slides, typed in from the text
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box_blur": np.ones((3, 3)) / 9,
    "edge_cross": [[1, 0, -1], [0, 0, 0], [-1, 0, 1]],
    "gaussian_3x3": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
    "laplacian_4": [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
    "laplacian_8": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "gaussian_5x5": np.array([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6], [4, 16, 24, 16, 4],
                              [1, 4, 6, 4, 1]]) / 256,
    "unsharp_5x5": np.array([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, -476, 24, 6], [4, 16, 24, 16, 4],
                             [1, 4, 6, 4, 1]]) / -256,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "vertical_edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "sobel_vertical": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
}

ISSUE_NAMES = ["identity", "box_blur", "gaussian_3x3", "gaussian_5x5", "edge_cross", "laplacian_4", "laplacian_8",
               "sharpen", "unsharp_5x5", "vertical_edge", "horizontal_edge", "sobel_vertical", "sobel_x", "sobel_y",
               "prewitt_x", "prewitt_y", "scharr_x", "scharr_y", "emboss"]


def test_bank_has_exactly_the_issue_names():
    assert filters.names() == ISSUE_NAMES


@pytest.mark.parametrize("name", sorted(LECTURE))
def test_lecture_matrices(name):
    np.testing.assert_array_equal(filters.kernel(name), np.asarray(LECTURE[name], dtype=np.float64))


def _deriv(dx, dy, ksize):
    kx, ky = cv2.getDerivKernels(dx, dy, ksize)
    return np.outer(ky, kx)


def test_derivative_kernels_are_opencvs():
    np.testing.assert_array_equal(filters.kernel("sobel_x"), _deriv(1, 0, 3))
    np.testing.assert_array_equal(filters.kernel("sobel_y"), _deriv(0, 1, 3))
    np.testing.assert_array_equal(filters.kernel("scharr_x"), _deriv(1, 0, cv2.FILTER_SCHARR))
    np.testing.assert_array_equal(filters.kernel("scharr_y"), _deriv(0, 1, cv2.FILTER_SCHARR))
    np.testing.assert_array_equal(filters.kernel("sobel_vertical"), -_deriv(1, 0, 3))


def test_related_kernels():
    k = filters.kernel
    np.testing.assert_array_equal(k("horizontal_edge"), k("vertical_edge").T)
    np.testing.assert_array_equal(k("prewitt_y"), k("prewitt_x").T)
    np.testing.assert_array_equal(k("prewitt_x"), -k("vertical_edge"))
    np.testing.assert_array_equal(k("sharpen"), k("identity") + k("laplacian_4"))
    five_id = np.zeros((5, 5))
    five_id[2, 2] = 1
    np.testing.assert_allclose(k("unsharp_5x5"), 2 * five_id - k("gaussian_5x5"), atol=1e-15)
    # OpenCV's Laplacian with ksize=1 is the 4-neighbour stencil with the opposite sign
    np.testing.assert_array_equal(k("laplacian_4"), -np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]))


@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_docstring_shows_the_matrix(name):
    fn = getattr(bank, name)
    doc = fn.__doc__
    assert doc and len(doc.split("\n")[0]) > 10
    numbers = [float(v) for v in re.findall(r"-?\d+", doc.split("::", 1)[1])]
    m = re.search(r"(-?)1/(\d+) ×", doc)
    scale = (-1 if m and m.group(1) else 1) / (int(m.group(2)) if m else 1)
    values = numbers[2:] if m else numbers  # drop the "1/d" prefix numbers
    np.testing.assert_allclose(np.array(values) * scale, fn().ravel())


def test_kernel_returns_fresh_copies():
    a = filters.kernel("sobel_x")
    a[0, 0] = 99
    assert filters.kernel("sobel_x")[0, 0] == -1


def test_unknown_kernel_name():
    with pytest.raises(ValueError, match=r"unknown filter 'sobel'; known filters: identity, box_blur"):
        filters.kernel("sobel")
    with pytest.raises(TypeError, match="name must be a string"):
        filters.kernel(3)


# ---------------------------------------------------------------- gaussian vs cv2.getGaussianKernel
def test_gaussian_5_1p1_equals_opencv():
    g = cv2.getGaussianKernel(5, 1.1)
    np.testing.assert_allclose(filters.gaussian(5, 1.1), g @ g.T, rtol=1e-12)
    np.testing.assert_allclose(filters.gaussian(5, 1.1, ndim=1), g.ravel(), rtol=1e-12)


@pytest.mark.parametrize("size", range(1, 22, 2))
def test_gaussian_sigma_from_size_equals_opencv(size):
    g = cv2.getGaussianKernel(size, 0).ravel()
    np.testing.assert_allclose(filters.gaussian(size, ndim=1), g, rtol=1e-12)
    np.testing.assert_allclose(filters.gaussian(size, -1.0, ndim=1), cv2.getGaussianKernel(size, -1).ravel(),
                               rtol=1e-12)


@pytest.mark.parametrize("size,sigma", [(3, 0.5), (7, 2.0), (9, 1.0), (11, 3.3), (5, 0.8), (21, 5.0)])
def test_gaussian_given_sigma_equals_opencv(size, sigma):
    g = cv2.getGaussianKernel(size, sigma)
    np.testing.assert_allclose(filters.gaussian(size, sigma), g @ g.T, rtol=1e-12)


def test_gaussian_small_sizes_are_the_lecture_kernels():
    np.testing.assert_array_equal(filters.gaussian(3), filters.kernel("gaussian_3x3"))
    np.testing.assert_array_equal(filters.gaussian(5), filters.kernel("gaussian_5x5"))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(size=0), ValueError, r"gaussian: size must be a positive odd int, got size=0"),
    (dict(size=4), ValueError, r"size=4 \(OpenCV's even-size kernels set both middle taps"),
    (dict(size=2.5), ValueError, r"size=2.5"),
    (dict(size=3, sigma="wide"), TypeError, r"sigma must be a number or None, got sigma='wide'"),
    (dict(size=3, sigma=float("nan")), ValueError, r"sigma must be finite"),
    (dict(size=3, ndim=3), ValueError, r"ndim must be 1 or 2, got ndim=3"),
])
def test_gaussian_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        filters.gaussian(**kwargs)


# ---------------------------------------------------------------- custom kernel strings
def test_parse_kernel():
    np.testing.assert_array_equal(filters.parse_kernel("1,0,-1;2,0,-2;1,0,-1"), filters.kernel("sobel_vertical"))
    np.testing.assert_array_equal(filters.parse_kernel(" 1/9 1/9 1/9 ; 1/9,1/9,1/9;1/9 1/9 1/9; "),
                                  np.full((3, 3), 1 / 9))
    np.testing.assert_array_equal(filters.parse_kernel("0.5,-2.5e-1"), [[0.5, -0.25]])


@pytest.mark.parametrize("text,match", [
    ("", r"kernel string is empty"),
    ("1,0,-1;2,zero,-2", r"'zero' in row 2 is not a number"),
    ("1,0,-1;2,0", r"is ragged: rows have 3, 2 values"),
    ("1;;2", r"row 2 is empty"),
    ("1/0", r"'1/0' in row 1 is not a number"),
    ("inf,1", r"'inf' in row 1 is not a number"),
])
def test_parse_kernel_errors(text, match):
    with pytest.raises(ValueError, match=match):
        filters.parse_kernel(text)


def test_describe_and_format():
    summary, matrix = filters.describe("unsharp_5x5")
    assert summary.startswith("Unsharp masking 5×5")
    assert matrix.splitlines()[0] == "-1/256 × [1,  4,    6,  4, 1]"
    assert matrix.splitlines()[2].strip() == "[6, 24, -476, 24, 6]"
