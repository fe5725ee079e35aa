"""Array kernels on plain NumPy arrays: padding, sliding-window views, im2col and col2im.

Every convolution (1-d, 2-d, 3-d, strided, dilated, grouped) and every pooling layer is built on
the window views made here. Arrays are channels-first: ``(N, C, *spatial)``.

``windows(x, k, s, d, out)`` is a zero-copy view ``(N, C, *k, *out)`` whose element
``[n, c, i, j, y, x]`` is ``xp[n, c, y·s + i·d, x·s + j·d]`` — the input value that kernel tap ``(i, j)``
sees at output position ``(y, x)``. Copying it into a matrix is the lecture's "convolution as matrix
multiplication" (im2col); adding a gradient back through it tap by tap is col2im.

For stride 1 there is a faster view of the same numbers, :func:`flat_windows`: in the flattened padded
image, tap ``(i, j)`` of every output position is one *contiguous* run starting at the tap's offset
``i·d·Wp + j·d``, if each output row is allowed ``Wp − Wo`` extra "wrap-around" columns. The output
is computed on that ``(Ho, Wp)`` *frame* and the valid ``(Ho, Wo)`` part is kept. Copying contiguous
runs (im2col) and adding them back (col2im) then run at memory speed instead of ``Wo`` elements at a
time. The frame reads up to ``(k−1)·d`` elements past the last padded row, so the padded array gets
one extra zero row (:func:`pad` with ``tail=True``).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import parallel

__all__ = ["pad", "windows", "col2im", "flat_windows", "flat_frame", "flat_offsets", "needs_tail",
           "window_counts"]


def pad(x: np.ndarray, pads, value=0.0, tail: bool = False, alloc=np.empty) -> np.ndarray:
    """Pad the spatial axes of ``x`` (N, C, *S) with ``value``; ``pads`` is ``((before, after), ...)``.

    ``tail=True`` adds one more slab of ``value`` after the first spatial axis (room for the
    :func:`flat_windows` frame). The result is C-contiguous; ``x`` itself is returned when nothing is added
    and it already is. ``alloc(shape, dtype)`` makes the output array (every element gets written).
    """
    pads = [list(p) for p in pads]
    if tail:
        pads[0][1] += 1
    if not any(lo or hi for lo, hi in pads):
        return np.ascontiguousarray(x)
    shape = x.shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads))
    out = alloc(shape, x.dtype)
    inner = tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], pads))

    def fill(images):  # a block of images per thread
        o = out[images]
        o[(slice(None), slice(None)) + inner] = x[images]
        # fill only the border slabs instead of the whole array
        for axis, (lo, hi) in enumerate(pads, start=2):
            if lo:
                o[(slice(None),) * axis + (slice(0, lo),)] = value
            if hi:
                o[(slice(None),) * axis + (slice(o.shape[axis] - hi, None),)] = value
    parallel.run_slices(fill, shape[0], out.nbytes)
    return out


def windows(xp: np.ndarray, kernel_size, stride, dilation, out_size) -> np.ndarray:
    """Read-only view ``(N, C, *kernel_size, *out_size)`` of every window of the padded input ``xp``."""
    s_n, s_c, *s_sp = xp.strides
    k_strides = tuple(st * d for st, d in zip(s_sp, dilation))
    o_strides = tuple(st * s for st, s in zip(s_sp, stride))
    return as_strided(xp, shape=xp.shape[:2] + tuple(kernel_size) + tuple(out_size),
                      strides=(s_n, s_c) + k_strides + o_strides, writeable=False)


def needs_tail(kernel_size, dilation) -> bool:
    """Whether the stride-1 frame reads past the padded image (a kernel wider than 1 on a non-first axis)."""
    return any((k - 1) * d for k, d in zip(kernel_size[1:], dilation[1:]))


def flat_frame(out_size, padded_size) -> tuple:
    """Shape of the stride-1 output frame: ``(out_0, *padded_size[1:])``; the valid part is ``[:out_1, ...]``."""
    return (out_size[0],) + tuple(padded_size[1:])


def flat_offsets(kernel_size, dilation, padded_size) -> list[int]:
    """Offset of each kernel tap (row-major tap order) in the flattened padded image."""
    steps = [math.prod(padded_size[a + 1:]) for a in range(len(padded_size))]
    return [sum(t * d * st for t, d, st in zip(taps, dilation, steps))
            for taps in itertools.product(*(range(k) for k in kernel_size))]


def flat_windows(xe: np.ndarray, kernel_size, dilation, out_size, padded_size) -> np.ndarray:
    """Read-only stride-1 view ``(N, C, *kernel_size, F)`` of the C-contiguous padded input ``xe``.

    ``xe`` is ``(N, C, *padded_size)`` plus the tail slab when :func:`needs_tail`; ``F = ∏`` of
    :func:`flat_frame`, and element ``[n, c, *taps, f]`` is ``xe.flat-per-image[offset(taps) + f]``.
    """
    if not xe.flags.c_contiguous:
        raise ValueError("flat_windows: the padded input must be C-contiguous")
    item = xe.itemsize
    steps = [math.prod(padded_size[a + 1:]) * item for a in range(len(padded_size))]
    frame = math.prod(flat_frame(out_size, padded_size))
    return as_strided(xe, shape=xe.shape[:2] + tuple(kernel_size) + (frame,),
                      strides=xe.strides[:2] + tuple(st * d for st, d in zip(steps, dilation)) + (item,),
                      writeable=False)


def col2im(cols: np.ndarray, padded_shape, kernel_size, stride, dilation) -> np.ndarray:
    """Adjoint of :func:`windows`: sum ``cols`` (A, B, *k, *o) back into an array of ``padded_shape`` (A, B, *S).

    One vectorised slice-add per kernel tap (∏k of them), never element by element. The two leading
    axes are any batch-like axes (``(N, C)`` or ``(C, N)``).
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
