"""``pad``: constant padding of a tensor's last axes, PyTorch's ``torch.nn.functional.pad`` (mode ``'constant'``).

The CIFAR ResNets' option-A shortcut (:class:`cnnkit.models.ShortcutA`) is a subsample and a channel padding;
written as one pad it allocates its output once, where zero blocks and a concatenation made three arrays.
"""
from __future__ import annotations

import numpy as np

from ...tensor import Tensor, make_op

__all__ = ["pad"]


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """Pads the last ``len(pad) // 2`` axes of ``input`` with ``value`` (negative amounts crop), as PyTorch.

    Args:
        input: a tensor of any shape.
        pad: ``(before_last, after_last, before_2nd_last, after_2nd_last, …)``: an even number of ints, at most
            two per axis of ``input``, the last axis first.
        mode: ``'constant'`` (the only mode implemented; PyTorch also has reflect, replicate and circular).
        value: the fill value. Default: 0.

    Shape:
        Output: as ``input``, with axis ``-(i + 1)`` of size ``in + pad[2i] + pad[2i + 1]``.

    Example::

        >>> x = cnnkit.randn(8, 16, 16, 16)
        >>> F.pad(x, (0, 0, 0, 0, 8, 8)).shape          # 8 zero channels before and after
        (8, 32, 16, 16)
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: input must be a cnnkit Tensor, got {type(input).__name__}")
    if mode != "constant":
        raise ValueError(f"pad: mode must be 'constant' (reflect, replicate and circular are not implemented), "
                         f"got {mode!r}")
    if (not isinstance(pad, (tuple, list)) or len(pad) % 2
            or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad)):
        raise ValueError(f"pad: pad must be a tuple of an even number of ints, got {pad!r}")
    shape = input.shape
    if len(pad) > 2 * len(shape):
        raise ValueError(f"pad: {len(pad)} padding values for a tensor of {len(shape)} axes (at most two per axis)")
    pairs = [(0, 0)] * (len(shape) - len(pad) // 2) + [(int(pad[i]), int(pad[i + 1]))
                                                        for i in range(len(pad) - 2, -1, -2)]
    out_shape = tuple(s + lo + hi for s, (lo, hi) in zip(shape, pairs))
    if any(s < 0 for s in out_shape):
        raise ValueError(f"pad: padding {tuple(pad)} of input shape {shape} gives the negative size {out_shape}")
    src = tuple(slice(max(0, -lo), s - max(0, -hi)) for s, (lo, hi) in zip(shape, pairs))
    dst = tuple(slice(max(0, lo), max(0, lo) + max(0, s.stop - s.start)) for s, (lo, _) in zip(src, pairs))
    x = input.data
    out = np.empty(out_shape, dtype=x.dtype)
    fill = 0 if value is None else value
    for axis, (d, size) in enumerate(zip(dst, out_shape)):       # only the border slabs, then the interior once
        if d.start:
            out[(slice(None),) * axis + (slice(0, d.start),)] = fill
        if d.stop < size:
            out[(slice(None),) * axis + (slice(d.stop, None),)] = fill
    out[dst] = x[src]
    cropped = any(lo < 0 or hi < 0 for lo, hi in pairs)

    def backward(g):
        if not cropped:
            return (g[dst],)                                     # (N, …) view of the interior
        gx = np.zeros(shape, dtype=g.dtype)
        gx[src] = g[dst]
        return (gx,)
    return make_op(out, (input,), backward)
