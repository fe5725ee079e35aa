"""Fully connected layer, flattening and dropout: ``linear``, ``flatten``, ``dropout``."""
from __future__ import annotations

import numpy as np

from ... import parallel
from ...tensor import Tensor, get_rng, make_op
from .checks import check_float, same_dtype

__all__ = ["linear", "flatten", "dropout"]


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map ``y = x Wᵀ + b`` over the last dimension (a fully connected layer).

    Args:
        input: ``(*, in_features)``.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or ``None``.

    Shape:
        Input ``(*, H_in)``, output ``(*, H_out)`` with ``H_in = in_features``, ``H_out = out_features``.
        Multiply-accumulates: ``in_features·out_features`` per input row.

    Example:
        >>> x = cnnkit.ones(2, 3); w = cnnkit.ones(4, 3)
        >>> F.linear(x, w).shape
        (2, 4)
    """
    x = check_float(input, "linear")
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"linear: weight must be a 2-D tensor (out_features, in_features), got "
                         f"{getattr(weight, 'shape', type(weight).__name__)}")
    out_f, in_f = weight.shape
    if x.ndim == 0:
        raise ValueError("linear: input must have at least 1 dimension (*, in_features), got a 0-d tensor")
    if x.shape[-1] != in_f:
        raise ValueError(f"linear: input has {x.shape[-1]} features (last dimension of shape {x.shape}), "
                         f"weight expects {in_f}")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (out_f,)):
        raise ValueError(f"linear: bias must have shape ({out_f},), got {getattr(bias, 'shape', bias)}")
    same_dtype("linear", x, weight=weight, bias=bias)
    w = weight.data
    out = parallel.matmul(x.data.reshape(-1, in_f), w.T).reshape(x.shape[:-1] + (out_f,))  # (*, out)
    if bias is not None:
        out += bias.data
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g):  # g: (*, out)
        gx = parallel.matmul(g.reshape(-1, out_f), w).reshape(x.shape) if x.requires_grad else None  # (*, in)
        gw = gb = None
        if weight.requires_grad:
            g2 = g.reshape(-1, out_f)  # (M, out)
            gw = parallel.matmul(g2.T, x.data.reshape(-1, in_f))  # (out, in)
        if bias is not None and bias.requires_grad:
            gb = g.reshape(-1, out_f).sum(axis=0)  # (out,)
        return (gx, gw) if bias is None else (gx, gw, gb)
    return make_op(out, parents, backward)


def flatten(input: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim..end_dim`` into one (``nn.Flatten``'s default keeps the batch axis).

    Shape:
        Input ``(*, S_start, ..., S_end, *)``, output ``(*, ∏ S_i, *)``.

    Example:
        >>> F.flatten(cnnkit.zeros(2, 16, 5, 5)).shape
        (2, 400)
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"flatten: input must be a cnnkit Tensor, got {type(input).__name__}")
    nd = max(input.ndim, 1)
    for name, d in (("start_dim", start_dim), ("end_dim", end_dim)):
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"flatten: {name} must be an int, got {d!r}")
        if not -nd <= d < nd:
            raise IndexError(f"flatten: {name}={d} is out of range for a {input.ndim}-d input of shape "
                             f"{input.shape} (expected in [{-nd}, {nd - 1}])")
    return input.flatten(start_dim, end_dim)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by ``1/(1−p)``.

    In evaluation (``training=False``) or with ``p = 0`` the input is returned unchanged, so the
    expected activation is the same in both modes. Randomness comes from ``cnnkit.manual_seed``'s
    generator.

    Args:
        input: any shape.
        p: probability of an element being zeroed, in ``[0, 1]``. Default: 0.5.
        training: apply dropout if ``True``. Default: ``True``.
        inplace: accepted for PyTorch compatibility (a new tensor is always returned).

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> F.dropout(cnnkit.ones(4), p=0.5, training=False)
        tensor([1., 1., 1., 1.])
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = check_float(input, "dropout")
    if not training or p == 0:
        return x
    dt = x.data.dtype.type
    if p == 1:
        mask = np.zeros(x.shape, dtype=x.data.dtype)
    else:
        keep = get_rng().random(x.shape) >= p  # Bernoulli(1 − p)
        mask = keep * dt(1.0 / (1.0 - p))  # scaled mask in the input's dtype
    return make_op(x.data * mask, (x,), lambda g: (g * mask,))
