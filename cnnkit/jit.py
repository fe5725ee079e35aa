"""Compiled kernels (Numba), only where a benchmark shows NumPy cannot come close — and the switch for all of them.

:func:`available` (Numba imports and ``CNNKIT_JIT`` is not ``0``), :func:`worth_it` and :func:`ready` decide whether an
op takes its compiled loops; every such op keeps a NumPy path, which the tests compare with the compiled one and which
runs whenever Numba is missing or ``CNNKIT_JIT=0``. The convolution's compiled algorithms (depthwise, direct,
Winograd's transforms) live in :mod:`cnnkit.nn.functional.conv`, each beside its loops; this module holds the others:

Batch norm's sums work channel by channel (a channel of a CIFAR batch, 128 × 32 × 32 floats, fits the L2
cache): the variance pass and the backward's second pass re-read the channel from cache instead of
memory, and the sums run in float64. Its element-wise passes (apply, input gradient) walk image by image
over each thread's channels, one contiguous run per image. NumPy needs about twice the memory traffic
for the same passes (``norm.py``, blocks of images).

ReLU and max pooling: NumPy's ``np.maximum`` runs at a fraction of ``np.add``'s speed on float32, so ReLU and
the 2×2/2 max pool take one compiled pass — but only once another op has loaded Numba (:func:`ready`): loading
Numba and LLVM costs about 150 MB, which they alone do not repay. Max pooling's backward finds each window's first
maximum (PyTorch's tie rule) in one compiled pass, branch-free for 2×2/2 windows.

The loops themselves are in :mod:`cnnkit._numba_kernels`, imported at the first call that needs them (this module
imports only NumPy) and called by name; Numba caches their machine code on disk, so a process compiles them only
after an install or a change.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["available", "installed", "loaded", "worth_it", "ready", "batch_norm_moments", "batch_norm_grad_sums",
           "batch_norm_apply", "batch_norm_grad_input", "max_pool_grad", "max_pool_grad_2x2", "max_pool_2x2",
           "relu_forward", "relu_inplace", "add_relu_inplace", "relu_grad"]

#: Use the compiled kernels (if Numba imports). ``CNNKIT_JIT=0`` in the environment, or setting this to
#: False, sends everything through the NumPy paths.
ENABLED = os.environ.get("CNNKIT_JIT", "1") not in ("0", "false", "False", "")

#: Arrays smaller than this take the NumPy paths: there NumPy is about as fast, and a small call (the
#: report's one-image trace) never waits for Numba to load (about 100 MB of LLVM) and compile.
MIN_BYTES = 2**18

_numba = None    # whether Numba imports: None until the first op asks (:func:`available`)


def available() -> bool:
    """Whether the compiled kernels are switched on and Numba imports (importing it the first time: about 150 MB)."""
    global _numba
    if not ENABLED:
        return False
    if _numba is None:
        try:
            import numba  # noqa: F401
            _numba = True
        except ImportError:
            _numba = False
    return _numba


def installed() -> bool:
    """Whether the compiled kernels are switched on and Numba is installed — without importing it (for reports that
    say which kernels a layer would take)."""
    if not ENABLED:
        return False
    if _numba is None:
        import importlib.util
        return importlib.util.find_spec("numba") is not None
    return _numba


def loaded() -> bool:
    """Whether the compiled kernels are switched on and Numba is already loaded (an earlier op used it). Cheap
    elementwise ops (ReLU) take them only then: loading Numba and LLVM costs about 150 MB, which a ReLU does not
    repay."""
    return ENABLED and bool(_numba)


#: The dtypes the kernels are compiled for; others (float16, integers) take the NumPy paths.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def worth_it(nbytes: int, dtype, min_bytes: int | None = None) -> bool:
    """Whether an op on ``nbytes`` of ``dtype`` data should take the compiled kernels (at least ``min_bytes``,
    default :data:`MIN_BYTES`; :data:`DTYPES`; :func:`available`: this loads them)."""
    return nbytes >= (MIN_BYTES if min_bytes is None else min_bytes) and np.dtype(dtype) in DTYPES and available()


def ready(nbytes: int, dtype) -> bool:
    """As :func:`worth_it`, but only if the kernels are already :func:`loaded`: for cheap elementwise ops."""
    return nbytes >= MIN_BYTES and np.dtype(dtype) in DTYPES and loaded()


def _loops():
    """:mod:`cnnkit._numba_kernels` (imports Numba the first time; then a dictionary look-up)."""
    from . import _numba_kernels
    return _numba_kernels


def batch_norm_moments(x3, channels: slice, mean, var) -> None:
    """``mean``, ``var`` (C,) float64 ← each channel's mean and biased variance of ``x3`` (N, C, L), for ``channels``."""
    _loops().bn_moments(x3, channels.start, channels.stop, mean, var)


