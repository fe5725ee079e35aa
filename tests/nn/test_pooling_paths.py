"""Max pooling's tap-by-tap running maximum: PyTorch's tie rule (first tap wins) and NaN propagation,
as produced by ReLU zeros; global average pooling through the adaptive op."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import cnnkit
from cnnkit import jit
from cnnkit.nn import functional as F
from tests.helpers import check_op


@pytest.fixture(params=[True, False], ids=["numba", "numpy"])
def compiled(request, monkeypatch):
    """Max pooling by the compiled loops (when Numba is there; loaded, as after a convolution) and by the NumPy tap
    passes."""
    monkeypatch.setattr(jit, "ENABLED", request.param and jit.ENABLED)
    monkeypatch.setattr(jit, "MIN_BYTES", 0)
    jit.available()
    return request.param


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_ties_send_the_gradient_to_the_first_maximum_like_torch(k, s, p, compiled, rng):
    x = np.maximum(rng.standard_normal((2, 3, 9, 9)), 0.0)     # ReLU output: many zero ties
    x[0, 0] = 0.0                                                # whole map tied
    x[1, 1, :4, :4] = 1.5                                        # ties at a positive value
    check_op(lambda t: F.max_pool2d(t, k, s, p), lambda t: TF.max_pool2d(t, k, s, p), x)


def test_nan_propagates_like_torch(compiled):
    x = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)
    x[0, 0, 1, 2] = np.nan
    out = F.max_pool2d(cnnkit.tensor(x), 2).data
    ref = TF.max_pool2d(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(out[~np.isnan(out)], ref[~np.isnan(ref)])
    check_op(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), x)   # the NaN takes its window's gradient


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_pool_to_one_is_the_global_mean(nd, rng):
    x = rng.standard_normal((2, 3) + (5,) * nd)
    cn = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[nd - 1]
    th = (TF.adaptive_avg_pool1d, TF.adaptive_avg_pool2d, TF.adaptive_avg_pool3d)[nd - 1]
    check_op(lambda t: cn(t, 1), lambda t: th(t, 1), x)
    check_op(lambda t: cn(t, 1), lambda t: th(t, 1), x, dtype=np.float32)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pool_in_blocks_on_several_threads_matches_torch(k, s, p, threads, compiled, rng, monkeypatch):
    from cnnkit.nn.functional import pooling
    monkeypatch.setattr(pooling, "BLOCK_BYTES", 1)                       # one image per block
    monkeypatch.setattr(cnnkit.parallel, "MIN_PARALLEL_BYTES", 0)
    x = rng.standard_normal((5, 3, 9, 8))
    x[1, 2, :2, :2] = 7.0                                                 # ties
    check_op(lambda a: F.max_pool2d(a, k, s, p), lambda a: TF.max_pool2d(a, k, s, p), x)
