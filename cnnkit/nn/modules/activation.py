"""Activation layers: thin modules over ``cnnkit.nn.functional.activation`` (no parameters)."""
from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]


class ReLU(Module):
    """Applies ``max(0, x)`` elementwise (see :func:`cnnkit.nn.functional.relu`).

    Args:
        inplace: overwrite the input and return it when no graph is recorded (inference), as
            PyTorch; with a graph a new tensor is returned (see :func:`cnnkit.nn.functional.relu`).

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> nn.ReLU()(cnnkit.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """Applies ``x`` for ``x > 0`` and ``negative_slope·x`` otherwise.

    Args:
        negative_slope: slope for non-positive inputs. Default: 0.01.
        inplace: accepted for PyTorch compatibility.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> nn.LeakyReLU(0.1)(cnnkit.tensor([-2.0]))
        tensor([-0.2])
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
            raise TypeError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
        self.negative_slope = negative_slope
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """Applies the logistic function ``1/(1 + exp(−x))`` elementwise.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.
    """

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """Applies ``tanh(x)`` elementwise.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.
    """

    def forward(self, input):
        return F.tanh(input)


class Softmax(Module):
    """Softmax along ``dim`` (slices sum to 1); ``base=2`` reproduces the lecture's example.

    Args:
        dim: dimension normalised over (``None``: PyTorch's legacy implicit choice, with a warning).
        base: exponential base (``None`` = e). ``Softmax(dim=0, base=2)`` maps logits
            ``[4, −1]`` to ``[0.97, 0.03]``.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.

    Example:
        >>> nn.Softmax(dim=1)(cnnkit.zeros(2, 4))[0]
        tensor([0.25, 0.25, 0.25, 0.25])
    """

    def __init__(self, dim: int | None = None, base: float | None = None):
        super().__init__()
        self.dim = dim
        self.base = base

    def forward(self, input):
        return F.softmax(input, self.dim, base=self.base)

    def extra_repr(self) -> str:
        return f"dim={self.dim}" + ("" if self.base is None else f", base={self.base}")


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably.

    Args:
        dim: dimension normalised over.

    Shape:
        Input ``(*)``, output ``(*)``, same shape.
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
