"""filter2d (cnnkit's conv2d with fixed weights) against OpenCV, scipy.ndimage and the lecture's numbers."""
import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given
from hypothesis import strategies as st

from cnnkit import filters
from cnnkit.filters import filter2d, gradient_magnitude

from .photos import photos

CV_BORDERS = {"constant": cv2.BORDER_CONSTANT, "reflect_101": cv2.BORDER_REFLECT_101,
              "reflect": cv2.BORDER_REFLECT, "replicate": cv2.BORDER_REPLICATE}
SCIPY_MODES = {"constant": "constant", "reflect_101": "mirror", "reflect": "reflect", "replicate": "nearest",
               "wrap": "wrap"}


def assert_close(out, ref, rtol=1e-4):
    """float32 agreement within ``rtol`` relative to the reference response's largest magnitude."""
    ref = np.asarray(ref)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    scale = max(float(np.abs(ref).max()), 1.0)
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol * scale)


def cv_filter(img, k, border):
    return cv2.filter2D(img, cv2.CV_32F, np.asarray(k, dtype=np.float32), borderType=CV_BORDERS[border])


@pytest.mark.parametrize("photo", ["camera", "coins", "astronaut", "chelsea"])
@pytest.mark.parametrize("border", list(CV_BORDERS))
def test_every_kernel_equals_cv2_filter2D(photo, border):
    img = photos()[photo]
    for name in filters.names():
        out = filter2d(img, name, border=border)
        assert out.dtype == np.float32
        assert_close(out, cv_filter(img, filters.kernel(name), border))


@pytest.mark.parametrize("photo", ["camera", "astronaut"])
def test_every_kernel_wrap_border_equals_scipy(photo):
    # cv2.filter2D does not support BORDER_WRAP; scipy.ndimage's 'wrap' is the same periodic rule
    img = photos()[photo]
    for name in filters.names():
        k = filters.kernel(name)
        kk = k[..., None] if img.ndim == 3 else k   # filter channels independently
        ref = ndi.correlate(img.astype(np.float64), kk, mode="wrap")
        assert_close(filter2d(img, name, border="wrap"), ref)


def test_default_border_is_reflect_101():
    img = photos()["coins"]
    assert_close(filter2d(img, "laplacian_8"), cv2.filter2D(img, cv2.CV_32F, filters.kernel("laplacian_8")))


@pytest.mark.parametrize("photo", ["camera", "chelsea"])
def test_sobel_equals_cv2_sobel(photo):
    img = photos()[photo]
    assert_close(filter2d(img, "sobel_x"), cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3))
    assert_close(filter2d(img, "sobel_y"), cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3))
    assert_close(filter2d(img, "scharr_x"), cv2.Scharr(img, cv2.CV_32F, 1, 0))
    assert_close(filter2d(img, "scharr_y", border="replicate"),
                 cv2.Scharr(img, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REPLICATE))


def test_blurs_and_unsharp_equal_opencv_functions():
    img = photos()["camera"]
    assert_close(filter2d(img, "box_blur"), cv2.blur(img.astype(np.float32), (3, 3)))
    assert_close(filter2d(img, "gaussian_5x5"), cv2.GaussianBlur(img.astype(np.float32), (5, 5), 0))
    assert_close(filter2d(img, filters.gaussian(7, 1.5)), cv2.GaussianBlur(img.astype(np.float32), (7, 7), 1.5))
    # unsharp masking, amount 1: image + (image − blur)
    blur = cv2.GaussianBlur(img.astype(np.float32), (5, 5), 0)
    assert_close(filter2d(img, "unsharp_5x5"), 2 * img.astype(np.float32) - blur)
    assert_close(filter2d(img, "laplacian_4"), -cv2.Laplacian(img, cv2.CV_32F, ksize=1))


def test_gradient_magnitude_equals_cv2():
    img = photos()["astronaut"]
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    assert_close(gradient_magnitude(img), cv2.magnitude(gx, gy))


