"""``Linear`` (fully connected), ``Flatten`` and ``Dropout`` layers."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import init
from .module import Module, Parameter

__all__ = ["Linear", "Flatten", "Dropout"]


def _nonneg_int(value, arg: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {arg} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{owner}: {arg} must be non-negative, got {arg}={value}")
    return int(value)


class Linear(Module):
    """Fully connected layer ``y = x Wᵀ + b`` (see :func:`cnnkit.nn.functional.linear`).

    Args:
        in_features: size of each input row.
        out_features: size of each output row.
        bias: learn an additive bias. Default: ``True``.

    Shape:
        Input ``(*, in_features)``, output ``(*, out_features)``.

    Attributes:
        weight: ``(out_features, in_features)``, initialised as PyTorch:
            ``kaiming_uniform_(a=sqrt(5))``, i.e. ``U(−1/sqrt(in_features), 1/sqrt(in_features))``.
        bias: ``(out_features,)``, ``U(−1/sqrt(in_features), 1/sqrt(in_features))``.
        Parameters: ``(in_features + 1)·out_features`` with bias (the lecture's ``(84 + 1)·10 = 850``).

    Example:
        >>> fc = nn.Linear(400, 120)
        >>> fc(cnnkit.zeros(2, 400)).shape
        (2, 120)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        self.in_features = _nonneg_int(in_features, "in_features", "Linear")
        self.out_features = _nonneg_int(out_features, "out_features", "Linear")
        dt = np.dtype(np.float32 if dtype is None else dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dt))
        if bias:
            self.bias = Parameter(np.empty((self.out_features,), dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: Kaiming-uniform weight (a = sqrt(5)), bias U(±1/sqrt(fan_in))."""
        if self.weight.data.size == 0:  # nothing to draw (PyTorch: a no-op)
            return
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        shape = getattr(input, "shape", None)
        if shape is not None and (len(shape) == 0 or shape[-1] != self.in_features):
            got = "a 0-d input" if len(shape) == 0 else f"{shape[-1]} features"
            raise ValueError(f"{self._name()}: input has {got}, expected {self.in_features} "
                             f"(input shape {tuple(shape)})")
        return F.linear(input, self.weight, self.bias)

    def _name(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features})"

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Merges dimensions ``start_dim..end_dim`` (by default all but the batch axis).

    Args:
        start_dim: first dimension to flatten. Default: 1.
        end_dim: last dimension to flatten. Default: −1.

    Shape:
        Input ``(*, S_start, ..., S_end, *)``, output ``(*, ∏ S_i, *)``; e.g. ``(N, 16, 5, 5) → (N, 400)``.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout: in training zero each element with probability ``p`` and scale by ``1/(1−p)``;
    the identity in evaluation mode (``model.eval()``).

    Args:
        p: probability of an element being zeroed. Default: 0.5.
        inplace: accepted for PyTorch compatibility.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
