import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import cnnkit
from cnnkit.nn import Parameter

from .common import assert_same_params, run_both

COMBOS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.5, weight_decay=0.1),
    dict(lr=0.01, momentum=0.5, nesterov=True, weight_decay=0.01, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", COMBOS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_sgd_matches_torch_after_25_steps(kwargs, dtype):
    cn_p, th_p, cn_opt, th_opt = run_both(cnnkit.optim.SGD, torch.optim.SGD, kwargs, dtype=dtype)
    assert_same_params(cn_p, th_p, dtype)
    for i, p in enumerate(th_p):  # momentum buffers too
        buf = th_opt.state[p].get("momentum_buffer")
        if buf is None:
            assert i not in cn_opt.state
        else:
            np.testing.assert_allclose(cn_opt.state[i]["momentum_buffer"], buf.numpy(), rtol=1e-5, atol=1e-6)
            assert cn_opt.state[i]["momentum_buffer"].dtype == dtype


@given(lr=st.floats(1e-3, 0.2), momentum=st.floats(0, 0.99), dampening=st.floats(0, 0.9),
       weight_decay=st.floats(0, 0.1), nesterov=st.booleans())
def test_sgd_random_options_match_torch(lr, momentum, dampening, weight_decay, nesterov):
    if nesterov:
        momentum, dampening = max(momentum, 0.1), 0.0
    kwargs = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    cn_p, th_p, *_ = run_both(cnnkit.optim.SGD, torch.optim.SGD, kwargs, steps=8)
    assert_same_params(cn_p, th_p, np.float64)


def test_sgd_plain_keeps_no_state_and_default_lr_is_torchs():
    p = Parameter(np.ones(3))
    opt = cnnkit.optim.SGD([p])
    assert opt.defaults["lr"] == torch.optim.SGD([torch.ones(3, requires_grad=True)]).defaults["lr"] == 1e-3
    p.grad = cnnkit.tensor(np.full(3, 2.0))
    opt.step()
    np.testing.assert_array_equal(p.data, np.full(3, 1 - 2e-3))
    assert len(opt.state) == 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), r"Invalid learning rate: -0\.1"),
    (dict(lr=0.1, momentum=-0.5), r"Invalid momentum value: -0\.5"),
    (dict(lr=0.1, weight_decay=-1e-4), r"Invalid weight_decay value: -0\.0001"),
    (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero"),
])
def test_sgd_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnkit.optim.SGD([Parameter(np.ones(2))], **kwargs)
    with pytest.raises(ValueError, match=match):  # the same message as PyTorch
        torch.optim.SGD([torch.ones(2, requires_grad=True)], **kwargs)


def test_sgd_invalid_option_in_a_group():
    with pytest.raises(ValueError, match=r"Invalid learning rate: -1"):
        cnnkit.optim.SGD([{"params": [Parameter(np.ones(2))], "lr": -1}], lr=0.1)
    with pytest.raises(TypeError, match=r"Invalid learning rate: expected a real number, got '0.1'"):
        cnnkit.optim.SGD([Parameter(np.ones(2))], lr="0.1")