# ---------------------------------------------------------------- convolution vs correlation
@pytest.mark.parametrize("border", list(SCIPY_MODES))
@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (2, 2), (4, 3), (3, 6), (1, 5)])
def test_convolve_equals_scipy_convolve(border, shape):
    img = photos()["coins"]
    k = np.random.default_rng(sum(shape)).standard_normal(shape)
    ref = ndi.convolve(img.astype(np.float64), k, mode=SCIPY_MODES[border], cval=0.0)
    assert_close(filter2d(img, k, border=border, correlate=False), ref)
    ref = ndi.correlate(img.astype(np.float64), k, mode=SCIPY_MODES[border], cval=0.0)
    assert_close(filter2d(img, k, border=border), ref)


@pytest.mark.parametrize("shape", [(3, 3), (2, 2), (4, 5), (6, 3)])
def test_convolve_is_flipped_correlation_in_opencv(shape):
    # OpenCV's recipe for true convolution: flip the kernel, anchor at (kw − 1 − kw//2, kh − 1 − kh//2)
    img = photos()["chelsea"]
    k = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    kh, kw = shape
    ref = cv2.filter2D(img, cv2.CV_32F, cv2.flip(k, -1), anchor=(kw - 1 - kw // 2, kh - 1 - kh // 2))
    assert_close(filter2d(img, k, correlate=False), ref)


@pytest.mark.parametrize("border", list(CV_BORDERS))
@pytest.mark.parametrize("shape", [(2, 2), (4, 4), (2, 5), (6, 3), (1, 4), (8, 8)])
def test_even_kernels_anchor_like_opencv(border, shape):
    img = photos()["camera"]
    k = np.random.default_rng(shape[0] * 10 + shape[1]).standard_normal(shape).astype(np.float32)
    assert_close(filter2d(img, k, border=border), cv_filter(img, k, border))


@given(h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 6), kw=st.integers(1, 6),
       c=st.sampled_from([0, 1, 3]), border=st.sampled_from(list(SCIPY_MODES)), correlate=st.booleans(),
       seed=st.integers(0, 2**16))
def test_random_configs_equal_scipy_float64(h, w, kh, kw, c, border, correlate, seed):
    rng = np.random.default_rng(seed)
    img = rng.standard_normal((h, w) if c == 0 else (h, w, c))
    k = rng.standard_normal((kh, kw))
    fn = ndi.correlate if correlate else ndi.convolve
    kk = k if c == 0 else k[..., None]
    if border == "reflect_101" and (h == 1 or w == 1):
        return  # a 1-pixel axis has nothing to mirror; numpy repeats the pixel, scipy's 'mirror' too (checked below)
    ref = fn(img, kk, mode=SCIPY_MODES[border], cval=0.0)
    out = filter2d(img, k, border=border, correlate=correlate)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


def test_one_pixel_wide_image_reflect_101():
    img = np.arange(5.0)[:, None]   # (5, 1)
    k = np.arange(9.0).reshape(3, 3)
    ref = ndi.correlate(img, k, mode="mirror")
    np.testing.assert_allclose(filter2d(img, k), ref)
    np.testing.assert_allclose(filter2d(img, k), cv2.filter2D(img, -1, k))


# ---------------------------------------------------------------- the lecture's worked examples
STEP = np.array([[10, 10, 10, 0, 0, 0]] * 6)           # bright left, dark right


def test_lecture_vertical_edge_step():
    out = filter2d(STEP, "vertical_edge", mode="valid")
    np.testing.assert_array_equal(out, np.array([[0, 30, 30, 0]] * 4))
    out = filter2d(STEP[:, ::-1], "vertical_edge", mode="valid")   # dark left, bright right
    np.testing.assert_array_equal(out, np.array([[0, -30, -30, 0]] * 4))


def test_lecture_sobel_step():
    # The slide prints 6 rows of [0, 40, 40, 0]; a 3×3 filter on a 6×6 image gives 4×4 in valid mode.
    out = filter2d(STEP, "sobel_vertical", mode="valid")
    np.testing.assert_array_equal(out, np.array([[0, 40, 40, 0]] * 4))
    np.testing.assert_array_equal(filter2d(STEP[:, ::-1], "sobel_vertical", mode="valid"),
                                  np.array([[0, -40, -40, 0]] * 4))
    # OpenCV's sobel_x has the opposite sign
    np.testing.assert_array_equal(filter2d(STEP, "sobel_x", mode="valid"), np.array([[0, -40, -40, 0]] * 4))


def test_lecture_step_as_colour_and_hw1():
    rgb = np.repeat(STEP[..., None], 3, axis=2).astype(np.uint8)      # (6, 6, 3)
    out = filter2d(rgb, "vertical_edge", mode="valid")
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[..., 1], np.array([[0, 30, 30, 0]] * 4))
    assert filter2d(rgb[..., :1], "vertical_edge", mode="valid").shape == (4, 4, 1)


