"""Compiled kernels (Numba), only where the benchmark shows NumPy cannot come close: depthwise
convolution, convolutions with few channels, batch norm and the transforms of Winograd's convolution.

Depthwise convolution (``groups == in_channels == out_channels``, MobileNet, Xception) has no GEMM to
lean on: each output channel is a 3×3 stencil over one input channel. The NumPy path sums the taps as
whole-array operations (``conv._depthwise``) and runs about 3–5× slower than PyTorch; these loops are
the same sum, compiled, and run on cnnkit's threads (``nogil``, a block of images per thread). The
NumPy path stays, is tested against this one, and runs whenever Numba is missing or ``CNNKIT_JIT=0``.

The kernels take 2-D depthwise convolutions (1-D ones as 2-D with one row). Each (image, channel) plane
is zero-padded into a small flat buffer that stays in cache; tap ``t`` of every output position is then
the contiguous run starting at ``offsets[t]``, computed on the frame that :func:`cnnkit.kernels.flat_windows`
describes — long contiguous loops that the compiler vectorises — and the valid columns are copied out.
The forward sums a 3×3 kernel's nine taps in one pass over the frame (other kernels three taps a pass),
so the frame is written once. A strided layer (MobileNet's stride-2 ones) first splits the padded plane into its stride's phases (for
stride 2: even rows and even columns, even rows and odd columns, …); every tap then reads one phase at a
shift, so the same contiguous loops compute only the outputs kept. 3-D depthwise layers stay on NumPy.

Convolutions with few inputs per output (LeNet's, ResNet-20's first two stages: ``C·kh·kw`` ≤ 288) lose
twice on the GEMM path: products with 16–32 rows run far below the matmul peak, and the column matrix
costs as much again. The direct kernels (``conv._direct_jit``) form no columns. Each image's channels
are zero-padded into one flat buffer that stays in cache; each group of four output channels is then summed
on the stride-1 frame, one pass per input channel and kernel row with that row's 3 or 5 taps together
(``f[v] += w0·s[v] + w1·s[v+1] + w2·s[v+2]``): four outputs and three or five inputs per step, a loop the
compiler vectorises. The weight gradient is the same walk with dot products (four filters at a time for 3-wide
kernels, two for 5-wide), and the input gradient is this forward loop over the padded output gradient.
At stride 2 (3-wide kernels: ResNet's and MobileNet's downsampling layers) each padded plane is first split into its
four phases, as the strided depthwise loops do, so that every tap is again a contiguous run
(``f[v] += w0·e[v] + w1·o[v] + w2·e[v+1]``, even and odd columns); the input gradient then takes the GEMM path.

Batch norm's sums work channel by channel (a channel of a CIFAR batch, 128 × 32 × 32 floats, fits the L2
cache): the variance pass and the backward's second pass re-read the channel from cache instead of
memory, and the sums run in float64. Its element-wise passes (apply, input gradient) walk image by image
over each thread's channels, one contiguous run per image. NumPy needs about twice the memory traffic
for the same passes (``norm.py``, blocks of images): 1.5–2× slower than PyTorch against about 1× compiled.

ReLU and max pooling: NumPy's ``np.maximum`` runs at about a quarter of ``np.add``'s speed on float32
here, so ReLU and the 2×2/2 max pool take one compiled pass — but only once another op has loaded the
kernels (:func:`ready`): loading Numba and LLVM costs about 150 MB, which they alone do not repay. Max
pooling's backward finds each window's first maximum (PyTorch's tie rule) in one compiled pass,
branch-free for 2×2/2 windows.

Winograd's F(2×2, 3×3) (``conv._winograd_forward``, VGG's 3×3 layers from 128 channels) needs three
element-wise transforms around its 16 GEMMs: filters ``G·g·Gᵀ``, input tiles ``Bᵀ·d·B`` (4×4 tiles at
stride 2) and output tiles ``Aᵀ·M·A``. In NumPy they are strided passes that cost as much as the GEMMs
save; compiled, each input row of tiles is combined in cache. Without Numba those layers take the GEMM
path, which the tests compare this one with. For many images of small maps (ResNet's 8×8 stage) a row of tiles
is 4 tiles long: :func:`winograd_input_images` and :func:`winograd_output_images` lay the tiles out with the
images innermost, so that every step of the transforms is a run of one value per image.

The loops themselves are in :mod:`cnnkit._numba_kernels`, imported at the first call that needs them (this module
imports only NumPy); Numba caches their machine code on disk, so a process compiles them only after an install
or a change.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["available", "loaded", "worth_it", "ready", "depthwise_forward", "depthwise_grad_input", "depthwise_grad_weight",
           "batch_norm_moments", "batch_norm_grad_sums", "batch_norm_apply", "batch_norm_grad_input",
           "winograd_filters", "winograd_input", "winograd_output", "winograd_input_images",
           "winograd_output_images", "direct_forward", "direct_grad_weight", "direct_forward_s2",
           "direct_grad_weight_s2",
           "max_pool_grad", "max_pool_grad_2x2", "max_pool_2x2", "relu_forward", "relu_inplace", "add_relu_inplace",
           "relu_grad"]

#: Use the compiled kernels (if Numba imports). ``CNNKIT_JIT=0`` in the environment, or setting this to
#: False, sends everything through the NumPy paths.
ENABLED = os.environ.get("CNNKIT_JIT", "1") not in ("0", "false", "False", "")

#: Arrays smaller than this take the NumPy paths: there NumPy is about as fast, and a small call (the
#: report's one-image trace) never waits for Numba to load (about 100 MB of LLVM) and compile.
MIN_BYTES = 2**18

_kernels = None


def _compile():
    from . import _numba_kernels  # imports Numba: ImportError where it is missing
    return _numba_kernels.KERNELS


def available() -> bool:
    """Whether the compiled kernels are switched on and Numba imports (compiled on first use)."""
    global _kernels
    if not ENABLED:
        return False
    if _kernels is None:
        try:
            _kernels = _compile()
        except ImportError:
            _kernels = False
    return bool(_kernels)


def loaded() -> bool:
    """Whether the compiled kernels are switched on and already loaded (an earlier op used them). Cheap elementwise
    ops (ReLU) take them only then: loading Numba and LLVM costs about 150 MB, which a ReLU does not repay."""
    return ENABLED and bool(_kernels)


#: The dtypes the kernels are compiled for; others (float16, integers) take the NumPy paths.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def worth_it(nbytes: int, dtype, min_bytes: int | None = None) -> bool:
    """Whether an op on ``nbytes`` of ``dtype`` data should take the compiled kernels (at least ``min_bytes``,
    default :data:`MIN_BYTES`; :data:`DTYPES`; :func:`available`: this loads them)."""
    return nbytes >= (MIN_BYTES if min_bytes is None else min_bytes) and np.dtype(dtype) in DTYPES and available()


def ready(nbytes: int, dtype) -> bool:
    """As :func:`worth_it`, but only if the kernels are already :func:`loaded`: for cheap elementwise ops."""
    return nbytes >= MIN_BYTES and np.dtype(dtype) in DTYPES and loaded()


def depthwise_forward(x, w, out, pads, stride, phase, offsets) -> None:
    """``out`` (N, C, Ho, Wo) ← the depthwise correlation of ``x`` (N, C, H, W) with ``w`` (C, T) at ``stride``
    (sh, sw): each plane is zero-padded by ``pads`` ((top, bottom), (left, right)) and split into sh·sw phase
    planes (padded row Y, column X into phase (Y % sh, X % sw) at (Y // sh, X // sw)) of ``phase`` = (hq, wq)
    plus one row, one flat buffer; tap ``t`` reads it from ``offsets[t]`` on, over the frame of Ho rows of wq
    (:func:`cnnkit.nn.functional.conv._depthwise_phases`). Stride 1 is one phase, the padded plane itself."""
    _kernels[0](x, w, out, pads[0][0], pads[1][0], stride[0], stride[1], phase[0], phase[1], offsets)


def depthwise_grad_input(g, w, gx, pads, stride, phase, offsets) -> None:
    """``gx`` (N, C, H, W) ← the input gradient of :func:`depthwise_forward` for the output gradient ``g``."""
    _kernels[1](g, w, gx, pads[0][0], pads[1][0], stride[0], stride[1], phase[0], phase[1], offsets)


def depthwise_grad_weight(g, x, gw, pads, stride, phase, offsets) -> None:
    """``gw`` (C, T) += the weight gradient of :func:`depthwise_forward` for the output gradient ``g``."""
    _kernels[2](g, x, gw, pads[0][0], pads[1][0], stride[0], stride[1], phase[0], phase[1], offsets)


def winograd_filters(w, u, stride: int) -> None:
    """The Winograd F(2×2, 3×3) filter transform ``G·g·Gᵀ`` of each 3×3 filter ``g`` of ``w`` (K, C, 3, 3): entry
    (i, j) of filter (k, c) goes to ``u[(4i + j)·stride + k·C + c]`` (``u`` flat: 16 rows of ``stride`` ≥ K·C)."""
    k, c = w.shape[:2]
    _kernels[7](w.reshape(k * c, 9).T, u, stride, np.array(0.5, dtype=w.dtype)[()])


def winograd_input(x, v, stride: int, pads, images: slice, tile_rows: slice, tile_cols: int, part=None) -> None:
    """The Winograd F(2×2, 3×3) input transform ``Bᵀ·d·B`` of each 4×4 tile ``d`` of ``x`` (N, C, H, W), zero-padded
    by ``pads`` (top, left), tiles at stride 2 over ``images`` × ``tile_rows`` × ``tile_cols`` (T of them, in
    that order): entry (i, j) of channel c's tile t goes to ``v[(4i + j)·stride + c·T + t]`` (``v`` flat).
    ``part`` (a slice of ``images``; default all of them) does only those images' tiles, so that threads
    can share one such block."""
    part = images if part is None else part
    tiles = (images.stop - images.start) * (tile_rows.stop - tile_rows.start) * tile_cols
    _kernels[8](x, v, stride, tiles, images.start, pads[0], pads[1], part.start, part.stop, tile_rows.start,
                tile_rows.stop, tile_cols)


def winograd_output(m, stride: int, out, bias, images: slice, tile_rows: slice, tile_cols: int, part=None) -> None:
    """``out`` (N, K, Ho, Wo) ← the output transform ``Aᵀ·M·A + bias`` of the tiles laid out as by
    :func:`winograd_input` (``M[4i + j, k, t]`` at ``m[(4i + j)·stride + k·T + t]``), each tile's 2×2 outputs;
    those past ``Ho``/``Wo`` are dropped. ``part``: only those images, as in :func:`winograd_input`."""
    part = images if part is None else part
    tiles = (images.stop - images.start) * (tile_rows.stop - tile_rows.start) * tile_cols
    _kernels[9](m, stride, tiles, images.start, out, bias, part.start, part.stop, tile_rows.start, tile_rows.stop,
                tile_cols)


def winograd_input_images(x, v, stride: int, pads, images: slice, tiles: tuple) -> None:
    """:func:`winograd_input` with the images innermost, for many images of small maps (ResNet's 8×8 stage, where a
    row of tiles is 4 tiles long): entry (i, j) of channel c's tile (ty, tx) of image ``images.start + n`` goes to
    ``v[(4i + j)·stride + c·T + (ty·tw + tx)·nn + n]`` (``tiles`` = (th, tw), T = th·tw·nn, nn images). Each
    channel's planes are gathered into one buffer with the images last, so every step of the transform is a run of
    nn values."""
    _kernels[17](x, v, stride, images.start, images.stop, pads[0], pads[1], tiles[0], tiles[1])


def winograd_output_images(m, stride: int, out, bias, images: slice, tiles: tuple) -> None:
    """``out`` (N, K, Ho, Wo) ← :func:`winograd_output` for the tiles of ``images`` laid out as by
    :func:`winograd_input_images`."""
    _kernels[18](m, stride, images.start, images.stop, out, bias, tiles[0], tiles[1])


def batch_norm_moments(x3, channels: slice, mean, var) -> None:
    """``mean``, ``var`` (C,) float64 ← each channel's mean and biased variance of ``x3`` (N, C, L), for ``channels``."""
    _kernels[3](x3, channels.start, channels.stop, mean, var)


def batch_norm_grad_sums(g3, x3, mean, channels: slice, sum_g, sum_gc) -> None:
    """``sum_g``, ``sum_gc`` (C,) float64 ← per channel ``Σg`` and ``Σg·(x − mean)``, for ``channels``."""
    _kernels[4](g3, x3, mean, channels.start, channels.stop, sum_g, sum_gc)


def batch_norm_apply(src, scale, shift, out, channels: slice, mask=None) -> None:
    """``out`` ← ``src·scale + shift`` per channel ((N, C, L) arrays, (C,) coefficients), for ``channels``; with ``mask``
    (N, C, L) bytes, a ReLU in the same pass: ``out`` ← ``max(out, 0)`` (NaN kept), ``mask`` ← ``not out ≤ 0``."""
    _kernels[5](src, scale, shift, out, channels.start, channels.stop, _mask(mask))


def batch_norm_grad_input(g3, x3, mean, k, const, scale, gx, channels: slice) -> None:
    """``gx`` ← ``(g − (x − mean)·k − const)·scale`` per channel, batch norm's input gradient, for ``channels``."""
    _kernels[6](g3, x3, mean, k, const, scale, gx, channels.start, channels.stop)


_NO_MASK = np.empty((0, 0, 0), dtype=np.uint8)


def _mask(mask):
    return _NO_MASK if mask is None else mask.view(np.uint8)


def direct_forward(x, wg, bias, out, pads, padded, counter) -> None:
    """``out`` (N, K, Ho, Wo) ← the stride-1 correlation of ``x`` (N, C, H, W), zero-padded by ``pads`` ((top, bottom),
    (left, right)) to ``padded``, with the filters in groups ``wg`` (⌈K/G⌉, C, kh·kw, G), G = 4 (missing filters of the
    last group all zero), plus ``bias`` (G·⌈K/G⌉,). Image by image, each the next one claimed from ``counter`` (int64
    (1,), from 0): threads that call this with one counter share the images, each taking a new one as it finishes one."""
    _kernels[10](x, wg, bias, out, pads[0][0], pads[1][0], padded[0], padded[1], _kernel_width(padded, out), counter)


def direct_grad_weight(g, x, parts, starts, pads, padded, counter) -> None:
    """``parts[b]`` (⌈K/G⌉, C, kh·kw, G) += the weight gradient of :func:`direct_forward` for the output gradient ``g``
    and the images ``starts[b]:starts[b + 1]`` (G = 4 for kw = 3, 2 for kw = 5); block by block, claimed from
    ``counter`` as :func:`direct_forward`'s images. Which thread does a block changes nothing in it: the sum of the
    parts in block order is the same for any number of threads."""
    _kernels[11](g, x, parts, starts, pads[0][0], pads[1][0], padded[0], padded[1], _kernel_width(padded, g), counter)


def _kernel_width(padded, out) -> int:
    kw = padded[1] - out.shape[3] + 1
    if kw not in (3, 5):                                    # the loops are written out for these two widths
        raise ValueError(f"direct convolution: kernel width must be 3 or 5, got {kw}")
    return kw


def direct_forward_s2(x, wg, bias, out, pads, phase, counter) -> None:
    """:func:`direct_forward` at stride 2 for 3-wide kernels (ResNet's and MobileNet's downsampling layers, LeNet's
    layers never): each padded plane is split into its four stride-2 phases (as :func:`depthwise_forward`'s, ``phase``
    = (hq, wq)); kernel row r reads phase row r % 2, r // 2 rows down, its taps 0 and 2 from the even columns' phase
    (at v and v + 1) and tap 1 from the odd one's, three contiguous runs, on a frame of Ho rows of wq."""
    _kernels[21](x, wg, bias, out, pads[0][0], pads[1][0], phase[0], phase[1], counter)


def direct_grad_weight_s2(g, x, parts, starts, pads, phase, counter) -> None:
    """:func:`direct_grad_weight` for :func:`direct_forward_s2` (four filters per pass)."""
    _kernels[22](g, x, parts, starts, pads[0][0], pads[1][0], phase[0], phase[1], counter)


def max_pool_2x2(x, out) -> None:
    """``out`` (P, Ho, Wo) ← the maxima of the 2×2 windows at stride 2 of the planes ``x`` (P, H, W), ``2·Ho ≤ H``,
    ``2·Wo ≤ W``; NaN propagates. One pass, where NumPy's running maximum makes three (``np.maximum`` on float32
    runs at about a quarter of ``np.add``'s speed here)."""
    _kernels[16](x, out)


def max_pool_grad(x, out, g, gx, kernel_size, stride, dilation, pads) -> None:
    """``gx`` ← max pooling's input gradient, planes ``(P, H, W)`` (``out``, ``g``: ``(P, Ho, Wo)``): each output's
    gradient goes to the first tap (row-major) of its window, padding left out, that holds the maximum (or NaN when
    the maximum is NaN) — PyTorch's rule, found again from ``x`` and ``out`` instead of stored indices."""
    _kernels[12](x, out, g, gx, *kernel_size, *stride, *dilation, pads[0][0], pads[1][0])


def max_pool_grad_2x2(x, out, g, gx) -> None:
    """:func:`max_pool_grad` for 2×2 windows at stride 2 inside the planes (``2·Ho ≤ H``, ``2·Wo ≤ W``): the first
    maximum's tap is computed without a branch (random data mispredicts one per window), about 2.4x faster."""
    _kernels[15](x, out, g, gx)


def relu_forward(x, out, mask=None) -> None:
    """``out`` ← ``max(x, 0)`` (NaN stays NaN), and ``mask`` ← ``not x ≤ 0`` when given; C-contiguous arrays of one shape.
    NumPy's ``np.maximum`` runs at about a quarter of this loop's speed on float32 here."""
    keep = mask is not None
    _kernels[13](x.reshape(-1), out.reshape(-1), mask.reshape(-1) if keep else np.empty(0, dtype=bool), keep)


def relu_inplace(x) -> None:
    """``x`` ← ``max(x, 0)`` in place (NaN and −0 kept), C-contiguous. :func:`relu_forward` with ``out`` = ``x`` runs
    2–4× slower: the compiler turns that loop into masked stores."""
    _kernels[19](x.reshape(-1))


def add_relu_inplace(a, b) -> None:
    """``a`` ← ``max(a + b, 0)`` in place (NaN and −0 kept); C-contiguous arrays of one shape and dtype."""
    _kernels[20](a.reshape(-1), b.reshape(-1))


def relu_grad(g, mask, gx) -> None:
    """``gx`` ← ``g`` where ``mask``, else 0; C-contiguous arrays of one shape."""
    _kernels[14](g.reshape(-1), mask.reshape(-1), gx.reshape(-1))
