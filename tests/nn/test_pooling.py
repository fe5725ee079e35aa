"""Pooling ops and modules against PyTorch, finite differences and the lecture's sizes."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import cnnkit
from cnnkit import jit, nn
from cnnkit.nn import functional as F
from tests.helpers import check_finite_differences, check_op


@st.composite
def pool_configs(draw, nd):
    k = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * nd)))
    padding = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size = tuple(d * (kk - 1) + 1 + draw(st.integers(0, 5)) for kk, d in zip(k, dilation))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size, k=k, stride=stride,
                padding=padding, dilation=dilation, ceil_mode=draw(st.booleans()),
                count_include_pad=draw(st.booleans()), dtype=draw(st.sampled_from([np.float64, np.float32])))


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])   # the backward's two paths
@pytest.mark.parametrize("nd", [1, 2, 3])
@given(data=st.data())
def test_max_pool_matches_torch(nd, compiled, data):
    c = data.draw(pool_configs(nd))
    x = np.random.default_rng(0).permutation(np.prod(c["shape"])).reshape(c["shape"]) / 7.0  # no ties
    cn, th = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1], (TF.max_pool1d, TF.max_pool2d, TF.max_pool3d)[nd - 1]
    args = (c["k"], c["stride"], c["padding"], c["dilation"], c["ceil_mode"])
    before = jit.ENABLED, jit.MIN_BYTES
    jit.ENABLED, jit.MIN_BYTES = compiled and before[0], 0
    jit.available()                                      # loaded, as after a convolution: the forward's loop too
    try:
        check_op(lambda x: cn(x, *args), lambda x: th(x, *args), x, dtype=c["dtype"])
    finally:
        jit.ENABLED, jit.MIN_BYTES = before


@pytest.mark.parametrize("nd", [1, 2, 3])
@given(data=st.data())
def test_avg_pool_matches_torch(nd, data):
    c = data.draw(pool_configs(nd))
    x = np.random.default_rng(0).standard_normal(c["shape"])
    cn, th = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1], (TF.avg_pool1d, TF.avg_pool2d, TF.avg_pool3d)[nd - 1]
    args = (c["k"], c["stride"], c["padding"], c["ceil_mode"], c["count_include_pad"])
    check_op(lambda x: cn(x, *args), lambda x: th(x, *args), x, dtype=c["dtype"])


@pytest.mark.parametrize("size,out", [((10, 9), (3, 4)), ((7, 7), 1), ((6, 8), (6, 8)), ((9, 5), (4, None)), ((5, 5), 7)])
def test_adaptive_avg_pool2d_matches_torch(size, out, rng):
    x = rng.standard_normal((2, 3) + size)
    check_op(lambda x: F.adaptive_avg_pool2d(x, out), lambda x: TF.adaptive_avg_pool2d(x, out), x)
    check_op(lambda x: nn.AdaptiveAvgPool2d(out)(x), lambda x: torch.nn.AdaptiveAvgPool2d(out)(x), x, dtype=np.float32)


def test_global_average_pooling(rng):
    x = rng.standard_normal((2, 3, 5, 4))
    check_op(F.global_avg_pool2d, lambda x: x.mean((2, 3), keepdim=True), x)
    assert nn.GlobalAvgPool2d(flatten=True)(cnnkit.tensor(x)).shape == (2, 3)


def test_pool_finite_differences(rng):
    x = rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) / 10.0
    check_finite_differences(lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), x)
    check_finite_differences(lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), x)
    check_finite_differences(lambda x: F.adaptive_avg_pool2d(x, (3, 4)), x)


def test_modules_match_torch_modules(rng):
    x = rng.standard_normal((2, 3, 9, 9))
    for cn, th in ((nn.MaxPool2d(3, 2), torch.nn.MaxPool2d(3, 2)), (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
                   (nn.AvgPool2d(3, 2, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
                   (nn.MaxPool1d(2), None), (nn.AvgPool3d(2), None)):
        if th is None:
            continue
        check_op(cn, th, x)
    for cn, th in ((nn.MaxPool2d(3, 2), torch.nn.MaxPool2d(3, 2)), (nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
                   (nn.MaxPool1d(2, ceil_mode=True), torch.nn.MaxPool1d(2, ceil_mode=True)),
                   (nn.AdaptiveAvgPool2d((6, 6)), torch.nn.AdaptiveAvgPool2d((6, 6)))):
        assert repr(cn) == repr(th)


def test_lecture_pooling_sizes():
    # 2×2/2 halves; overlapping 3×3/1 gives N−2; AlexNet's 3×3/2 on 55 gives 27.
    assert nn.MaxPool2d(2, 2)(cnnkit.zeros(1, 6, 28, 28)).shape == (1, 6, 14, 14)
    assert nn.MaxPool2d(3, 1)(cnnkit.zeros(1, 2, 9, 9)).shape == (1, 2, 7, 7)
    assert nn.MaxPool2d(3, 2)(cnnkit.zeros(1, 96, 55, 55)).shape == (1, 96, 27, 27)


def test_max_pooling_picks_the_brightest_pixel():
    x = cnnkit.tensor(np.array([[[[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]]], dtype=np.float32))
    np.testing.assert_array_equal(F.max_pool2d(x, 2).data[0, 0], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2).data[0, 0], [[3.25, 5.25], [2, 2]])


@pytest.mark.parametrize("call,match", [
    (lambda: F.max_pool2d(cnnkit.zeros(1, 1, 4, 4), 3, padding=2), r"padding should be at most half of the kernel size"),
    (lambda: F.max_pool2d(cnnkit.zeros(1, 4, 4), 2), r"max_pool2d: expected a 4-D input"),
    (lambda: nn.MaxPool2d(5)(cnnkit.zeros(1, 1, 4, 4)), r"MaxPool2d\(kernel_size=5.*kernel size 5 is larger than the padded input 4"),
    (lambda: nn.AvgPool2d(0), r"kernel_size must be positive, got kernel_size=0"),
])
def test_pool_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("n,k,s", [(2, 3, 2), (2, 4, 3), (3, 4, 3), (3, 4, 2)])
def test_ceil_mode_window_larger_than_the_input_gives_one_output_like_torch(n, k, s, rng):
    x = rng.standard_normal((1, 2, n, n))
    check_op(lambda x: F.max_pool2d(x, k, s, ceil_mode=True), lambda x: TF.max_pool2d(x, k, s, ceil_mode=True), x)
    check_op(lambda x: F.avg_pool2d(x, k, s, ceil_mode=True), lambda x: TF.avg_pool2d(x, k, s, ceil_mode=True), x)
