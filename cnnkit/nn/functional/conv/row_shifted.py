"""The row-shifted GEMM forward: stride-1 convolutions with a third of the columns and no padded copy of the input.

The columns are built for the taps of ONE kernel row, over a few extra output rows, straight from the input
(zeros where a tap reads the padding); laid out row-major with the output's row length ``row = ∏out[1:]``,
kernel row ``i`` reads the same matrix ``i·d·row`` columns further on, so ``y = Σ_i W_i @ cols[:, i·d·row:][:, :L]``
— one GEMM per kernel row, each on a view, instead of one GEMM on ∏k column blocks. One image's rows per chunk.
On VGG's 3×3 layers it is faster than the full columns, and the 52 MB padded copy of VGG's second layer input is
never made (figures: benchmarks/RESULTS.md, "Row-shifted GEMM").
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .... import parallel
from . import plan as plan_mod
from .algorithm import FORWARD, Algorithm
from .geometry import Geometry
from .scratch import scratch

__all__ = ["FORWARD_ROW_SHIFTED", "ROW_SHIFT_MIN_ROWS", "ROW_SHIFT_MIN_POSITIONS"]

#: The default order takes the row-shifted forward for stride-1 convolutions without groups whose per-row column
#: block has at least this many rows (input channels × taps of one kernel row) and whose output has at least this
#: many positions per image (large images: VGG, not CIFAR's 8×8 maps).
ROW_SHIFT_MIN_ROWS = 128
ROW_SHIFT_MIN_POSITIONS = 512


def _applies(geom: Geometry) -> bool:
    return geom.unit_stride and geom.groups == 1 and geom.nd > 1 and geom.ksize[0] > 1 and geom.n > 0


def _preferred(geom: Geometry) -> bool:
    return (geom.c * math.prod(geom.ksize[1:]) >= ROW_SHIFT_MIN_ROWS
            and math.prod(geom.out_size) >= ROW_SHIFT_MIN_POSITIONS)


def _forward(geom: Geometry, xd: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    n, c, k_out = geom.n, geom.c, geom.k_out
    k0, d0, rest = geom.ksize[0], geom.dilation[0], geom.ksize[1:]
    (top, _), side_pads = geom.pads[0], geom.pads[1:]
    in0, out0, in_rest, out_rest = geom.in_size[0], geom.out_size[0], geom.in_size[1:], tuple(geom.out_size[1:])
    row = math.prod(out_rest)                                  # one output row, flattened
    inner = c * math.prod(rest)                                # column rows per kernel row: (C, *rest)
    w = w.reshape((k_out, c, k0, math.prod(rest)))
    ones = int(bias is not None)                               # a row of ones for the bias
    ws = []
    for i in range(k0):                                        # W_i (K, C·∏rest), the bias in W_0's last column
        wi = w[:, :, i].reshape(k_out, inner)
        if bias is not None:
            wi = np.concatenate([wi, (bias if i == 0 else np.zeros_like(bias)).reshape(k_out, 1)], axis=1)
        ws.append(np.ascontiguousarray(wi))
    # per tap of the other axes: where its window starts in the input, and the output range that reads
    # inside the input (the rest reads the zero padding)
    taps = []
    for tap in itertools.product(*(range(k) for k in rest)):
        starts = [t * d - lo for t, d, (lo, _) in zip(tap, geom.dilation[1:], side_pads)]
        keep = [(max(0, -st), max(max(0, -st), min(o, size - st))) for st, o, size in zip(starts, out_rest, in_rest)]
        taps.append((starts, keep))
    out = np.empty((n, k_out) + tuple(geom.out_size), dtype=xd.dtype)
    step = max(1, plan_mod.CHUNK_BYTES // (inner * row * xd.itemsize))
    chunks = [(img, r, min(out0, r + step)) for img in range(n) for r in range(0, out0, step)]

    def work(chunk):  # rows r0:r1 of one image
        img, r0, r1 = chunk
        size, shift = (r1 - r0) * row, d0 * row
        span_rows = (r1 - r0) + (k0 - 1) * d0                 # input rows r0 − top … for all kernel rows
        cols = scratch("cols", (inner + ones, span_rows * row), xd.dtype)
        block = cols[:inner].reshape((c, len(taps), span_rows) + out_rest)
        first = r0 - top                                       # the input row of block row 0
        lo0, hi0 = max(0, -first), max(max(0, -first), min(span_rows, in0 - first))
        for t, (starts, keep) in enumerate(taps):
            b = block[:, t]                                    # (C, span_rows, *out_rest)
            ranges = [(lo0, hi0, span_rows)] + [(lo, hi, o) for (lo, hi), o in zip(keep, out_rest)]
            for axis, (lo, hi, extent) in enumerate(ranges, start=1):   # zero the slabs that read padding
                if lo:
                    b[(slice(None),) * axis + (slice(0, lo),)] = 0
                if hi < extent:
                    b[(slice(None),) * axis + (slice(hi, None),)] = 0
            if all(lo < hi for lo, hi, _ in ranges):
                dst = (slice(None),) + tuple(slice(lo, hi) for lo, hi, _ in ranges)
                src = (img, slice(None)) + tuple(slice(st + lo, st + hi) for st, (lo, hi, _) in
                                                 zip([first] + starts, ranges))
                b[dst] = xd[src]
        if ones:
            cols[inner] = 1
        y = np.matmul(ws[0], cols[:, :size], out=scratch("gemm", (k_out, size), xd.dtype))       # (K, L)
        tmp = scratch("gemm2", (k_out, size), xd.dtype)
        for i in range(1, k0):
            y += np.matmul(ws[i], cols[:, i * shift:i * shift + size], out=tmp)
        out[img, :, r0:r1] = y.reshape((k_out, r1 - r0) + out_rest)
    parallel.map(work, chunks)
    return out


FORWARD_ROW_SHIFTED = Algorithm("row-shifted", FORWARD, _forward, _applies, _preferred)
