"""Activation functions: ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``softmax``, ``log_softmax``.

Each op computes its forward in the input's dtype (float32 stays float32) and attaches a
backward that needs only what it kept: the output (sigmoid, tanh, softmax, log_softmax) or a
mask (relu, leaky_relu).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ... import jit, parallel
from ...tensor import Tensor, make_op, records_graph
from .checks import check_float

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"]


# ----------------------------------------------------------------------------- shared helpers
def _normalize_dim(dim, ndim: int, name: str) -> int:
    """Wrap a possibly negative ``dim`` into ``[0, ndim)`` (a 0-d tensor accepts -1 and 0), as PyTorch."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}: dim must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return int(dim) % n


def _softmax_dim(dim, ndim: int, name: str) -> int:
    if dim is None:  # PyTorch's legacy implicit choice, with its warning
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                      "Change the call to include dim=X as an argument.", UserWarning, stacklevel=3)
        dim = 0 if ndim in (0, 1, 3) else 1
    return _normalize_dim(dim, ndim, name)


def _cast(input: Tensor, dtype) -> Tensor:
    return input if dtype is None else input.to(dtype)


# ----------------------------------------------------------------------------- elementwise
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """Rectified linear unit, elementwise ``max(0, x)``; its gradient is 0 for ``x <= 0``.

    Args:
        input: any shape.
        inplace: when no graph is recorded (``cnnkit.no_grad()``, or an input that needs no
            gradient), overwrite ``input`` and return it, as PyTorch — inference then writes no new
            array. When a graph is recorded a new tensor is returned (cnnkit has no version counters
            to catch an in-place change of a tensor some backward still needs).

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> F.relu(cnnkit.tensor([-1.0, 0.0, 2.0]))
        tensor([0., 0., 2.])
    """
    x = check_float(input, "relu")
    a = x.data
    # the compiled loops (about 2-4x np.maximum's speed) once a convolution or batch norm has loaded them
    compiled = a.flags.c_contiguous and jit.ready(a.nbytes, a.dtype)
    if inplace and not records_graph(x) and a.flags.writeable:
        if compiled:
            _rows(lambda rows: jit.relu_inplace(a[rows]), a)
        else:
            _rows(lambda rows: np.maximum(a[rows], a.dtype.type(0), out=a[rows]), a)
        return x
    out = np.empty(a.shape, dtype=a.dtype)
    mask = np.empty(a.shape, dtype=bool) if records_graph(x) else None  # inference keeps no mask

    def forward(rows):  # a block of rows (images) per thread
        if compiled:
            jit.relu_forward(a[rows], out[rows], None if mask is None else mask[rows])
            return
        np.maximum(a[rows], a.dtype.type(0), out=out[rows])  # NaN stays NaN, as in PyTorch
        if mask is not None:                                  # not x ≤ 0: a NaN passes its gradient, as PyTorch
            np.logical_not(np.less_equal(a[rows], 0, out=mask[rows]), out=mask[rows])

    _rows(forward, a)
    return make_op(out, (x,), lambda g: (relu_grad(g, mask, compiled),))


def relu_grad(g: np.ndarray, mask: np.ndarray, compiled: bool) -> np.ndarray:
    """ReLU's input gradient: ``g`` where ``mask`` (the input was not ≤ 0), else 0; by the compiled loop when
    ``compiled`` (then 0 also where ``g`` is NaN, as PyTorch)."""
    gx = np.empty(g.shape, dtype=g.dtype)
    if compiled and g.flags.c_contiguous:
        _rows(lambda rows: jit.relu_grad(g[rows], mask[rows], gx[rows]), g)
    else:
        _rows(lambda rows: np.multiply(g[rows], mask[rows], out=gx[rows]), g)
    return gx


def _rows(fn, a: np.ndarray) -> None:
    """``fn(rows)`` over slices of ``a``'s first axis, in parallel for large arrays (elementwise ops)."""
    if a.ndim == 0:
        fn(...)
    else:
        parallel.run_slices(fn, a.shape[0], a.nbytes, parallel.STREAM_PARALLEL_BYTES)  # memory-bound


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """Leaky ReLU: ``x`` for ``x > 0``, ``negative_slope·x`` otherwise (gradient ``negative_slope`` at 0, as PyTorch).

    Args:
        input: any shape.
        negative_slope: slope for non-positive inputs. Default: 0.01.
        inplace: accepted for PyTorch compatibility (a new tensor is always returned).

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> F.leaky_relu(cnnkit.tensor([-2.0, 3.0]), 0.1)
        tensor([-0.2,  3. ])
    """
    x = check_float(input, "leaky_relu")
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.floating, np.integer)):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {negative_slope!r}")
    mask = x.data > 0
    slope = x.data.dtype.type(negative_slope)
    factor = np.where(mask, x.data.dtype.type(1), slope)  # d out / d in
    return make_op(x.data * factor, (x,), lambda g: (g * factor,))


