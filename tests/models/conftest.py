import math

import numpy as np
import pytest

import cnnkit.nn.init as init


@pytest.fixture
def no_init(monkeypatch):
    """Skip random weight initialisation: building VGG-16 then takes milliseconds instead of
    seconds. Only for tests that look at shapes (parameter counts, state-dict keys)."""
    monkeypatch.setattr(init, "kaiming_uniform_", lambda t, *a, **k: t)
    monkeypatch.setattr(init, "uniform_", lambda t, *a, **k: t)


@pytest.fixture
def fast_init(monkeypatch):
    """A cheap stand-in for Kaiming-uniform: a 4,096-value random block tiled over the tensor, scaled to
    PyTorch's bound ``1/sqrt(fan_in)``. Enough for forward-pass smoke tests of the 100M-parameter models."""
    block = np.random.default_rng(0).uniform(-1, 1, 4096)

    def fill(t, bound):
        flat = t.data.reshape(-1)                       # a view: written in place, no temporaries
        rows = flat.size // block.size
        flat[:rows * block.size].reshape(rows, block.size)[...] = block * bound
        flat[rows * block.size:] = block[:flat.size - rows * block.size] * bound
        return t

    def kaiming(t, a=0, *args, **kwargs):
        fan_in, _ = init.calculate_fan_in_and_fan_out(t)
        return fill(t, math.sqrt(6 / ((1 + a * a) * max(fan_in, 1))))

    monkeypatch.setattr(init, "kaiming_uniform_", kaiming)
    monkeypatch.setattr(init, "uniform_", lambda t, a=0.0, b=1.0: fill(t, (b - a) / 2) if a == -b else fill(t, b))
