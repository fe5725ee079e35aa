"""A tiny two-layer problem run side by side in cnnkit and PyTorch, for optimiser parity tests.

The model is plain parameter tensors (no nn layers): ``out = tanh(x @ w1 + b1) @ w2 + b2`` with
tanh written through exp, loss = mean squared error. Both libraries start from the same arrays.
"""
from __future__ import annotations

import numpy as np
import torch

import cnnkit
from cnnkit.nn import Parameter

NAMES = ("w1", "b1", "w2", "b2")
SHAPES = {"w1": (5, 4), "b1": (4,), "w2": (4, 3), "b2": (3,)}


def make_arrays(dtype=np.float64, seed=0) -> dict:
    """Initial parameters and the data ``x`` (8, 5), ``y`` (8, 3), all of ``dtype``."""
    rng = np.random.default_rng(seed)
    arrays = {n: (rng.standard_normal(s) * 0.5).astype(dtype) for n, s in SHAPES.items()}
    arrays["x"] = rng.standard_normal((8, 5)).astype(dtype)
    arrays["y"] = rng.standard_normal((8, 3)).astype(dtype)
    return arrays


def _loss(p, x, y):
    e = ((x @ p[0] + p[1]) * 2).exp()  # (8, 4)
    h = (e - 1) / (e + 1)  # tanh
    out = h @ p[2] + p[3]  # (8, 3)
    return ((out - y) ** 2).mean()


def cn_params(arrays, frozen=()) -> list:
    return [Parameter(arrays[n].copy(), requires_grad=n not in frozen) for n in NAMES]


def th_params(arrays, frozen=()) -> list:
    return [torch.tensor(arrays[n].copy(), requires_grad=n not in frozen) for n in NAMES]


def cn_step(opt, params, arrays):
    opt.zero_grad()
    loss = _loss(params, cnnkit.tensor(arrays["x"]), cnnkit.tensor(arrays["y"]))
    loss.backward()
    opt.step()
    return loss.item()


def th_step(opt, params, arrays):
    opt.zero_grad()
    loss = _loss(params, torch.tensor(arrays["x"]), torch.tensor(arrays["y"]))
    loss.backward()
    opt.step()
    return loss.item()


def run_both(cn_cls, th_cls, kwargs=None, *, steps=25, dtype=np.float64, groups=None, frozen=(), seed=0):
    """Train ``steps`` steps with ``cn_cls(...)`` and ``th_cls(...)`` from the same start.

    ``groups`` (optional) maps the parameter list to the ``params`` argument (e.g. group dicts).
    Returns (cnnkit parameter list, torch parameter list, cnnkit optimiser, torch optimiser).
    """
    kwargs = kwargs or {}
    arrays = make_arrays(dtype, seed)
    cn_p, th_p = cn_params(arrays, frozen), th_params(arrays, frozen)
    make = groups or (lambda ps: ps)
    cn_opt, th_opt = cn_cls(make(cn_p), **kwargs), th_cls(make(th_p), **kwargs)
    for _ in range(steps):
        cn_step(cn_opt, cn_p, arrays)
        th_step(th_opt, th_p, arrays)
    return cn_p, th_p, cn_opt, th_opt


def assert_same_params(cn_p, th_p, dtype):
    tol = dict(rtol=1e-8, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    for name, c, t in zip(NAMES, cn_p, th_p):
        assert c.data.dtype == dtype, f"{name}: dtype {c.data.dtype}, expected {dtype}"
        np.testing.assert_allclose(c.data, t.detach().numpy(), **tol, err_msg=name)
