"""The input gradient at stride 1 as a forward convolution (Chainer's habit: the gradient w.r.t. the input is a
transposed convolution), run by whichever forward algorithm the selection picks for it.

``dX[y] = Σ_i dY[y + P_lo − i·d]·W[i]`` is a stride-1 correlation of dY, padded by ``(k−1)·d − P`` per side, with
the kernel flipped and in/out channels swapped (:meth:`.geometry.Geometry.transposed`): one forward-shaped GEMM
(inner axis K·∏k, small output) instead of ``Wᵀ @ dY`` (inner axis K, a ∏k-times larger output) plus col2im —
and any faster forward algorithm (Winograd for ResNet's 8×8 stage, the row-shifted GEMM for VGG's) serves dX too.
"""
from __future__ import annotations

import math

import numpy as np

from .algorithm import FORWARD, INPUT_GRAD, Algorithm
from .geometry import Geometry
from .plan import Plan

__all__ = ["INPUT_GRAD_TRANSPOSED", "flipped"]


def flipped(geom: Geometry, w: np.ndarray) -> np.ndarray:
    """The filters of :meth:`Geometry.transposed`: ``(C, K/g, *k)``, each group's in/out channels swapped and the
    kernel flipped along every axis."""
    groups, kg, cg = geom.groups, geom.k_out // geom.groups, geom.c // geom.groups
    flip = (slice(None),) * 3 + (slice(None, None, -1),) * geom.nd
    wf = w.reshape((groups, kg, cg) + geom.ksize).swapaxes(1, 2)[flip]            # (g, C/g, K/g, *k)
    return np.ascontiguousarray(wf).reshape((geom.c, kg) + geom.ksize)


def _run(geom: Geometry, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    from .registry import run  # the forward selection, for the transposed geometry
    return run(FORWARD, geom.transposed(), np.ascontiguousarray(g), flipped(geom, w), None)


def _applies(geom: Geometry) -> bool:
    return geom.transposed() is not None


def _preferred(geom: Geometry) -> bool:
    """By the GEMM's cost: the convolution of dY builds K·∏k·∏frame' columns where col2im's route writes and re-reads
    C·∏k·∏frame; with more output than input channels and a wide padded frame (LeNet's C3: 6 → 16, 5×5) col2im is
    cheaper. The stride-1 frame must fit (:func:`.plan.flat_frame_fits`)."""
    plan = Plan(geom)
    if not plan.flat:
        return False
    tplan = Plan(geom.transposed())
    return geom.k_out * math.prod(tplan.frame) <= 1.25 * geom.c * math.prod(plan.frame)


INPUT_GRAD_TRANSPOSED = Algorithm("transposed", INPUT_GRAD, _run, _applies, _preferred)
