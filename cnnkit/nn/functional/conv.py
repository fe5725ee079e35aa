"""Convolution as matrix multiplication: one N-d implementation for conv1d, conv2d and conv3d.

Forward: pad, build the column matrix (im2col), one GEMM per group ``W(K, C·∏k) @ cols(C·∏k, positions)``,
chunk by chunk (:class:`_Plan`). Stride-1 columns are contiguous runs of the flattened padded image
(:func:`kernels.flat_windows`), computed on an output "frame" whose extra columns are dropped.
Backward, each part only when that input requires a gradient: ``dW = (cols @ dYᵀ)ᵀ`` with the columns
rebuilt (not kept: memory), ``dX`` as a stride-1 convolution of ``dY`` with the flipped kernel, or
``Wᵀ @ dY`` and col2im for strided convolutions. Depthwise convolutions take a GEMM-free tap-sum path
(:func:`_depthwise`), tested against the general one. Wide stride-1 3×3 layers (VGG's) take Winograd's
F(2×2, 3×3) (:func:`_winograd_forward`): 2.25× fewer multiplies, also tested against the general path.
Stride-1 layers with few inputs per output (LeNet's, ResNet-20's 16- and 32-channel layers) take a compiled
direct convolution that forms no column matrix (:func:`_direct_jit`), tested against PyTorch and the GEMM path.
"""
from __future__ import annotations

import itertools
import math
import os
import threading

import numpy as np

from ... import jit, kernels, parallel
from ...shape import conv_output_size, ntuple, resolve_padding
from ...tensor import Tensor, make_op
from .checks import AXES, check_rank, same_dtype

__all__ = ["conv1d", "conv2d", "conv3d", "im2col", "col2im"]

def output_geometry(in_size, kernel_size, stride, pads, dilation, name: str, ceil_mode=False):
    """Output spatial size; a clear error when a (dilated) window does not fit the padded input."""
    out = []
    for axis, (n, k, s, p, d) in enumerate(zip(in_size, kernel_size, stride, pads, dilation)):
        o = conv_output_size(n, k, s, p, d, ceil_mode)
        if o < 1:
            span = d * (k - 1) + 1
            raise ValueError(f"{name}: kernel size {k}{f' (dilated to {span})' if d > 1 else ''} is larger than "
                             f"the padded input {n + p[0] + p[1]} (input {n} + padding {p[0]}+{p[1]}) along "
                             f"spatial dimension {axis}")
        out.append(o)
    return tuple(out)


def _convnd(x: Tensor, weight: Tensor, bias, stride, padding, dilation, groups: int, nd: int) -> Tensor:
    name = f"conv{nd}d"
    check_rank(x, nd, name)
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        raise ValueError(f"{name}: weight must be a {nd + 2}-D tensor (out_channels, in_channels/groups, *kernel), "
                         f"got shape {getattr(weight, 'shape', None)}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got groups={groups!r}")
    n, c = x.shape[:2]
    k_out, c_per_group = weight.shape[:2]
    ksize = tuple(weight.shape[2:])
    if c != c_per_group * groups:
        raise ValueError(f"{name}: input has {c} channel{'s' if c != 1 else ''}, expected {c_per_group * groups} "
                         f"(weight of shape {tuple(weight.shape)}, groups={groups})")
    if k_out % groups:
        raise ValueError(f"{name}: groups={groups} must divide out_channels={k_out}")
    stride = ntuple(stride, nd, "stride", owner=name)
    dilation = ntuple(dilation, nd, "dilation", owner=name)
    pads = resolve_padding(padding, ksize, stride, dilation, owner=name)
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (k_out,)):
        raise ValueError(f"{name}: bias must have shape ({k_out},), got {getattr(bias, 'shape', None)}")
    same_dtype(name, x, weight=weight, bias=bias)  # as linear and batch_norm: no silent upcast
    out_size = output_geometry(x.shape[2:], ksize, stride, pads, dilation, name)

    plan = _Plan(x.shape, ksize, stride, pads, dilation, out_size, x.data.itemsize)
    dtype = np.result_type(x.data, weight.data)
    compute = _gemm
    if _depthwise_layer(groups, c, k_out):
        compute = _depthwise_jit if _depthwise_compiled(plan, x.data.nbytes, dtype) else _depthwise
    elif _direct(plan, groups, k_out, x.data.nbytes, dtype):
        compute = _direct_jit
    out, backward = compute(x, weight, bias, groups, plan)
    parents = (x, weight) if bias is None else (x, weight, bias)
    return make_op(out, parents, backward)


#: Depthwise convolutions (groups == in == out channels) take the tap-sum path; False sends them through
#: the general grouped GEMM path (the tests compare the two).
DEPTHWISE_PATH = True


def _depthwise_layer(groups: int, c: int, k_out: int) -> bool:
    return DEPTHWISE_PATH and groups == c == k_out and c > 1

#: The column matrix of one chunk of images (or of one image's rows) stays under this many bytes: it is
#: built, used and freed chunk by chunk, so memory stays bounded, and it fits the reused work buffer.
#: Cache-sized chunks make small-channel GEMMs faster (16×144 @ 144×L on one core: 30 GFLOP/s at
#: L = 29,000, 45–52 at L ≈ 4,000); each thread of cnnkit's pool works on its own chunks. A ResNet-20
#: training step on one core: 16 MB 2.05 s, 4 MB 1.56 s, 2 MB 1.58 s.
CHUNK_BYTES = 4 * 2**20


#: The stride-1 frame (see :class:`_Plan`) is used while it has at most this many times the output's positions.
FLAT_FRAME_MAX = 1.5


class _Plan:
    """How one convolution is laid out: padding, stride-1 frame or strided windows, chunks of work.

    With stride 1 the columns come from :func:`kernels.flat_windows` (contiguous copies) and the
    output is computed on the frame ``(out_0, *padded[1:])``; otherwise from :func:`kernels.windows`
    and the frame is the output itself. ``valid`` cuts the output out of the frame. Work is split into
    chunks ``(n0, n1, r0, r1)`` — images ``n0:n1``, frame rows ``r0:r1`` — whose column matrix stays
    under :data:`CHUNK_BYTES` (several whole images, or one image's rows when an image is larger).
    """

    def __init__(self, x_shape, ksize, stride, pads, dilation, out_size, itemsize):
        self.n, self.c = x_shape[:2]
        self.in_size, self.ksize, self.stride, self.pads, self.dilation = x_shape[2:], ksize, stride, pads, dilation
        self.out_size = out_size
        self.padded = tuple(s + lo + hi for s, (lo, hi) in zip(self.in_size, pads))
        # the stride-1 frame pays unless its wrap-around columns outnumber the valid ones by half (a 5×5
        # kernel on a 5×5 map: a 1×5 frame for one output)
        frame = (out_size[0],) + self.padded[1:]
        self.flat = all(s == 1 for s in stride) and math.prod(frame) <= FLAT_FRAME_MAX * math.prod(out_size)
        self.tail = self.flat and kernels.needs_tail(ksize, dilation)
        self.ext = ((self.padded[0] + 1,) + self.padded[1:]) if self.tail else self.padded
        self.frame = kernels.flat_frame(out_size, self.padded) if self.flat else tuple(out_size)
        self.valid = tuple(slice(0, o) for o in out_size)
        self.crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, self.in_size))
        self.taps = math.prod(ksize)
        per_row = self.c * self.taps * math.prod(self.frame[1:]) * itemsize
        self.chunks = _chunks(self.n, self.frame[0], per_row, CHUNK_BYTES)

    def pad(self, x: np.ndarray, scratch: bool = False) -> np.ndarray:
        """Padded input ``(N, C, *ext)``; in a reused work buffer with ``scratch`` (it must not escape)."""
        alloc = (lambda shape, dtype: _scratch("pad", shape, dtype)) if scratch else np.empty
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
        cols = _scratch("cols", (rows + ones, width), xe.dtype)
        np.copyto(cols[:rows].reshape(view.shape), view)
        if ones:
            cols[rows] = 1
        return cols

    def col2im(self, gcols: np.ndarray, gxe: np.ndarray, chunk) -> None:
        """Add the columns' gradient ``(C·∏k, nb·rows·∏frame[1:])`` into ``gxe`` (N, C, *ext), the adjoint of
        :meth:`columns` (one slice-add per tap)."""
        n0, n1, r0, r1 = chunk
        nb, rows, nd = n1 - n0, r1 - r0, len(self.ksize)
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
        out = _scratch("frame", (g.shape[1], g.shape[0], g.shape[2]) + self.frame[1:], g.dtype)
        out[...] = 0
        out[(slice(None), slice(None), slice(None)) + self.valid[1:]] = g.swapaxes(0, 1)
        return out


