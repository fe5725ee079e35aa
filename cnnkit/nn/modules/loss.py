"""Loss layers: ``CrossEntropyLoss``, ``NLLLoss`` and ``MSELoss`` over ``cnnkit.nn.functional.loss``."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ...tensor import Tensor
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss"]


def _check_reduction(reduction, owner: str) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{owner}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


class _WeightedLoss(Module):
    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction, type(self).__name__)
        if weight is not None:
            w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
            if w.ndim != 1:
                raise ValueError(f"{type(self).__name__}: weight must be 1-D (one weight per class), got shape {w.shape}")
            weight = Tensor(np.array(w, dtype=w.dtype if w.dtype.kind == "f" else np.float32))
        self.register_buffer("weight", weight)  # saved in the state dict, as PyTorch

    def _reduction_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy between ``softmax(input)`` and class-index (or class-probability) targets.

    See :func:`cnnkit.nn.functional.cross_entropy` for the exact formula, including how class
    weights, ``ignore_index`` and label smoothing combine (as PyTorch).

    Args:
        weight: per-class weights ``(C,)`` or ``None``.
        ignore_index: target value skipped in loss and gradient. Default: −100.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``.
        label_smoothing: ``ε`` in ``[0, 1]``. Default: 0.
        check_finite: raise ``ValueError`` when the logits hold NaN or inf (cnnkit extra). Default: ``False``.

    Shape:
        Input ``(N, C)`` or ``(N, C, d1, …)``; target ``(N,)`` or ``(N, d1, …)`` integers;
        output scalar, or the target's shape with ``reduction='none'``.

    Example:
        >>> loss = nn.CrossEntropyLoss(label_smoothing=0.1)
        >>> loss(cnnkit.zeros(4, 10, requires_grad=True), cnnkit.tensor([1, 0, 4, 9])).backward()
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0, *, check_finite: bool = False):
        if size_average is not None or reduce is not None:
            raise TypeError("CrossEntropyLoss: size_average and reduce are deprecated; use reduction=")
        super().__init__(weight, reduction)
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
                or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got {label_smoothing!r}")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self.check_finite = bool(check_finite)

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing,
                               check_finite=self.check_finite)

    def extra_repr(self) -> str:
        parts = [self._reduction_repr()] if self.reduction != "mean" else []
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probability inputs (use after ``LogSoftmax``).

    Args:
        weight: per-class weights ``(C,)`` or ``None``.
        ignore_index: target value skipped. Default: −100.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``. Default: ``'mean'``.

    Shape:
        Input ``(N, C)`` or ``(N, C, d1, …)``; target ``(N,)`` or ``(N, d1, …)``; output scalar or
        the target's shape.
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        if size_average is not None or reduce is not None:
            raise TypeError("NLLLoss: size_average and reduce are deprecated; use reduction=")
        super().__init__(weight, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)

    def extra_repr(self) -> str:
        parts = [self._reduction_repr()] if self.reduction != "mean" else []
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(parts)


class MSELoss(Module):
    """Mean squared error ``(input − target)²`` with ``'mean'``, ``'sum'`` or ``'none'`` reduction.

    Shape:
        Input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction='none'``.
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        if size_average is not None or reduce is not None:
            raise TypeError("MSELoss: size_average and reduce are deprecated; use reduction=")
        super().__init__()
        self.reduction = _check_reduction(reduction, "MSELoss")

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"
