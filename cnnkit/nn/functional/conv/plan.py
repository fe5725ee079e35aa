"""The im2col layout of one convolution (:class:`Plan`): padding, stride-1 frame or strided windows, chunks of work.

The GEMM algorithms (:mod:`.gemm`, :mod:`.row_shifted`) and the NumPy depthwise tap sums (:mod:`.depthwise_numpy`)
work on it.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .... import kernels, parallel
from .geometry import Geometry
from .scratch import scratch

__all__ = ["Plan", "chunks", "CHUNK_BYTES", "FLAT_FRAME_MAX"]

#: The column matrix of one chunk of images (or of one image's rows) stays under this many bytes: it is
#: built, used and freed chunk by chunk, so memory stays bounded, and it fits the reused work buffer.
#: Cache-sized chunks make small-channel GEMMs faster (16×144 @ 144×L on one core at L ≈ 4,000 against L = 29,000,
#: and a ResNet-20 training step: benchmarks/RESULTS.md, "Chunk sizes").
CHUNK_BYTES = 4 * 2**20

#: The stride-1 frame (see :class:`Plan`) is used while it has at most this many times the output's positions.
FLAT_FRAME_MAX = 1.5


def flat_frame_fits(geom: Geometry) -> bool:
    """Whether the stride-1 frame ``(out_0, *padded[1:])`` has at most :data:`FLAT_FRAME_MAX` times the output's
    positions: its wrap-around columns must not outnumber the valid ones by half (a 5×5 kernel on a 5×5 map:
    a 1×5 frame for one output)."""
    frame = (geom.out_size[0],) + geom.padded[1:]
    return geom.unit_stride and math.prod(frame) <= FLAT_FRAME_MAX * math.prod(geom.out_size)


class Plan:
    """How one convolution is laid out for im2col: padding, stride-1 frame or strided windows, chunks of work.

    With stride 1 the columns come from :func:`kernels.flat_windows` (contiguous copies) and the
    output is computed on the frame ``(out_0, *padded[1:])``; otherwise from :func:`kernels.windows`
    and the frame is the output itself. ``valid`` cuts the output out of the frame. Work is split into
    chunks ``(n0, n1, r0, r1)`` — images ``n0:n1``, frame rows ``r0:r1`` — whose column matrix stays
    under :data:`CHUNK_BYTES` (several whole images, or one image's rows when an image is larger).
    ``frame=False`` uses the strided windows at stride 1 too (no wrap-around columns).
    """

    def __init__(self, geom: Geometry, frame: bool = True):
        self.geom = geom
        self.n, self.c = geom.n, geom.c
        self.in_size, self.ksize, self.stride, self.pads = geom.in_size, geom.ksize, geom.stride, geom.pads
        self.dilation, self.out_size, self.padded = geom.dilation, geom.out_size, geom.padded
        self.flat = frame and flat_frame_fits(geom)
        self.tail = self.flat and kernels.needs_tail(self.ksize, self.dilation)
        self.ext = ((self.padded[0] + 1,) + self.padded[1:]) if self.tail else self.padded
        self.frame = kernels.flat_frame(self.out_size, self.padded) if self.flat else tuple(self.out_size)
        self.valid = tuple(slice(0, o) for o in self.out_size)
        self.crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(self.pads, self.in_size))
        self.taps = geom.taps
        per_row = self.c * self.taps * math.prod(self.frame[1:]) * geom.itemsize
        self.chunks = chunks(self.n, self.frame[0], per_row, CHUNK_BYTES)

    def pad(self, x: np.ndarray, scratch_buffer: bool = False) -> np.ndarray:
        """Padded input ``(N, C, *ext)``; in a reused work buffer with ``scratch_buffer`` (it must not escape)."""
        alloc = (lambda shape, dtype: scratch("pad", shape, dtype)) if scratch_buffer else np.empty
        return kernels.pad(x, self.pads, tail=self.tail, alloc=alloc)

    def tap_view(self, xe: np.ndarray) -> np.ndarray:
        """``(N, C, *k, *frame)`` view: what each tap sees at each frame position."""
        if self.flat:
            v = kernels.flat_windows(xe, self.ksize, self.dilation, self.out_size, self.padded)
            return v.reshape(v.shape[:-1] + self.frame)                   # splits the contiguous last axis
        return kernels.windows(xe, self.ksize, self.stride, self.dilation, self.out_size)

    def columns(self, xe: np.ndarray, chunk, ones: bool = False) -> np.ndarray:
        """im2col of one chunk: ``(C·∏k, nb·rows·∏frame[1:])``, rows (channel, tap), columns (image, position);
        with ``ones`` a last row of ones follows (the bias, folded into the GEMM)."""
        n0, n1, r0, r1 = chunk
        nd = len(self.ksize)
        view = self.tap_view(xe)[(slice(n0, n1), slice(None)) + (slice(None),) * nd + (slice(r0, r1),)]
        order = tuple(range(1, 2 + nd)) + (0,) + tuple(range(2 + nd, 2 + 2 * nd))
        view = view.transpose(order)
        rows, width = self.c * self.taps, math.prod(view.shape) // (self.c * self.taps)
        cols = scratch("cols", (rows + ones, width), xe.dtype)
        np.copyto(cols[:rows].reshape(view.shape), view)
        if ones:
            cols[rows] = 1
        return cols

    def col2im(self, gcols: np.ndarray, gxe: np.ndarray, chunk) -> None:
        """Add the columns' gradient ``(C·∏k, nb·rows·∏frame[1:])`` into ``gxe`` (N, C, *ext), the adjoint of
        :meth:`columns` (one slice-add per tap)."""
        n0, n1, r0, r1 = chunk
        nb, rows = n1 - n0, r1 - r0
        if self.flat:
            row = math.prod(self.frame[1:])
            target = gxe.reshape(self.n, self.c, -1)[n0:n1].swapaxes(0, 1)           # (C, nb, E) view
            cols = gcols.reshape(self.c, self.taps, nb, rows * row)
            for t, off in enumerate(kernels.flat_offsets(self.ksize, self.dilation, self.padded)):
                start = off + r0 * row
                target[:, :, start:start + rows * row] += cols[:, t]
            return
        target = gxe[n0:n1].swapaxes(0, 1)                                             # (C, nb, *ext) view
        cols = gcols.reshape((self.c,) + self.ksize + (nb, rows) + self.frame[1:])      # (C, *k, nb, rows, ...)
        for tap in itertools.product(*(range(k) for k in self.ksize)):
            first = (slice(tap[0] * self.dilation[0] + r0 * self.stride[0],
                           tap[0] * self.dilation[0] + (r1 - 1) * self.stride[0] + 1, self.stride[0]),)
            region = first + tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in
                                   zip(tap[1:], self.dilation[1:], self.stride[1:], self.out_size[1:]))
            target[(slice(None), slice(None)) + region] += cols[(slice(None),) + tap]

    def to_frame(self, g: np.ndarray) -> np.ndarray:
        """Output gradient ``(nb, K, rows, *out[1:])`` → ``(K, nb, rows, *frame[1:])``, zero outside the valid part."""
        if self.frame[1:] == tuple(self.out_size[1:]):
            return np.ascontiguousarray(g.swapaxes(0, 1))
        out = scratch("frame", (g.shape[1], g.shape[0], g.shape[2]) + self.frame[1:], g.dtype)
        out[...] = 0
        out[(slice(None), slice(None), slice(None)) + self.valid[1:]] = g.swapaxes(0, 1)
        return out


def chunks(n: int, rows: int, row_bytes: int, limit: int) -> list:
    """Work of ``n`` images of ``rows`` rows, ``row_bytes`` each, in chunks ``(n0, n1, r0, r1)`` (images ``n0:n1``,
    rows ``r0:r1``) of at most ``limit`` bytes where a row allows: several whole images, balanced for the
    threads (:func:`parallel.split`), or, when one image is larger, rows of one image."""
    if row_bytes * rows <= limit:
        return [(s.start, s.stop, 0, rows) for s in parallel.split(n, row_bytes * rows, limit)]
    step = max(1, limit // row_bytes)
    return [(i, i + 1, r, min(rows, r + step)) for i in range(n) for r in range(0, rows, step)]
