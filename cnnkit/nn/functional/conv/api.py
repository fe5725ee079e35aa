"""The convolution ops ``conv1d``, ``conv2d``, ``conv3d``: argument checks, then each direction by the algorithm that
:mod:`.registry` selects (forward now; the input and weight gradients in the backward, each only when that input
requires it). :func:`conv2d_path` says which algorithm a layer takes.
"""
from __future__ import annotations

import numpy as np

from ....shape import ntuple, resolve_padding
from ....tensor import Tensor, make_op
from ..checks import AXES, check_rank, same_dtype
from . import registry
from .algorithm import DIRECTIONS, FORWARD, INPUT_GRAD, WEIGHT_GRAD
from .geometry import Geometry

__all__ = ["conv1d", "conv2d", "conv3d", "conv2d_path", "algorithm"]


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
    dtype = np.result_type(x.data, weight.data)
    geom = Geometry.of(x.shape, weight.shape, stride, pads, dilation, groups, dtype, name)
    xd, wd = x.data.astype(dtype, copy=False), weight.data.astype(dtype, copy=False)
    bd = None if bias is None else bias.data.astype(dtype, copy=False)
    out = registry.run(FORWARD, geom, xd, wd, bd)

    def backward(g):
        gb = g.sum(axis=(0,) + tuple(range(2, 2 + nd))) if bias is not None and bias.requires_grad else None
        gw = registry.run(WEIGHT_GRAD, geom, g, xd) if weight.requires_grad else None
        gx = registry.run(INPUT_GRAD, geom, g, wd) if x.requires_grad else None
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


def algorithm(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups: int = 1, dtype=np.float32,
              direction: str = FORWARD, measure_now: bool = True) -> str | None:
    """The name of the algorithm that a convolution of an input ``(N, C, *spatial)`` with a weight ``(K, C/groups,
    *kernel)`` takes for ``direction`` (``"forward"``, ``"input_grad"``, ``"weight_grad"``): what
    :func:`.registry.select` decides (see :data:`.registry.ORDER` for the names), measuring it now if measurement is
    on and the cache has no choice yet (``measure_now=False``: the default order's choice then). None when the kernel
    does not fit the input. Winograd also needs finite inputs and weights, which only the call itself can see."""
    if direction not in DIRECTIONS:
        raise ValueError(f"conv algorithm: direction must be one of {DIRECTIONS}, got {direction!r}")
    nd = len(weight_shape) - 2
    ksize = tuple(weight_shape[2:])
    stride, dilation = ntuple(stride, nd, "stride"), ntuple(dilation, nd, "dilation")
    pads = resolve_padding(padding, ksize, stride, dilation)
    try:
        geom = Geometry.of(tuple(input_shape), tuple(weight_shape), stride, pads, dilation, groups, dtype)
    except ValueError:                                             # the kernel does not fit: no convolution at all
        return None
    return registry.select(direction, geom, measure_now=measure_now).name


def conv2d_path(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups: int = 1,
                dtype=np.float32, direction: str = FORWARD) -> str | None:
    """The name of the algorithm that :func:`conv2d` of an input ``(N, C, H, W)`` with a weight ``(K, C/groups, kh,
    kw)`` takes for ``direction``: ``"gemm"`` (im2col + GEMM), ``"direct"``, ``"winograd-rows"``, … (:func:`algorithm`,
    which measures it first where measurement is on and nothing is cached). For reports and benchmarks."""
    if len(input_shape) != 4 or len(weight_shape) != 4:
        return None
    return algorithm(input_shape, weight_shape, stride, padding, dilation, groups, dtype, direction)
