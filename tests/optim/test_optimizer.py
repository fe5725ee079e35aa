"""Optimizer base: parameter groups, frozen parameters, zero_grad, state dicts, errors."""
import pickle

import numpy as np
import pytest
import torch

import cnnkit
from cnnkit.nn import Parameter

from .common import NAMES, assert_same_params, cn_params, cn_step, make_arrays, run_both

ALL = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01)),
]


def _groups(ps):
    return [{"params": ps[:2], "lr": 0.002}, {"params": ps[2:]}]


@pytest.mark.parametrize("name, kwargs", ALL)
def test_parameter_groups_with_different_lr_match_torch(name, kwargs):
    cn_p, th_p, cn_opt, th_opt = run_both(getattr(cnnkit.optim, name), getattr(torch.optim, name), kwargs,
                                          groups=_groups)
    assert_same_params(cn_p, th_p, np.float64)
    assert [g["lr"] for g in cn_opt.param_groups] == [0.002, kwargs["lr"]]
    sd = cn_opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in th_opt.state_dict()["param_groups"]]


@pytest.mark.parametrize("name, kwargs", ALL)
def test_frozen_parameter_gets_no_state_and_stays(name, kwargs):
    arrays = make_arrays()
    params = cn_params(arrays, frozen=("w1",))
    opt = getattr(cnnkit.optim, name)(params, **kwargs)
    for _ in range(3):
        cn_step(opt, params, arrays)
    assert 0 not in opt.state and params[0] not in opt.state
    assert sorted(opt.state) == ([1, 2, 3] if name != "SGD" or kwargs.get("momentum") else [])
    np.testing.assert_array_equal(params[0].data, arrays["w1"])
    assert opt.state_dict()["param_groups"][0]["params"] == [0, 1, 2, 3]


@pytest.mark.parametrize("name, kwargs", ALL)
def test_frozen_parameter_matches_torch(name, kwargs):
    cn_p, th_p, *_ = run_both(getattr(cnnkit.optim, name), getattr(torch.optim, name), kwargs, frozen=("b1",))
    assert_same_params(cn_p, th_p, np.float64)


def test_parameter_with_grad_but_requires_grad_false_is_skipped():
    p = Parameter(np.ones(3), requires_grad=False)
    q = Parameter(np.ones(3))
    opt = cnnkit.optim.Adam([p, q], lr=0.1)
    p.grad = q.grad = cnnkit.tensor(np.ones(3))
    opt.step()
    np.testing.assert_array_equal(p.data, np.ones(3))
    assert list(opt.state) == [1] and q in opt.state and p not in opt.state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", ALL)
def test_state_dict_round_trip_is_bit_for_bit(name, kwargs, dtype):
    cls = getattr(cnnkit.optim, name)
    arrays = make_arrays(dtype)
    straight = cn_params(arrays)
    opt = cls(_groups(straight), **kwargs)
    for _ in range(20):
        cn_step(opt, straight, arrays)

    resumed = cn_params(arrays)
    opt1 = cls(_groups(resumed), **kwargs)
    for _ in range(10):
        cn_step(opt1, resumed, arrays)
    sd = pickle.loads(pickle.dumps(opt1.state_dict()))  # survives serialisation
    at_10 = {n: p.data.copy() for n, p in zip(NAMES, resumed)}
    saved = {i: {k: np.array(v) for k, v in s.items()} for i, s in sd["state"].items()}
    for _ in range(3):  # the saved dict holds copies: later steps do not change it
        cn_step(opt1, resumed, arrays)
    for i, s in sd["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(v, saved[i][k])
    resumed = cn_params(at_10)  # a fresh model at step 10 and a fresh optimiser with other options
    opt2 = cls(_groups(resumed), lr=123.0)
    opt2.load_state_dict(sd)
    assert [g["lr"] for g in opt2.param_groups] == [0.002, kwargs["lr"]]
    for _ in range(10):
        cn_step(opt2, resumed, arrays)
    for n, a, b in zip(NAMES, straight, resumed):
        assert b.data.dtype == dtype
        np.testing.assert_array_equal(a.data, b.data, err_msg=n)


def test_state_dict_structure_matches_torch():
    cn_p, th_p, cn_opt, th_opt = run_both(cnnkit.optim.Adam, torch.optim.Adam, dict(lr=0.01), steps=2,
                                          groups=_groups)
    cn_sd, th_sd = cn_opt.state_dict(), th_opt.state_dict()
    assert sorted(cn_sd) == ["param_groups", "state"]
    assert sorted(cn_sd["state"]) == sorted(th_sd["state"]) == [0, 1, 2, 3]
    for i in range(4):
        assert sorted(cn_sd["state"][i]) == sorted(th_sd["state"][i])
        assert isinstance(cn_sd["state"][i]["exp_avg"], np.ndarray)
    for cg, tg in zip(cn_sd["param_groups"], th_sd["param_groups"]):
        assert cg["params"] == tg["params"]
        for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
            assert cg[key] == tg[key]


def test_load_state_dict_casts_arrays_to_parameter_dtype():
    p64 = Parameter(np.ones(3, dtype=np.float64))
    opt = cnnkit.optim.SGD([p64], lr=0.1, momentum=0.9)
    p64.grad = cnnkit.tensor(np.full(3, 0.5))
    opt.step()
    p32 = Parameter(np.ones(3, dtype=np.float32))
    opt32 = cnnkit.optim.SGD([p32], lr=0.1, momentum=0.9)
    opt32.load_state_dict(opt.state_dict())
    assert opt32.state[p32]["momentum_buffer"].dtype == np.float32


def test_load_state_dict_errors():
    a, b = Parameter(np.ones(3)), Parameter(np.ones((2, 2)))
    opt = cnnkit.optim.Adam([a, b])
    a.grad, b.grad = cnnkit.tensor(np.ones(3)), cnnkit.tensor(np.ones((2, 2)))
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="loaded state dict has a different number of parameter groups"):
        cnnkit.optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="loaded state dict contains a parameter group that doesn't match the size"):
        cnnkit.optim.Adam([a]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(3,\), but the parameter "
                                         r"has shape \(2, 2\)"):
        cnnkit.optim.Adam([b, a]).load_state_dict(sd)
    with pytest.raises(ValueError, match="must be a dict with keys 'state' and 'param_groups'"):
        cnnkit.optim.Adam([a, b]).load_state_dict({"state": {}})
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        cnnkit.optim.Adam([a, b]).load_state_dict(bad)


