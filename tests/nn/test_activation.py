"""Activations (ops and modules) against PyTorch, finite differences and the lecture's softmax example."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import cnnkit
import cnnkit.nn.functional as F
from cnnkit import jit, nn
from tests.helpers import check_finite_differences, check_op

DTYPES = [np.float64, np.float32]
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)

ELEMENTWISE = [
    ("relu", F.relu, TF.relu),
    ("leaky_relu", F.leaky_relu, TF.leaky_relu),
    ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
]


@pytest.mark.parametrize("name,cn,th", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 10.0]))
def test_elementwise_matches_torch(name, cn, th, dtype, shape, seed, scale):
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    check_op(cn, th, x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=st.integers(0, 2**16), data=st.data())
def test_softmax_and_log_softmax_match_torch(dtype, shape, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = np.random.default_rng(seed).standard_normal(shape) * 5
    check_op(lambda t: F.softmax(t, dim), lambda t: TF.softmax(t, dim), x, dtype=dtype)
    check_op(lambda t: F.log_softmax(t, dim), lambda t: TF.log_softmax(t, dim), x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(shape=shapes, seed=st.integers(0, 2**16), base=st.sampled_from([2, 10, 0.5, math.e]), data=st.data())
def test_softmax_base_is_softmax_of_scaled_logits(dtype, shape, seed, base, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = np.random.default_rng(seed).standard_normal(shape)
    check_op(lambda t: F.softmax(t, dim, base=base), lambda t: TF.softmax(t * math.log(base), dim), x, dtype=dtype)


def test_lecture_softmax_example_uses_base_2():
    # Lecture, "A Complete CNN Example", step 6: logits [4, -1] -> [2^4, 2^-1] / (2^4 + 2^-1) = [.97, .03]
    out = F.softmax(cnnkit.tensor([4.0, -1.0]), dim=0, base=2)
    np.testing.assert_allclose(out.data, [16 / 16.5, 0.5 / 16.5], rtol=1e-6)
    np.testing.assert_allclose(np.round(out.data, 2), [0.97, 0.03])
    mod = nn.Softmax(dim=1, base=2)(cnnkit.tensor([[4.0, -1.0]]))
    np.testing.assert_allclose(np.round(mod.data, 2), [[0.97, 0.03]])
    # with base e the same logits give 0.993, not the lecture's number
    assert round(float(F.softmax(cnnkit.tensor([4.0, -1.0]), dim=0).data[0]), 3) == 0.993


def test_softmax_of_0d_and_empty_like_torch():
    check_op(lambda t: F.softmax(t, 0), lambda t: TF.softmax(t, 0), np.array(3.0))
    check_op(lambda t: F.log_softmax(t, -1), lambda t: TF.log_softmax(t, -1), np.array(3.0))
    for d in (0, 1):
        check_op(lambda t: F.softmax(t, d), lambda t: TF.softmax(t, d), np.zeros((0, 3)))
        check_op(lambda t: F.log_softmax(t, d), lambda t: TF.log_softmax(t, d), np.zeros((0, 3)))


def test_finite_differences_of_each_activation(rng):
    x = rng.standard_normal((3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from relu's kink
    for fn in (F.relu, lambda t: F.leaky_relu(t, 0.3), F.sigmoid, F.tanh, lambda t: F.softmax(t, 1),
               lambda t: F.softmax(t, 0, base=2), lambda t: F.log_softmax(t, 1), lambda t: F.log_softmax(t, 0)):
        check_finite_differences(fn, x)


def test_large_logits_are_stable_without_warnings():
    x = cnnkit.tensor([[1000.0, -1000.0, 0.0], [-1e4, -1e4, -1e4]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = F.softmax(x, 1)
        ls = F.log_softmax(x, 1)
        sg = F.sigmoid(x)
        (s.sum() + ls.sum() + sg.sum()).backward()
    assert np.all(np.isfinite(s.data)) and np.all(np.isfinite(ls.data)) and np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(s.data[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(sg.data[0], [1.0, 0.0, 0.5])
    assert s.dtype == np.float32 and ls.dtype == np.float32 and sg.dtype == np.float32


def test_relu_gradient_at_zero_and_nan_like_torch():
    check_op(F.relu, TF.relu, np.array([-1.0, 0.0, 2.0]))
    check_op(lambda t: F.leaky_relu(t, 0.1), lambda t: TF.leaky_relu(t, 0.1), np.array([-1.0, 0.0, 2.0]))
    assert np.isnan(F.relu(cnnkit.tensor([np.nan])).data[0])


def test_implicit_softmax_dim_warns_like_torch():
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        out = F.softmax(cnnkit.tensor(np.zeros((2, 4))))
    np.testing.assert_allclose(out.data, 0.25)  # dim 1 for 2-d input, as torch


def test_activation_errors():
    with pytest.raises(IndexError, match=r"softmax: Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        F.softmax(cnnkit.zeros(2, 3), 2)
    with pytest.raises(ValueError, match=r"softmax: base must be a positive finite number, got base=0"):
        F.softmax(cnnkit.zeros(2, 3), 1, base=0)
    with pytest.raises(ValueError, match=r"base=-2"):
        F.softmax(cnnkit.zeros(2, 3), 1, base=-2)
    with pytest.raises(TypeError, match=r"relu: input must be a floating-point tensor, got dtype int64"):
        F.relu(cnnkit.tensor([1, 2]))
    with pytest.raises(TypeError, match=r"sigmoid: input must be a cnnkit Tensor, got ndarray"):
        F.sigmoid(np.zeros(3))
    with pytest.raises(TypeError, match=r"log_softmax: dim must be an int, got 1.5"):
        F.log_softmax(cnnkit.zeros(2, 3), 1.5)


MODULES = [
    (lambda: nn.ReLU(), lambda: torch.nn.ReLU()),
    (lambda: nn.LeakyReLU(), lambda: torch.nn.LeakyReLU()),
    (lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    (lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
    (lambda: nn.Tanh(), lambda: torch.nn.Tanh()),
    (lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    (lambda: nn.Softmax(dim=-1), lambda: torch.nn.Softmax(dim=-1)),
    (lambda: nn.LogSoftmax(dim=1), lambda: torch.nn.LogSoftmax(dim=1)),
]


@pytest.mark.parametrize("make_cn,make_th", MODULES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_modules_match_torch(make_cn, make_th, dtype, rng):
    cn, th = make_cn(), make_th()
    assert repr(cn) == repr(th)
    assert list(cn.state_dict()) == list(th.state_dict()) == []
    check_op(cn, th, rng.standard_normal((4, 3, 2)), dtype=dtype)


def test_activation_module_reprs():
    assert repr(nn.Softmax(dim=0, base=2)) == "Softmax(dim=0, base=2)"
    assert repr(nn.ReLU(inplace=True)) == repr(torch.nn.ReLU(inplace=True))
    assert repr(nn.LeakyReLU(0.1, inplace=True)) == repr(torch.nn.LeakyReLU(0.1, inplace=True))


def test_relu_inplace_overwrites_the_input_without_a_graph_as_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    cx, tx = cnnkit.tensor(x.copy()), torch.tensor(x.copy())
    with cnnkit.no_grad():
        out = F.relu(cx, inplace=True)
    tout = torch.nn.functional.relu(tx, inplace=True)
    assert out is cx and tout is tx
    np.testing.assert_array_equal(cx.data, tx.numpy())
    m = nn.ReLU(inplace=True)
    cx2 = cnnkit.tensor(x.copy())
    with cnnkit.no_grad():
        assert m(cx2) is cx2
    np.testing.assert_array_equal(cx2.data, np.maximum(x, 0))


def test_relu_inplace_with_a_graph_keeps_the_input_and_the_gradient():
    x = np.random.default_rng(1).standard_normal((3, 7)).astype(np.float32)
    cx = cnnkit.tensor(x.copy(), requires_grad=True)
    tx = torch.tensor(x.copy(), requires_grad=True)
    out = F.relu(cx * 2, inplace=True)
    tout = torch.nn.functional.relu(tx * 2, inplace=True)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_array_equal(cx.data, x)                # the leaf is untouched
    np.testing.assert_allclose(out.data, tout.detach().numpy())
    np.testing.assert_allclose(cx.grad.data, tx.grad.numpy())


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
def test_relu_paths_match_torch(compiled, rng, monkeypatch):
    # the compiled loops (large contiguous inputs, forced here, once the kernels are loaded) and NumPy's; zeros of
    # both signs, NaN, infinities
    monkeypatch.setattr(jit, "ENABLED", compiled and jit.ENABLED)
    monkeypatch.setattr(jit, "MIN_BYTES", 0)
    assert not jit.loaded() or compiled
    if compiled and jit.available():                     # loads them, as a convolution would
        assert jit.loaded()
    x = rng.standard_normal((3, 4, 5, 6))
    x.flat[:5] = x.flat[-5:] = [0.0, -0.0, np.nan, -np.inf, np.inf]  # the in-place loop's blocks of 256 and its tail
    for dtype in (np.float32, np.float64):
        out = check_op(F.relu, TF.relu, x, dtype=dtype)[0]
        assert out.dtype == dtype
        with cnnkit.no_grad():
            np.testing.assert_array_equal(F.relu(cnnkit.tensor(x.astype(dtype))).data, out.data)
            cx = cnnkit.tensor(x.astype(dtype))
            assert F.relu(cx, inplace=True) is cx
            np.testing.assert_array_equal(cx.data, out.data)
            np.testing.assert_array_equal(np.signbit(cx.data), np.signbit(out.data))
    if compiled and jit.available():                     # PyTorch keeps −0 and zeroes a NaN gradient where x < 0
        np.testing.assert_array_equal(np.signbit(out.data), np.signbit(TF.relu(torch.tensor(x)).numpy()))
        t = cnnkit.tensor(np.array([-1.0, 2.0]), requires_grad=True)
        F.relu(t).backward(cnnkit.tensor(np.array([np.nan, np.nan])))
        np.testing.assert_array_equal(t.grad.data, [0.0, np.nan])


def test_relu_alone_does_not_load_the_compiled_kernels(monkeypatch):
    # about 150 MB of Numba and LLVM: a ReLU uses them once loaded, never loads them itself
    monkeypatch.setattr(jit, "_numba", None)
    monkeypatch.setattr(jit, "MIN_BYTES", 0)
    F.relu(cnnkit.tensor(np.array([-1.0, 2.0])))
    assert jit._numba is None and not jit.loaded()
