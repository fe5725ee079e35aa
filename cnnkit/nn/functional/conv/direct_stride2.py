"""The direct convolution at stride 2 for 3-wide kernels (ResNet's and MobileNet's downsampling layers) by compiled
loops (:mod:`.direct_stride2_loops`): forward, weight gradient and input gradient.

Each padded plane is first split into its four stride-2 phases (even/odd rows × even/odd columns, as the strided
depthwise loops do), so that every tap is again a contiguous run: kernel row r reads phase row r % 2, r // 2 rows
down, its taps 0 and 2 from the even columns' phase (at v and v + 1) and tap 1 from the odd one's
(``f[v] += w0·e[v] + w1·o[v] + w2·e[v+1]``), on a frame of Ho rows of wq. The input gradient is that sum's adjoint:
the output gradient's frame spread back onto the four phases (``e[u] += w0·f[u] + w2·f[u−1]``, ``o[u] += w1·f[u]``),
then cropped out of them — where the GEMM algorithm builds ``Wᵀ @ dY``, nine times the input's size, and adds it back
by col2im. Otherwise as :mod:`.direct`.
"""
from __future__ import annotations

import numpy as np

from .... import parallel
from .algorithm import FORWARD, INPUT_GRAD, WEIGHT_GRAD, Algorithm
from .direct import DIRECT_GROUP, few_channels, filter_groups, forward_arrays, grad_weight_blocks, structure
from .geometry import Geometry

__all__ = ["FORWARD_DIRECT_STRIDE2", "INPUT_GRAD_DIRECT_STRIDE2", "WEIGHT_GRAD_DIRECT_STRIDE2"]


def _loops():
    from . import direct_stride2_loops  # Numba: imported at the first compiled call
    return direct_stride2_loops


def _applies(geom: Geometry) -> bool:
    return structure(geom, (2, 2), (3,))


def _phase(geom: Geometry) -> tuple:
    """The phase planes' (hq, wq)."""
    return tuple(-(-p // 2) for p in geom.padded)


def _forward(geom: Geometry, x: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    xd, wg, b, out = forward_arrays(geom, x, w, bias)
    (pt, _), (pl, _) = geom.pads
    hq, wq = _phase(geom)
    parallel.run_claimed(lambda counter: _loops().direct_forward_s2(xd, wg, b, out, pt, pl, hq, wq, counter), geom.n)
    return out


def _weight_grad(geom: Geometry, g: np.ndarray, x: np.ndarray) -> np.ndarray:
    g4, xd = np.ascontiguousarray(g), np.ascontiguousarray(x)
    (pt, _), (pl, _) = geom.pads
    hq, wq = _phase(geom)
    return grad_weight_blocks(geom, 4, lambda parts, starts, counter: _loops().direct_grad_weight_s2(
        g4, xd, parts, starts, pt, pl, hq, wq, counter))                  # four filters per pass


def _input_grad(geom: Geometry, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    wg = filter_groups(np.ascontiguousarray(w), DIRECT_GROUP)
    g4 = np.ascontiguousarray(g)
    gx = np.empty((geom.n, geom.c) + tuple(geom.in_size), dtype=w.dtype)
    (pt, _), (pl, _) = geom.pads
    hq, wq = _phase(geom)
    parallel.run_claimed(lambda counter: _loops().direct_grad_input_s2(g4, wg, gx, pt, pl, hq, wq, counter), geom.n)
    return gx


FORWARD_DIRECT_STRIDE2 = Algorithm("direct-stride2", FORWARD, _forward, _applies, few_channels, family="direct",
                                   compiled=True)
INPUT_GRAD_DIRECT_STRIDE2 = Algorithm("direct-stride2", INPUT_GRAD, _input_grad, _applies, few_channels,
                                      family="direct", compiled=True)
WEIGHT_GRAD_DIRECT_STRIDE2 = Algorithm("direct-stride2", WEIGHT_GRAD, _weight_grad, _applies, few_channels,
                                       family="direct", compiled=True)
