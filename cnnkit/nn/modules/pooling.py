"""Pooling layers (no parameters): thin modules over ``cnnkit.nn.functional`` pooling ops."""
from __future__ import annotations

from ... import shape
from .. import functional as F
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "GlobalAvgPool2d"]


class _PoolNd(Module):
    _nd = 2
    _kind = "max"

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        ks = shape.ntuple(kernel_size, nd, "kernel_size", owner=name)
        st = ks if stride is None else shape.ntuple(stride, nd, "stride", owner=name)
        pd = shape.ntuple(padding, nd, "padding", minimum=0, owner=name)
        shape.ntuple(dilation, nd, "dilation", owner=name)
        # PyTorch keeps what the user passed (an int stays an int)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.count_include_pad = count_include_pad
        self._geometry = (ks, st, pd)

    def forward(self, input):
        nd = self._nd
        try:
            if self._kind == "max":
                fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1]
                return fn(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
            fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1]
            return fn(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}({self.extra_repr()}): {exc}") from None

    def extra_repr(self) -> str:
        # PyTorch's reprs: max pooling prints dilation and ceil_mode always, average pooling only its window
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self._kind == "max":
            return s + f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        return s


def _pool(nd, kind, doc):
    name = f"{'Max' if kind == 'max' else 'Avg'}Pool{nd}d"
    cls = type(name, (_PoolNd,), {"_nd": nd, "_kind": kind, "__doc__": doc, "__module__": __name__})
    if kind == "max":
        def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
            _PoolNd.__init__(self, kernel_size, stride, padding, dilation, ceil_mode)
    else:
        def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
            _PoolNd.__init__(self, kernel_size, stride, padding, 1, ceil_mode, count_include_pad)
    cls.__init__ = __init__
    return cls


_SHAPE = """
    Shape:
        Input ``(N, C, *in)``, output ``(N, C, *out)`` with
        ``out = floor((in + 2·padding − dilation·(kernel_size − 1) − 1)/stride) + 1`` (``ceil`` with
        ``ceil_mode``): the lecture's ``W2 = (W1 − F)/S + 1``, ``D2 = D1``. No parameters.
"""
_MAX = ("{nd}-D max pooling: the largest value of each F×F window, per channel (stride defaults to F).\n\n"
        "    Args: kernel_size, stride=None (= kernel_size), padding=0, dilation=1, ceil_mode=False — see\n"
        "    :func:`cnnkit.nn.functional.max_pool{nd}d`.\n" + _SHAPE)
_AVG = ("{nd}-D average pooling: the mean of each F×F window, per channel (stride defaults to F).\n\n"
        "    Args: kernel_size, stride=None (= kernel_size), padding=0, ceil_mode=False, count_include_pad=True —\n"
        "    see :func:`cnnkit.nn.functional.avg_pool{nd}d`.\n" + _SHAPE)

MaxPool1d, MaxPool2d, MaxPool3d = (_pool(nd, "max", _MAX.format(nd=nd)) for nd in (1, 2, 3))
AvgPool1d, AvgPool2d, AvgPool3d = (_pool(nd, "avg", _AVG.format(nd=nd)) for nd in (1, 2, 3))


class _AdaptiveAvgPoolNd(Module):
    _nd = 2

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        fn = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[self._nd - 1]
        return fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average pooling to a fixed output length whatever the input length. Shape ``(N, C, L)`` → ``(N, C, out)``."""
    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average pooling to a fixed ``output_size`` whatever the input size (window ``i`` covers
    ``[floor(i·H/out), ceil((i+1)·H/out))``). Shape ``(N, C, H, W)`` → ``(N, C, *output_size)``; no parameters.
    ``AdaptiveAvgPool2d(1)`` is global average pooling."""
    _nd = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D version of :class:`AdaptiveAvgPool2d`."""
    _nd = 3


class GlobalAvgPool2d(Module):
    """Global average pooling: each channel's map → its mean. Shape ``(N, C, H, W)`` → ``(N, C, 1, 1)``,
    or ``(N, C)`` with ``flatten=True``. Lets a network without FC layers take any input size."""

    def __init__(self, flatten: bool = False):
        super().__init__()
        self.flatten = flatten

    def forward(self, input):
        out = F.global_avg_pool2d(input)
        return out.flatten(1) if self.flatten else out

    def extra_repr(self) -> str:
        return "flatten=True" if self.flatten else ""
