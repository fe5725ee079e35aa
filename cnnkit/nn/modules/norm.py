"""Normalisation layers: ``BatchNorm1d``, ``BatchNorm2d`` and ``LocalResponseNorm``."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ...tensor import Tensor
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "LocalResponseNorm"]


class _BatchNorm(Module):
    """Shared body of ``BatchNorm1d``/``BatchNorm2d``; subclasses set the accepted input ranks.

    Args:
        num_features: ``C``, the number of channels (features) of the input.
        eps: added to the variance for stability. Default: 1e-5.
        momentum: weight of each new batch in the running statistics; ``None`` uses a cumulative
            (equal-weight) average over ``num_batches_tracked`` batches. Default: 0.1.
        affine: learn ``γ`` (``weight``, initialised to 1) and ``β`` (``bias``, initialised to 0). Default: ``True``.
        track_running_stats: keep ``running_mean``/``running_var`` (initialised to 0/1) and
            ``num_batches_tracked`` buffers, used in evaluation mode. With ``False`` batch statistics
            are used in both modes. Default: ``True``.
        bias: with ``affine``, also learn ``β``. Default: ``True``.

    In training mode each forward normalises with the batch's statistics and updates the running
    ones (unbiased variance); in evaluation mode (``model.eval()``) the running ones normalise.
    State-dict keys as PyTorch: ``weight``, ``bias``, ``running_mean``, ``running_var``,
    ``num_batches_tracked``.
    """

    _ranks: tuple = ()
    _layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None, *, bias: bool = True):
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)):
            raise TypeError(f"{name}: num_features must be an int, got {num_features!r}")
        if num_features < 1:
            raise ValueError(f"{name}: num_features must be positive, got num_features={num_features}")
        if not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"{name}({num_features}): eps must be a non-negative number, got eps={eps!r}")
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, (int, float))):
            raise TypeError(f"{name}({num_features}): momentum must be a number or None, got {momentum!r}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dt = np.dtype(np.float32 if dtype is None else dtype)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dt))
            if bias:
                self.bias = Parameter(np.zeros(self.num_features, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            if self.bias is not None:
                self.bias.data[...] = 0

    def _check_input(self, input) -> None:
        name = f"{type(self).__name__}({self.num_features})"
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a cnnkit Tensor, got {type(input).__name__}")
        if input.ndim not in self._ranks:
            raise ValueError(f"{name}: expected {self._layout} input, got {input.ndim}D input of shape {input.shape}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{name}: input has {input.shape[1]} channels, expected {self.num_features}")

    def forward(self, input):
        return F.batch_norm(input, *self._arguments(input))

    def _arguments(self, input) -> tuple:
        """The rest of ``F.batch_norm``'s arguments for ``input`` (checked); counts the batch when training."""
        self._check_input(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.data = self.num_batches_tracked.data + 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.data)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return (self.running_mean if track else None, self.running_var if track else None, self.weight, self.bias,
                use_batch, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    __doc__ = """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` input (per feature ``C``).

    Shape:
        Input ``(N, C)`` or ``(N, C, L)``, output the same shape.

    Example:
        >>> bn = nn.BatchNorm1d(120)
        >>> bn(cnnkit.randn(8, 120)).shape
        (8, 120)
    """ + _BatchNorm.__doc__.split("\n", 2)[2]
    _ranks = (2, 3)
    _layout = "2D (N, C) or 3D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    __doc__ = """Batch normalisation of ``(N, C, H, W)`` input (per channel ``C``, over ``N, H, W``).

    Shape:
        Input ``(N, C, H, W)``, output ``(N, C, H, W)``.

    Example:
        >>> bn = nn.BatchNorm2d(16)
        >>> bn(cnnkit.randn(8, 16, 5, 5)).shape
        (8, 16, 5, 5)
    """ + _BatchNorm.__doc__.split("\n", 2)[2]
    _ranks = (4,)
    _layout = "4D (N, C, H, W)"


class LocalResponseNorm(Module):
    """Local response normalisation across ``size`` neighbouring channels (AlexNet, VGG A-LRN).

    ``b_c = a_c / (k + (α/n)·Σ_{j=c−n//2}^{c+(n−1)//2} a_j²)^β`` (see
    :func:`cnnkit.nn.functional.local_response_norm`). No parameters.

    Args:
        size: number of neighbouring channels ``n``.
        alpha: multiplicative factor. Default: 1e-4.
        beta: exponent. Default: 0.75.
        k: additive factor. Default: 1.

    Shape:
        Input ``(N, C, *)``, output the same shape.

    Example:
        >>> lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # AlexNet's setting
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"LocalResponseNorm: size must be a positive int, got size={size!r}")
        self.size = int(size)
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
