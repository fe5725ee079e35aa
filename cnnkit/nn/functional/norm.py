"""Normalisation: ``batch_norm`` (fused forward/backward) and ``local_response_norm`` (AlexNet's LRN)."""
from __future__ import annotations

import math

import numpy as np

from ... import jit, parallel
from ...tensor import Tensor, make_op
from .activation import relu_grad
from .checks import check_float

__all__ = ["batch_norm", "local_response_norm"]


def _channel_param(t, n_channels: int, arg: str):
    if t is None:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f"batch_norm: {arg} must be a cnnkit Tensor or None, got {type(t).__name__}")
    if t.shape != (n_channels,):
        raise ValueError(f"batch_norm: {arg} has shape {t.shape}, expected ({n_channels},) "
                         f"(one value per channel of the input)")
    return t


#: Batch norm works on blocks of images of about this many bytes: the centred block ``x − μ`` lives in a
#: cache-sized temporary, and the blocks run on cnnkit's threads.
BLOCK_BYTES = 2**19


def _blocks(fn, a3: np.ndarray) -> list:
    """``fn(images)`` for each cache-sized block of images of ``a3`` (N, C, L), in parallel, in block order."""
    return parallel.run_blocks(fn, a3.shape[0], a3[:1].nbytes, BLOCK_BYTES)


def _sums(a3: np.ndarray, mean=None, g3=None):
    """Per-channel ``(Σa, Σ(a − mean)²)`` or, with ``g3``, ``(Σg, Σg·(a − mean))`` — (C,) each, ``mean`` (C, 1)."""
    def block_sums(b):
        first = a3[b] if g3 is None else g3[b]                                     # (nb, C, L)
        s1 = first.sum(axis=2).sum(axis=0)
        if mean is None:
            return s1, None
        centred = np.subtract(a3[b], mean)                                         # (nb, C, L), in cache
        return s1, np.einsum("ncl,ncl->c", first if g3 is not None else centred, centred)
    parts = _blocks(block_sums, a3)
    s1 = sum((p[0] for p in parts), np.zeros(a3.shape[1], dtype=a3.dtype))
    return s1, (sum((p[1] for p in parts), np.zeros_like(s1)) if mean is not None else None)


def _affine(src: np.ndarray, scale: np.ndarray, shift: np.ndarray, sub=None, k=None, c=None) -> np.ndarray:
    """``src·scale + shift`` per channel (all (C, 1)); with ``sub`` (N, C, L), ``k`` and ``c``:
    ``(src − (sub − shift)·k − c)·scale`` — batch norm's input gradient with ``shift`` the mean. Block by
    block, in parallel."""
    out = np.empty_like(src)

    def apply(b):
        o = out[b]
        if sub is None:
            np.multiply(src[b], scale, out=o)
            o += shift
        else:
            t = np.subtract(sub[b], shift)                                         # (nb, C, L), in cache
            t *= k
            np.subtract(src[b], t, out=o)
            o -= c
            o *= scale
    _blocks(apply, src)
    return out


def _compiled(a3: np.ndarray) -> bool:
    """Whether batch norm takes the compiled per-channel loops (:mod:`cnnkit.jit`): large float inputs."""
    return jit.worth_it(a3.nbytes, a3.dtype)


def _by_channel(fn, n_ch: int, stream_bytes: int | None = None) -> None:
    """``fn(channels)`` for one contiguous range of channels per thread; an element-wise pass over ``stream_bytes``
    (memory-bound) on one thread below :data:`cnnkit.parallel.STREAM_PARALLEL_BYTES`."""
    if stream_bytes is None:
        parallel.run_slices(fn, n_ch)
    else:
        parallel.run_slices(fn, n_ch, stream_bytes, parallel.STREAM_PARALLEL_BYTES)