def _chunks(n: int, rows: int, row_bytes: int, limit: int) -> list:
    """Work of ``n`` images of ``rows`` rows, ``row_bytes`` each, in chunks ``(n0, n1, r0, r1)`` (images ``n0:n1``,
    rows ``r0:r1``) of at most ``limit`` bytes where a row allows: several whole images, balanced for the
    threads (:func:`parallel.split`), or, when one image is larger, rows of one image."""
    if row_bytes * rows <= limit:
        return [(s.start, s.stop, 0, rows) for s in parallel.split(n, row_bytes * rows, limit)]
    step = max(1, limit // row_bytes)
    return [(i, i + 1, r, min(rows, r + step)) for i in range(n) for r in range(0, rows, step)]


_SCRATCH = threading.local()

#: Work buffers up to this size are kept for reuse (per thread and role); larger ones are allocated per
#: call and freed, so that big layers (VGG at 224²) do not keep memory alive after they ran.
SCRATCH_KEEP_BYTES = 16 * 2**20


def _scratch(name: str, shape, dtype) -> np.ndarray:
    """A reused per-thread work array (column matrices, GEMM outputs) — contents undefined.

    Fresh large arrays cost a page fault per 4 KB on first touch (the allocator returns them to the
    system when freed); reusing one buffer per role avoids that. Never let one escape an op.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > SCRATCH_KEEP_BYTES:  # large layers: the page faults are cheap next to their GEMMs
        return np.empty(shape, dtype=dtype)
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(max(nbytes, 1), dtype=np.uint8)
        setattr(_SCRATCH, name, buf)
    return buf[:nbytes].view(dtype).reshape(shape)


def _group_matmul(a: np.ndarray, b: np.ndarray, groups: int, out: np.ndarray) -> np.ndarray:
    """``out[g] = a[g] @ b[g]`` with a, b and out split into ``groups`` row blocks: 2-D GEMMs only."""
    if groups == 1:
        return parallel.matmul(a, b, out=out)
    ra, rb = a.shape[0] // groups, b.shape[0] // groups
    for i in range(groups):
        parallel.matmul(a[i * ra:(i + 1) * ra], b[i * rb:(i + 1) * rb], out=out[i * ra:(i + 1) * ra])
    return out


def _gemm_forward(xd: np.ndarray, w2: np.ndarray, bias, groups: int, plan: _Plan) -> np.ndarray:
    """The forward GEMM path on arrays: ``(N, C, *in)`` → ``(N, K, *out)``, ``w2`` is ``(K, C/g·∏k)``."""
    k_out = w2.shape[0]
    if plan.n == 0:  # the report's shape trace: no work, and no transient copies left in the heap
        return np.empty((0, k_out) + tuple(plan.out_size), dtype=xd.dtype)
    if _winograd(plan, groups, k_out, xd.nbytes, xd.dtype) and _all_finite(xd, w2):
        return _winograd_forward(xd, w2, bias, plan)
    if _row_shifted(plan, groups):
        return _row_shifted_forward(xd, w2, bias, plan)
    fold = bias is not None and groups == 1   # y = [W | b] @ [cols; 1]: no separate pass to add the bias
    if fold:
        w2 = np.concatenate([w2, bias.reshape(k_out, 1)], axis=1)
    xe = plan.pad(xd, scratch=True)
    out = np.empty((plan.n, k_out) + tuple(plan.out_size), dtype=xd.dtype)
    keep = (slice(None),) * 3 + plan.valid[1:]

    def work(chunk):  # on any thread: its own column and GEMM buffers, a disjoint part of ``out``
        n0, n1, r0, r1 = chunk
        cols = plan.columns(xe, chunk, ones=fold)                          # (C·∏k (+1), nb·rows·F1)
        y = _group_matmul(w2, cols, groups, _scratch("gemm", (k_out, cols.shape[1]), xd.dtype))  # (K, nb·rows·F1)
        del cols
        if bias is not None and not fold:
            y += bias.reshape(k_out, 1)
        y = y.reshape((k_out, n1 - n0, r1 - r0) + plan.frame[1:])[keep]    # (K, nb, rows, *o[1:])
        out[n0:n1, :, r0:r1] = y.swapaxes(0, 1)
    parallel.map(work, plan.chunks)                                        # chunks handed out one at a time
    return out


#: The row-shifted forward (:func:`_row_shifted_forward`) takes stride-1 convolutions without groups whose
#: per-row column block has at least this many rows (input channels × taps of one kernel row) and whose
#: output has at least this many positions per image (large images: VGG, not CIFAR's 8×8 maps).
ROW_SHIFT_MIN_ROWS = 128
ROW_SHIFT_MIN_POSITIONS = 512


def _row_shifted(plan: _Plan, groups: int) -> bool:
    return (all(s == 1 for s in plan.stride) and groups == 1 and plan.ksize[0] > 1 and len(plan.ksize) > 1
            and plan.c * math.prod(plan.ksize[1:]) >= ROW_SHIFT_MIN_ROWS
            and math.prod(plan.out_size) >= ROW_SHIFT_MIN_POSITIONS)


def _row_shifted_forward(xd: np.ndarray, w2: np.ndarray, bias, plan: _Plan) -> np.ndarray:
    """Stride-1 forward with a third of the columns and no padded copy of the input.

    The columns are built for the taps of ONE kernel row, over a few extra output rows, straight from
    the input (zeros where a tap reads the padding); laid out row-major with the output's row length
    ``row = ∏out[1:]``, kernel row ``i`` reads the same matrix ``i·d·row`` columns further on, so
    ``y = Σ_i W_i @ cols[:, i·d·row:][:, :L]`` — one GEMM per kernel row, each on a view, instead of one
    GEMM on ∏k column blocks. One image's rows per chunk. VGG's 3×3 layers: about 15 % faster than the
    full columns on one core, and the 52 MB padded copy of VGG's second layer input (20 % of that
    layer's time, most of it page faults) is never made.
    """
    n, c, k_out = plan.n, plan.c, w2.shape[0]
    k0, d0, rest = plan.ksize[0], plan.dilation[0], plan.ksize[1:]
    (top, _), side_pads = plan.pads[0], plan.pads[1:]
    in0, out0, in_rest, out_rest = plan.in_size[0], plan.out_size[0], plan.in_size[1:], tuple(plan.out_size[1:])
    row = math.prod(out_rest)                                  # one output row, flattened
    inner = c * math.prod(rest)                                # column rows per kernel row: (C, *rest)
    w = w2.reshape((k_out, c, k0, math.prod(rest)))
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
        starts = [t * d - lo for t, d, (lo, _) in zip(tap, plan.dilation[1:], side_pads)]
        keep = [(max(0, -st), max(max(0, -st), min(o, size - st))) for st, o, size in zip(starts, out_rest, in_rest)]
        taps.append((starts, keep))
    out = np.empty((n, k_out) + tuple(plan.out_size), dtype=xd.dtype)
    step = max(1, CHUNK_BYTES // (inner * row * xd.itemsize))
    chunks = [(img, r, min(out0, r + step)) for img in range(n) for r in range(0, out0, step)]

    def work(chunk):  # rows r0:r1 of one image
        img, r0, r1 = chunk
        size, shift = (r1 - r0) * row, d0 * row
        span_rows = (r1 - r0) + (k0 - 1) * d0                 # input rows r0 − top … for all kernel rows
        cols = _scratch("cols", (inner + ones, span_rows * row), xd.dtype)
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
        y = np.matmul(ws[0], cols[:, :size], out=_scratch("gemm", (k_out, size), xd.dtype))       # (K, L)
        tmp = _scratch("gemm2", (k_out, size), xd.dtype)
        for i in range(1, k0):
            y += np.matmul(ws[i], cols[:, i * shift:i * shift + size], out=tmp)
        out[img, :, r0:r1] = y.reshape((k_out, r1 - r0) + out_rest)
    parallel.map(work, chunks)
    return out


#: Stride-1, undilated 3×3 convolutions without groups with at least this many input and output channels
#: and outputs at least this wide use Winograd's minimal filtering (:func:`_winograd_forward`) when the
#: compiled kernels are available; ``WINOGRAD = False`` (``CNNKIT_WINOGRAD=0`` in the environment, or
#: ``cnnkit bench --no-winograd``) switches it off. Against the GEMM path on 2 cores,
#: 4 images: VGG-16's layers from 128 channels at 112² to 512 at 28² 1.3–1.9x faster, 512 at 14² 1.1–1.5x;
#: at 64 channels (224²) 1.05–1.5x, not enough to load Numba (about 90 MB) next to VGG's two largest
#: activations; ResNet-20's (16–64 channels at 32²–8², 128 images) 1.3–1.6x slower on 2 cores, level at
#: best on one: narrow rows of tiles cost more to transform than their 16 small GEMMs save (but see
#: :data:`WINOGRAD_IMAGES_MIN` for the 64-channel ones).
WINOGRAD = os.environ.get("CNNKIT_WINOGRAD", "1") not in ("0", "false", "False", "")
WINOGRAD_MIN_CHANNELS = 128
WINOGRAD_MIN_WIDTH = 14

#: Many images of small maps (at least this many images, outputs at most this wide, at least this many input and
#: output channels: ResNet's 64-channel 8×8 stage at batch 128) take Winograd with the images innermost in the
#: tiles' layout (:func:`jit.winograd_input_images`). A row of tiles of an 8×8 map is 4 tiles long, too short for
#: the row-wise transforms above (they took 3× the GEMMs' time); with the images innermost each step is a run of
#: one value per image. Against the GEMM path, paired (64 channels): 8×8 maps 0.70× the time with 128 images,
#: 0.88× with 64, but 1.15× with 32 and 1.4× with 16; 12×12 and 16×16 maps 1.07–1.13× even with 64–128 images.
WINOGRAD_IMAGES_MIN = 64
WINOGRAD_IMAGES_MAX_WIDTH = 8
WINOGRAD_IMAGES_MIN_CHANNELS = 64

#: ... in chunks of whole images of at most this many bytes of transformed tiles, each thread taking whole chunks.
WINOGRAD_IMAGES_CHUNK_BYTES = 2**21

#: Winograd's transformed tiles (16 × channels × tiles) are made and used chunk by chunk under this size.
WINOGRAD_CHUNK_BYTES = 8 * 2**20


def _winograd(plan: _Plan, groups: int, k_out: int, nbytes: int, dtype) -> bool:
    if not (WINOGRAD and plan.ksize == (3, 3) and plan.stride == (1, 1) and plan.dilation == (1, 1) and groups == 1):
        return False
    return (_winograd_wide(plan, k_out) or _winograd_images(plan, k_out)) and jit.worth_it(nbytes, dtype)


def _winograd_wide(plan: _Plan, k_out: int) -> bool:
    """Whether a layer is wide enough for Winograd with the tiles in rows (:data:`WINOGRAD_MIN_CHANNELS`)."""
    return min(plan.c, k_out) >= WINOGRAD_MIN_CHANNELS and plan.out_size[1] >= WINOGRAD_MIN_WIDTH


def _winograd_images(plan: _Plan, k_out: int) -> bool:
    """Whether Winograd's tiles are laid out with the images innermost (:data:`WINOGRAD_IMAGES_MIN`): layers that
    the row layout does not take. On VGG's wide layers at 14² and 16² with 16–32 images the row layout, whose
    GEMMs span all the images on all the BLAS's threads, ran 1.4–2× faster."""
    return (plan.n >= WINOGRAD_IMAGES_MIN and plan.out_size[1] <= WINOGRAD_IMAGES_MAX_WIDTH
            and min(plan.c, k_out) >= WINOGRAD_IMAGES_MIN_CHANNELS and not _winograd_wide(plan, k_out))


def _all_finite(*arrays) -> bool:
    """Whether every value is finite, by one summing pass over each array (a sum that overflows only sends the
    layer to the GEMM path). Winograd's transforms would turn an infinity into NaN in the other outputs of its
    tile; the direct sum keeps PyTorch's pattern of infinities and NaNs."""
    return all(np.isfinite(np.sum(a)) for a in arrays)


def conv2d_path(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups: int = 1,
                dtype=np.float32) -> str | None:
    """Which implementation :func:`conv2d` of an input ``(N, C, H, W)`` with a weight ``(K, C/groups, kh, kw)``
    takes: ``"depthwise"`` (tap sums), ``"direct"`` (:func:`_direct_jit`), ``"winograd"`` (F(2×2, 3×3),
    :func:`_winograd_forward`) or ``"gemm"`` (im2col + GEMM); None when the kernel does not fit the input. For
    reports and benchmarks (which count every layer's multiplies as the direct method does them). Winograd also
    needs finite inputs and weights, which only the call itself can see."""
    if len(input_shape) != 4 or len(weight_shape) != 4:
        return None
    ksize = tuple(weight_shape[2:])
    stride, dilation = ntuple(stride, 2, "stride"), ntuple(dilation, 2, "dilation")
    pads = resolve_padding(padding, ksize, stride, dilation)
    try:
        out_size = output_geometry(input_shape[2:], ksize, stride, pads, dilation, "conv2d")
    except ValueError:                                             # the kernel does not fit: no convolution at all
        return None
    plan = _Plan(tuple(input_shape), ksize, stride, pads, dilation, out_size, np.dtype(dtype).itemsize)
    nbytes, k_out = math.prod(input_shape) * np.dtype(dtype).itemsize, weight_shape[0]
    if _depthwise_layer(groups, input_shape[1], k_out):
        return "depthwise"
    if _direct(plan, groups, k_out, nbytes, dtype):
        return "direct"
    return "winograd" if _winograd(plan, groups, k_out, nbytes, dtype) else "gemm"


def winograd_applies(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups: int = 1,
                     dtype=np.float32) -> bool:
    """Whether :func:`conv2d` takes Winograd's F(2×2, 3×3) for these shapes (:func:`conv2d_path`)."""
    return conv2d_path(input_shape, weight_shape, stride, padding, dilation, groups, dtype) == "winograd"


def _winograd_forward(xd: np.ndarray, w2: np.ndarray, bias, plan: _Plan) -> np.ndarray:
    """Winograd's F(2×2, 3×3): each 2×2 block of outputs from a 4×4 tile of input in 16 multiplies per
    (input, output) channel pair instead of 36.

    ``Y = Aᵀ·[Σ_c (G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A`` per tile: the filters are transformed once (``U``, 16 × K × C), the
    input tiles by the compiled :func:`jit.winograd_input` (``V``, 16 × C × tiles, tiles at stride 2), then
    ``M[i] = U[i] @ V[i]`` — 16 GEMMs with the channels as inner axis — and :func:`jit.winograd_output` folds
    ``M`` back into the output. Exact in exact arithmetic; in float32 within about 1e-6 of the output's largest
    value of the direct sum.
    """
    n, c, k_out = plan.n, plan.c, w2.shape[0]
    ho, wo = plan.out_size
    th, tw = -(-ho // 2), -(-wo // 2)                              # tiles down and across
    u_flat, u = _winograd_rows("gemm2", (k_out, c), xd.dtype)
    jit.winograd_filters(np.ascontiguousarray(w2).reshape(k_out, c, 3, 3), u_flat, u.strides[0] // xd.itemsize)
    b = np.zeros(k_out, dtype=xd.dtype) if bias is None else bias
    x = np.ascontiguousarray(xd)
    out = np.empty((n, k_out, ho, wo), dtype=xd.dtype)
    pads = (plan.pads[0][0], plan.pads[1][0])
    tile = 16 * max(c, k_out) * xd.itemsize                        # bytes of V (or M) per tile
    if _winograd_images(plan, k_out):                              # chunks of whole images, one at a time per thread
        parallel.map(lambda images: _winograd_images_block(x, u, b, out, pads, images, (th, tw)),
                     parallel.split(n, th * tw * tile, WINOGRAD_IMAGES_CHUNK_BYTES))
    elif n * th * tw * tile <= WINOGRAD_CHUNK_BYTES:               # small: one block of all the tiles
        _winograd_tiles(x, u, b, out, pads, (0, n, 0, th), tw, split=True)
    else:                                                          # chunks, one at a time per thread
        parallel.map(lambda chunk: _winograd_tiles(x, u, b, out, pads, chunk, tw),
                     _chunks(n, th, tw * tile, WINOGRAD_CHUNK_BYTES))
    return out


def _winograd_tiles(x, u, b, out, pads, chunk, tw: int, split: bool = False) -> None:
    """The tiles of ``chunk`` (images ``n0:n1``, rows of tiles ``r0:r1``) through :func:`_winograd_forward`'s
    three steps, into ``out``. With ``split`` (a chunk of all the images, VGG's 14² layers: 49 tiles an image)
    the transforms are shared by cnnkit's threads, image by image, and the GEMMs, called from here, use all
    of the BLAS's threads: a few large GEMMs rather than many small ones."""
    n0, n1, r0, r1 = chunk
    images, rows, dtype = slice(n0, n1), slice(r0, r1), x.dtype
    tiles = (n1 - n0) * (r1 - r0) * tw
    v_flat, v = _winograd_rows("cols", (u.shape[2], tiles), dtype)
    m_flat, m = _winograd_rows("gemm", (u.shape[1], tiles), dtype)
    vs, ms = v.strides[0] // dtype.itemsize, m.strides[0] // dtype.itemsize

    def each(transform, nbytes):  # over the chunk's images: here, or (split) on the threads, some images each
        return parallel.run_slices(transform, n1, nbytes) if split else transform(images)
    each(lambda part: jit.winograd_input(x, v_flat, vs, pads, images, rows, tw, part), x.nbytes)
    np.matmul(u, v, out=m)                                         # M[i] = U[i] @ V[i], 16 GEMMs
    each(lambda part: jit.winograd_output(m_flat, ms, out, b, images, rows, tw, part), out.nbytes)


def _winograd_images_block(x, u, b, out, pads, images: slice, tiles: tuple) -> None:
    """The tiles of ``images`` through :func:`_winograd_forward`'s three steps with the images innermost
    (:func:`jit.winograd_input_images`), on the calling thread."""
    dtype, count = x.dtype, (images.stop - images.start) * tiles[0] * tiles[1]
    v_flat, v = _winograd_rows("cols", (u.shape[2], count), dtype)
    m_flat, m = _winograd_rows("gemm", (u.shape[1], count), dtype)
    jit.winograd_input_images(x, v_flat, v.strides[0] // dtype.itemsize, pads, images, tiles)
    np.matmul(u, v, out=m)                                         # M[i] = U[i] @ V[i], 16 GEMMs
    jit.winograd_output_images(m_flat, m.strides[0] // dtype.itemsize, out, b, images, tiles)


def _winograd_rows(name: str, shape, dtype):
    """A work buffer of 16 matrices ``shape`` (Winograd's U, V or M): ``(flat buffer, (16, *shape) view)``. The
    matrices are 64 bytes further apart than their size: rows a multiple of 4 KB apart would fall into the
    same cache sets, and the transforms, which touch all 16 at once, ran 4x slower so."""
    size = math.prod(shape)
    flat = _scratch(name, (16 * (size + 16),), dtype)
    return flat, flat.reshape(16, size + 16)[:, :size].reshape((16,) + tuple(shape))


def _grad_input_pads(plan: _Plan):
    """The padding of dY that makes dX a stride-1 correlation (:func:`_transposed_plan`): ``(k−1)·d − P`` per
    side, or None where that is negative (a padding wider than the kernel's reach)."""
    pads = tuple(((k - 1) * d - lo, (k - 1) * d - hi) for k, d, (lo, hi) in zip(plan.ksize, plan.dilation, plan.pads))
    return None if any(lo < 0 or hi < 0 for lo, hi in pads) else pads


def _transposed_plan(plan: _Plan, k_out: int, itemsize: int):
    """For stride 1: the plan of dX as a convolution of the padded dY with the flipped kernel, or None.

    ``dX[y] = Σ_i dY[y + P_lo − i·d]·W[i]`` is a stride-1 correlation of dY, padded by ``(k−1)·d − P``
    per side, with the kernel flipped and in/out channels swapped — one forward-shaped GEMM (inner axis
    K·∏k, small output) instead of ``Wᵀ @ dY`` (inner axis K, a ∏k-times larger output) plus col2im.
    """
    pads = _grad_input_pads(plan)
    if not plan.flat or pads is None:
        return None
    shape = (plan.n, k_out) + tuple(plan.out_size)
    tplan = _Plan(shape, plan.ksize, plan.stride, pads, plan.dilation, tuple(plan.in_size), itemsize)
    # it builds K·∏k·∏frame' columns where col2im's route writes and re-reads C·∏k·∏frame: with more output
    # than input channels and a wide padded frame (LeNet's C3: 6 → 16, 5×5) col2im is cheaper
    if k_out * math.prod(tplan.frame) > 1.25 * plan.c * math.prod(plan.frame):
        return None
    return tplan


def _gemm(x: Tensor, weight: Tensor, bias, groups: int, plan: _Plan):
    """im2col + one GEMM per group and chunk: ``W(K, C/g·∏k) @ cols(C/g·∏k, chunk positions)``."""
    k_out, nd = weight.shape[0], len(plan.ksize)
    dtype = np.result_type(x.data, weight.data)
    w2 = weight.data.reshape(k_out, -1).astype(dtype, copy=False)           # (K, C/g·∏k)
    b = None if bias is None else bias.data.astype(dtype, copy=False)
    out = _gemm_forward(x.data.astype(dtype, copy=False), w2, b, groups, plan)

    def backward(g):
        gb = g.sum(axis=(0,) + tuple(range(2, 2 + nd))) if bias is not None and bias.requires_grad else None
        return _gemm_backward(g, x, weight, groups, plan, weight.requires_grad, x.requires_grad) + (gb,)
    return out, backward


def _gemm_backward(g: np.ndarray, x: Tensor, weight: Tensor, groups: int, plan: _Plan, need_w: bool,
                   need_x: bool):
    """:func:`_gemm`'s ``(dX, dW)`` (each None unless asked for): ``dW = dY @ colsᵀ`` and ``dX`` either as a convolution
    of ``dY`` (stride 1, :func:`_transposed_plan`) or ``Wᵀ @ dY`` added back by col2im."""
    n, k_out, nd = plan.n, weight.shape[0], len(plan.ksize)
    dtype = np.result_type(x.data, weight.data)
    w2 = weight.data.reshape(k_out, -1).astype(dtype, copy=False)           # (K, C/g·∏k)
    gx = gw = None
    if need_w:
        gw = np.zeros_like(w2)
    tplan = _transposed_plan(plan, k_out, np.dtype(dtype).itemsize) if need_x else None
    if tplan is not None:  # dX = conv(dY, flipped kernel with in/out swapped)
        kg, cg = k_out // groups, plan.c // groups
        flip = (slice(None),) * 3 + (slice(None, None, -1),) * nd
        wf = weight.data.astype(dtype, copy=False).reshape((groups, kg, cg) + plan.ksize).swapaxes(1, 2)[flip]
        gx = _gemm_forward(g, np.ascontiguousarray(wf).reshape(plan.c, -1), None, groups, tplan)
        need_x = False
    if need_x:
        gxe = np.zeros((n, plan.c) + plan.ext, dtype=dtype)
    xe = plan.pad(x.data.astype(dtype, copy=False), scratch=True) if need_w else None  # recomputed: saves memory
    wt = w2.reshape(groups, k_out // groups, -1).transpose(0, 2, 1).reshape(-1, k_out // groups)

    def work(chunks):  # → this part's dW; col2im writes only its own images' part of gxe
        part = np.zeros_like(w2) if need_w else None
        for chunk in chunks:
            n0, n1, r0, r1 = chunk
            gy = plan.to_frame(g[n0:n1, :, r0:r1]).reshape(k_out, -1)   # (K, nb·rows·F1)
            if need_w:
                cols = plan.columns(xe, chunk)                         # (C·∏k, nb·rows·F1)
                kg, rc = k_out // groups, cols.shape[0] // groups
                for i in range(groups):  # dW = dY @ colsᵀ, computed as (cols @ dYᵀ)ᵀ: OpenBLAS threads the
                    # product with the long inner axis badly in the first form (3-90x slower, 2 threads, busy)
                    part[i * kg:(i + 1) * kg] += parallel.matmul(cols[i * rc:(i + 1) * rc],
                                                                 gy[i * kg:(i + 1) * kg].T).T
                del cols
            if need_x:
                gcols = _group_matmul(wt, gy, groups, _scratch("gemm", (wt.shape[0], gy.shape[1]), dtype))
                plan.col2im(gcols, gxe, chunk)                         # Wᵀ @ dY, added back
                del gcols
        return part
    if need_w or need_x:
        # chunks of one image's rows overlap in the padded gradient: those run in one thread
        whole = all(r0 == 0 and r1 == plan.frame[0] for _, _, r0, r1 in plan.chunks)
        parts = (parallel.map(lambda chunk: work([chunk]), plan.chunks) if whole or not need_x
                 else [work(plan.chunks)])
        if need_w:
            for part in parts:
                gw += part
    if need_x:
        gx = gxe[(slice(None), slice(None)) + plan.crop]                # (N, C, *in) view of the padded grad
    if gw is not None:
        gw = gw.reshape(weight.shape)
    return gx, gw


#: The depthwise path works on blocks of images of about this many bytes per array, so that the nine
#: or so passes over a block (one per tap) run in cache: about 1.7x faster than whole-batch passes.
DEPTHWISE_BLOCK_BYTES = 2**20


def _depthwise(x: Tensor, weight: Tensor, bias, groups: int, plan: _Plan):
    """Depthwise convolution (groups == in == out channels): a sum over taps of weight × shifted input.

    No GEMM (each output channel sees one input channel): ``y[n, c] = Σ_t w[c, t]·window_t[n, c]``,
    computed on the same frame/window views as the GEMM path and checked against it in the tests.
    """
    n, c, nd = plan.n, plan.c, len(plan.ksize)
    dtype = np.result_type(x.data, weight.data)
    w = weight.data.reshape(c, plan.taps).astype(dtype, copy=False)        # (C, T)
    wcol = [w[:, t].reshape((c,) + (1,) * nd) for t in range(plan.taps)]  # broadcast over (nb, C, *frame)
    both = (slice(None), slice(None))
    taps = list(itertools.product(*(range(k) for k in plan.ksize)))
    blocks = parallel.split(n, c * math.prod(plan.frame) * np.dtype(dtype).itemsize, DEPTHWISE_BLOCK_BYTES)
    step = max(b.stop - b.start for b in blocks)                            # images in the largest block
    view = plan.tap_view(plan.pad(x.data.astype(dtype, copy=False), scratch=True))  # (N, C, *k, *frame)
    acc = np.empty((n, c) + plan.frame, dtype=dtype)

    def forward_blocks(part):  # each thread its own blocks of images and temporary
        tmp = _scratch("tmp", (step, c) + plan.frame, dtype)
        for blk in part:
            a, tb = acc[blk], tmp[:blk.stop - blk.start]
            for t, tap in enumerate(taps):
                src = view[(blk, slice(None)) + tap]                       # (nb, C, *frame)
                if t == 0:
                    np.multiply(src, wcol[t], out=a)
                else:
                    a += np.multiply(src, wcol[t], out=tb)
    parallel.run(forward_blocks, blocks)
    del view
    if bias is not None:
        acc += bias.data.astype(dtype, copy=False).reshape((c,) + (1,) * nd)
    out = acc[both + plan.valid]
    out = out if out.flags.c_contiguous else np.ascontiguousarray(out)

    def backward(g):
        gx = gw = gb = None
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0,) + tuple(range(2, 2 + nd)))
        if plan.frame == tuple(plan.out_size):
            gf = np.ascontiguousarray(g)                                    # (N, C, *frame)
        else:
            gf = np.zeros((n, c) + plan.frame, dtype=dtype)
            gf[both + plan.valid] = g
        offsets = kernels.flat_offsets(plan.ksize, plan.dilation, plan.padded) if plan.flat else None
        frame = math.prod(plan.frame)
        if weight.requires_grad:
            xe = plan.pad(x.data.astype(dtype, copy=False), scratch=True)
            view = plan.tap_view(xe)

            def weight_blocks(part):  # → this part's dW (C, T)
                tmp = _scratch("tmp", (step, c) + plan.frame, dtype)
                gw = np.zeros((c, plan.taps), dtype=dtype)
                for blk in part:
                    nb = blk.stop - blk.start
                    for t, tap in enumerate(taps):
                        if plan.flat:  # one dot product per (image, channel): BLAS, no temporary
                            src = xe.reshape(n, c, -1)[blk, :, offsets[t]:offsets[t] + frame]  # (nb, C, F)
                            dots = np.matmul(gf[blk].reshape(nb, c, 1, frame), src[..., None])  # (nb, C, 1, 1)
                            gw[:, t] += dots.reshape(nb, c).sum(axis=0)
                        else:
                            prod = np.multiply(gf[blk], view[(blk, slice(None)) + tap], out=tmp[:nb])
                            gw[:, t] += prod.reshape(nb, c, -1).sum(axis=2).sum(axis=0)
                return gw
            gw = sum(parallel.run(weight_blocks, blocks)).reshape(weight.shape)
            del view, xe
        if x.requires_grad:
            gxe = np.zeros((n, c) + plan.ext, dtype=dtype)

            def input_blocks(part):  # each part adds into its own images of gxe
                tmp = _scratch("tmp", (step, c) + plan.frame, dtype)
                for blk in part:
                    nb = blk.stop - blk.start
                    if plan.flat:
                        flat, gfl = gxe.reshape(n, c, -1)[blk], gf[blk].reshape(nb, c, -1)
                        tfl = tmp[:nb].reshape(nb, c, -1)
                        for t, off in enumerate(offsets):
                            flat[:, :, off:off + frame] += np.multiply(gfl, w[:, t:t + 1], out=tfl)
                        continue
                    for t, tap in enumerate(taps):
                        region = tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                                       for i, d, s, o in zip(tap, plan.dilation, plan.stride, plan.out_size))
                        gxe[(blk, slice(None)) + region] += np.multiply(gf[blk], wcol[t], out=tmp[:nb])
            parallel.run(input_blocks, blocks)
            gx = gxe[both + plan.crop]
        return gx, gw, gb
    return out, backward


def _two(plan: _Plan, t, one):
    """A 1-D layer's ``t`` as 2-D with one row (``one`` the row's value); a 2-D layer's as it is."""
    return (one,) + tuple(t) if len(plan.ksize) == 1 else tuple(t)


def _depthwise_phases(plan: _Plan):
    """The compiled depthwise loops' geometry: ``(phase, offsets)``. The padded plane is split into the stride's
    phases, each ``phase`` = (hq, wq) plus one row (stride 1: the padded plane); tap (r, s) reads phase
    (r·dh % sh, s·dw % sw) shifted by (r·dh // sh, s·dw // sw): ``offsets[t]``, in the flat buffer of phases."""
    (kh, kw), (dh, dw), (sh, sw) = _two(plan, plan.ksize, 1), _two(plan, plan.dilation, 1), _two(plan, plan.stride, 1)
    hp, wp = _two(plan, plan.padded, 1)
    hq, wq = -(-hp // sh), -(-wp // sw)
    offsets = [((r * dh % sh) * sw + s * dw % sw) * (hq + 1) * wq + (r * dh // sh) * wq + s * dw // sw
               for r in range(kh) for s in range(kw)]
    return (hq, wq), np.array(offsets, dtype=np.int64)


def _depthwise_compiled(plan: _Plan, nbytes: int, dtype) -> bool:
    """Whether a depthwise layer takes the compiled loops: 1-D or 2-D, and a frame (Ho rows of wq) at most
    :data:`FLAT_FRAME_MAX` times the output (a 5×5 kernel on a 5×5 map: one output, a 1×9 frame)."""
    if len(plan.ksize) > 2 or not jit.worth_it(nbytes, dtype):
        return False
    wq = -(-_two(plan, plan.padded, 1)[1] // _two(plan, plan.stride, 1)[1])    # as _depthwise_phases
    return wq <= FLAT_FRAME_MAX * _two(plan, plan.out_size, 1)[1]


def _depthwise_jit(x: Tensor, weight: Tensor, bias, groups: int, plan: _Plan):
    """2-D depthwise convolution (1-D as one row) with the compiled loops of :mod:`cnnkit.jit`: the same tap sum as
    :func:`_depthwise`, each plane padded (and split into its stride's phases) in cache, a block of images per
    thread."""
    n, c, nd = plan.n, plan.c, len(plan.ksize)
    dtype = np.result_type(x.data, weight.data)
    pads, stride, out_size = _two(plan, plan.pads, (0, 0)), _two(plan, plan.stride, 1), _two(plan, plan.out_size, 1)
    phase, offsets = _depthwise_phases(plan)
    w = np.ascontiguousarray(weight.data.reshape(c, plan.taps), dtype=dtype)   # (C, T)
    xd = np.ascontiguousarray(x.data, dtype=dtype).reshape((n, c) + _two(plan, plan.in_size, 1))  # (N, C, H, W)
    out = np.empty((n, c) + out_size, dtype=dtype)

    def forward(blk):  # a contiguous block of images per thread: C-contiguous slices for the compiled loops
        jit.depthwise_forward(xd[blk], w, out[blk], pads, stride, phase, offsets)
        if bias is not None:
            out[blk] += bias.data.astype(dtype, copy=False).reshape(c, 1, 1)
    parallel.run_slices(forward, n)
    shape = (n, c) + tuple(plan.out_size)

    def backward(g):
        gx = gw = gb = None
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0,) + tuple(range(2, 2 + nd)))
        g4 = np.ascontiguousarray(g, dtype=dtype).reshape((n, c) + out_size)
        if weight.requires_grad:
            def weight_part(blk):
                gw = np.zeros_like(w)
                jit.depthwise_grad_weight(g4[blk], xd[blk], gw, pads, stride, phase, offsets)
                return gw
            gw = sum(parallel.run_slices(weight_part, n)).reshape(weight.shape)
        if x.requires_grad:
            gx = np.empty(xd.shape, dtype=dtype)
            parallel.run_slices(
                lambda blk: jit.depthwise_grad_input(g4[blk], w, gx[blk], pads, stride, phase, offsets), n)
            gx = gx.reshape(x.shape)
        return gx, gw, gb
    return out.reshape(shape), backward


#: Undilated 2-D convolutions without groups, at stride 1 of kernel width 3 or 5 (at stride 2 of width 3), with at
#: most this many inputs per output (in_channels × kh × kw) and output channels, take the compiled direct convolution
#: (:func:`_direct_jit`) when Numba is available; ``DIRECT = False`` (``CNNKIT_DIRECT=0``, ``cnnkit bench
#: --no-direct``) sends them to the GEMM path. With so few inputs per output the GEMM's 16–32-row products run
#: far below the peak, and the column matrix costs as much again. Against the GEMM path on 2 cores (``cnnkit
#: bench --cases "train step" "inference, batch 128" "ResNet-20 3×3" "LeNet C1" [--no-direct]``, two pairs of
#: runs): ResNet-20's 16→16 layer forward+backward 29–36 against 53–59 ms, LeNet's C1 4.1–4.5 against 11–12 ms;
#: the LeNet-5 training step 19 against 27–34 ms, ResNet-20's 657–682 against 969–1091 ms. ResNet-20's
#: 64-channel layers (576 inputs per output) and VGG's first (64 outputs) come out level or slower this way,
#: so they stay on the GEMM path. At stride 2 (ResNet-20's 16→32 layer, MobileNet's first), paired against the
#: GEMM path on the benchmark's stride-2 layer: forward 0.53×, forward+backward 0.73× the time.
DIRECT = os.environ.get("CNNKIT_DIRECT", "1") not in ("0", "false", "False", "")
DIRECT_MAX_DEPTH = 288
DIRECT_MAX_OUT_CHANNELS = 32

#: ... and at least this many bytes of input (below :data:`jit.MIN_BYTES`: the direct loop pays even for
#: `cnnkit train`'s batches of 32 digits, 128 KB, where it makes the whole run about 1.5x faster).
DIRECT_MIN_BYTES = 2**16


def _direct(plan: _Plan, groups: int, k_out: int, nbytes: int, dtype) -> bool:
    return (DIRECT and len(plan.ksize) == 2 and groups == 1 and plan.dilation == (1, 1)
            and (plan.stride == (1, 1) and plan.ksize[1] in (3, 5) or plan.stride == (2, 2) and plan.ksize[1] == 3)
            and plan.c * plan.taps <= DIRECT_MAX_DEPTH
            and k_out <= DIRECT_MAX_OUT_CHANNELS
            and (plan.stride == (2, 2) or plan.flat and _grad_input_pads(plan) is not None)  # dX: see _direct_jit
            and jit.worth_it(nbytes, dtype, DIRECT_MIN_BYTES))


#: Filters per pass of the direct forward loop (:func:`jit.direct_forward`, also the input gradient's) and of the
#: weight gradient's (:func:`jit.direct_grad_weight`, by kernel width). Four 3-wide filters (12 weights in registers)
#: ran 0.91–0.93× the time of two in ResNet-20's inference (paired, batch 128, two threads), their weight gradient
#: 0.78–0.81× alone. Four 5-wide filters (20 weights, some spilled) 0.87–0.89× alone on LeNet's C1 and C3; their
#: weight gradient keeps pairs (20 sums in registers would not fit).
DIRECT_GROUP = 4
DIRECT_GRAD_GROUP = {3: 4, 5: 2}

#: The direct loops' threads claim the images one at a time (:func:`parallel.run_claimed`); the weight gradient's in
#: this many blocks, each with its own partial sum, so that the gradient does not depend on which thread did what.
DIRECT_GRAD_BLOCKS = 16


def _filter_groups(w: np.ndarray, group: int) -> np.ndarray:
    """Filters ``(K, C, kh, kw)`` as the direct loops take them: ``(⌈K/G⌉, C, kh·kw, G)``, ``group`` = G output
    channels innermost (the last group's missing filters all zero)."""
    k, c = w.shape[:2]
    padded = np.zeros((-(-k // group) * group, c, w.shape[2] * w.shape[3]), dtype=w.dtype)
    padded[:k] = w.reshape(k, c, -1)
    return np.ascontiguousarray(padded.reshape(-1, group, c, padded.shape[2]).transpose(0, 2, 3, 1))


def _direct_jit(x: Tensor, weight: Tensor, bias, groups: int, plan: _Plan):
    """Convolution with few inputs per output by the compiled loops of :mod:`cnnkit.jit`, no column matrix: each
    image's channels are zero-padded (and, at stride 2, split into the stride's phases) into a buffer that stays in
    cache, and every output channel (four at a time: :data:`DIRECT_GROUP`) is the sum over channels and kernel rows of
    the row's taps × the shifted input, computed on a frame of Ho rows. ``dW`` is the frame-gradient's dot products
    with the shifted input; ``dX`` at stride 1 the same loop over ``dY`` padded by ``k − 1 − p`` with the flipped
    kernel, channels swapped, and at stride 2 the GEMM path's ``Wᵀ @ dY`` added back by col2im. The threads take the
    images one at a time (:func:`parallel.run_claimed`)."""
    n, c, k_out = plan.n, plan.c, weight.shape[0]
    dtype = np.result_type(x.data, weight.data)
    xd = np.ascontiguousarray(x.data, dtype=dtype)
    wd = weight.data.astype(dtype, copy=False)
    group, grad_group = DIRECT_GROUP, DIRECT_GRAD_GROUP[wd.shape[3]]
    strided = plan.stride != (1, 1)
    phase = tuple(-(-p // 2) for p in plan.padded)                         # stride 2: the phase planes' (hq, wq)
    wg = _filter_groups(wd, group)
    b = np.zeros(group * wg.shape[0], dtype=dtype)
    if bias is not None:
        b[:k_out] = bias.data
    out = np.empty((n, k_out) + tuple(plan.out_size), dtype=dtype)
    if strided:
        forward = lambda counter: jit.direct_forward_s2(xd, wg, b, out, plan.pads, phase, counter)  # noqa: E731
    else:
        forward = lambda counter: jit.direct_forward(xd, wg, b, out, plan.pads, plan.padded, counter)  # noqa: E731
    parallel.run_claimed(forward, n)

    def backward(g):
        gx = gw = gb = None
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=(0, 2, 3))
        g4 = np.ascontiguousarray(g, dtype=dtype)
        if weight.requires_grad:  # a partial sum per block of images, added in block order: the same bits for
            blocks = min(n, DIRECT_GRAD_BLOCKS)                    # any thread count
            starts = np.array([n * i // blocks for i in range(blocks + 1)], dtype=np.int64)
            parts = np.zeros((blocks, -(-k_out // grad_group), c, plan.taps, grad_group), dtype=dtype)
            if strided:
                parallel.run_claimed(lambda counter: jit.direct_grad_weight_s2(
                    g4, xd, parts, starts, plan.pads, phase, counter), blocks)
            else:
                parallel.run_claimed(lambda counter: jit.direct_grad_weight(
                    g4, xd, parts, starts, plan.pads, plan.padded, counter), blocks)
            gwg = parts.sum(axis=0)
            gw = gwg.transpose(0, 3, 1, 2).reshape(-1, c, plan.taps)[:k_out].reshape(weight.shape)
        if x.requires_grad and strided:
            gx = _gemm_backward(g4, x, weight, 1, plan, need_w=False, need_x=True)[0]
        elif x.requires_grad:
            pads = _grad_input_pads(plan)
            padded = tuple(o + lo + hi for o, (lo, hi) in zip(plan.out_size, pads))
            wtg = _filter_groups(wd.swapaxes(0, 1)[:, :, ::-1, ::-1], group)
            zero = np.zeros(group * wtg.shape[0], dtype=dtype)
            gx = np.empty(xd.shape, dtype=dtype)
            parallel.run_claimed(lambda counter: jit.direct_forward(g4, wtg, zero, gx, pads, padded, counter), n)
        return gx, gw, gb
    return out, backward


_DOC = """Applies a {nd}-D convolution (cross-correlation, as PyTorch) over an input of several channels.

    Args:
        input: tensor of shape {axes}.
        weight: filters of shape ``(out_channels, in_channels/groups, *kernel_size)``.
        bias: optional tensor of shape ``(out_channels,)``.
        stride: step of the window, an int or a {nd}-tuple. Default: 1.
        padding: zero padding per side: an int, a {nd}-tuple, ``'valid'`` (none) or ``'same'`` (output size ==
            input size; stride 1 only; an even kernel puts the extra zero after). Default: 0.
        dilation: spacing between kernel taps. Default: 1.
        groups: split input and output channels into this many independent groups
            (``groups == in_channels``: depthwise convolution). Default: 1.

    Shape:
        Output ``(N, out_channels, *out)`` with, per spatial axis,
        ``out = floor((in + 2·padding − dilation·(kernel_size − 1) − 1)/stride) + 1`` — the lecture's
        ``W2 = (W1 − F + 2P)/S + 1``.

    Example::

{example}
    """


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 3)


_EXAMPLES = {  # one real call per rank, its output checked by tests/nn/test_conv.py (doctest)
    1: """        >>> x = cnnkit.randn(1, 3, 32)
        >>> w = cnnkit.randn(6, 3, 5)
        >>> F.conv1d(x, w).shape
        (1, 6, 28)""",
    2: """        >>> x = cnnkit.randn(1, 3, 32, 32)
        >>> w = cnnkit.randn(6, 3, 5, 5)
        >>> F.conv2d(x, w, padding=2).shape
        (1, 6, 32, 32)""",
    3: """        >>> x = cnnkit.randn(1, 1, 16, 32, 32)
        >>> w = cnnkit.randn(4, 1, 3, 5, 5)
        >>> F.conv3d(x, w, stride=(1, 2, 2)).shape
        (1, 4, 14, 14, 14)""",
}
for _nd, _fn in ((1, conv1d), (2, conv2d), (3, conv3d)):
    _fn.__doc__ = _DOC.format(nd=_nd, axes=AXES[_nd], example=_EXAMPLES[_nd])


def im2col(input: Tensor, kernel_size, stride=1, padding=0, dilation=1) -> Tensor:
    """The lecture's "convolution as matrix multiplication": every receptive field as a column.

    Same layout as ``torch.nn.functional.unfold``, for any number of spatial axes.

    Args:
        input: tensor ``(N, C, *spatial)``.
        kernel_size, stride, padding, dilation: as in :func:`conv2d` (padding also ``'same'``).

    Shape:
        Output ``(N, C·∏kernel_size, L)`` with ``L = ∏out`` output positions. A convolution is then
        ``(weight.reshape(K, -1) @ im2col(x, ...)).reshape(N, K, *out)``.
    """
    if not isinstance(input, Tensor) or input.ndim < 3:
        raise ValueError(f"im2col: expected an input (N, C, *spatial), got shape {getattr(input, 'shape', None)}")
    nd = input.ndim - 2
    ksize = ntuple(kernel_size, nd, "kernel_size", owner="im2col")
    stride = ntuple(stride, nd, "stride", owner="im2col")
    dilation = ntuple(dilation, nd, "dilation", owner="im2col")
    pads = resolve_padding(padding, ksize, stride, dilation, owner="im2col")
    out_size = output_geometry(input.shape[2:], ksize, stride, pads, dilation, "im2col")
    n, c = input.shape[:2]
    xp = kernels.pad(input.data, pads)
    view = kernels.windows(xp, ksize, stride, dilation, out_size)      # (N, C, *k, *o)
    cols = view.reshape(n, c * math.prod(ksize), math.prod(out_size))  # copies
    x_shape, xp_shape = input.shape, xp.shape

    def backward(g):
        gxp = kernels.col2im(g.reshape((n, c) + ksize + out_size), xp_shape, ksize, stride, dilation)
        crop = (slice(None), slice(None)) + tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, x_shape[2:]))
        return (gxp[crop],)
    return make_op(cols, (input,), backward)


def col2im(input: Tensor, output_size, kernel_size, stride=1, padding=0, dilation=1) -> Tensor:
    """Adjoint of :func:`im2col` (``torch.nn.functional.fold``): sum columns back into an image.

    Shape:
        Input ``(N, C·∏kernel_size, L)``; output ``(N, C, *output_size)``.
    """
    output_size = tuple(output_size)
    nd = len(output_size)
    ksize = ntuple(kernel_size, nd, "kernel_size", owner="col2im")
    stride = ntuple(stride, nd, "stride", owner="col2im")
    dilation = ntuple(dilation, nd, "dilation", owner="col2im")
    pads = resolve_padding(padding, ksize, stride, dilation, owner="col2im")
    out_size = output_geometry(output_size, ksize, stride, pads, dilation, "col2im")
    n, ck, length = input.shape
    c = ck // math.prod(ksize)
    if c * math.prod(ksize) != ck or length != math.prod(out_size):
        raise ValueError(f"col2im: input of shape {tuple(input.shape)} does not match kernel_size={ksize} and "
                         f"{math.prod(out_size)} windows for output_size={output_size}")
    xp_shape = (n, c) + tuple(s + lo + hi for s, (lo, hi) in zip(output_size, pads))
    xp = kernels.col2im(input.data.reshape((n, c) + ksize + out_size), xp_shape, ksize, stride, dilation)
    crop = (slice(None), slice(None)) + tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, output_size))

    def backward(g):
        gp = kernels.pad(g, pads)
        return (kernels.windows(gp, ksize, stride, dilation, out_size).reshape(n, ck, length),)
    return make_op(np.ascontiguousarray(xp[crop]), (input,), backward)
