"""Learning-rate schedulers: lr sequences equal PyTorch's exactly, state dicts, errors."""
import numpy as np
import pytest
import torch

import cnnkit
from cnnkit.nn import Parameter
from cnnkit.optim import lr_scheduler as cn_sched
from torch.optim import lr_scheduler as th_sched

from .common import assert_same_params, cn_params, cn_step, make_arrays, th_params, th_step

CASES = [
    ("StepLR", dict(step_size=3)),
    ("StepLR", dict(step_size=4, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=10)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.25, end_factor=0.5, total_iters=6)),
]


def _opts():
    cn = cnnkit.optim.SGD([{"params": [Parameter(np.ones(2))]}, {"params": [Parameter(np.ones(2))], "lr": 0.03}],
                          lr=0.1, momentum=0.9)
    th = torch.optim.SGD([{"params": [torch.ones(2, requires_grad=True)]},
                          {"params": [torch.ones(2, requires_grad=True)], "lr": 0.03}], lr=0.1, momentum=0.9)
    return cn, th


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("name, kwargs", CASES, ids=lambda c: str(c))
def test_lr_sequence_equals_torch_exactly(name, kwargs):
    cn_opt, th_opt = _opts()
    cn, th = getattr(cn_sched, name)(cn_opt, **kwargs), getattr(th_sched, name)(th_opt, **kwargs)
    assert cn.get_last_lr() == th.get_last_lr() == _lrs(cn_opt)
    period = 2 * kwargs.get("T_max", 10)
    for epoch in range(2 * period + 3):  # two full cosine periods and a little more
        th_opt.step()  # no grads: only silences torch's call-order warning
        cn.step()
        th.step()
        assert cn.get_last_lr() == th.get_last_lr(), f"epoch {epoch + 1}"  # bit for bit
        assert _lrs(cn_opt) == _lrs(th_opt)
        assert cn.last_epoch == th.last_epoch


def test_cosine_reaches_eta_min_at_T_max_and_returns_to_base_lr():
    opt = cnnkit.optim.SGD([Parameter(np.ones(1))], lr=0.1)
    sched = cn_sched.CosineAnnealingLR(opt, T_max=5, eta_min=0.01)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(10):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[5] == pytest.approx(0.01, abs=1e-15) and lrs[10] == pytest.approx(0.1, abs=1e-15)
    np.testing.assert_allclose(lrs, 0.01 + 0.09 * (1 + np.cos(np.pi * np.arange(11) / 5)) / 2, rtol=1e-12)


@pytest.mark.parametrize("name, kwargs", CASES[:1] + CASES[4:6], ids=lambda c: str(c))
def test_scheduler_state_dict_round_trip(name, kwargs):
    cn_opt, _ = _opts()
    sched = getattr(cn_sched, name)(cn_opt, **kwargs)
    for _ in range(7):
        sched.step()
    opt_sd, sched_sd = cn_opt.state_dict(), sched.state_dict()
    assert "optimizer" not in sched_sd and sched_sd["last_epoch"] == 7
    expected = []
    for _ in range(15):
        sched.step()
        expected.append(sched.get_last_lr())
    opt2, _ = _opts()
    opt2.load_state_dict(opt_sd)
    sched2 = getattr(cn_sched, name)(opt2, **kwargs)
    sched2.load_state_dict(sched_sd)
    got = []
    for _ in range(15):
        sched2.step()
        got.append(sched2.get_last_lr())
    assert got == expected


def test_resume_with_last_epoch_equals_torch():
    cn_opt, th_opt = _opts()
    for opt in (cn_opt, th_opt):
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    cn = cn_sched.CosineAnnealingLR(cn_opt, T_max=10, last_epoch=4)
    th = th_sched.CosineAnnealingLR(th_opt, T_max=10, last_epoch=4)
    for _ in range(8):
        assert cn.get_last_lr() == th.get_last_lr()
        th_opt.step()
        cn.step()
        th.step()


def test_scheduled_training_matches_torch():
    arrays = make_arrays(np.float32)
    cn_p, th_p = cn_params(arrays), th_params(arrays)
    cn_opt = cnnkit.optim.SGD(cn_p, lr=0.1, momentum=0.9)
    th_opt = torch.optim.SGD(th_p, lr=0.1, momentum=0.9)
    cn_s, th_s = cn_sched.CosineAnnealingLR(cn_opt, T_max=5), th_sched.CosineAnnealingLR(th_opt, T_max=5)
    for _ in range(12):
        cn_step(cn_opt, cn_p, arrays)
        th_step(th_opt, th_p, arrays)
        cn_s.step()
        th_s.step()
    assert_same_params(cn_p, th_p, np.float32)


def test_scheduler_errors():
    opt = cnnkit.optim.SGD([Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        cn_sched.StepLR([], step_size=2)
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer, got 0"):
        cn_sched.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match=r"StepLR: step_size must be a positive integer, got 2\.5"):
        cn_sched.StepLR(opt, step_size=2.5)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be positive, got 0"):
        cn_sched.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(TypeError, match="MultiStepLR: milestones must be integers, got 'a'"):
        cn_sched.MultiStepLR(opt, milestones=["a"])
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\]"):
        cn_sched.StepLR(opt, step_size=2, last_epoch=3)
    for kwargs, match in [(dict(start_factor=0), "Starting multiplicative factor expected to be greater than 0"),
                          (dict(end_factor=1.5), "Ending multiplicative factor expected to be between 0 and 1.")]:
        with pytest.raises(ValueError, match=match):
            cn_sched.LinearLR(opt, **kwargs)
        with pytest.raises(ValueError, match=match):
            th_sched.LinearLR(torch.optim.SGD([torch.ones(1, requires_grad=True)]), **kwargs)