def _moments(a3: np.ndarray):
    """Per-channel mean and biased variance, (C,) each in ``a3``'s dtype."""
    if _compiled(a3):
        mean, var = np.empty(a3.shape[1]), np.empty(a3.shape[1])
        _by_channel(lambda ch: jit.batch_norm_moments(a3, ch, mean, var), a3.shape[1])
        return mean.astype(a3.dtype), var.astype(a3.dtype)
    m = a3.dtype.type(a3.size // a3.shape[1])
    mean = _sums(a3)[0] / m
    return mean, _sums(a3, mean[:, None])[1] / m


def _grad_sums(a3: np.ndarray, mean: np.ndarray, g3: np.ndarray):
    """Per-channel ``Σg`` and ``Σg·(x − μ)``, (C,) each."""
    if _compiled(a3):
        sum_g, sum_gc = np.empty(a3.shape[1]), np.empty(a3.shape[1])
        _by_channel(lambda ch: jit.batch_norm_grad_sums(g3, a3, mean, ch, sum_g, sum_gc), a3.shape[1])
        return sum_g.astype(a3.dtype), sum_gc.astype(a3.dtype)
    return _sums(a3, mean[:, None], g3)


def _scale_shift(src: np.ndarray, scale: np.ndarray, shift: np.ndarray, mask=None) -> np.ndarray:
    """``src·scale + shift`` per channel, ``scale`` and ``shift`` (C,); with ``mask`` (bool, ``src``'s shape) a ReLU
    too, in the same pass when compiled: ``max(·, 0)`` (NaN and −0 kept) and ``mask`` ← ``not out ≤ 0``."""
    if _compiled(src):
        out = np.empty_like(src)
        _by_channel(lambda ch: jit.batch_norm_apply(src, scale, shift, out, ch, mask), src.shape[1], src.nbytes)
        return out
    out = _affine(src, scale[:, None], shift[:, None])
    if mask is not None:
        np.logical_not(out <= 0, out=mask)
        np.copyto(out, 0, where=out < 0)
    return out


def _input_grad(g3, a3, mean, k, const, scale) -> np.ndarray:
    """``(g − (x − μ)·k − const)·scale`` per channel (all coefficients (C,))."""
    if _compiled(a3):
        gx = np.empty_like(a3)
        _by_channel(lambda ch: jit.batch_norm_grad_input(g3, a3, mean, k, const, scale, gx, ch), a3.shape[1],
                    a3.nbytes)
        return gx
    return _affine(g3, scale[:, None], mean[:, None], sub=a3, k=k[:, None], c=const[:, None])


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over every axis but the channel axis 1: ``y = γ·(x − μ)/sqrt(σ² + eps) + β``.

    With ``training=True``, ``μ`` and ``σ²`` are the batch's mean and biased variance per channel
    and, when given, the running statistics are updated in place:
    ``running_mean ← (1 − momentum)·running_mean + momentum·μ`` and the same for ``running_var``
    with the *unbiased* variance ``σ²·M/(M − 1)`` (``M = N·∏ spatial``), exactly as PyTorch. With
    ``training=False`` the running statistics normalise and are not changed.

    The backward is one fused formula (training):
    ``dx = γ/(M·sqrt(σ² + eps)) · (M·g − Σg − x̂·Σ(g·x̂))``, ``dγ = Σ g·x̂``, ``dβ = Σ g``.
    Large inputs run compiled loops channel by channel (:mod:`cnnkit.jit`), others NumPy passes over
    cache-sized blocks of images (:data:`BLOCK_BYTES`), both on cnnkit's threads (:mod:`cnnkit.parallel`);
    only the input is kept for backward (as PyTorch).

    Args:
        input: ``(N, C)`` or ``(N, C, *)``.
        running_mean, running_var: ``(C,)`` buffers, or ``None`` (then ``training`` must be ``True``).
        weight, bias: ``γ`` and ``β``, ``(C,)`` each, or ``None`` (1 and 0).
        training: use batch statistics (and update the running ones).
        momentum: weight of the new batch in the running averages. Default: 0.1.
        eps: added to the variance for stability. Default: 1e-5.

    Shape:
        Input ``(N, C, *)``, output ``(N, C, *)``, same shape.

    Example:
        >>> x = cnnkit.randn(8, 3, 4, 4)
        >>> F.batch_norm(x, None, None, training=True).shape
        (8, 3, 4, 4)
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu=False)


