"""Initialisation: PyTorch's bounds and fans; skip_init for shape-only work."""
import math

import numpy as np
import pytest
import torch

import cnnkit
from cnnkit import nn
from cnnkit.nn import init


@pytest.mark.parametrize("shape", [(16, 3, 5, 5), (120, 400), (8, 1, 3, 3, 3)])
def test_fans_match_torch(shape):
    t = torch.empty(shape)
    assert init.calculate_fan_in_and_fan_out(cnnkit.zeros(shape)) == torch.nn.init._calculate_fan_in_and_fan_out(t)


@pytest.mark.parametrize("nonlinearity,param", [("relu", None), ("tanh", None), ("leaky_relu", math.sqrt(5)),
                                                ("sigmoid", None), ("linear", None)])
def test_gains_match_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param))


def test_kaiming_uniform_stays_within_torchs_bound_and_fills_it():
    cnnkit.manual_seed(0)
    w = cnnkit.zeros(64, 32, 3, 3)
    init.kaiming_uniform_(w, a=math.sqrt(5))
    bound = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3 / (32 * 9))
    assert w.dtype == np.float32
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound
    assert abs(w.data.std() - bound / math.sqrt(3)) < 0.02 * bound


def test_skip_init_draws_nothing():
    cnnkit.manual_seed(5)
    with init.skip_init():
        nn.Conv2d(3, 8, 3)
        nn.Linear(10, 4)
    after = cnnkit.randn(3).data
    cnnkit.manual_seed(5)
    np.testing.assert_array_equal(after, cnnkit.randn(3).data)
