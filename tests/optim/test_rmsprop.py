import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import cnnkit
from cnnkit.nn import Parameter

from .common import assert_same_params, run_both

COMBOS = [
    dict(),
    dict(lr=0.005, alpha=0.9),
    dict(lr=0.005, momentum=0.9),
    dict(lr=0.005, centered=True),
    dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.1),
    dict(lr=0.001, eps=1e-4, weight_decay=0.01, maximize=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", COMBOS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "defaults")
def test_rmsprop_matches_torch_after_25_steps(kwargs, dtype):
    cn_p, th_p, cn_opt, th_opt = run_both(cnnkit.optim.RMSprop, torch.optim.RMSprop, kwargs, dtype=dtype)
    assert_same_params(cn_p, th_p, dtype)
    for i, p in enumerate(th_p):
        assert set(cn_opt.state[i]) == set(th_opt.state[p])
        np.testing.assert_allclose(cn_opt.state[i]["square_avg"], th_opt.state[p]["square_avg"].numpy(),
                                   rtol=1e-5, atol=1e-8)


@given(lr=st.floats(1e-4, 0.02), alpha=st.floats(0.5, 0.999), momentum=st.floats(0, 0.95),
       weight_decay=st.floats(0, 0.1), centered=st.booleans())
def test_rmsprop_random_options_match_torch(lr, alpha, momentum, weight_decay, centered):
    kwargs = dict(lr=lr, alpha=alpha, momentum=momentum, weight_decay=weight_decay, centered=centered)
    cn_p, th_p, *_ = run_both(cnnkit.optim.RMSprop, torch.optim.RMSprop, kwargs, steps=8)
    assert_same_params(cn_p, th_p, np.float64)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), r"Invalid learning rate: -0\.1"),
    (dict(eps=-1e-8), r"Invalid epsilon value: -1e-08"),
    (dict(momentum=-0.9), r"Invalid momentum value: -0\.9"),
    (dict(weight_decay=-0.5), r"Invalid weight_decay value: -0\.5"),
    (dict(alpha=-0.99), r"Invalid alpha value: -0\.99"),
])
def test_rmsprop_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnnkit.optim.RMSprop([Parameter(np.ones(2))], **kwargs)
    with pytest.raises(ValueError, match=match):
        torch.optim.RMSprop([torch.ones(2, requires_grad=True)], **kwargs)
