"""Pooling over the same window view as convolution: max, average, adaptive and global average.

Both run over the kernel taps, one whole-array operation per tap (never per window or element): max
pooling keeps a running maximum (one pass a tap, nothing saved for backward but the output); its
backward finds, tap by tap, the first tap equal to the maximum (PyTorch's tie rule) and adds the
gradient to that tap's strided slice (col2im restricted to the winners); with Numba, 1-D and 2-D windows
find their first maximum in one compiled pass instead, and 2×2/2 windows take their maximum in one
compiled pass once the kernels are loaded. Average pooling sums the taps and spreads the gradient evenly
back over them.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ... import jit, kernels, parallel
from ...shape import adaptive_bins, ntuple
from ...tensor import Tensor, make_op
from .checks import AXES, check_rank
from .conv import output_geometry

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "global_avg_pool2d"]


def _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, nd, name):
    check_rank(x, nd, name)
    ksize = ntuple(kernel_size, nd, "kernel_size", owner=name)
    stride = ksize if stride is None or stride == () else ntuple(stride, nd, "stride", owner=name)
    dilation = ntuple(dilation, nd, "dilation", owner=name)
    padding = ntuple(padding, nd, "padding", minimum=0, owner=name)
    for p, k in zip(padding, ksize):
        if p > k // 2:
            raise ValueError(f"{name}: padding should be at most half of the kernel size, got padding={p} "
                             f"for kernel_size={k}")
    out_size = output_geometry(x.shape[2:], ksize, stride, [(p, p) for p in padding], dilation, name, ceil_mode)
    # ceil_mode may need a partial window past the right padding
    pads = tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p))
                 for n, k, s, p, d, o in zip(x.shape[2:], ksize, stride, padding, dilation, out_size))
    return ksize, stride, dilation, padding, pads, out_size


def _tap_regions(ksize, stride, dilation, out_size):
    """Per kernel tap (row-major order): its index tuple and the strided slice of the padded input it reads."""
    for tap in itertools.product(*(range(k) for k in ksize)):
        yield tap, tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                         for t, d, s, o in zip(tap, dilation, stride, out_size))


#: Max pooling works on blocks of images of about this many bytes (cache-sized), on cnnkit's threads.
BLOCK_BYTES = 2**20


def _max_poolnd(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode, nd: int) -> Tensor:
    name = f"max_pool{nd}d"
    ksize, stride, dilation, _, pads, out_size = _geometry(x, kernel_size, stride, padding, dilation,
                                                           ceil_mode, nd, name)
    both = (slice(None), slice(None))
    taps = list(_tap_regions(ksize, stride, dilation, out_size))
    a = x.data
    out = np.empty(a.shape[:2] + tuple(out_size), dtype=a.dtype)              # (N, C, *o)
    item = a[:1].nbytes

    def forward(images):  # a cache-sized block of images per call, blocks in parallel
        view = kernels.windows(kernels.pad(a[images], pads, value=-np.inf), ksize, stride, dilation, out_size)
        o = out[images]
        np.copyto(o, view[both + taps[0][0]])
        for tap, _ in taps[1:]:                                             # running maximum: one pass a tap
            np.maximum(o, view[both + tap], out=o)                          # (NaN propagates, as PyTorch)
    # 2×2 windows at stride 2 that tile the input (LeNet's, VGG's): one compiled pass each way
    tiles = (nd == 2 and ksize == stride == (2, 2) and dilation == (1, 1) and not any(map(any, pads))
             and 2 * out_size[0] <= a.shape[2] and 2 * out_size[1] <= a.shape[3])
    if tiles and a.flags.c_contiguous and jit.ready(a.nbytes, a.dtype):  # once loaded, as ReLU: not worth loading
        planes = a.reshape((-1,) + a.shape[2:])
        p_out = out.reshape((-1,) + out.shape[2:])
        parallel.run_slices(lambda blk: jit.max_pool_2x2(planes[blk], p_out[blk]), planes.shape[0], a.nbytes)
    else:
        parallel.run_blocks(forward, a.shape[0], item, BLOCK_BYTES)
    crop = both + tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, a.shape[2:]))
    disjoint = all(s >= d * (k - 1) + 1 for k, s, d in zip(ksize, stride, dilation))  # windows don't overlap

    def backward(g):
        # the gradient goes to the first tap (row-major) that holds the maximum, PyTorch's tie rule
        if nd <= 2 and jit.worth_it(a.nbytes, a.dtype) and g.dtype == a.dtype:
            return (_max_pool_grad_jit(a, out, g, ksize, stride, dilation, pads, tiles),)
        padded = any(lo or hi for lo, hi in pads)
        gx = (np.empty if padded else np.zeros)(a.shape, dtype=g.dtype)

        def block(images):
            xp = kernels.pad(a[images], pads, value=-np.inf)
            view = kernels.windows(xp, ksize, stride, dilation, out_size)
            o, gb = out[images], g[images]
            nan_out = np.isnan(o) if o.dtype.kind == "f" and np.isnan(o).any() else None
            gxp = np.zeros(xp.shape, dtype=g.dtype) if padded else gx[images]  # unpadded: straight into gx
            free = np.empty(o.shape, dtype=bool)                           # no tap has taken this output yet
            hit = np.empty(o.shape, dtype=bool)
            tmp = None if disjoint else np.empty_like(gb)
            for t, (tap, region) in enumerate(taps):
                np.equal(view[both + tap], o, out=hit)
                if nan_out is not None:
                    hit |= np.isnan(view[both + tap]) & nan_out
                if t == 0:
                    np.logical_not(hit, out=free)
                else:
                    np.logical_and(hit, free, out=hit)
                    if t < len(taps) - 1:
                        np.logical_xor(free, hit, out=free)                # free & ~hit, as hit ⊆ free
                if disjoint:
                    np.multiply(gb, hit, out=gxp[both + region])           # each input in one window: write
                else:
                    gxp[both + region] += np.multiply(gb, hit, out=tmp)
            if padded:
                gx[images] = gxp[crop]
        parallel.run_blocks(block, a.shape[0], item, BLOCK_BYTES)
        return (gx,)
    return make_op(out, (x,), backward)


def _max_pool_grad_jit(a, out, g, ksize, stride, dilation, pads, tiles: bool) -> np.ndarray:
    """Max pooling's input gradient by the compiled loop (:func:`jit.max_pool_grad`), a block of planes per thread:
    one pass over each window that stops at its first maximum, where the tap-by-tap NumPy passes compare every tap
    (2×2/2 windows that tile the input, ``tiles``: a branch-free loop, about 2x faster; overlapping 3×3/2 windows
    1.5–4x). 1-D pooling runs as one row."""
    n, c = a.shape[:2]
    two = (lambda t, one: tuple(t)) if len(ksize) == 2 else (lambda t, one: (one,) + tuple(t))

    def planes(v):
        return np.ascontiguousarray(v).reshape((n * c,) + two(v.shape[2:], 1))
    x3, o3, g3 = planes(a), planes(out), planes(g)
    gx = np.empty(x3.shape, dtype=g.dtype)
    geometry = two(ksize, 1), two(stride, 1), two(dilation, 1), two(pads, (0, 0))
    if tiles:
        parallel.run_slices(lambda blk: jit.max_pool_grad_2x2(x3[blk], o3[blk], g3[blk], gx[blk]), n * c, a.nbytes)
    else:
        parallel.run_slices(lambda blk: jit.max_pool_grad(x3[blk], o3[blk], g3[blk], gx[blk], *geometry), n * c,
                            a.nbytes)
    return gx.reshape(a.shape)


def _avg_poolnd(x: Tensor, kernel_size, stride, padding, ceil_mode, count_include_pad, nd: int) -> Tensor:
    name = f"avg_pool{nd}d"
    ksize, stride, dilation, padding, pads, out_size = _geometry(x, kernel_size, stride, padding, 1,
                                                                 ceil_mode, nd, name)
    xp = kernels.pad(x.data, pads)
    view = kernels.windows(xp, ksize, stride, dilation, out_size)            # (N, C, *k, *o)
    divisor = np.ones((), dtype=np.int64)
    for axis, (size, k, s, p, o) in enumerate(zip(x.shape[2:], ksize, stride, padding, out_size)):
        counts = kernels.window_counts(size, k, s, p, o, count_include_pad)
        divisor = np.multiply.outer(divisor, counts)                         # (*o), separable
    divisor = divisor.astype(x.dtype)
    both = (slice(None), slice(None))
    taps = list(_tap_regions(ksize, stride, dilation, out_size))
    out = view[both + taps[0][0]].copy()                                    # (N, C, *o): sum over taps
    for tap, _ in taps[1:]:
        out += view[both + tap]
    out /= divisor
    del view, xp
    xp_shape, x_shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads)), x.shape
    crop = both + tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, x_shape[2:]))

    def backward(g):
        share = g / divisor                                                 # (N, C, *o)
        gxp = np.zeros(x_shape[:2] + xp_shape, dtype=g.dtype)
        for _, region in taps:
            gxp[both + region] += share
        return (gxp[crop],)
    return make_op(out.astype(x.dtype, copy=False), (x,), backward)


_MAX_DOC = """Applies {nd}-D max pooling: the largest value in each window, per channel.

    Args:
        input: tensor {axes}.
        kernel_size: window size F (int or {nd}-tuple).
        stride: window step S. Default: ``kernel_size`` (non-overlapping windows).
        padding: implicit −∞ padding per side, at most ``kernel_size // 2``. Default: 0.
        dilation: spacing between window elements. Default: 1.
        ceil_mode: round the output size up (a last, partial window). Default: False.

    Shape:
        Output ``(N, C, *out)`` with ``out = floor((in + 2·padding − dilation·(kernel_size − 1) − 1)/stride) + 1``
        (``ceil`` with ``ceil_mode``) — the lecture's ``W2 = (W1 − F)/S + 1``. No parameters.
    """

_AVG_DOC = """Applies {nd}-D average pooling: the mean of each window, per channel.

    Args:
        input: tensor {axes}.
        kernel_size: window size F (int or {nd}-tuple).
        stride: window step S. Default: ``kernel_size``.
        padding: implicit zero padding per side, at most ``kernel_size // 2``. Default: 0.
        ceil_mode: round the output size up. Default: False.
        count_include_pad: count padded zeros in the divisor. Default: True.

    Shape:
        Output ``(N, C, *out)`` with ``out = floor((in + 2·padding − kernel_size)/stride) + 1``
        (``ceil`` with ``ceil_mode``). No parameters.
    """


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> Tensor:
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, 1)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> Tensor:
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, 2)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> Tensor:
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, 3)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> Tensor:
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, 1)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> Tensor:
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, 2)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True) -> Tensor:
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, 3)


for _nd, (_m, _a) in {1: (max_pool1d, avg_pool1d), 2: (max_pool2d, avg_pool2d), 3: (max_pool3d, avg_pool3d)}.items():
    _m.__doc__ = _MAX_DOC.format(nd=_nd, axes=AXES[_nd])
    _a.__doc__ = _AVG_DOC.format(nd=_nd, axes=AXES[_nd])


def _adaptive_avg_poolnd(x: Tensor, output_size, nd: int) -> Tensor:
    name = f"adaptive_avg_pool{nd}d"
    check_rank(x, nd, name)
    if isinstance(output_size, (tuple, list)):
        output_size = tuple(x.shape[2 + i] if o is None else o for i, o in enumerate(output_size))
    out_size = ntuple(output_size, nd, "output_size", owner=name)
    in_size = x.shape[2:]
    if all(o == 1 for o in out_size):  # global average pooling: one mean per channel
        return x.mean(tuple(range(2, 2 + nd)), keepdim=True)
    if all(i % o == 0 for i, o in zip(in_size, out_size)):  # regular windows: plain average pooling
        k = tuple(i // o for i, o in zip(in_size, out_size))
        return _avg_poolnd(x, k, k, 0, False, True, nd)
    bins = [adaptive_bins(i, o) for i, o in zip(in_size, out_size)]
    n, c = x.shape[:2]
    out = np.empty((n, c) + out_size, dtype=x.dtype)
    cells = list(np.ndindex(*out_size))
    for cell in cells:
        region = tuple(slice(*bins[a][i]) for a, i in enumerate(cell))
        out[(slice(None), slice(None)) + cell] = x.data[(slice(None), slice(None)) + region].mean(
            axis=tuple(range(2, 2 + nd)))

    def backward(g):
        gx = np.zeros(x.shape, dtype=g.dtype)
        for cell in cells:
            region = tuple(slice(*bins[a][i]) for a, i in enumerate(cell))
            count = math.prod(bins[a][i][1] - bins[a][i][0] for a, i in enumerate(cell))
            gx[(slice(None), slice(None)) + region] += (g[(slice(None), slice(None)) + cell] / count).reshape(
                (n, c) + (1,) * nd)
        return (gx,)
    return make_op(out, (x,), backward)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output length; window ``i`` covers ``[floor(i·L/out), ceil((i+1)·L/out))``."""
    return _adaptive_avg_poolnd(input, output_size, 1)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed ``(H_out, W_out)`` whatever the input size (window ``i`` covers
    ``[floor(i·H/H_out), ceil((i+1)·H/H_out))``). ``None`` keeps that input dimension."""
    return _adaptive_avg_poolnd(input, output_size, 2)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """3-D version of :func:`adaptive_avg_pool2d`."""
    return _adaptive_avg_poolnd(input, output_size, 3)


def global_avg_pool2d(input: Tensor) -> Tensor:
    """Global average pooling: the mean of each channel's map. Shape ``(N, C, H, W)`` → ``(N, C, 1, 1)``."""
    check_rank(input, 2, "global_avg_pool2d")
    return input.mean((2, 3), keepdim=True)
