"""The direct convolution at stride 1 by compiled loops (:mod:`.direct_loops`): no column matrix.

Convolutions with few inputs per output (LeNet's, ResNet-20's first two stages: ``C·kh·kw`` ≤ 288) lose twice on
the GEMM path: products with 16–32 rows run far below the matmul peak, and the column matrix costs as much again.
Here each image's channels are zero-padded into one flat buffer that stays in cache; each group of four output
channels (:data:`DIRECT_GROUP`) is then summed on the stride-1 frame of Ho rows, one pass per input channel and
kernel row with that row's 3 or 5 taps together (``f[v] += w0·s[v] + w1·s[v+1] + w2·s[v+2]``): four outputs and
three or five inputs per step, a loop the compiler vectorises. The weight gradient is the same walk with dot
products; the input gradient is this forward loop over ``dY`` padded by ``k − 1 − p``, with the flipped kernel and
the channels swapped (:mod:`.transposed`'s geometry). The threads claim the images one at a time from an atomic
counter (:func:`cnnkit.parallel.run_claimed`). Stride 2: :mod:`.direct_stride2`.
"""
from __future__ import annotations

import numpy as np

from .... import jit, parallel
from .algorithm import FORWARD, INPUT_GRAD, WEIGHT_GRAD, Algorithm
from .geometry import Geometry
from .plan import flat_frame_fits
from .transposed import flipped

__all__ = ["FORWARD_DIRECT", "INPUT_GRAD_DIRECT", "WEIGHT_GRAD_DIRECT", "direct_forward", "filter_groups",
           "forward_arrays", "grad_weight_blocks"]


def _loops():
    from . import direct_loops  # Numba: imported at the first compiled call
    return direct_loops


#: The default order takes the direct loops for layers with at most this many inputs per output (in_channels × kh ×
#: kw) and output channels: with so few inputs per output the GEMM's 16–32-row products run far below the peak, and
#: the column matrix costs as much again. ResNet-20's 64-channel layers (576 inputs per output) and VGG's first (64
#: outputs) came out level or slower this way on the machine that set these limits (AVX2; the paired runs, their
#: commands and figures: benchmarks/RESULTS.md, "Direct convolution"). Measurement (:mod:`.tuning`) tries the loops
#: up to the ``MEASURE`` limits.
DIRECT_MAX_DEPTH = 288
DIRECT_MAX_OUT_CHANNELS = 32
DIRECT_MEASURE_MAX_DEPTH = 1152
DIRECT_MEASURE_MAX_OUT_CHANNELS = 128

#: ... and at least this many bytes of input (below :data:`jit.MIN_BYTES`: the direct loop pays even for
#: `cnnkit train`'s batches of 32 digits, 128 KB).
DIRECT_MIN_BYTES = 2**16

#: Filters per pass of the forward loop (also the input gradient's) and of the weight gradient's (by kernel width):
#: four 3-wide filters keep 12 weights in registers; four 5-wide ones 20 (some spill, still faster than pairs);
#: the 5-wide weight gradient keeps pairs (20 sums would not fit). Paired figures: benchmarks/RESULTS.md.
DIRECT_GROUP = 4
DIRECT_GRAD_GROUP = {3: 4, 5: 2}

#: The weight gradient sums this many fixed blocks of images, each with its own partial sum, so that the gradient
#: does not depend on which thread did what.
DIRECT_GRAD_BLOCKS = 16

#: Small maps (ResNet's 8×8 stage: 10×10 padded planes) make short frames, and each pass over one costs more in
#: loop overhead than in arithmetic: the loops then stack the padded planes of several images one under the other
#: and run one frame over all of them, at least this many values long (the rows between images are computed and
#: dropped), ...
DIRECT_STACK_VALUES = 1024

#: ... as long as the stacked planes of all channels stay under this many bytes (in the core's cache).
DIRECT_STACK_BYTES = 2**18

#: Large maps (VGG's and MobileNet's first layers at 224²) make long frames: the forward computes a frame longer than
#: twice this many values this many at a time (whole rows, balanced), so that the four filters' partial sums stay in
#: the L1 cache; a frame that nearly fits (32×32 maps) is not split (paired: benchmarks/RESULTS.md, "Strips").
DIRECT_STRIP_VALUES = 1024


