import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import cnnkit
from cnnkit.nn import Parameter

from .common import assert_same_params, run_both

COMBOS = [
    dict(),
    dict(lr=0.1),
    dict(lr=0.1, lr_decay=0.05),
    dict(lr=0.1, initial_accumulator_value=0.5),
    dict(lr=0.1, weight_decay=0.1, eps=1e-6),
    dict(lr=0.05, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", COMBOS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "defaults")
def test_adagrad_matches_torch_after_25_steps(kwargs, dtype):
    cn_p, th_p, cn_opt, th_opt = run_both(cnnkit.optim.Adagrad, torch.optim.Adagrad, kwargs, dtype=dtype)
    assert_same_params(cn_p, th_p, dtype)
    for i, p in enumerate(th_p):
        assert cn_opt.state[i]["step"] == th_opt.state[p]["step"].item() == 25
        np.testing.assert_allclose(cn_opt.state[i]["sum"], th_opt.state[p]["sum"].numpy(), rtol=1e-5, atol=1e-7)


@given(lr=st.floats(1e-3, 0.3), lr_decay=st.floats(0, 0.2), weight_decay=st.floats(0, 0.1),
       initial=st.floats(0, 1.0))
def test_adagrad_random_options_match_torch(lr, lr_decay, weight_decay, initial):
    kwargs = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=initial)
    cn_p, th_p, *_ = run_both(cnnkit.optim.Adagrad, torch.optim.Adagrad, kwargs, steps=8)
    assert_same_params(cn_p, th_p, np.float64)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), r"Invalid learning rate: -0\.1"),
    (dict(lr_decay=-0.1), r"Invalid lr_decay value: -0\.1"),
    (dict(weight_decay=-0.1), r"Invalid weight_decay value: -0\.1"),
    (dict(initial_accumulator_value=-1.0), r"Invalid initial_accumulator_value value: -1\.0"),
    (dict(eps=-1e-10), r"Invalid epsilon value: -1e-10"),
])
def test_adagrad_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnkit.optim.Adagrad([Parameter(np.ones(2))], **kwargs)
    with pytest.raises(ValueError, match=match):
        torch.optim.Adagrad([torch.ones(2, requires_grad=True)], **kwargs)
