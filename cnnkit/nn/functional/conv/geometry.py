"""One convolution's problem, as every algorithm sees it: shapes, stride, padding, dilation, groups, dtype.

:class:`Geometry` is what an algorithm's ``applies`` and ``preferred`` predicates read and what the selection
(:mod:`.registry`, :mod:`.tuning`) is keyed by; it holds no data. :func:`output_geometry` is the output size with a
clear error when a window does not fit (pooling uses it too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ....shape import conv_output_size

__all__ = ["Geometry", "output_geometry"]


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


@dataclass(frozen=True)
class Geometry:
    """A convolution of an input ``(n, c, *in_size)`` with ``k_out`` filters ``(c/groups, *ksize)``.

    ``pads`` is ``((before, after), ...)`` per spatial axis, ``dtype`` the computing dtype's name, ``out_size`` the
    output's spatial size (:func:`output_geometry`). Hashable: the selection's key.
    """
    n: int
    c: int
    in_size: tuple
    k_out: int
    ksize: tuple
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int
    dtype: str
    out_size: tuple

    @classmethod
    def of(cls, x_shape, w_shape, stride, pads, dilation, groups: int, dtype, name: str = "conv") -> Geometry:
        """The geometry of an input of ``x_shape`` and a weight of ``w_shape`` (stride, pads, dilation resolved)."""
        ksize = tuple(int(k) for k in w_shape[2:])
        out = output_geometry(x_shape[2:], ksize, stride, pads, dilation, name)
        return cls(int(x_shape[0]), int(x_shape[1]), tuple(int(s) for s in x_shape[2:]), int(w_shape[0]), ksize,
                   tuple(stride), tuple(tuple(p) for p in pads), tuple(dilation), int(groups), np.dtype(dtype).name,
                   out)

    @property
    def nd(self) -> int:
        return len(self.ksize)

    @cached_property
    def taps(self) -> int:
        return math.prod(self.ksize)

    @cached_property
    def padded(self) -> tuple:
        return tuple(s + lo + hi for s, (lo, hi) in zip(self.in_size, self.pads))

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @cached_property
    def nbytes(self) -> int:
        """Bytes of the input."""
        return self.n * self.c * math.prod(self.in_size) * self.itemsize

    @cached_property
    def macs(self) -> int:
        """Multiply-adds of the direct sum."""
        return self.n * self.k_out * (self.c // self.groups) * self.taps * math.prod(self.out_size)

    @property
    def depthwise(self) -> bool:
        """One filter per channel: ``groups == in_channels == out_channels`` (more than one)."""
        return self.groups == self.c == self.k_out and self.c > 1

    @property
    def unit_stride(self) -> bool:
        return all(s == 1 for s in self.stride)

    @property
    def undilated(self) -> bool:
        return all(d == 1 for d in self.dilation)

    @cached_property
    def grad_input_pads(self):
        """The padding of dY that makes dX a stride-1 correlation (:meth:`transposed`): ``(k−1)·d − P`` per side, or
        None where that is negative (a padding wider than the kernel's reach)."""
        pads = tuple(((k - 1) * d - lo, (k - 1) * d - hi) for k, d, (lo, hi) in zip(self.ksize, self.dilation,
                                                                                        self.pads))
        return None if any(lo < 0 or hi < 0 for lo, hi in pads) else pads

    def transposed(self) -> Geometry | None:
        """For stride 1: dX as a convolution — of dY ``(n, k_out, *out)`` padded by :attr:`grad_input_pads`, with the
        kernel flipped and in/out channels swapped — or None (strided, or a padding wider than the kernel's reach).

        ``dX[y] = Σ_i dY[y + P_lo − i·d]·W[i]``: one forward-shaped convolution instead of ``Wᵀ @ dY`` plus col2im."""
        pads = self.grad_input_pads
        if not self.unit_stride or pads is None:
            return None
        return Geometry(self.n, self.k_out, self.out_size, self.c, self.ksize, self.stride, pads, self.dilation,
                        self.groups, self.dtype, self.in_size)

    def key(self) -> str:
        """Compact text of the whole geometry (the cache's key): ``n×c×H×W k_out kh×kw s… p… d… g dtype``."""
        def j(t):
            return "x".join(str(v) for v in t)
        pads = ",".join(f"{lo}-{hi}" for lo, hi in self.pads)
        return (f"{self.n}x{self.c}x{j(self.in_size)} k{self.k_out}x{j(self.ksize)} s{j(self.stride)} p{pads} "
                f"d{j(self.dilation)} g{self.groups} {self.dtype}")
