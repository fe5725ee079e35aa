"""Depthwise convolution (``groups == in == out channels``) by NumPy tap sums: no GEMM, as each output channel sees
one input channel. ``y[n, c] = Σ_t w[c, t]·window_t[n, c]``, computed on the GEMM algorithm's frame and window
views (:class:`.plan.Plan`), for any number of spatial axes. It serves where the compiled loops (:mod:`.depthwise`)
do not: 3-D layers, float16, ``CNNKIT_JIT=0``, small inputs.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .... import kernels, parallel
from .algorithm import FORWARD, INPUT_GRAD, WEIGHT_GRAD, Algorithm
from .geometry import Geometry
from .plan import Plan
from .scratch import scratch

__all__ = ["FORWARD_DEPTHWISE_NUMPY", "INPUT_GRAD_DEPTHWISE_NUMPY", "WEIGHT_GRAD_DEPTHWISE_NUMPY",
           "DEPTHWISE_BLOCK_BYTES"]

#: The tap sums work on blocks of images of about this many bytes per array, so that the nine or so passes over
#: a block (one per tap) run in cache (faster than whole-batch passes: benchmarks/RESULTS.md, "Depthwise").
DEPTHWISE_BLOCK_BYTES = 2**20


def applies(geom: Geometry) -> bool:
    return geom.depthwise


class _Layout:
    """What the three directions share: the plan, the taps, the blocks of images, the weight per tap."""

    def __init__(self, geom: Geometry, w: np.ndarray):
        self.plan = plan = Plan(geom)
        c, nd = geom.c, geom.nd
        self.w = w.reshape(c, plan.taps)                                          # (C, T)
        self.wcol = [self.w[:, t].reshape((c,) + (1,) * nd) for t in range(plan.taps)]  # over (nb, C, *frame)
        self.taps = list(itertools.product(*(range(k) for k in plan.ksize)))
        self.blocks = parallel.split(geom.n, c * math.prod(plan.frame) * geom.itemsize, DEPTHWISE_BLOCK_BYTES)
        self.step = max(b.stop - b.start for b in self.blocks)                   # images in the largest block
        self.offsets = kernels.flat_offsets(plan.ksize, plan.dilation, plan.padded) if plan.flat else None

    def frame_grad(self, g: np.ndarray) -> np.ndarray:
        """The output gradient on the frame ``(N, C, *frame)``, zero outside the valid part."""
        plan = self.plan
        if plan.frame == tuple(plan.out_size):
            return np.ascontiguousarray(g)
        gf = np.zeros((plan.n, plan.c) + plan.frame, dtype=g.dtype)
        gf[(slice(None), slice(None)) + plan.valid] = g
        return gf


def _forward(geom: Geometry, x: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    lay = _Layout(geom, w)
    plan, c = lay.plan, geom.c
    view = plan.tap_view(plan.pad(x, scratch_buffer=True))                        # (N, C, *k, *frame)
    acc = np.empty((geom.n, c) + plan.frame, dtype=x.dtype)

    def forward_blocks(part):  # each thread its own blocks of images and temporary
        tmp = scratch("tmp", (lay.step, c) + plan.frame, x.dtype)
        for blk in part:
            a, tb = acc[blk], tmp[:blk.stop - blk.start]
            for t, tap in enumerate(lay.taps):
                src = view[(blk, slice(None)) + tap]                              # (nb, C, *frame)
                if t == 0:
                    np.multiply(src, lay.wcol[t], out=a)
                else:
                    a += np.multiply(src, lay.wcol[t], out=tb)
    parallel.run(forward_blocks, lay.blocks)
    del view
    if bias is not None:
        acc += bias.reshape((c,) + (1,) * geom.nd)
    out = acc[(slice(None), slice(None)) + plan.valid]
    return out if out.flags.c_contiguous else np.ascontiguousarray(out)


def _weight_grad(geom: Geometry, g: np.ndarray, x: np.ndarray) -> np.ndarray:
    lay = _Layout(geom, np.zeros((geom.c, 1) + geom.ksize, dtype=x.dtype))
    plan, n, c = lay.plan, geom.n, geom.c
    gf, frame = lay.frame_grad(g), math.prod(plan.frame)
    xe = plan.pad(x, scratch_buffer=True)
    view = plan.tap_view(xe)

    def weight_blocks(part):  # → this part's dW (C, T)
        tmp = scratch("tmp", (lay.step, c) + plan.frame, x.dtype)
        gw = np.zeros((c, plan.taps), dtype=x.dtype)
        for blk in part:
            nb = blk.stop - blk.start
            for t, tap in enumerate(lay.taps):
                if plan.flat:  # one dot product per (image, channel): BLAS, no temporary
                    src = xe.reshape(n, c, -1)[blk, :, lay.offsets[t]:lay.offsets[t] + frame]  # (nb, C, F)
                    dots = np.matmul(gf[blk].reshape(nb, c, 1, frame), src[..., None])       # (nb, C, 1, 1)
                    gw[:, t] += dots.reshape(nb, c).sum(axis=0)
                else:
                    prod = np.multiply(gf[blk], view[(blk, slice(None)) + tap], out=tmp[:nb])
                    gw[:, t] += prod.reshape(nb, c, -1).sum(axis=2).sum(axis=0)
        return gw
    return sum(parallel.run(weight_blocks, lay.blocks)).reshape((c, 1) + geom.ksize)


def _input_grad(geom: Geometry, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    lay = _Layout(geom, w)
    plan, n, c = lay.plan, geom.n, geom.c
    gf, frame = lay.frame_grad(g), math.prod(plan.frame)
    gxe = np.zeros((n, c) + plan.ext, dtype=w.dtype)

    def input_blocks(part):  # each part adds into its own images of gxe
        tmp = scratch("tmp", (lay.step, c) + plan.frame, w.dtype)
        for blk in part:
            nb = blk.stop - blk.start
            if plan.flat:
                flat, gfl = gxe.reshape(n, c, -1)[blk], gf[blk].reshape(nb, c, -1)
                tfl = tmp[:nb].reshape(nb, c, -1)
                for t, off in enumerate(lay.offsets):
                    flat[:, :, off:off + frame] += np.multiply(gfl, lay.w[:, t:t + 1], out=tfl)
                continue
            for t, tap in enumerate(lay.taps):
                region = tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                               for i, d, s, o in zip(tap, plan.dilation, plan.stride, plan.out_size))
                gxe[(blk, slice(None)) + region] += np.multiply(gf[blk], lay.wcol[t], out=tmp[:nb])
    parallel.run(input_blocks, lay.blocks)
    return gxe[(slice(None), slice(None)) + plan.crop]


FORWARD_DEPTHWISE_NUMPY = Algorithm("depthwise-numpy", FORWARD, _forward, applies, family="depthwise")
INPUT_GRAD_DEPTHWISE_NUMPY = Algorithm("depthwise-numpy", INPUT_GRAD, _input_grad, applies, family="depthwise")
WEIGHT_GRAD_DEPTHWISE_NUMPY = Algorithm("depthwise-numpy", WEIGHT_GRAD, _weight_grad, applies, family="depthwise")
