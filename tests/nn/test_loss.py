"""cross_entropy, nll_loss, mse_loss (ops and modules) against PyTorch and finite differences."""
import warnings

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
REDUCTIONS = ["mean", "sum", "none"]


def _case(seed, n, c, spatial, ignore_frac, ignore_index=-100):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + spatial) * 3
    t = rng.integers(0, c, (n,) + spatial)
    drop = rng.random(t.shape) < ignore_frac
    t[drop] = ignore_index
    return rng, x, t


def _torch_weight(w, like):
    return None if w is None else torch.tensor(w, dtype=like.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 5), c=st.integers(1, 6),
       spatial=st.lists(st.integers(1, 3), max_size=2).map(tuple), reduction=st.sampled_from(REDUCTIONS),
       smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]), weighted=st.booleans(),
       ignore_frac=st.sampled_from([0.0, 0.3]), ignore_index=st.sampled_from([-100, 0, 2]))
def test_cross_entropy_matches_torch(dtype, seed, n, c, spatial, reduction, smoothing, weighted, ignore_frac,
                                     ignore_index):
    rng, x, t = _case(seed, n, c, spatial, ignore_frac, ignore_index)
    w = rng.random(c) + 0.1 if weighted else None
    if reduction == "mean" and np.all(t == ignore_index):
        t[(0,) * t.ndim] = (ignore_index + 1) % c if ignore_index >= 0 else 0  # keep the mean defined
        if t[(0,) * t.ndim] == ignore_index:
            return  # c == 1 and ignore_index == 0: nothing valid to test
    check_op(lambda a: F.cross_entropy(a, cnnkit.tensor(t), weight=w, ignore_index=ignore_index,
                                       reduction=reduction, label_smoothing=smoothing),
             lambda a: TF.cross_entropy(a, torch.tensor(t), weight=_torch_weight(w, a), ignore_index=ignore_index,
                                        reduction=reduction, label_smoothing=smoothing), x, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 4), c=st.integers(2, 5),
       spatial=st.lists(st.integers(1, 3), max_size=1).map(tuple), reduction=st.sampled_from(REDUCTIONS),
       smoothing=st.sampled_from([0.0, 0.2]), weighted=st.booleans())
def test_cross_entropy_probability_targets_match_torch(dtype, seed, n, c, spatial, reduction, smoothing, weighted):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + spatial)
    p = rng.random((n, c) + spatial)
    p /= p.sum(1, keepdims=True)
    w = rng.random(c) + 0.1 if weighted else None
    # both the logits and the probability targets get gradients compared
    check_op(lambda a, y: F.cross_entropy(a, y, weight=w, reduction=reduction, label_smoothing=smoothing),
             lambda a, y: TF.cross_entropy(a, y, weight=_torch_weight(w, a), reduction=reduction,
                                           label_smoothing=smoothing), x, p, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 5), c=st.integers(1, 6),
       spatial=st.lists(st.integers(1, 3), max_size=2).map(tuple), reduction=st.sampled_from(REDUCTIONS),
       weighted=st.booleans(), ignore_frac=st.sampled_from([0.0, 0.3]))
