"""Convolution layers: own the filters and bias, call ``cnnkit.nn.functional.conv{1,2,3}d``."""
from __future__ import annotations

import math

import numpy as np

from ... import shape
from .. import functional as F
from .. import init
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d"]

_DOC = """Applies a {nd}-D convolution over an input of several planes: ``out = bias + Σ weight ⋆ input``.

    Args:
        in_channels: channels of the input (the lecture's D1).
        out_channels: number of filters K (channels of the output, D2).
        kernel_size: filter extent F (int or {nd}-tuple).
        stride: window step S. Default: 1.
        padding: zero padding P per side: int, {nd}-tuple, ``'valid'`` or ``'same'``. Default: 0.
        dilation: spacing between kernel taps. Default: 1.
        groups: independent channel groups; ``groups == in_channels`` is depthwise. Default: 1.
        bias: learn an additive bias per filter. Default: True.

    Shape:
        Input ``{axes}``, output ``(N, out_channels, *out)`` with, per spatial axis,
        ``out = floor((in + 2·padding − dilation·(kernel_size − 1) − 1)/stride) + 1``
        (the lecture's ``W2 = (W1 − F + 2P)/S + 1``).

    Attributes:
        weight: ``(out_channels, in_channels/groups, *kernel_size)``, initialised
            ``U(−√k, √k)`` with ``k = groups/(in_channels·∏kernel_size)`` (PyTorch's Kaiming-uniform, a=√5).
        bias: ``(out_channels,)``, same distribution.

    Parameters: ``(∏F·D1/groups)·K + K`` — the lecture's ``(F·F·D1 + 1)·K``.

    Example::

        >>> conv = nn.Conv{nd}d(3, 6, kernel_size=5)
    """


class _ConvNd(Module):
    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        nd = self._nd
        for arg, val in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{name}: {arg} must be a positive int, got {arg}={val!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels}")
        if out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide out_channels={out_channels}")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = shape.ntuple(kernel_size, nd, "kernel_size", owner=name)
        self.stride = shape.ntuple(stride, nd, "stride", owner=name)
        self.dilation = shape.ntuple(dilation, nd, "dilation", owner=name)
        if isinstance(padding, str):
            shape.resolve_padding(padding, self.kernel_size, self.stride, self.dilation, owner=name)  # validates
            self.padding = padding
        else:
            self.padding = shape.ntuple(padding, nd, "padding", minimum=0, owner=name)
        self.padding_mode = padding_mode
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size, dtype=dtype))
        self.bias = Parameter(np.empty(out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _short(self) -> str:
        k = self.kernel_size[0] if len(set(self.kernel_size)) == 1 else self.kernel_size
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={k})"

    def forward(self, input):
        nd = self._nd
        if getattr(input, "ndim", None) == nd + 2 and input.shape[1] != self.in_channels:
            c = input.shape[1]
            raise ValueError(f"{self._short()}: input has {c} channel{'s' if c != 1 else ''}, "
                             f"expected {self.in_channels}")
        return self._conv_forward(input, self.weight, self.bias)

    def _conv_forward(self, input, weight, bias):
        """This layer's convolution with ``weight`` and ``bias`` in place of its own (as PyTorch's)."""
        fn = (F.conv1d, F.conv2d, F.conv3d)[self._nd - 1]
        try:
            return fn(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        except ValueError as exc:
            raise ValueError(f"{self._short()}: {exc}") from None

    def extra_repr(self) -> str:
        nd = self._nd
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    _nd = 1


class Conv2d(_ConvNd):
    _nd = 2


class Conv3d(_ConvNd):
    _nd = 3


for _cls, _axes in ((Conv1d, "(N, C, L)"), (Conv2d, "(N, C, H, W)"), (Conv3d, "(N, C, D, H, W)")):
    _cls.__doc__ = _DOC.format(nd=_cls._nd, axes=_axes)
