"""Compiled kernels (Numba), only where the benchmark shows NumPy cannot come close.

Depthwise convolution (``groups == in_channels == out_channels``, MobileNet, Xception) has no GEMM to
lean on: each output channel is a 3×3 stencil over one input channel. The NumPy path sums the taps as
whole-array operations (``conv._depthwise``) and runs about 3–5× slower than PyTorch; these loops are
the same sum, compiled, and run on cnnkit's threads (``nogil``, a block of images per thread). The
NumPy path stays, is tested against this one, and runs whenever Numba is missing or ``CNNKIT_JIT=0``.

The kernels work on stride-1 convolutions of any dimension through the flattened padded image: tap ``t``
of every output position is the contiguous run starting at ``offsets[t]`` (``kernels.flat_offsets``), and
the output is computed on the frame that :func:`cnnkit.kernels.flat_windows` describes — long
contiguous loops that the compiler vectorises. Strided depthwise layers stay on the NumPy path.
"""
from __future__ import annotations

import os

__all__ = ["available", "depthwise_forward", "depthwise_grad_input", "depthwise_grad_weight"]

#: Use the compiled kernels (if Numba imports). ``CNNKIT_JIT=0`` in the environment, or setting this to
#: False, sends everything through the NumPy paths.
ENABLED = os.environ.get("CNNKIT_JIT", "1") not in ("0", "false", "False", "")

_kernels = None


def _compile():
    import numba

    opts = dict(nogil=True, cache=True)

    @numba.njit(**opts)
    def forward(x3, w, fr, offsets):  # fr[n, c, v] = Σ_t w[c, t]·x3[n, c, offsets[t] + v]
        n_img, n_ch, size = fr.shape
        for n in range(n_img):
            for c in range(n_ch):
                xr, out = x3[n, c], fr[n, c]
                for t in range(offsets.shape[0]):  # taps in order: the NumPy path's sum
                    wv, src = w[c, t], xr[offsets[t]:offsets[t] + size]
                    if t == 0:
                        for v in range(size):
                            out[v] = wv * src[v]
                    else:
                        for v in range(size):
                            out[v] += wv * src[v]

    @numba.njit(**opts)
    def grad_input(gf, w, gx3, offsets):  # the adjoint: gx3[n, c, offsets[t] + v] += w[c, t]·gf[n, c, v]
        n_img, n_ch, size = gf.shape
        for n in range(n_img):
            for c in range(n_ch):
                gy, gx = gf[n, c], gx3[n, c]
                for t in range(offsets.shape[0]):
                    wv, dst = w[c, t], gx[offsets[t]:offsets[t] + size]
                    for v in range(size):
                        dst[v] += wv * gy[v]

    @numba.njit(fastmath={"reassoc"}, **opts)  # reassociation lets the dot products vectorise
    def grad_weight(gf, x3, gw, offsets):  # gw[c, t] += Σ_nv gf[n, c, v]·x3[n, c, offsets[t] + v]
        n_img, n_ch, size = gf.shape
        for n in range(n_img):
            for c in range(n_ch):
                gy, xr = gf[n, c], x3[n, c]
                for t in range(offsets.shape[0]):
                    src = xr[offsets[t]:offsets[t] + size]
                    acc = gw[c, t] * 0
                    for v in range(size):
                        acc += gy[v] * src[v]
                    gw[c, t] += acc

    return forward, grad_input, grad_weight


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


def depthwise_forward(x3, w, fr, offsets) -> None:
    """``fr`` (N, C, F) ← ``Σ_t w[c, t]·x3[n, c, offsets[t] + v]``: a stride-1 depthwise correlation on the
    flattened padded input ``x3`` (N, C, L) computed on the output frame (``kernels.flat_windows``)."""
    _kernels[0](x3, w, fr, offsets)


def depthwise_grad_input(gf, w, gx3, offsets) -> None:
    """``gx3`` (N, C, L) += the input gradient of :func:`depthwise_forward` for the frame gradient ``gf``."""
    _kernels[1](gf, w, gx3, offsets)


def depthwise_grad_weight(gf, x3, gw, offsets) -> None:
    """``gw`` (C, T) += the weight gradient of :func:`depthwise_forward` for the frame gradient ``gf``."""
    _kernels[2](gf, x3, gw, offsets)