def test_same_mode_constant_border_is_zero_padding():
    # lecture: "same padding" P = (F − 1)/2 with zeros; the left column then sees the zero border
    out = filter2d(STEP, "vertical_edge", border="constant")
    np.testing.assert_array_equal(out[1:-1], np.array([[-30, 0, 30, 30, 0, 0]] * 4))


def test_valid_mode_shapes():
    img = photos()["chelsea"]                                         # (50, 61, 3)
    assert filter2d(img, "gaussian_5x5", mode="valid").shape == (46, 57, 3)
    assert filter2d(img, np.ones((2, 4)), mode="valid").shape == (49, 58, 3)
    ref = cv_filter(img, filters.kernel("emboss"), "reflect_101")[1:-1, 1:-1]
    assert_close(filter2d(img, "emboss", mode="valid"), ref)


def test_dtypes():
    img = photos()["camera"]
    assert filter2d(img, "identity").dtype == np.float32
    np.testing.assert_array_equal(filter2d(img, "identity"), img)
    assert filter2d(img.astype(np.float64), "identity").dtype == np.float64
    assert filter2d(img.astype(np.int16), "identity").dtype == np.float32
    assert filter2d(img > 128, "identity").dtype == np.float32


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(border="mirror"), ValueError, r"filter2d: border must be one of constant, reflect_101, reflect, "
                                        r"replicate, wrap; got border='mirror'"),
    (dict(mode="full"), ValueError, r"filter2d: mode must be 'same' or 'valid', got mode='full'"),
    (dict(kernel="sobel"), ValueError, r"unknown filter 'sobel'"),
    (dict(kernel=[1, 2, 3]), ValueError, r"kernel must be a non-empty 2-D array, got shape \(3,\)"),
    (dict(kernel=[[1, 2], [3]]), TypeError, r"kernel must be a bank name or a 2-D array of numbers"),
    (dict(kernel=[[1, float("nan")]]), ValueError, r"kernel has a non-finite value"),
    (dict(image=np.zeros((4, 4, 3, 1))), ValueError, r"image must be \(H, W\) or \(H, W, C\) and non-empty, "
                                                     r"got shape \(4, 4, 3, 1\)"),
    (dict(image=np.array([["a"]])), TypeError, r"image must hold numbers, got dtype <U1"),
    (dict(image=np.zeros((2, 5)), mode="valid"), ValueError, r"kernel 3×3 does not fit in the 2×5 image "
                                                             r"in mode='valid'"),
])
def test_errors(kwargs, exc, match):
    args = dict(image=np.zeros((5, 5)), kernel="sobel_x")
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        filter2d(args.pop("image"), args.pop("kernel"), **args)


def test_tensor_image_rejected_with_hint():
    import cnnkit
    with pytest.raises(TypeError, match=r"got a cnnkit Tensor; pass tensor.numpy\(\) in HWC layout"):
        filter2d(cnnkit.zeros(3, 5, 5), "identity")


@pytest.mark.parametrize("border", ["reflect_101", "constant"])
def test_large_kernels_equal_cv2(border):
    # OpenCV switches to a DFT-based filter for large kernels; the results must still agree
    img = photos()["camera"]
    k = np.random.default_rng(5).standard_normal((13, 12)).astype(np.float32)
    assert_close(filter2d(img, k, border=border), cv_filter(img, k, border))
    g = filters.gaussian(21, 3.0)
    assert_close(filter2d(img, g, border=border), cv_filter(img, g, border))
