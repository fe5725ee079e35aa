"""F.pad (constant mode) against PyTorch: values and gradients, crops, errors; the option-A shortcut built on it."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnkit
import cnnkit.nn.functional as F
from cnnkit.models import ShortcutA
from tests.helpers import check_op


@st.composite
def pad_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    axes = draw(st.integers(1, len(shape)))
    pad = []
    for size in reversed(shape[len(shape) - axes:]):               # the last axis first, as PyTorch
        lo = draw(st.integers(-(size - 1), 3))
        hi = draw(st.integers(-(size - 1 - max(0, -lo)), 3))         # crops leave at least one value
        pad += [lo, hi]
    return shape, tuple(pad), draw(st.sampled_from([None, 0.0, -1.5]))


@settings(max_examples=60, deadline=None)
@given(case=pad_cases(), dtype=st.sampled_from([np.float64, np.float32]))
def test_pad_matches_torch(case, dtype):
    shape, pad, value = case
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    kw = {} if value is None else {"value": value}
    check_op(lambda t: F.pad(t, pad, **kw), lambda t: TF.pad(t, pad, **kw), x, dtype=dtype)


def test_pad_channels_of_a_strided_view_matches_torch(rng):
    # the option-A shortcut's pattern: a subsampled (non-contiguous) input, channels padded on both sides
    x = rng.standard_normal((3, 4, 7, 6))
    check_op(lambda t: F.pad(t[:, :, ::2, ::2], (0, 0, 0, 0, 2, 3)),
             lambda t: TF.pad(t[:, :, ::2, ::2], (0, 0, 0, 0, 2, 3)), x)


@pytest.mark.parametrize("args,match", [
    (((1, 2, 3),), "even number of ints, got \\(1, 2, 3\\)"),
    (((1.0, 2),), "even number of ints"),
    (((1, 1) * 3,), "6 padding values for a tensor of 2 axes"),
    (((-3, 0),), "negative size \\(2, -1\\)"),
    (((1, 1), "reflect"), "mode must be 'constant'.*got 'reflect'"),
])
def test_pad_refuses_bad_arguments_naming_them(args, match):
    with pytest.raises(ValueError, match=match):
        F.pad(cnnkit.zeros(2, 2), *args)
    with pytest.raises(TypeError, match="input must be a cnnkit Tensor, got ndarray"):
        F.pad(np.zeros((2, 2)), (1, 1))


@pytest.mark.parametrize("cin,cout,stride", [(16, 32, 2), (3, 8, 2), (4, 4, 1), (4, 7, 3)])
def test_shortcut_a_matches_its_definition_in_torch(cin, cout, stride, rng):
    # subsample, then (cout − cin) zero channels split before and after (the CIFAR reimplementation's lambda)
    extra = cout - cin

    def reference(t):
        return TF.pad(t[:, :, ::stride, ::stride], (0, 0, 0, 0, extra // 2, extra - extra // 2))
    check_op(ShortcutA(cin, cout, stride), reference, rng.standard_normal((2, cin, 9, 8)))
