"""Convolution as matrix multiplication: one N-d implementation for conv1d, conv2d and conv3d.

Forward: pad, build the column matrix (im2col), one GEMM per group ``W(K, C·∏k) @ cols(C·∏k, N·∏out)``.
Backward: ``dW = dY @ colsᵀ``, ``dcols = Wᵀ @ dY`` and col2im (the transposed convolution) for ``dX``;
each only when that input requires a gradient.
"""
from __future__ import annotations

import math

import numpy as np

from ... import kernels
from ...shape import conv_output_size, ntuple, resolve_padding
from ...tensor import Tensor, make_op

__all__ = ["conv1d", "conv2d", "conv3d", "im2col", "col2im"]

_AXES = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _check_rank(x: Tensor, nd: int, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a cnnkit Tensor, got {type(x).__name__}")
    if x.ndim != nd + 2:
        hint = "; add a batch dimension with x.unsqueeze(0)" if x.ndim == nd + 1 else ""
        raise ValueError(f"{name}: expected a {nd + 2}-D input {_AXES[nd]}, got a {x.ndim}-D input of shape "
                         f"{tuple(x.shape)}{hint}")


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
    _check_rank(x, nd, name)
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
    out_size = output_geometry(x.shape[2:], ksize, stride, pads, dilation, name)

    xp = kernels.pad(x.data, pads)                                              # (N, C, *Sp)
    cols = kernels.im2col_matrix(xp, ksize, stride, dilation, out_size, groups)  # (g, C/g·∏k, N·∏o)
    w = weight.data.reshape(groups, k_out // groups, -1)                        # (g, K/g, C/g·∏k)
    y = np.matmul(w, cols) if groups > 1 else (w[0] @ cols[0])[None]            # (g, K/g, N·∏o)
    y = y.reshape(k_out, n, -1)                                                 # (K, N, ∏o)
    if bias is not None:
        y += bias.data.reshape(k_out, 1, 1)
    out = np.ascontiguousarray(y.transpose(1, 0, 2)).reshape((n, k_out) + out_size)  # (N, K, *o)

    need_w = weight.requires_grad
    saved_cols = cols if need_w else None
    del cols
    x_shape, xp_shape = x.shape, xp.shape

    def backward(g):
        gy = np.ascontiguousarray(g.reshape(n, k_out, -1).transpose(1, 0, 2))  # (K, N, ∏o)
        gy = gy.reshape(groups, k_out // groups, -1)                          # (g, K/g, N·∏o)
        gx = gw = gb = None
        if bias is not None and bias.requires_grad:
            gb = gy.reshape(k_out, -1).sum(axis=1)
        if need_w:
            gw = np.matmul(gy, saved_cols.transpose(0, 2, 1)).reshape(weight.shape)
        if x.requires_grad:
            gcols = np.matmul(w.transpose(0, 2, 1), gy)                       # (g, C/g·∏k, N·∏o)
            gcols = gcols.reshape((c,) + ksize + (n,) + out_size)             # (C, *k, N, *o)
            order = (nd + 1, 0) + tuple(range(1, nd + 1)) + tuple(range(nd + 2, 2 * nd + 2))
            gxp = kernels.col2im(gcols.transpose(order), xp_shape, ksize, stride, dilation)
            crop = (slice(None), slice(None)) + tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, x_shape[2:]))
            gx = gxp[crop]
        return gx, gw, gb

    parents = (x, weight) if bias is None else (x, weight, bias)
    return make_op(out, parents, backward)


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

        >>> x = cnnkit.randn(1, 3, 32, 32)
        >>> w = cnnkit.randn(6, 3, 5, 5)
        >>> F.conv{nd}d(x, w).shape if {nd} == 2 else None
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


for _nd, _fn in ((1, conv1d), (2, conv2d), (3, conv3d)):
    _fn.__doc__ = _DOC.format(nd=_nd, axes=_AXES[_nd])


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