def test_nll_loss_matches_torch(dtype, seed, n, c, spatial, reduction, weighted, ignore_frac):
    rng, x, t = _case(seed, n, c, spatial, ignore_frac)
    w = rng.random(c) + 0.1 if weighted else None
    if reduction == "mean" and np.all(t == -100):
        t[(0,) * t.ndim] = 0
    check_op(lambda a: F.nll_loss(a, t, weight=w, reduction=reduction),
             lambda a: TF.nll_loss(a, torch.tensor(t), weight=_torch_weight(w, a), reduction=reduction),
             x, dtype=dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_unbatched_input_matches_torch(reduction, rng):
    x = rng.standard_normal(7)
    t = np.array(3)
    check_op(lambda a: F.cross_entropy(a, t, reduction=reduction, label_smoothing=0.1),
             lambda a: TF.cross_entropy(a, torch.tensor(t), reduction=reduction, label_smoothing=0.1), x)
    check_op(lambda a: F.nll_loss(a, t, reduction=reduction),
             lambda a: TF.nll_loss(a, torch.tensor(t), reduction=reduction), x)


def test_all_targets_ignored_gives_nan_mean_and_zero_sum_like_torch():
    x = np.zeros((2, 3))
    t = np.array([-100, -100])
    for red in ("mean", "sum"):
        ours = F.cross_entropy(cnnkit.tensor(x), t, reduction=red).item()
        theirs = TF.cross_entropy(torch.tensor(x), torch.tensor(t), reduction=red).item()
        np.testing.assert_equal(ours, theirs)
    assert np.isnan(F.cross_entropy(cnnkit.tensor(x), t).item())


def test_uniform_logits_give_log_c():
    # independent reference: uniform scores over 10 classes -> loss ln(10)
    loss = F.cross_entropy(cnnkit.zeros(4, 10), cnnkit.tensor([0, 3, 9, 2]))
    np.testing.assert_allclose(loss.item(), np.log(10), rtol=1e-6)
    assert loss.dtype == np.float32


def test_huge_logits_are_stable_and_float32_stays_float32():
    x = cnnkit.tensor([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, cnnkit.tensor([0, 1]), label_smoothing=0.1)
        loss.backward()
    theirs = TF.cross_entropy(torch.tensor(x.data), torch.tensor([0, 1]), label_smoothing=0.1)
    np.testing.assert_allclose(loss.item(), theirs.item(), rtol=1e-5)
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32 and np.all(np.isfinite(x.grad.data))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple), seed=st.integers(0, 2**16))
def test_mse_loss_matches_torch(dtype, reduction, shape, seed):
    rng = np.random.default_rng(seed)
    check_op(lambda a, b: F.mse_loss(a, b, reduction=reduction),
             lambda a, b: TF.mse_loss(a, b, reduction=reduction),
             rng.standard_normal(shape), rng.standard_normal(shape), dtype=dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_weight_and_broadcasting_like_torch(reduction, rng):
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.random((3, 4))
    check_op(lambda a, b: F.mse_loss(a, b, reduction=reduction, weight=w),
             lambda a, b: TF.mse_loss(a, b, reduction=reduction, weight=torch.tensor(w)), x, y)
    with pytest.warns(UserWarning, match="different to the input size"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own warning
            check_op(lambda a, b: F.mse_loss(a, b, reduction=reduction),
                     lambda a, b: TF.mse_loss(a, b, reduction=reduction), x, y[:1])
        F.mse_loss(cnnkit.tensor(x), cnnkit.tensor(y[:1]))


def test_finite_differences_of_each_loss(rng):
    x = rng.standard_normal((4, 5, 2))
    t = rng.integers(0, 5, (4, 2))
    t[0, 0] = -100
    w = rng.random(5) + 0.5
    for red in REDUCTIONS:
        check_finite_differences(lambda a: F.cross_entropy(a, t, weight=w, reduction=red, label_smoothing=0.2), x)
        check_finite_differences(lambda a: F.nll_loss(a, t, weight=w, reduction=red), x)
        check_finite_differences(lambda a, b: F.mse_loss(a, b, reduction=red), x, x[::-1] * 0.5)
    p = rng.random((4, 5))
    p /= p.sum(1, keepdims=True)
    check_finite_differences(lambda a, y: F.cross_entropy(a, y, weight=w, label_smoothing=0.3), x[..., 0], p)


def test_loss_errors_are_clear():
    x = cnnkit.zeros(3, 10)
    with pytest.raises(ValueError, match=r"cross_entropy: target contains class 12 but input has 10 classes"):
        F.cross_entropy(x, cnnkit.tensor([1, 12, 3]))
    with pytest.raises(ValueError, match=r"cross_entropy: target contains class -3 but input has 10 classes"):
        F.cross_entropy(x, cnnkit.tensor([1, -3, 3]))
    with pytest.raises(ValueError, match=r"nll_loss: target contains class 10 but input has 10 classes"):
        F.nll_loss(x, cnnkit.tensor([1, 10, 3]))
    with pytest.raises(ValueError, match=r"cross_entropy: target has shape \(4,\), expected \(3,\) for input of shape \(3, 10\)"):
        F.cross_entropy(x, cnnkit.tensor([1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"target has shape \(3,\), expected \(3, 5\)"):
        F.cross_entropy(cnnkit.zeros(3, 10, 5), cnnkit.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match=r"cross_entropy: target must hold integer class indices \(int64\), got dtype float32"):
        F.cross_entropy(x, cnnkit.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match=r"nll_loss: target must hold integer class indices \(int64\), got dtype bool"):
        F.nll_loss(x, np.array([True, False, True]))
    with pytest.raises(TypeError, match=r"cross_entropy: input must be a floating-point tensor, got dtype int64"):
        F.cross_entropy(cnnkit.tensor([[1, 2]]), cnnkit.tensor([0]))
    with pytest.raises(ValueError, match=r"cross_entropy: weight has shape \(5,\), expected \(10,\)"):
        F.cross_entropy(x, cnnkit.tensor([1, 2, 3]), weight=np.ones(5))
    with pytest.raises(ValueError, match=r"reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(x, cnnkit.tensor([1, 2, 3]), reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(x, cnnkit.tensor([1, 2, 3]), label_smoothing=1.5)
    bad = np.zeros((3, 10), dtype=np.float32)
    bad[0, 0], bad[1, 1], bad[2, 2] = np.nan, np.inf, -np.inf
    with pytest.raises(ValueError, match=r"cross_entropy: input contains 3 non-finite value\(s\) \(1 NaN, 2 inf\) out of 30"):
        F.cross_entropy(cnnkit.tensor(bad), cnnkit.tensor([1, 2, 3]), check_finite=True)
    with pytest.raises(ValueError, match=r"input contains 1 non-finite"):
        nn.CrossEntropyLoss(check_finite=True)(cnnkit.tensor(bad[:1]), cnnkit.tensor([1]))
    with pytest.raises(ValueError, match=r"nll_loss: input contains 1 non-finite value\(s\) \(1 NaN, 0 inf\) out of 10"):
        F.nll_loss(cnnkit.tensor(bad[:1]), cnnkit.tensor([1]), check_finite=True)
    with pytest.raises(ValueError, match=r"mse_loss: input contains 3 non-finite value\(s\)"):
        F.mse_loss(cnnkit.tensor(bad), cnnkit.zeros(3, 10), check_finite=True)
    assert np.isnan(F.mse_loss(cnnkit.tensor(bad), cnnkit.zeros(3, 10)).item())  # unchecked: NaN propagates
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(4,\) cannot be broadcast to input shape \(3,\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            F.mse_loss(cnnkit.zeros(3), cnnkit.zeros(4))


@pytest.mark.parametrize("kwargs", [{}, dict(reduction="sum"), dict(label_smoothing=0.1), dict(ignore_index=1),
                                    dict(weight=[1.0, 2.0, 0.5, 1.0]), dict(reduction="none", label_smoothing=0.2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_modules_match_torch(kwargs, dtype, rng):
    x = rng.standard_normal((6, 4))
    t = rng.integers(0, 4, 6)
    th_kwargs = dict(kwargs)
    if "weight" in th_kwargs:
        th_kwargs["weight"] = torch.tensor(th_kwargs["weight"], dtype=torch.float64 if dtype == np.float64 else torch.float32)
    cn, th = nn.CrossEntropyLoss(**kwargs), torch.nn.CrossEntropyLoss(**th_kwargs)
    assert list(cn.state_dict()) == list(th.state_dict())  # 'weight' is a buffer in both
    check_op(lambda a: cn(a, cnnkit.tensor(t)), lambda a: th(a, torch.tensor(t)), x, dtype=dtype)
    nk = {k: v for k, v in kwargs.items() if k != "label_smoothing"}
    ntk = {k: v for k, v in th_kwargs.items() if k != "label_smoothing"}
    check_op(lambda a: nn.NLLLoss(**nk)(nn.LogSoftmax(1)(a), cnnkit.tensor(t)),
             lambda a: torch.nn.NLLLoss(**ntk)(torch.nn.LogSoftmax(1)(a), torch.tensor(t)), x, dtype=dtype)
    red = kwargs.get("reduction", "mean")
    check_op(nn.MSELoss(reduction=red), torch.nn.MSELoss(reduction=red), x, x[::-1] * 0.5, dtype=dtype)


def test_loss_module_reprs_and_validation():
    assert repr(nn.CrossEntropyLoss()) == repr(torch.nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.NLLLoss()) == repr(torch.nn.NLLLoss())
    assert repr(nn.MSELoss()) == repr(torch.nn.MSELoss())
    assert repr(nn.CrossEntropyLoss(label_smoothing=0.1)) == "CrossEntropyLoss(label_smoothing=0.1)"
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: reduction must be 'mean', 'sum' or 'none', got 'max'"):
        nn.CrossEntropyLoss(reduction="max")
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got -0.1"):
        nn.CrossEntropyLoss(label_smoothing=-0.1)
