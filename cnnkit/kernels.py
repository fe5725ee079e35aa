"""Array kernels on plain NumPy arrays: padding, sliding-window views, im2col and col2im.

Every convolution (1-d, 2-d, 3-d, strided, dilated, grouped) and every pooling layer is built on
the one window view made here. Arrays are channels-first: ``(N, C, *spatial)``.

``windows(x, k, s, d, out)`` is a zero-copy view ``(N, C, *k, *out)`` whose element
``[n, c, i, j, y, x]`` is ``xp[n, c, y·s + i·d, x·s + j·d]`` — the input value that kernel tap ``(i, j)``
sees at output position ``(y, x)``. Copying it into a matrix is the lecture's "convolution as matrix
multiplication" (im2col); adding a gradient back through it tap by tap is col2im.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["pad", "windows", "col2im", "im2col_matrix", "window_counts"]


def pad(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    """Pad the spatial axes of ``x`` (N, C, *S) with ``value``; ``pads`` is ``((before, after), ...)``."""
    if not any(lo or hi for lo, hi in pads):
        return x
    shape = x.shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads))
    out = np.empty(shape, dtype=x.dtype)
    inner = (slice(None), slice(None)) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], pads))
    out[inner] = x
    # fill only the border slabs instead of the whole array
    for axis, (lo, hi) in enumerate(pads, start=2):
        if lo:
            out[(slice(None),) * axis + (slice(0, lo),)] = value
        if hi:
            out[(slice(None),) * axis + (slice(out.shape[axis] - hi, None),)] = value
    return out


def windows(xp: np.ndarray, kernel_size, stride, dilation, out_size) -> np.ndarray:
    """Read-only view ``(N, C, *kernel_size, *out_size)`` of every window of the padded input ``xp``."""
    s_n, s_c, *s_sp = xp.strides
    k_strides = tuple(st * d for st, d in zip(s_sp, dilation))
    o_strides = tuple(st * s for st, s in zip(s_sp, stride))
    return as_strided(xp, shape=xp.shape[:2] + tuple(kernel_size) + tuple(out_size),
                      strides=(s_n, s_c) + k_strides + o_strides, writeable=False)


def im2col_matrix(xp: np.ndarray, kernel_size, stride, dilation, out_size, groups: int = 1) -> np.ndarray:
    """Column matrix ``(groups, C/groups·∏k, N·∏out)`` of the padded input, ready for one GEMM per group.

    Rows run over (channel, kernel tap), columns over (image, output position), so that
    ``W.reshape(K, -1) @ cols`` is the convolution for all images at once.
    """
    n, c = xp.shape[:2]
    nd = len(kernel_size)
    view = windows(xp, kernel_size, stride, dilation, out_size)  # (N, C, *k, *o)
    # (C, *k, N, *o): channel and taps become rows, image and position columns
    order = (1,) + tuple(range(2, 2 + nd)) + (0,) + tuple(range(2 + nd, 2 + 2 * nd))
    cols = np.ascontiguousarray(view.transpose(order))
    return cols.reshape(groups, (c // groups) * math.prod(kernel_size), n * math.prod(out_size))


def col2im(cols: np.ndarray, padded_shape, kernel_size, stride, dilation) -> np.ndarray:
    """Adjoint of :func:`windows`: sum ``cols`` (N, C, *k, *o) back into an array of ``padded_shape``.

    One vectorised slice-add per kernel tap (∏k of them), never element by element.
    """
    out = np.zeros(padded_shape, dtype=cols.dtype)
    nd = len(kernel_size)
    out_size = cols.shape[2 + nd:]
    for taps in itertools.product(*(range(k) for k in kernel_size)):
        region = tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                       for t, d, s, o in zip(taps, dilation, stride, out_size))
        out[(slice(None), slice(None)) + region] += cols[(slice(None), slice(None)) + taps]
    return out


def window_counts(size: int, kernel_size: int, stride: int, padding: int, out_size: int,
                  include_pad: bool) -> np.ndarray:
    """Divisor of average pooling along one axis, PyTorch's rule.

    A window starting at ``o·S − P`` ends at ``min(start + F, size + P)`` (the ceil-mode overhang past
    the padding never counts); without ``include_pad`` only positions inside the input count.
    """
    start = np.arange(out_size) * stride - padding
    end = np.minimum(start + kernel_size, size + padding)
    if include_pad:
        return (end - start).astype(np.int64)
    return (np.minimum(end, size) - np.maximum(start, 0)).astype(np.int64)