def sigmoid(input: Tensor) -> Tensor:
    """Logistic function ``1 / (1 + exp(−x))``, computed without overflow for large ``|x|``.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> F.sigmoid(cnnkit.tensor([0.0]))
        tensor([0.5])
    """
    x = check_float(input, "sigmoid")
    z = np.exp(-np.abs(x.data))  # in (0, 1]: never overflows
    one = x.data.dtype.type(1)
    y = np.where(x.data >= 0, one / (one + z), z / (one + z))
    return make_op(y, (x,), lambda g: (g * y * (one - y),))


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent; gradient ``1 − tanh(x)²``.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> F.tanh(cnnkit.tensor([0.0]))
        tensor([0.])
    """
    x = check_float(input, "tanh")
    y = np.tanh(x.data)
    one = x.data.dtype.type(1)
    return make_op(y, (x,), lambda g: (g * (one - y * y),))


# ----------------------------------------------------------------------------- softmax family
def _softmax_array(a: np.ndarray, axis: int) -> np.ndarray:
    if a.size == 0:
        return a.copy()
    e = np.exp(a - a.max(axis=axis, keepdims=True))  # shift by the max: exp never overflows
    return e / e.sum(axis=axis, keepdims=True)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None, *,
            base: float | None = None) -> Tensor:
    """Softmax along ``dim``: ``exp(x_i) / Σ_j exp(x_j)``, so each slice along ``dim`` sums to 1.

    With ``base=b`` the scores are ``b^{x_i} / Σ_j b^{x_j}`` (i.e. the softmax of ``x·ln b``): the
    lecture's example uses base 2, turning logits ``[4, −1]`` into ``[2⁴, 2⁻¹]/(2⁴ + 2⁻¹) =
    [0.97, 0.03]`` (base e would give ``[0.993, 0.007]``).

    Args:
        input: any shape.
        dim: the dimension that sums to 1. ``None`` picks PyTorch's legacy default (0 for 0-, 1-
            and 3-d input, else 1) with a warning.
        dtype: if given, the input is cast to it first.
        base: the exponential's base (``> 0``); ``None`` means e.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> F.softmax(cnnkit.tensor([4.0, -1.0]), dim=0, base=2)
        tensor([0.969697  , 0.03030303])
    """
    x = _cast(check_float(input, "softmax"), dtype)
    axis = _softmax_dim(dim, x.ndim, "softmax")
    scale = None
    if base is not None:
        if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)) \
                or not math.isfinite(base) or base <= 0:
            raise ValueError(f"softmax: base must be a positive finite number, got base={base!r}")
        scale = x.data.dtype.type(math.log(base))
    a = x.data.reshape(1) if x.ndim == 0 else x.data
    z = a if scale is None else a * scale
    y = _softmax_array(z, axis).reshape(x.shape)

    def backward(g):
        yy = y.reshape(a.shape)
        gg = g.reshape(a.shape)
        gz = yy * (gg - (gg * yy).sum(axis=axis, keepdims=True))  # (J^T g) of softmax
        if scale is not None:
            gz = gz * scale
        return (gz.reshape(x.shape),)
    return make_op(y, (x,), backward)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably as ``x − max − log Σ exp(x − max)``.

    Args:
        input: any shape.
        dim: the dimension normalised over (``None``: PyTorch's legacy default, with a warning).
        dtype: if given, the input is cast to it first.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> F.log_softmax(cnnkit.tensor([0.0, 0.0]), dim=0)
        tensor([-0.6931472, -0.6931472])
    """
    x = _cast(check_float(input, "log_softmax"), dtype)
    axis = _softmax_dim(dim, x.ndim, "log_softmax")
    a = x.data.reshape(1) if x.ndim == 0 else x.data
    if a.size == 0:
        out = a.copy()
    else:
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        gg = g.reshape(a.shape)
        return ((gg - np.exp(out) * gg.sum(axis=axis, keepdims=True)).reshape(x.shape),)
    return make_op(out.reshape(x.shape), (x,), backward)