def stack(geom: Geometry, padded) -> int:
    """How many images the direct loops stack into one frame (:data:`DIRECT_STACK_VALUES`)."""
    per = padded[0] * padded[1]
    want = -(-DIRECT_STACK_VALUES // per)
    fits = DIRECT_STACK_BYTES // max(1, geom.c * per * geom.itemsize)
    return max(1, min(want, fits, geom.n))


def structure(geom: Geometry, stride: tuple, widths) -> bool:
    """What the direct loops are written for: 2-D, no groups, no dilation, this stride, these kernel widths,
    float32/float64, and not too many inputs per output for measurement to try."""
    return (geom.nd == 2 and geom.groups == 1 and geom.undilated and geom.stride == stride and geom.ksize[1] in widths
            and np.dtype(geom.dtype) in jit.DTYPES and geom.c * geom.taps <= DIRECT_MEASURE_MAX_DEPTH
            and geom.k_out <= DIRECT_MEASURE_MAX_OUT_CHANNELS)


def few_channels(geom: Geometry) -> bool:
    """The default order's rule: :data:`DIRECT_MAX_DEPTH`, :data:`DIRECT_MAX_OUT_CHANNELS`, :data:`DIRECT_MIN_BYTES`."""
    return (geom.c * geom.taps <= DIRECT_MAX_DEPTH and geom.k_out <= DIRECT_MAX_OUT_CHANNELS
            and geom.nbytes >= DIRECT_MIN_BYTES)


def _applies(geom: Geometry) -> bool:
    return structure(geom, (1, 1), (3, 5))


def _preferred(geom: Geometry) -> bool:
    # the input gradient takes the same loops (its padding k − 1 − p must not be negative), on a frame that fits
    return few_channels(geom) and flat_frame_fits(geom) and geom.grad_input_pads is not None


def filter_groups(w: np.ndarray, group: int) -> np.ndarray:
    """Filters ``(K, C, kh, kw)`` as the direct loops take them: ``(⌈K/G⌉, C, kh·kw, G)``, ``group`` = G output
    channels innermost (the last group's missing filters all zero)."""
    k, c = w.shape[:2]
    padded = np.zeros((-(-k // group) * group, c, w.shape[2] * w.shape[3]), dtype=w.dtype)
    padded[:k] = w.reshape(k, c, -1)
    return np.ascontiguousarray(padded.reshape(-1, group, c, padded.shape[2]).transpose(0, 2, 3, 1))


def direct_forward(x, wg, bias, out, pads, padded, images, counter) -> None:
    """``out`` (N, K, Ho, Wo) ← the stride-1 correlation of ``x`` (N, C, H, W), zero-padded by ``pads`` ((top, bottom),
    (left, right)) to ``padded``, with the filters in groups ``wg`` (⌈K/G⌉, C, kh·kw, G), G = 4 (missing filters of the
    last group all zero), plus ``bias`` (G·⌈K/G⌉,). ``images`` at a time (:func:`stack`), each group the next one
    claimed from ``counter`` (int64 (1,), from 0): threads that call this with one counter share the images, each
    taking a new group as it finishes one."""
    kw = padded[1] - out.shape[3] + 1
    if kw not in (3, 5):                                    # the loops are written out for these two widths
        raise ValueError(f"direct convolution: kernel width must be 3 or 5, got {kw}")
    strip = max(1, DIRECT_STRIP_VALUES // padded[1])
    _loops().direct_forward(x, wg, bias, out, pads[0][0], pads[1][0], padded[0], padded[1], kw, images, strip, counter)


def forward_arrays(geom: Geometry, x: np.ndarray, w: np.ndarray, bias) -> tuple:
    """What the forward loops take: ``(x contiguous, filters in groups, bias padded to the groups, empty output)``."""
    wg = filter_groups(w, DIRECT_GROUP)
    b = np.zeros(DIRECT_GROUP * wg.shape[0], dtype=x.dtype)
    if bias is not None:
        b[:geom.k_out] = bias
    return np.ascontiguousarray(x), wg, b, np.empty((geom.n, geom.k_out) + tuple(geom.out_size), dtype=x.dtype)


def _forward(geom: Geometry, x: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    xd, wg, b, out = forward_arrays(geom, x, w, bias)
    images = stack(geom, geom.padded)
    parallel.run_claimed(lambda counter: direct_forward(xd, wg, b, out, geom.pads, geom.padded, images, counter),
                         -(-geom.n // images))
    return out


def grad_weight_blocks(geom: Geometry, group: int, kernel) -> np.ndarray:
    """The weight gradient of the direct loops: ``kernel(parts, starts, counter)`` adds block ``b``'s images
    ``starts[b]:starts[b + 1]`` into ``parts[b]`` (⌈K/G⌉, C, kh·kw, G), blocks claimed from ``counter``; the parts are
    added in block order, so the gradient is the same bit for bit for any thread count. → ``(K, C, kh, kw)``."""
    n, c, k_out = geom.n, geom.c, geom.k_out
    blocks = min(n, DIRECT_GRAD_BLOCKS)
    starts = np.array([n * i // blocks for i in range(blocks + 1)], dtype=np.int64)
    parts = np.zeros((blocks, -(-k_out // group), c, geom.taps, group), dtype=geom.dtype)
    parallel.run_claimed(lambda counter: kernel(parts, starts, counter), blocks)
    gwg = parts.sum(axis=0)
    return gwg.transpose(0, 3, 1, 2).reshape(-1, c, geom.taps)[:k_out].reshape((k_out, c) + geom.ksize)


def _weight_grad(geom: Geometry, g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``parts[b]`` += the frame-gradient's dot products with the shifted input, block by block (G = 4 filters per
    pass for kw = 3, 2 for kw = 5: :data:`DIRECT_GRAD_GROUP`)."""
    g4, xd = np.ascontiguousarray(g), np.ascontiguousarray(x)
    (pt, _), (pl, _) = geom.pads
    hp, wp = geom.padded
    images = stack(geom, geom.padded)
    return grad_weight_blocks(geom, DIRECT_GRAD_GROUP[geom.ksize[1]], lambda parts, starts, counter: _loops(
        ).direct_grad_weight(g4, xd, parts, starts, pt, pl, hp, wp, geom.ksize[1], images, counter))


def _input_grad_applies(geom: Geometry) -> bool:
    return _applies(geom) and geom.grad_input_pads is not None and _applies(geom.transposed())


def _input_grad(geom: Geometry, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The forward loop over ``dY`` padded by ``k − 1 − p`` with the flipped kernel, channels swapped."""
    tgeom = geom.transposed()
    return _forward(tgeom, g, flipped(geom, w), None)


FORWARD_DIRECT = Algorithm("direct", FORWARD, _forward, _applies, _preferred, compiled=True)
INPUT_GRAD_DIRECT = Algorithm("direct", INPUT_GRAD, _input_grad, _input_grad_applies, _preferred, compiled=True)
WEIGHT_GRAD_DIRECT = Algorithm("direct", WEIGHT_GRAD, _weight_grad, _applies, _preferred, compiled=True)
