import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

import cnnkit
from cnnkit.nn import Parameter

from .common import assert_same_params, run_both

ADAM = [
    dict(),
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
]
ADAMW = [dict(), dict(lr=0.01), dict(lr=0.01, weight_decay=0.5), dict(lr=0.01, amsgrad=True, weight_decay=0.1)]


def _ids(k):
    return ",".join(f"{a}={b}" for a, b in k.items()) or "defaults"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", ADAM, ids=_ids)
def test_adam_matches_torch_after_25_steps(kwargs, dtype):
    cn_p, th_p, cn_opt, th_opt = run_both(cnnkit.optim.Adam, torch.optim.Adam, kwargs, dtype=dtype)
    assert_same_params(cn_p, th_p, dtype)
    for i, p in enumerate(th_p):
        ts, cs = th_opt.state[p], cn_opt.state[i]
        assert cs["step"] == ts["step"].item() == 25
        assert set(cs) == set(ts)
        for key in ("exp_avg", "exp_avg_sq"):
            assert cs[key].dtype == dtype
            np.testing.assert_allclose(cs[key], ts[key].numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", ADAMW, ids=_ids)
def test_adamw_matches_torch_after_25_steps(kwargs, dtype):
    cn_p, th_p, *_ = run_both(cnnkit.optim.AdamW, torch.optim.AdamW, kwargs, dtype=dtype)
    assert_same_params(cn_p, th_p, dtype)


@given(lr=st.floats(1e-4, 0.05), beta1=st.floats(0, 0.99), beta2=st.floats(0.5, 0.9999),
       weight_decay=st.floats(0, 0.2), amsgrad=st.booleans(), decoupled=st.booleans())
def test_adam_random_options_match_torch(lr, beta1, beta2, weight_decay, amsgrad, decoupled):
    kwargs = dict(lr=lr, betas=(beta1, beta2), weight_decay=weight_decay, amsgrad=amsgrad)
    cls, th_cls = (cnnkit.optim.AdamW, torch.optim.AdamW) if decoupled else (cnnkit.optim.Adam, torch.optim.Adam)
    cn_p, th_p, *_ = run_both(cls, th_cls, kwargs, steps=8)
    assert_same_params(cn_p, th_p, np.float64)


def test_adamw_defaults_are_torchs():
    cn = cnnkit.optim.AdamW([Parameter(np.ones(2))])
    th = torch.optim.AdamW([torch.ones(2, requires_grad=True)])
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay"):
        assert cn.defaults[key] == th.defaults[key], key


def test_adamw_load_keeps_decoupled_weight_decay():
    p = Parameter(np.ones(2))
    sd = cnnkit.optim.Adam([p], weight_decay=0.1).state_dict()
    opt = cnnkit.optim.AdamW([p])
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    assert opt.param_groups[0]["weight_decay"] == 0.1


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), r"Invalid learning rate: -0\.1"),
    (dict(eps=-1.0), r"Invalid epsilon value: -1\.0"),
    (dict(betas=(1.0, 0.999)), r"Invalid beta parameter at index 0: 1\.0"),
    (dict(betas=(0.9, -0.1)), r"Invalid beta parameter at index 1: -0\.1"),
    (dict(weight_decay=-0.01), r"Invalid weight_decay value: -0\.01"),
])
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_invalid_options(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(cnnkit.optim, name)([Parameter(np.ones(2))], **kwargs)
    with pytest.raises(ValueError, match=match):
        getattr(torch.optim, name)([torch.ones(2, requires_grad=True)], **kwargs)


def test_adam_betas_must_be_a_pair():
    with pytest.raises(ValueError, match=r"betas must be a pair of floats, got \(0\.9,\)"):
        cnnkit.optim.Adam([Parameter(np.ones(2))], betas=(0.9,))