def batch_norm_relu(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
                    weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
                    momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """``relu(batch_norm(input, …))`` as one op (arguments as :func:`batch_norm`): the ReLU and its mask are made in
    batch norm's last pass, which saves a pass over the activation; the backward is the two ops' backwards. The
    values and gradients are those of the two ops one after the other (a NaN passes, as through PyTorch's ``relu``).
    :func:`cnnkit.nn.fusion.bn_relu` calls it for a ``BatchNorm`` followed by a ``ReLU``."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu=True)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu: bool) -> Tensor:
    x = check_float(input, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C) or (N, C, *), got shape {x.shape}")
    n_ch = x.shape[1]
    rm = _channel_param(running_mean, n_ch, "running_mean")
    rv = _channel_param(running_var, n_ch, "running_var")
    w = _channel_param(weight, n_ch, "weight")
    b = _channel_param(bias, n_ch, "bias")
    for arg, t in (("weight", w), ("bias", b)):
        if t is not None and t.data.dtype != x.data.dtype:
            raise TypeError(f"batch_norm: input is {x.data.dtype} but {arg} is {t.data.dtype}; convert one of them")
    if not training and (rm is None or rv is None):
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    dt = x.data.dtype
    # float16 is computed in float32, as PyTorch's CPU kernel (a channel's count and sums pass 65,504)
    ct = np.dtype(np.float32) if dt == np.float16 else dt
    a = x.data
    a3 = np.ascontiguousarray(a, dtype=ct).reshape(a.shape[0], n_ch, math.prod(a.shape[2:]))  # (N, C, L), N may be 0
    m = a.size // n_ch if n_ch else 0  # values per channel
    gamma = np.ones(n_ch, dtype=ct) if w is None else w.data.astype(ct, copy=False)
    beta = np.zeros(n_ch, dtype=ct) if b is None else b.data.astype(ct, copy=False)
    if training:
        if m <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        mean, var = _moments(a3)  # (C,) each, the variance biased
        mom = float(momentum)
        if rm is not None:
            rm.data[...] = (1 - mom) * rm.data + mom * mean.astype(rm.data.dtype)
        if rv is not None:
            rv.data[...] = (1 - mom) * rv.data + mom * (var * (m / (m - 1))).astype(rv.data.dtype)
        invstd = ct.type(1) / np.sqrt(var + ct.type(eps))
    else:  # the running statistics
        mean = rm.data.astype(ct, copy=False)
        invstd = ct.type(1) / np.sqrt(rv.data.astype(ct, copy=False) + ct.type(eps))
    alpha = gamma * invstd  # y = x·α + (β − μ·α): two passes, as PyTorch's CPU kernel
    mask = np.empty(a3.shape, dtype=bool) if relu else None               # where the ReLU passes
    out = _scale_shift(a3, alpha, beta - mean * alpha, mask).astype(dt, copy=False).reshape(a.shape)
    parents = tuple(t for t in (x, w, b) if t is not None)

    def backward(g):
        need_gx, need_gw = x.requires_grad, w is not None and w.requires_grad
        need_gb = b is not None and b.requires_grad
        g3 = np.ascontiguousarray(g, dtype=ct).reshape(a3.shape)
        if mask is not None:    # the ReLU's gradient: its own pass (read inside batch norm's two, it ran slower)
            g3 = relu_grad(g3, mask, _compiled(a3))
        sums = need_gw or need_gb or (training and need_gx)
        sum_g, sum_gc = _grad_sums(a3, mean, g3) if sums else (None, None)  # Σg, Σg·(x − μ)
        gx = None
        if need_gx:
            if training:  # dx = α·(g − Σg/M − (x − μ)·invstd²·Σg(x − μ)/M)
                gx = _input_grad(g3, a3, mean, invstd * invstd * sum_gc / ct.type(m), sum_g / ct.type(m), alpha)
            else:
                gx = _scale_shift(g3, alpha, np.zeros(n_ch, ct))
            gx = gx.astype(dt, copy=False).reshape(a.shape)
        grads = [gx]
        if w is not None:
            grads.append((sum_gc * invstd).astype(dt, copy=False) if need_gw else None)  # Σ g·x̂
        if b is not None:
            grads.append(sum_g.astype(dt, copy=False) if need_gb else None)
        return tuple(grads)
    return make_op(out, parents, backward)


def _channel_window_sum(a: np.ndarray, front: int, back: int) -> np.ndarray:
    """``out[:, c] = Σ a[:, j]`` for ``c − front ≤ j ≤ c + back`` (zeros outside), any trailing dims."""
    c = a.shape[1]
    pad = [(0, 0)] * a.ndim
    pad[1] = (front, back)
    p = np.pad(a, pad)  # (N, front + C + back, *)
    out = p[:, 0:c].copy()
    for off in range(1, front + back + 1):
        out += p[:, off:off + c]
    return out


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Local response normalisation across channels (AlexNet; VGG A-LRN), exactly as PyTorch.

    ``b_c = a_c / (k + (α/n)·Σ_{j} a_j²)^β`` where the sum runs over the ``n = size`` channels
    ``c − n//2 … c + (n−1)//2`` (zero padding outside; always divided by ``n``, as PyTorch's average
    pooling of the squares).

    Args:
        input: ``(N, C, *)`` with at least 3 dimensions.
        size: number of neighbouring channels ``n``.
        alpha: multiplicative factor. Default: 1e-4.
        beta: exponent. Default: 0.75.
        k: additive factor. Default: 1.

    Shape:
        Input ``(N, C, *)``, output ``(N, C, *)``, same shape.

    Example:
        >>> F.local_response_norm(cnnkit.ones(1, 8, 3, 3), size=5).shape
        (1, 8, 3, 3)
    """
    x = check_float(input, "local_response_norm")
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: expected 3D or higher dimensionality input (N, C, *), "
                         f"got {x.ndim}D input of shape {x.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got size={size!r}")
    if x.data.size == 0:
        return x
    dt = x.data.dtype
    a = x.data
    front, back = size // 2, (size - 1) // 2
    coef = dt.type(alpha / size)
    d = dt.type(k) + coef * _channel_window_sum(a * a, front, back)  # (N, C, *)
    d_pow = d ** dt.type(-beta)  # D^-β
    out = a * d_pow

    def backward(g):
        # dx_j = g_j·D_j^-β − (2αβ/n)·x_j·Σ_{c: j in window(c)} g_c·x_c·D_c^(-β-1); the mirrored window.
        t = g * a * d_pow / d
        s = _channel_window_sum(t, back, front)
        return (g * d_pow - dt.type(2 * beta) * coef * a * s,)
    return make_op(out, (x,), backward)
