"""Depthwise convolution (``groups == in == out channels``: MobileNet, Xception) by compiled loops
(:mod:`.depthwise_loops`), 1-D (as one row) or 2-D.

There is no GEMM to lean on: each output channel is a stencil over one input channel. Each (image, channel) plane
is zero-padded into a small flat buffer that stays in cache; tap ``t`` of every output position is then the
contiguous run starting at ``offsets[t]``, computed on the frame that :func:`cnnkit.kernels.flat_windows`
describes — long contiguous loops that the compiler vectorises — and the valid columns are copied out. The forward
sums a 3×3 kernel's nine taps in one pass over the frame (other kernels three taps a pass), so the frame is written
once. A strided layer (MobileNet's stride-2 ones) first splits the padded plane into its stride's phases (for
stride 2: even rows and even columns, even rows and odd columns, …); every tap then reads one phase at a shift,
so the same contiguous loops compute only the outputs kept. A block of images per thread. The NumPy tap sums
(:mod:`.depthwise_numpy`) compute the same and are tested against these.
"""
from __future__ import annotations

import numpy as np

from .... import jit, parallel
from .algorithm import FORWARD, INPUT_GRAD, WEIGHT_GRAD, Algorithm
from .geometry import Geometry
from .plan import FLAT_FRAME_MAX

__all__ = ["FORWARD_DEPTHWISE", "INPUT_GRAD_DEPTHWISE", "WEIGHT_GRAD_DEPTHWISE"]


def _loops():
    from . import depthwise_loops  # Numba: imported at the first compiled call
    return depthwise_loops


def _two(geom: Geometry, t, one):
    """A 1-D layer's ``t`` as 2-D with one row (``one`` the row's value); a 2-D layer's as it is."""
    return (one,) + tuple(t) if geom.nd == 1 else tuple(t)


def _phases(geom: Geometry):
    """The loops' geometry: ``(phase, offsets)``. The padded plane is split into the stride's phases, each
    ``phase`` = (hq, wq) plus one row (stride 1: the padded plane); tap (r, s) reads phase (r·dh % sh, s·dw % sw)
    shifted by (r·dh // sh, s·dw // sw): ``offsets[t]``, in the flat buffer of phases."""
    (kh, kw), (dh, dw), (sh, sw) = _two(geom, geom.ksize, 1), _two(geom, geom.dilation, 1), _two(geom, geom.stride, 1)
    hp, wp = _two(geom, geom.padded, 1)
    hq, wq = -(-hp // sh), -(-wp // sw)
    offsets = [((r * dh % sh) * sw + s * dw % sw) * (hq + 1) * wq + (r * dh // sh) * wq + s * dw // sw
               for r in range(kh) for s in range(kw)]
    return (hq, wq), np.array(offsets, dtype=np.int64)


def _applies(geom: Geometry) -> bool:
    return geom.depthwise and geom.nd <= 2 and np.dtype(geom.dtype) in jit.DTYPES


def _preferred(geom: Geometry) -> bool:
    """At least :data:`cnnkit.jit.MIN_BYTES` of input, and a frame (Ho rows of wq) at most :data:`FLAT_FRAME_MAX`
    times the output (a 5×5 kernel on a 5×5 map: one output, a 1×9 frame)."""
    if geom.nbytes < jit.MIN_BYTES:
        return False
    wq = -(-_two(geom, geom.padded, 1)[1] // _two(geom, geom.stride, 1)[1])    # as _phases
    return wq <= FLAT_FRAME_MAX * _two(geom, geom.out_size, 1)[1]


def _args(geom: Geometry):
    phase, offsets = _phases(geom)
    pads = _two(geom, geom.pads, (0, 0))
    return pads[0][0], pads[1][0], *_two(geom, geom.stride, 1), phase[0], phase[1], offsets


def _planes(geom: Geometry, a: np.ndarray, size) -> np.ndarray:
    return np.ascontiguousarray(a).reshape((geom.n, geom.c) + _two(geom, size, 1))     # (N, C, H, W)


def _forward(geom: Geometry, x: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    """``out`` (N, C, Ho, Wo) ← the depthwise correlation of ``x`` (N, C, H, W) with ``w`` (C, T) at the stride, each
    plane zero-padded and split into the stride's phase planes (:func:`_phases`), a block of images per thread."""
    n, c = geom.n, geom.c
    w2, xd, args = np.ascontiguousarray(w.reshape(c, geom.taps)), _planes(geom, x, geom.in_size), _args(geom)
    out = np.empty((n, c) + _two(geom, geom.out_size, 1), dtype=x.dtype)

    def forward(blk):  # a contiguous block of images per thread: C-contiguous slices for the compiled loops
        _loops().forward(xd[blk], w2, out[blk], *args)
        if bias is not None:
            out[blk] += bias.reshape(c, 1, 1)
    parallel.run_slices(forward, n)
    return out.reshape((n, c) + tuple(geom.out_size))


def _input_grad(geom: Geometry, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    n, c = geom.n, geom.c
    w2, g4, args = np.ascontiguousarray(w.reshape(c, geom.taps)), _planes(geom, g, geom.out_size), _args(geom)
    gx = np.empty((n, c) + _two(geom, geom.in_size, 1), dtype=w.dtype)
    parallel.run_slices(lambda blk: _loops().grad_input(g4[blk], w2, gx[blk], *args), n)
    return gx.reshape((n, c) + tuple(geom.in_size))


def _weight_grad(geom: Geometry, g: np.ndarray, x: np.ndarray) -> np.ndarray:
    n, c = geom.n, geom.c
    g4, xd, args = _planes(geom, g, geom.out_size), _planes(geom, x, geom.in_size), _args(geom)

    def weight_part(blk):
        gw = np.zeros((c, geom.taps), dtype=x.dtype)
        _loops().grad_weight(g4[blk], xd[blk], gw, *args)
        return gw
    return sum(parallel.run_slices(weight_part, n)).reshape((c, 1) + geom.ksize)


FORWARD_DEPTHWISE = Algorithm("depthwise", FORWARD, _forward, _applies, _preferred, compiled=True)
INPUT_GRAD_DEPTHWISE = Algorithm("depthwise", INPUT_GRAD, _input_grad, _applies, _preferred, compiled=True)
WEIGHT_GRAD_DEPTHWISE = Algorithm("depthwise", WEIGHT_GRAD, _weight_grad, _applies, _preferred, compiled=True)
