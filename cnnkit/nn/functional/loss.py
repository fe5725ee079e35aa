"""Loss functions: ``cross_entropy``, ``nll_loss``, ``mse_loss`` with PyTorch's semantics.

``cross_entropy`` and ``nll_loss`` share one idea: each prediction ``i`` has a row ``q_i`` of
per-class coefficients (weighted one-hot target, plus the label-smoothing share, zero for
ignored targets), and the loss is ``L_i = −Σ_c q_ic · z_ic`` where ``z`` is the log-probability
(``nll_loss``: the input itself; ``cross_entropy``: ``log_softmax`` of the input). ``mean``
divides by the same denominator PyTorch uses: the summed class weights of the non-ignored targets
(their count without weights), or the number of predictions for probability targets. The backward
is a single formula: ``−s·q`` for ``nll_loss`` and ``s·(softmax·Σ_c q − q)`` for ``cross_entropy``.
"""
from __future__ import annotations

import warnings

import numpy as np

from ...tensor import Tensor, make_op, unbroadcast
from .checks import check_float

__all__ = ["cross_entropy", "nll_loss", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, name: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_finite(x: Tensor, name: str) -> None:
    a = x.data
    n_nan = int(np.isnan(a).sum())
    n_inf = int(np.isinf(a).sum())
    if n_nan or n_inf:
        raise ValueError(f"{name}: input contains {n_nan + n_inf} non-finite value(s) "
                         f"({n_nan} NaN, {n_inf} inf) out of {a.size}")


def _as_array(t) -> np.ndarray:
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def _class_weight(weight, n_classes: int, dtype, name: str):
    if weight is None:
        return None
    w = _as_array(weight)
    if w.shape != (n_classes,):
        raise ValueError(f"{name}: weight has shape {w.shape}, expected ({n_classes},) (one weight per class)")
    return w.astype(dtype, copy=False)


def _class_targets(x: Tensor, target, ignore_index: int, name: str) -> np.ndarray:
    """Validate integer class-index targets: shape ``(N, d1, …)`` for input ``(N, C, d1, …)``."""
    t = _as_array(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices (int64), got dtype {t.dtype}"
                        + (" (float targets of the input's shape are read as class probabilities "
                           "by cross_entropy)" if t.dtype.kind == "f" and name == "cross_entropy" else ""))
    expected = x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ()
    if t.shape != expected:
        raise ValueError(f"{name}: target has shape {t.shape}, expected {expected} for input of shape {x.shape}"
                         " (input (N, C, d1, ...) takes target (N, d1, ...))")
    n_classes = x.shape[1] if x.ndim >= 2 else x.shape[0]
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        value = int(t[bad].flat[0])
        raise ValueError(f"{name}: target contains class {value} but input has {n_classes} classes "
                         f"(valid: 0 to {n_classes - 1}, or ignore_index={ignore_index})")
    return t.astype(np.int64, copy=False)


def _index_coefficients(x: Tensor, t: np.ndarray, weight, ignore_index: int, label_smoothing: float):
    """Rows ``q`` (shaped like the input, classes on axis 1) and the ``mean`` denominator."""
    dt = x.data.dtype
    xd = x.data if x.ndim >= 2 else x.data[None]  # (N, C, *)
    tt = t if x.ndim >= 2 else t[None]  # (N, *)
    n_classes = xd.shape[1]
    keep = tt != ignore_index  # (N, *)
    safe_t = np.where(keep, tt, 0)
    w_t = np.ones(tt.shape, dtype=dt) if weight is None else weight[safe_t]  # (N, *)
    w_t = w_t * keep  # 0 for ignored targets
    q = np.zeros(xd.shape, dtype=dt)  # (N, C, *)
    np.put_along_axis(q, safe_t[:, None], ((1.0 - label_smoothing) * w_t)[:, None].astype(dt), axis=1)
    if label_smoothing > 0:
        shape = (1, n_classes) + (1,) * (xd.ndim - 2)
        wc = np.ones(shape, dtype=dt) if weight is None else weight.reshape(shape)
        q += dt.type(label_smoothing / n_classes) * wc * keep[:, None]
    denom = w_t.sum()
    return (q if x.ndim >= 2 else q[0]), denom


def _reduce(per: np.ndarray, reduction: str, denom, dt):
    """Forward reduction of per-prediction losses and the per-prediction upstream factor for backward."""
    if reduction == "none":
        return per, None
    if reduction == "sum":
        return np.asarray(per.sum(), dtype=dt), dt.type(1)
    with np.errstate(divide="ignore", invalid="ignore"):  # all targets ignored: NaN, as PyTorch
        return np.asarray(per.sum() / denom, dtype=dt), (dt.type(1) / dt.type(denom) if denom != 0
                                                           else dt.type(np.nan))


def _upstream(g: np.ndarray, reduction: str, factor, class_axis: int, ndim: int) -> np.ndarray:
    """Per-prediction gradient broadcastable against the input (classes on ``class_axis``)."""
    if reduction == "none":
        return np.expand_dims(g, class_axis)
    return (g * factor).reshape((1,) * ndim)


def nll_loss(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean", *, check_finite: bool = False) -> Tensor:
    """Negative log-likelihood loss: ``L_i = −w[t_i] · input[i, t_i]`` for log-probability inputs.

    Args:
        input: log-probabilities ``(N, C)``, ``(N, C, d1, …)`` or ``(C,)``.
        target: integer class indices ``(N,)``, ``(N, d1, …)`` or ``()``, each in ``[0, C)`` or
            equal to ``ignore_index``.
        weight: optional per-class weights ``(C,)`` (a constant: no gradient).
        ignore_index: target value that contributes neither loss nor gradient. Default: −100.
        reduction: ``'mean'`` (divide by the summed weights of the non-ignored targets), ``'sum'``
            or ``'none'`` (shape of the target).
        check_finite: if ``True``, raise ``ValueError`` (naming how many) when the input holds NaN or inf.

    Shape:
        Output: scalar, or ``(N, d1, …)`` with ``reduction='none'``.

    Example:
        >>> F.nll_loss(F.log_softmax(cnnkit.zeros(2, 4), 1), cnnkit.tensor([0, 3]))
        tensor(1.3862944)
    """
    if size_average is not None or reduce is not None:
        raise TypeError("nll_loss: size_average and reduce are deprecated; use reduction='mean'|'sum'|'none'")
    x = check_float(input, "nll_loss")
    _check_reduction(reduction, "nll_loss")
    if x.ndim == 0:
        raise ValueError("nll_loss: input must be (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")
    if check_finite:
        _check_finite(x, "nll_loss")
    t = _class_targets(x, target, ignore_index, "nll_loss")
    dt = x.data.dtype
    w = _class_weight(weight, x.shape[1] if x.ndim >= 2 else x.shape[0], dt, "nll_loss")
    q, denom = _index_coefficients(x, t, w, ignore_index, 0.0)
    cax = 1 if x.ndim >= 2 else 0
    per = -(q * x.data).sum(axis=cax)  # (N, *)
    out, factor = _reduce(per, reduction, denom, dt)

    def backward(g):
        return (-_upstream(g, reduction, factor, cax, x.ndim) * q,)
    return make_op(out, (x,), backward)


def cross_entropy(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0, *, check_finite: bool = False) -> Tensor:
    """Cross-entropy between ``softmax(input)`` over classes (axis 1) and the target.

    With class-index targets ``t`` (smoothing ``ε``, ``C`` classes, class weights ``w``):
    ``L_i = (1−ε)·w[t_i]·(−log p_i,t_i) + (ε/C)·Σ_c w_c·(−log p_ic)`` and ``L_i = 0`` where
    ``t_i == ignore_index``; ``'mean'`` divides the sum by ``Σ_i w[t_i]`` over non-ignored
    targets, exactly as PyTorch (so the smoothing term is normalised by the same weights). With
    class-probability targets (floats shaped like the input) ``L_i = −Σ_c w_c·y_ic·log p_ic`` with
    ``y`` smoothed to ``(1−ε)·y + ε/C``, and ``'mean'`` divides by the number of predictions.

    Args:
        input: unnormalised logits ``(N, C)``, ``(N, C, d1, …)`` or ``(C,)``.
        target: class indices (integers ``(N,)``, ``(N, d1, …)`` or ``()``) or class probabilities
            (floats, shape of the input).
        weight: optional per-class weights ``(C,)`` (a constant: no gradient).
        ignore_index: class-index target value that is skipped. Default: −100.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``.
        label_smoothing: ``ε`` in ``[0, 1]``. Default: 0.
        check_finite: if ``True``, raise ``ValueError`` (naming how many) when the input holds NaN or inf.

    Shape:
        Output: scalar, or ``(N, d1, …)`` with ``reduction='none'``.

    Example:
        >>> F.cross_entropy(cnnkit.zeros(2, 10), cnnkit.tensor([3, 7]))
        tensor(2.3025851)
    """
    if size_average is not None or reduce is not None:
        raise TypeError("cross_entropy: size_average and reduce are deprecated; use reduction='mean'|'sum'|'none'")
    x = check_float(input, "cross_entropy")
    _check_reduction(reduction, "cross_entropy")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.integer, np.floating)) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}")
    if x.ndim == 0:
        raise ValueError("cross_entropy: input must be (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")
    if check_finite:
        _check_finite(x, "cross_entropy")
    dt = x.data.dtype
    cax = 1 if x.ndim >= 2 else 0
    n_classes = x.shape[cax]
    w = _class_weight(weight, n_classes, dt, "cross_entropy")
    a = x.data
    shifted = a - a.max(axis=cax, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=cax, keepdims=True))  # (N, C, *)

    tt = target if isinstance(target, Tensor) else None
    t_arr = _as_array(target)
    probs = t_arr.dtype.kind == "f" and t_arr.shape == x.shape
    if probs:  # class probabilities
        wc = 1 if w is None else w.reshape((1,) * cax + (n_classes,) + (1,) * (x.ndim - cax - 1))
        y = t_arr.astype(dt, copy=False)
        if label_smoothing > 0:
            y = y * dt.type(1 - label_smoothing) + dt.type(label_smoothing / n_classes)
        q = y * wc
        denom = a.size // n_classes
    else:
        t = _class_targets(x, target, ignore_index, "cross_entropy")
        q, denom = _index_coefficients(x, t, w, ignore_index, float(label_smoothing))
    per = -(q * logp).sum(axis=cax)  # (N, *)
    out, factor = _reduce(per, reduction, denom, dt)
    t_grad = probs and tt is not None and tt.requires_grad
    parents = (x, tt) if t_grad else (x,)

    def backward(g):
        s = _upstream(g, reduction, factor, cax, x.ndim)  # broadcasts against (N, C, *)
        gx = None
        if x.requires_grad:
            gx = s * (np.exp(logp) * q.sum(axis=cax, keepdims=True) - q)
        if not t_grad:
            return (gx,)
        gt = -s * logp * dt.type(1 - label_smoothing) * (1 if w is None else wc)
        return gx, gt.astype(tt.data.dtype, copy=False)
    return make_op(out, parents, backward)


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None, *, check_finite: bool = False) -> Tensor:
    """Mean squared error ``(input − target)²``, reduced by ``'mean'``, ``'sum'`` or ``'none'``.

    A target of another shape is broadcast, with PyTorch's warning. A target of another float dtype
    is cast to the input's (float32 stays float32). ``weight`` (shape of the input) multiplies each
    squared error; ``'mean'`` then divides by ``Σ weight``, as PyTorch. ``check_finite=True`` raises
    ``ValueError`` (naming how many) when the input holds NaN or inf.

    Shape:
        Input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction='none'``.

    Example:
        >>> F.mse_loss(cnnkit.tensor([1.0, 2.0]), cnnkit.tensor([1.0, 4.0]))
        tensor(2.)
    """
    if size_average is not None or reduce is not None:
        raise TypeError("mse_loss: size_average and reduce are deprecated; use reduction='mean'|'sum'|'none'")
    x = check_float(input, "mse_loss")
    _check_reduction(reduction, "mse_loss")
    if check_finite:
        _check_finite(x, "mse_loss")
    tt = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    if tt.data.dtype.kind not in "fiub":
        raise TypeError(f"mse_loss: target must be numeric, got dtype {tt.data.dtype}")
    if tt.shape != x.shape:
        warnings.warn(f"Using a target size ({tt.shape}) that is different to the input size ({x.shape}). "
                      "This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=2)
    dt = x.data.dtype
    try:
        diff = x.data - tt.data.astype(dt, copy=False)
    except ValueError:
        raise ValueError(f"mse_loss: target shape {tt.shape} cannot be broadcast to input shape {x.shape}") from None
    w = None
    if weight is not None:
        w = _as_array(weight).astype(dt, copy=False)
        if w.shape != x.shape:
            raise ValueError(f"mse_loss: weight has shape {w.shape}, expected the input's shape {x.shape}")
    sq = diff * diff if w is None else w * diff * diff
    if reduction == "none":
        out, scale = sq, None
    elif reduction == "sum":
        out, scale = np.asarray(sq.sum(), dtype=dt), dt.type(1)
    else:  # mean over elements, or over the summed weights as PyTorch's weighted mean
        n = sq.size if w is None else w.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            out, scale = np.asarray(sq.sum() / dt.type(n), dtype=dt), dt.type(1) / dt.type(n)

    def backward(g):
        gd = (g if scale is None else g * scale) * dt.type(2) * diff
        if w is not None:
            gd = gd * w
        return (unbroadcast(gd, x.shape) if x.requires_grad else None,
                unbroadcast(-gd, tt.shape).astype(tt.data.dtype, copy=False) if tt.requires_grad else None)
    return make_op(out, (x, tt), backward)
