"""linear, flatten and dropout (ops and modules) against PyTorch and finite differences."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import cnnkit
import cnnkit.nn.functional as F
from cnnkit import nn
from tests.helpers import check_finite_differences, check_op

DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@given(batch=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple), in_f=st.integers(1, 7),
       out_f=st.integers(1, 7), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_matches_torch(dtype, batch, in_f, out_f, bias, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(batch + (in_f,)), rng.standard_normal((out_f, in_f))]
    if bias:
        arrays.append(rng.standard_normal(out_f))
    check_op(F.linear, TF.linear, *arrays, dtype=dtype)


def test_linear_finite_differences(rng):
    check_finite_differences(F.linear, rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)),
                             rng.standard_normal(5))
    check_finite_differences(lambda x, w: F.linear(x, w), rng.standard_normal(4), rng.standard_normal((3, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_module_matches_torch_with_copied_weights(dtype, bias, rng):
    cn, th = nn.Linear(6, 4, bias=bias), torch.nn.Linear(6, 4, bias=bias)
    assert repr(cn) == repr(th)
    assert list(cn.state_dict()) == list(th.state_dict())
    cn.load_state_dict({k: v.numpy() for k, v in th.state_dict().items()})
    cn.to(dtype), th.to(torch.float64 if dtype == np.float64 else torch.float32)
    x = rng.standard_normal((5, 6)).astype(dtype)
    g = rng.standard_normal((5, 4)).astype(dtype)
    xc, xt = cnnkit.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (cn(xc) * cnnkit.tensor(g)).sum().backward()
    (th(xt) * torch.tensor(g)).sum().backward()
    tol = dict(rtol=1e-6, atol=1e-9) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xc.grad.data, xt.grad.numpy(), **tol)
    for (name, p), (tname, tp) in zip(cn.named_parameters(), th.named_parameters()):
        assert name == tname and p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), **tol, err_msg=name)


def test_linear_default_init_is_pytorchs_kaiming_uniform():
    cnnkit.manual_seed(0)
    fc = nn.Linear(400, 120)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)): gain sqrt(2/6) * sqrt(3/fan_in) = 1/sqrt(fan_in)
    assert fc.weight.shape == (120, 400) and fc.bias.shape == (120,)
    assert fc.weight.dtype == np.float32 and fc.weight.requires_grad
    assert np.abs(fc.weight.data).max() <= bound and np.abs(fc.bias.data).max() <= bound
    # uniform on [-b, b]: std b/sqrt(3); compare with torch's own draw of the same layer
    th = torch.nn.Linear(400, 120)
    np.testing.assert_allclose(fc.weight.data.std(), th.weight.detach().numpy().std(), rtol=0.03)
    np.testing.assert_allclose(fc.weight.data.std(), bound / math.sqrt(3), rtol=0.03)
    cnnkit.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(400, 120).weight.data, fc.weight.data)  # seeded: reproducible
    assert sum(p.numel() for p in nn.Linear(84, 10).parameters()) == 850  # the lecture's (84 + 1) * 10


def test_linear_errors():
    with pytest.raises(ValueError, match=r"Linear\(in_features=400, out_features=120\): input has 256 features, expected 400"):
        nn.Linear(400, 120)(cnnkit.zeros(2, 256))
    with pytest.raises(ValueError, match=r"linear: input has 3 features \(last dimension of shape \(2, 3\)\), weight expects 4"):
        F.linear(cnnkit.zeros(2, 3), cnnkit.zeros(5, 4))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(5,\), got \(4,\)"):
        F.linear(cnnkit.zeros(2, 4), cnnkit.zeros(5, 4), cnnkit.zeros(4))
    with pytest.raises(TypeError, match=r"linear: input is float64 but weight is float32"):
        F.linear(cnnkit.zeros(2, 4, dtype=np.float64), cnnkit.zeros(5, 4))
    with pytest.raises(ValueError, match=r"Linear: in_features must be non-negative, got in_features=-1"):
        nn.Linear(-1, 3)
    with pytest.raises(TypeError, match=r"Linear: out_features must be an int, got 2.5"):
        nn.Linear(3, 2.5)


@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (1, 2), (2, 3), (-2, -1), (0, 0)])
def test_flatten_matches_torch(start, end, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    check_op(lambda t: F.flatten(t, start, end), lambda t: torch.flatten(t, start, end), x)
    check_op(nn.Flatten(start, end), torch.nn.Flatten(start, end), x, dtype=np.float32)
    assert repr(nn.Flatten(start, end)) == repr(torch.nn.Flatten(start, end))


def test_flatten_lenet_shape_and_errors():
    assert nn.Flatten()(cnnkit.zeros(8, 16, 5, 5)).shape == (8, 400)
    with pytest.raises(IndexError, match=r"flatten: start_dim=4 is out of range for a 4-d input"):
        F.flatten(cnnkit.zeros(2, 3, 4, 5), 4)
    with pytest.raises(ValueError, match=r"flatten: start_dim \(2\) cannot come after end_dim \(1\)"):
        F.flatten(cnnkit.zeros(2, 3, 4, 5), 2, 1)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_is_inverted_and_gradient_follows_mask(p, dtype):
    cnnkit.manual_seed(3)
    x = cnnkit.tensor(np.full((200, 250), 2.0, dtype=dtype), requires_grad=True)
    y = F.dropout(x, p, training=True)
    assert y.dtype == dtype
    kept = y.data != 0
    assert abs(1 - kept.mean() - p) < 0.01  # fraction zeroed ~ p (50,000 draws)
    np.testing.assert_allclose(y.data[kept], 2.0 / (1 - p), rtol=1e-6)  # survivors scaled by 1/(1-p)
    assert abs(y.data.mean() - 2.0) < 0.05  # expectation preserved
    g = np.random.default_rng(0).standard_normal(x.shape).astype(dtype)
    (y * cnnkit.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.data, g * kept / (1 - p), rtol=1e-6)


def test_dropout_modes_edges_and_seed():
    x = cnnkit.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, 0)  # as torch: p=1 zeroes everything
    np.testing.assert_array_equal(TF.dropout(torch.ones(3), 1.0).numpy(), 0)
    cnnkit.manual_seed(7)
    a = F.dropout(x, 0.5).data
    cnnkit.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).data, a)
    d = nn.Dropout(0.5)
    assert repr(d) == repr(torch.nn.Dropout(0.5))
    d.eval()
    np.testing.assert_array_equal(d(x).data, x.data)
    d.train()
    assert np.any(d(cnnkit.ones(100)).data == 0)


def test_dropout_errors_use_torch_message():
    with pytest.raises(ValueError, match=r"dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout(cnnkit.zeros(3), 1.5)
    with pytest.raises(ValueError, match=r"dropout probability has to be between 0 and 1, but got -0.1"):
        nn.Dropout(-0.1)
    with pytest.raises(ValueError, match=r"dropout probability has to be between 0 and 1"):
        torch.nn.Dropout(1.5)
