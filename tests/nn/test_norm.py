"""batch_norm and local_response_norm (ops and modules) against PyTorch and finite differences."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import cnnkit
import cnnkit.nn.functional as F
from cnnkit import jit, nn
from cnnkit.nn.functional import norm as norm_mod
from tests.helpers import check_finite_differences, check_op

DTYPES = [np.float64, np.float32]
TOL = {np.float64: dict(rtol=1e-6, atol=1e-9), np.float32: dict(rtol=1e-4, atol=1e-5)}
TORCH_DT = {np.float64: torch.float64, np.float32: torch.float32}


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 4), c=st.integers(1, 4),
       spatial=st.lists(st.integers(1, 3), max_size=3).map(tuple), training=st.booleans(), affine=st.booleans(),
       stats=st.booleans(), momentum=st.sampled_from([0.1, 0.5, 1.0]), eps=st.sampled_from([1e-5, 1e-2]))
def test_batch_norm_matches_torch(compiled, dtype, seed, n, c, spatial, training, affine, stats, momentum, eps):
    before = jit.ENABLED, jit.MIN_BYTES
    jit.ENABLED, jit.MIN_BYTES = compiled, 0
    try:
        _check_batch_norm(dtype, seed, n, c, spatial, training, affine, stats, momentum, eps)
    finally:
        jit.ENABLED, jit.MIN_BYTES = before


def _check_batch_norm(dtype, seed, n, c, spatial, training, affine, stats, momentum, eps):
    if training and n * int(np.prod(spatial)) == 1:
        n = 2  # one value per channel cannot be normalised (tested below)
    if not training:
        stats = True  # evaluation needs running statistics
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + spatial) * 2 + 1
    rm, rv = rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)
    crm, crv = (cnnkit.tensor(rm), cnnkit.tensor(rv)) if stats else (None, None)
    trm, trv = (torch.tensor(rm), torch.tensor(rv)) if stats else (None, None)
    arrays = [x] + ([rng.standard_normal(c), rng.standard_normal(c)] if affine else [])
    check_op(lambda a, *wb: F.batch_norm(a, crm, crv, *wb, training=training, momentum=momentum, eps=eps),
             lambda a, *wb: TF.batch_norm(a, trm, trv, *wb, training=training, momentum=momentum, eps=eps),
             *arrays, dtype=dtype)
    if stats:  # running statistics updated in place exactly as torch (unbiased variance)
        np.testing.assert_allclose(crm.data, trm.numpy(), **TOL[dtype])
        np.testing.assert_allclose(crv.data, trv.numpy(), **TOL[dtype])
        assert crm.dtype == dtype and crv.dtype == dtype


@pytest.mark.parametrize("path", ["numpy-1", "numpy-200", "numba"])  # NumPy blocks of 1 or a few images
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_paths_on_several_threads_match_torch(training, path, threads, rng, monkeypatch):
    if path == "numba" and not jit.available():
        pytest.skip("Numba is not installed")
    monkeypatch.setattr(jit, "ENABLED", path == "numba")
    monkeypatch.setattr(jit, "MIN_BYTES", 0)                               # this small batch too
    calls = []
    if path != "numba":
        monkeypatch.setattr(norm_mod, "BLOCK_BYTES", int(path.split("-")[1]))
    else:
        compiled = jit.batch_norm_apply
        monkeypatch.setattr(jit, "batch_norm_apply", lambda *a: calls.append(1) or compiled(*a))
    monkeypatch.setattr(cnnkit.parallel, "MIN_PARALLEL_BYTES", 0)      # this small batch too
    monkeypatch.setattr(cnnkit.parallel, "STREAM_PARALLEL_BYTES", 0)
    x = rng.standard_normal((7, 3, 4, 5)) * 3 + 10          # an offset: the centring must be exact
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    crm, crv, trm, trv = cnnkit.tensor(rm), cnnkit.tensor(rv), torch.tensor(rm), torch.tensor(rv)
    check_op(lambda a, w, b: F.batch_norm(a, crm, crv, w, b, training=training),
             lambda a, w, b: TF.batch_norm(a, trm, trv, w, b, training=training),
             x, rng.standard_normal(3), rng.standard_normal(3))
    np.testing.assert_allclose(crv.data, trv.numpy(), rtol=1e-12)
    assert bool(calls) == (path == "numba")


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_finite_differences(training, rng):
    x = rng.standard_normal((3, 2, 2, 2))
    rm, rv = cnnkit.tensor(rng.standard_normal(2)), cnnkit.tensor(rng.random(2) + 0.5)
    check_finite_differences(
        lambda a, w, b: F.batch_norm(a, rm, rv, w, b, training=training, momentum=0.0), x,
        rng.standard_normal(2), rng.standard_normal(2))
    check_finite_differences(lambda a: F.batch_norm(a, None, None, training=True), rng.standard_normal((5, 3)))


def test_batch_norm_running_var_is_unbiased_by_hand():
    # independent reference computed by hand: one channel, values 1, 2, 3, 6
    x = cnnkit.tensor(np.array([[1.0], [2.0], [3.0], [6.0]]))
    rm, rv = cnnkit.tensor([0.0]), cnnkit.tensor([1.0])
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.5, eps=0.0)
    mean, var_b, var_u = 3.0, 3.5, 14.0 / 3
    np.testing.assert_allclose(y.data[:, 0], (np.array([1, 2, 3, 6]) - mean) / np.sqrt(var_b), rtol=1e-6)
    np.testing.assert_allclose(rm.data, [0.5 * mean], rtol=1e-6)
    np.testing.assert_allclose(rv.data, [0.5 + 0.5 * var_u], rtol=1e-6)


def _copy_params(cn, th):
    cn.load_state_dict({k: v.numpy() for k, v in th.state_dict().items()})


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (6, 3, 4)), ("BatchNorm2d", (4, 3, 5, 2))])
@pytest.mark.parametrize("kwargs", [{}, dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
                                    dict(bias=False), dict(eps=1e-3, momentum=0.3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_modules_match_torch_over_train_and_eval(cls, shape, kwargs, dtype):
    rng = np.random.default_rng(0)
    th = getattr(torch.nn, cls)(3, **kwargs).to(TORCH_DT[dtype])
    cn = getattr(nn, cls)(3, **kwargs).to(dtype)
    assert repr(cn) == repr(th)
    assert list(cn.state_dict()) == list(th.state_dict())
    with torch.no_grad():
        for p in th.parameters():
            p.copy_(torch.tensor(rng.standard_normal(p.shape)))
    _copy_params(cn, th)
    for step, mode in enumerate(["train", "train", "train", "eval", "train", "eval"]):
        getattr(cn, mode)(), getattr(th, mode)()
        x = rng.standard_normal(shape) * (step + 1) + step
        check_op(cn, th, x, dtype=dtype, seed=step)
        params_cn, params_th = dict(cn.named_parameters()), dict(th.named_parameters())
        for k, tp in params_th.items():
            np.testing.assert_allclose(params_cn[k].grad.data, tp.grad.numpy(), **TOL[dtype], err_msg=k)
            params_cn[k].grad, tp.grad = None, None
        for k, v in th.state_dict().items():  # running stats and num_batches_tracked
            np.testing.assert_allclose(cn.state_dict()[k], v.numpy(), **TOL[dtype], err_msg=f"step {step}: {k}")


def test_batchnorm_state_dict_buffers_like_torch():
    sd, tsd = nn.BatchNorm2d(4).state_dict(), torch.nn.BatchNorm2d(4).state_dict()
    assert list(sd) == list(tsd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"].shape == ()
    np.testing.assert_array_equal(sd["running_var"], 1)
    bn = nn.BatchNorm2d(4)
    bn(cnnkit.randn(2, 4, 3, 3))
    bn(cnnkit.randn(2, 4, 3, 3))
    assert int(bn.num_batches_tracked.data) == 2
    assert sum(p.numel() for p in bn.parameters()) == 8  # gamma and beta; buffers are not parameters
    bn.eval()
    bn(cnnkit.randn(2, 4, 3, 3))
    assert int(bn.num_batches_tracked.data) == 2


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(16\): input has 8 channels, expected 16"):
        nn.BatchNorm2d(16)(cnnkit.zeros(2, 8, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(16\): expected 4D \(N, C, H, W\) input, got 3D input of shape \(16, 4, 4\)"):
        nn.BatchNorm2d(16)(cnnkit.zeros(16, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): expected 2D \(N, C\) or 3D \(N, C, L\) input, got 4D"):
        nn.BatchNorm1d(3)(cnnkit.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): input has 5 channels, expected 3"):
        nn.BatchNorm1d(3)(cnnkit.zeros(2, 5))
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel when training, got input of shape \(1, 3\)"):
        nn.BatchNorm1d(3)(cnnkit.zeros(1, 3))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean and running_var are required when training=False"):
        F.batch_norm(cnnkit.zeros(2, 3), None, None)
    with pytest.raises(ValueError, match=r"batch_norm: weight has shape \(4,\), expected \(3,\)"):
        F.batch_norm(cnnkit.zeros(2, 3), None, None, weight=cnnkit.ones(4), training=True)
    with pytest.raises(ValueError, match=r"BatchNorm2d: num_features must be positive, got num_features=0"):
        nn.BatchNorm2d(0)
    with pytest.raises(TypeError, match=r"batch_norm: input is float64 but weight is float32"):
        nn.BatchNorm1d(3)(cnnkit.zeros(2, 3, dtype=np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**16), size=st.integers(1, 6), c=st.integers(1, 7),
       spatial=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
       alpha=st.sampled_from([1e-4, 0.5, 2.0]), beta=st.sampled_from([0.75, 0.5, 1.3]), k=st.sampled_from([1.0, 2.0]))
def test_local_response_norm_matches_torch(dtype, seed, size, c, spatial, alpha, beta, k):
    x = np.random.default_rng(seed).standard_normal((2, c) + spatial) * 2
    check_op(lambda a: F.local_response_norm(a, size, alpha, beta, k),
             lambda a: TF.local_response_norm(a, size, alpha, beta, k), x, dtype=dtype)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_local_response_norm_finite_differences_and_formula(size, rng):
    x = rng.standard_normal((2, 6, 3))
    check_finite_differences(lambda a: F.local_response_norm(a, size, alpha=0.7, beta=0.75, k=1.5), x)
    # naive loop: window c - size//2 .. c + (size-1)//2, divided by size (torch's average pooling)
    out = F.local_response_norm(cnnkit.tensor(x), size, alpha=0.7, beta=0.75, k=1.5).data
    ref = np.empty_like(x)
    for ch in range(6):
        lo, hi = max(0, ch - size // 2), min(5, ch + (size - 1) // 2)
        ref[:, ch] = x[:, ch] / (1.5 + 0.7 / size * (x[:, lo:hi + 1] ** 2).sum(1)) ** 0.75
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_local_response_norm_module_and_errors(rng):
    cn, th = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    assert repr(cn) == repr(th)
    assert list(cn.state_dict()) == []
    check_op(cn, th, rng.standard_normal((2, 8, 4, 4)) * 10, dtype=np.float32)
    with pytest.raises(ValueError, match=r"local_response_norm: expected 3D or higher dimensionality input \(N, C, \*\), got 2D"):
        F.local_response_norm(cnnkit.zeros(2, 3), 2)
    with pytest.raises(ValueError, match=r"LocalResponseNorm: size must be a positive int, got size=0"):
        nn.LocalResponseNorm(0)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_frozen_batchnorm_still_passes_input_gradient_like_torch(mode, rng):
    cn, th = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        th.weight.uniform_(0.5, 2.0), th.bias.uniform_(-1, 1), th.running_var.uniform_(0.5, 2.0)
    _copy_params(cn, th)
    cn.requires_grad_(False), th.requires_grad_(False)
    getattr(cn, mode)(), getattr(th, mode)()
    check_op(cn, th, rng.standard_normal((4, 3, 3, 3)), dtype=np.float32)
    assert cn.weight.grad is None and cn.bias.grad is None


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
def test_batch_norm_float16_with_more_than_65504_values_per_channel_matches_torch(compiled, rng):
    # float16's largest value is 65,504: the count, the sums and 1/M must not be formed in float16
    before = jit.ENABLED
    jit.ENABLED = compiled
    try:
        x = (rng.standard_normal((2, 3, 200, 200)) * 2 + 1).astype(np.float16)      # 80,000 values a channel
        g = rng.standard_normal(x.shape).astype(np.float16)
        w, b = rng.standard_normal(3).astype(np.float16), rng.standard_normal(3).astype(np.float16)
        cx, cw, cb = (cnnkit.tensor(v, requires_grad=True) for v in (x, w, b))
        rm, rv = cnnkit.tensor(np.zeros(3, np.float16)), cnnkit.tensor(np.ones(3, np.float16))
        y = F.batch_norm(cx, rm, rv, cw, cb, training=True)
        y.backward(cnnkit.tensor(g))
        # reference: PyTorch in float32 on the same float16 values
        tx, tw, tb = (torch.tensor(v.astype(np.float32), requires_grad=True) for v in (x, w, b))
        trm, trv = torch.zeros(3), torch.ones(3)
        ty = TF.batch_norm(tx, trm, trv, tw, tb, training=True)
        ty.backward(torch.tensor(g.astype(np.float32)))
        assert y.data.dtype == cx.grad.data.dtype == cw.grad.data.dtype == np.float16
        np.testing.assert_allclose(y.data.astype(np.float32), ty.detach().numpy(), rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(cx.grad.data.astype(np.float32), tx.grad.numpy(), rtol=2e-3, atol=2e-3)
        for ours, ref in ((cw.grad, tw.grad), (cb.grad, tb.grad), (rm, trm), (rv, trv)):
            np.testing.assert_allclose(ours.data.astype(np.float32), ref.numpy(), rtol=2e-3, atol=0.5)
    finally:
        jit.ENABLED = before
