"""The lecture's "convolution as matrix multiplication" as ops of their own: :func:`im2col` (PyTorch's ``unfold``)
and its adjoint :func:`col2im` (``fold``), for any number of spatial axes."""
from __future__ import annotations

import math

import numpy as np

from .... import kernels
from ....shape import ntuple, resolve_padding
from ....tensor import Tensor, make_op
from .geometry import output_geometry

__all__ = ["im2col", "col2im"]


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