def batch_norm_grad_sums(g3, x3, mean, channels: slice, sum_g, sum_gc) -> None:
    """``sum_g``, ``sum_gc`` (C,) float64 ← per channel ``Σg`` and ``Σg·(x − mean)``, for ``channels``."""
    _loops().bn_grad_sums(g3, x3, mean, channels.start, channels.stop, sum_g, sum_gc)


def batch_norm_apply(src, scale, shift, out, channels: slice, mask=None) -> None:
    """``out`` ← ``src·scale + shift`` per channel ((N, C, L) arrays, (C,) coefficients), for ``channels``; with ``mask``
    (N, C, L) bytes, a ReLU in the same pass: ``out`` ← ``max(out, 0)`` (NaN kept), ``mask`` ← ``not out ≤ 0``."""
    _loops().bn_apply(src, scale, shift, out, channels.start, channels.stop, _mask(mask))


def batch_norm_grad_input(g3, x3, mean, k, const, scale, gx, channels: slice) -> None:
    """``gx`` ← ``(g − (x − mean)·k − const)·scale`` per channel, batch norm's input gradient, for ``channels``."""
    _loops().bn_grad_input(g3, x3, mean, k, const, scale, gx, channels.start, channels.stop)


_NO_MASK = np.empty((0, 0, 0), dtype=np.uint8)


def _mask(mask):
    return _NO_MASK if mask is None else mask.view(np.uint8)


def max_pool_2x2(x, out) -> None:
    """``out`` (P, Ho, Wo) ← the maxima of the 2×2 windows at stride 2 of the planes ``x`` (P, H, W), ``2·Ho ≤ H``,
    ``2·Wo ≤ W``; NaN propagates. One pass, where NumPy's running maximum makes three (``np.maximum`` on float32
    runs at about a quarter of ``np.add``'s speed here)."""
    _loops().max_pool_2x2(x, out)


def max_pool_grad(x, out, g, gx, kernel_size, stride, dilation, pads) -> None:
    """``gx`` ← max pooling's input gradient, planes ``(P, H, W)`` (``out``, ``g``: ``(P, Ho, Wo)``): each output's
    gradient goes to the first tap (row-major) of its window, padding left out, that holds the maximum (or NaN when
    the maximum is NaN) — PyTorch's rule, found again from ``x`` and ``out`` instead of stored indices."""
    _loops().max_pool_grad(x, out, g, gx, *kernel_size, *stride, *dilation, pads[0][0], pads[1][0])


def max_pool_grad_2x2(x, out, g, gx) -> None:
    """:func:`max_pool_grad` for 2×2 windows at stride 2 inside the planes (``2·Ho ≤ H``, ``2·Wo ≤ W``): the first
    maximum's tap is computed without a branch (random data mispredicts one per window; benchmarks/RESULTS.md,
    "Compiled loops")."""
    _loops().max_pool_grad_2x2(x, out, g, gx)


def relu_forward(x, out, mask=None) -> None:
    """``out`` ← ``max(x, 0)`` (NaN stays NaN), and ``mask`` ← ``not x ≤ 0`` when given; C-contiguous arrays of one shape.
    NumPy's ``np.maximum`` runs at about a quarter of this loop's speed on float32 here."""
    keep = mask is not None
    _loops().relu_forward(x.reshape(-1), out.reshape(-1), mask.reshape(-1) if keep else np.empty(0, dtype=bool), keep)


def relu_inplace(x) -> None:
    """``x`` ← ``max(x, 0)`` in place (NaN and −0 kept), C-contiguous. :func:`relu_forward` with ``out`` = ``x`` runs
    several times slower: the compiler turns that loop into masked stores (RESULTS.md, "Compiled loops")."""
    _loops().relu_inplace(x.reshape(-1))


def add_relu_inplace(a, b) -> None:
    """``a`` ← ``max(a + b, 0)`` in place (NaN and −0 kept); C-contiguous arrays of one shape and dtype."""
    _loops().add_relu_inplace(a.reshape(-1), b.reshape(-1))


def relu_grad(g, mask, gx) -> None:
    """``gx`` ← ``g`` where ``mask``, else 0; C-contiguous arrays of one shape."""
    _loops().relu_grad(g.reshape(-1), mask.reshape(-1), gx.reshape(-1))
