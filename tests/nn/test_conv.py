"""conv1d/2d/3d, im2col and Conv modules against PyTorch, finite differences and the lecture."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import cnnkit
from cnnkit import nn
from cnnkit.nn import functional as F
from tests.helpers import check_finite_differences, check_op


@st.composite
def conv_configs(draw, nd):
    groups = draw(st.integers(1, 3))
    c, k_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    ksize = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    kind = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    stride = (1,) * nd if kind == "same" else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding = {"int": draw(st.integers(0, 2)), "tuple": tuple(draw(st.integers(0, 2)) for _ in range(nd)),
               "same": "same", "valid": "valid"}[kind]
    pads = padding if isinstance(padding, tuple) else (padding if isinstance(padding, int) else 0,) * nd
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
                 for k, d, p in zip(ksize, dilation, pads))
    return dict(n=draw(st.integers(1, 2)), c=c, k_out=k_out, ksize=ksize, size=size, stride=stride,
                padding=padding, dilation=dilation, groups=groups, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float64, np.float32])))


def _run_conv(cfg, nd):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((cfg["n"], cfg["c"]) + cfg["size"])
    w = rng.standard_normal((cfg["k_out"], cfg["c"] // cfg["groups"]) + cfg["ksize"])
    b = rng.standard_normal(cfg["k_out"])
    args = (cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
    cn, th = (F.conv1d, F.conv2d, F.conv3d)[nd - 1], (TF.conv1d, TF.conv2d, TF.conv3d)[nd - 1]
    if cfg["bias"]:
        check_op(lambda x, w, b: cn(x, w, b, *args), lambda x, w, b: th(x, w, b, *args), x, w, b, dtype=cfg["dtype"])
    else:
        check_op(lambda x, w: cn(x, w, None, *args), lambda x, w: th(x, w, None, *args), x, w, dtype=cfg["dtype"])


@given(conv_configs(2))
def test_conv2d_matches_torch(cfg):
    _run_conv(cfg, 2)


@given(conv_configs(1))
def test_conv1d_matches_torch(cfg):
    _run_conv(cfg, 1)


@given(conv_configs(3))
def test_conv3d_matches_torch(cfg):
    _run_conv(cfg, 3)


def test_depthwise_conv_matches_torch(rng):
    x, w = rng.standard_normal((2, 6, 9, 9)), rng.standard_normal((6, 1, 3, 3))
    check_op(lambda x, w: F.conv2d(x, w, None, 2, 1, 1, 6), lambda x, w: TF.conv2d(x, w, None, 2, 1, 1, 6), x, w)


def test_even_kernel_same_padding_puts_extra_zero_after(rng):
    x, w = rng.standard_normal((1, 2, 6, 7)), rng.standard_normal((3, 2, 4, 2))
    out = check_op(lambda x, w: F.conv2d(x, w, padding="same"), lambda x, w: TF.conv2d(x, w, padding="same"), x, w)
    assert out[0].shape == (1, 3, 6, 7)


def test_conv_finite_differences(rng):
    x, w, b = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 2, 3, 2)), rng.standard_normal(4)
    check_finite_differences(lambda x, w, b: F.conv2d(x, w, b, (2, 1), 1, (1, 2), 2), x, w, b)
    check_finite_differences(lambda x, w: F.conv1d(x, w, None, 2, "valid", 2), rng.standard_normal((1, 2, 9)),
                             rng.standard_normal((3, 2, 3)))


def test_conv_is_weight_matrix_times_im2col(rng):
    """The lecture's "convolution as matrix multiplication"."""
    x = cnnkit.tensor(rng.standard_normal((2, 3, 8, 7)).astype(np.float32))
    w = cnnkit.tensor(rng.standard_normal((5, 3, 3, 3)).astype(np.float32))
    cols = F.im2col(x, 3, stride=2, padding=1)                                # (N, C·F·F, L)
    assert cols.shape == (2, 27, 4 * 4)
    via_matmul = (w.reshape(5, -1) @ cols).reshape(2, 5, 4, 4)
    np.testing.assert_allclose(via_matmul.data, F.conv2d(x, w, stride=2, padding=1).data, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,s,p,d", [(3, 1, 0, 1), ((3, 2), 2, 1, 1), (2, (1, 2), (1, 0), 2)])
def test_im2col_and_col2im_match_torch_unfold_fold(k, s, p, d, rng):
    x = rng.standard_normal((2, 3, 7, 8))
    cols = check_op(lambda x: F.im2col(x, k, s, p, d), lambda x: TF.unfold(x, k, d, p, s), x)[0]
    check_op(lambda c: F.col2im(c, (7, 8), k, s, p, d), lambda c: TF.fold(c, (7, 8), k, d, p, s), cols.data)


def test_conv_modules_match_torch_modules_and_init_bounds(rng):
    cnnkit.manual_seed(0)
    for cls, tcls, shape in ((nn.Conv1d, torch.nn.Conv1d, (2, 4, 11)), (nn.Conv2d, torch.nn.Conv2d, (2, 4, 9, 8)),
                             (nn.Conv3d, torch.nn.Conv3d, (1, 4, 5, 6, 7))):
        m = cls(4, 6, 3, stride=2, padding=1, groups=2)
        t = tcls(4, 6, 3, stride=2, padding=1, groups=2).double()
        assert m.weight.shape == tuple(t.weight.shape)
        bound = 1 / np.sqrt(2 * 3 ** (len(shape) - 2))  # sqrt(groups / (in·∏k)) = 1/sqrt(fan_in)
        assert np.abs(m.weight.data).max() <= bound and np.abs(m.weight.data).max() > 0.8 * bound
        t.load_state_dict({k: torch.tensor(v.astype(np.float64)) for k, v in m.state_dict().items()})
        m.double()
        check_op(lambda x: m(x), lambda x: t(x), rng.standard_normal(shape))


def test_conv_padding_same_keeps_size_for_f3_and_f5():
    for f in (3, 5):
        assert nn.Conv2d(1, 1, f, padding="same")(cnnkit.zeros(1, 1, 7, 9)).shape == (1, 1, 7, 9)
        assert nn.Conv2d(1, 1, f, padding=(f - 1) // 2)(cnnkit.zeros(1, 1, 7, 9)).shape == (1, 1, 7, 9)


@pytest.mark.parametrize("call,match", [
    (lambda: nn.Conv2d(3, 16, 5)(cnnkit.zeros(1, 1, 32, 32)), r"Conv2d\(3, 16, kernel_size=5\): input has 1 channel, expected 3"),
    (lambda: F.conv2d(cnnkit.zeros(3, 32, 32), cnnkit.zeros(6, 3, 5, 5)), r"conv2d: expected a 4-D input .* got a 3-D input of shape \(3, 32, 32\)"),
    (lambda: F.conv2d(cnnkit.zeros(1, 3, 4, 4), cnnkit.zeros(6, 3, 5, 5)), r"kernel size 5 is larger than the padded input 4"),
    (lambda: F.conv2d(cnnkit.zeros(1, 3, 4, 4), cnnkit.zeros(6, 3, 3, 3), dilation=2), r"dilated to 5\) is larger than the padded input 4"),
    (lambda: nn.Conv2d(4, 6, 3, groups=3), r"groups=3 must divide in_channels=4"),
    (lambda: nn.Conv2d(6, 4, 3, groups=3), r"groups=3 must divide out_channels=4"),
    (lambda: nn.Conv2d(3, 6, 0), r"kernel_size must be positive, got kernel_size=0"),
    (lambda: nn.Conv2d(3, 6, 3, stride=0), r"stride must be positive, got stride=0"),
    (lambda: nn.Conv2d(3, 6, 3, stride=2, padding="same"), r"padding='same' is not supported for strided"),
    (lambda: nn.Conv2d(3, 6, 3, padding="full"), r"padding must be an int, a tuple, 'same' or 'valid', got 'full'"),
    (lambda: F.conv2d(cnnkit.zeros(1, 4, 5, 5), cnnkit.zeros(6, 3, 3, 3)), r"input has 4 channels, expected 3"),
])
def test_conv_errors_name_the_layer_and_numbers(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mixed_float_dtypes_are_refused_like_linear_and_torch():
    x = cnnkit.zeros(1, 3, 8, 8, dtype=np.float64)
    w = cnnkit.zeros(4, 3, 3, 3)                                     # float32
    with pytest.raises(TypeError, match=r"conv2d: input is float64 but weight is float32"):
        F.conv2d(x, w)
    with pytest.raises(RuntimeError):                                # PyTorch refuses the same call
        TF.conv2d(torch.zeros(1, 3, 8, 8, dtype=torch.float64), torch.zeros(4, 3, 3, 3))


@pytest.mark.parametrize("fn", [F.conv1d, F.conv2d, F.conv3d], ids=lambda f: f.__name__)
def test_docstring_example_runs_and_matches_pytorch_shape(fn):
    """Each conv docstring's example is a real call whose printed shape is PyTorch's for the same call."""
    import doctest
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(verbose=False)
    test = parser.get_doctest(fn.__doc__, {"cnnkit": cnnkit, "F": F}, fn.__name__, None, 0)
    assert test.examples, f"{fn.__name__} has no example"
    runner.run(test)
    assert runner.failures == 0
    # the same call in PyTorch gives the shape the docstring prints
    code = "\n".join(e.source for e in test.examples[:-1])
    ns = {"cnnkit": cnnkit}
    exec(code, ns)
    call = test.examples[-1].source.strip().removesuffix(".shape").replace("F.", "TF.")
    shape = eval(call, {"TF": TF, "x": torch.from_numpy(ns["x"].numpy()), "w": torch.from_numpy(ns["w"].numpy())}).shape
    assert tuple(shape) == eval(test.examples[-1].want)