def test_zero_grad():
    p = Parameter(np.ones(3))
    opt = cnnkit.optim.SGD([p], lr=0.1)
    p.grad = cnnkit.tensor(np.ones(3))
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g
    np.testing.assert_array_equal(p.grad.data, np.zeros(3))
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # nothing to do without gradients
    np.testing.assert_array_equal(p.data, np.ones(3))


def test_step_is_in_place_and_keeps_dtype():
    p = Parameter(np.ones(3, dtype=np.float32))
    data = p.data
    opt = cnnkit.optim.Adam([p], lr=0.1)
    p.grad = cnnkit.tensor(np.ones(3, dtype=np.float64))  # grad cast to the parameter's dtype
    opt.step()
    assert p.data is data and p.data.dtype == np.float32
    assert opt.state[p]["exp_avg"].dtype == np.float32


def test_step_on_a_read_only_parameter_array():
    arr = np.ones(3)
    arr.flags.writeable = False
    p = Parameter(arr)
    opt = cnnkit.optim.SGD([p], lr=0.5)
    p.grad = cnnkit.tensor(np.ones(3))
    opt.step()
    np.testing.assert_array_equal(p.data, np.full(3, 0.5))


def test_step_runs_closure_and_returns_its_loss():
    arrays = make_arrays()
    params = cn_params(arrays)
    opt = cnnkit.optim.SGD(params, lr=0.1)

    def closure():
        opt.zero_grad()
        loss = ((cnnkit.tensor(arrays["x"]) @ params[0]) ** 2).mean()
        loss.backward()
        return loss

    with cnnkit.no_grad():
        loss = opt.step(closure)
    assert loss.item() > 0 and params[0].grad is not None


def test_add_param_group_and_named_parameters():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = cnnkit.optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    a.grad = b.grad = cnnkit.tensor(np.ones(2))
    opt.step()
    np.testing.assert_allclose(b.data, 0.5)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [a]})
    named = cnnkit.optim.Adam([("w", a), ("v", b)])
    assert named.param_groups[0]["param_names"] == ["w", "v"]
    assert named.state_dict()["param_groups"][0]["param_names"] == ["w", "v"]
    with pytest.raises(ValueError, match="all optimizer param groups should be with/without names"):
        named.add_param_group({"params": [Parameter(np.ones(1))]})


def test_construction_errors():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        cnnkit.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="params argument given to the optimizer should be an iterable of Tensors "
                                        "or dicts, but got Parameter"):
        cnnkit.optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the params is ndarray"):
        cnnkit.optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        cnnkit.optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="duplicate parameters"):
        cnnkit.optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="ordering of tensors in sets will change"):
        cnnkit.optim.SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match="param_group must be a dict, but got list"):
        cnnkit.optim.SGD([p], lr=0.1).add_param_group([p])
    with pytest.raises(TypeError, match="can only optimize floating-point Tensors, got dtype int64"):
        cnnkit.optim.SGD([cnnkit.tensor([1, 2])], lr=0.1)


def test_required_default_must_be_given():
    class Plain(cnnkit.optim.Optimizer):
        def __init__(self, params, lr=cnnkit.optim.required):
            super().__init__(params, dict(lr=lr))

    with pytest.raises(ValueError, match="parameter group didn't specify a value of required optimization "
                                         "parameter lr"):
        Plain([Parameter(np.ones(2))])
    assert Plain([Parameter(np.ones(2))], lr=0.1).param_groups[0]["lr"] == 0.1


def test_repr_lists_groups():
    opt = cnnkit.optim.SGD([Parameter(np.ones(2))], lr=0.1)
    text = repr(opt)
    assert text.startswith("SGD (\nParameter Group 0\n") and "    lr: 0.1\n" in text and "params" not in text
