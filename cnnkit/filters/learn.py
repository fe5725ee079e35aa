"""Learning a filter from data: the lecture's "why not learn the filters?" on real images.

A single ``Conv2d(1, 1, kernel_size)`` is trained by full-batch gradient descent (Adam with a
cosine-annealed learning rate) on the mean squared error between its responses and the target
responses; for an easy target such as Sobel the learned kernel converges to the hand-made one.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..tensor import Tensor
from .apply import BORDERS

__all__ = ["learn", "LearnResult"]


@dataclass
class LearnResult:
    """What :func:`learn` returns."""
    kernel: np.ndarray          # (kh, kw) float64: the learned weights, for correlation as filter2d uses them
    bias: float | None          # the learned bias (None when trained without one)
    losses: list = field(default_factory=list)  # mean squared error before each step
    seconds: float = 0.0        # wall-clock training time
    model: object = None        # the trained Conv2d


def _stack(a, what: str) -> np.ndarray:
    arr = np.asarray(a.data if isinstance(a, Tensor) else a, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.size == 0:
        raise ValueError(f"learn: {what} must be (H, W) or (N, H, W) greyscale, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"learn: {what} has NaN or infinite values")
    return arr


def learn(inputs, targets, kernel_size: int = 3, steps: int = 2000, lr: float = 0.05, seed: int | None = 0,
          bias: bool = False, border: str = "reflect_101") -> LearnResult:
    """Fit a single ``Conv2d(1, 1, kernel_size, bias=bias)`` so that its response to ``inputs`` matches ``targets``.

    The weights start random (``nn.Conv2d``'s Kaiming-uniform distribution, drawn from
    ``numpy.random.default_rng(seed)``), then ``steps`` full-batch Adam steps minimise the mean squared
    error with the learning rate annealed from ``lr`` to 0 along a cosine. Bias is off by default (the hand-made
    filters have none); ``bias=True`` learns one as well (internally on mean-centred inputs, an exact
    reparametrisation that conditions the problem far better; the reported bias is for raw inputs).

    Args:
        inputs: ``(H, W)`` or ``(N, H, W)`` greyscale images (scale them to about 0–1 for a well
            conditioned problem).
        targets: the wanted responses, ``(H, W)`` / ``(N, H, W)`` (a ``"same"`` response: inputs are
            padded with ``border`` as :func:`filter2d` does) or ``(H − k + 1, W − k + 1)`` (a
            ``"valid"`` response: no padding).
        kernel_size: odd side of the square kernel to learn.
        steps: number of gradient steps; lr: initial Adam learning rate.
        seed: seed of the initial weights (``None``: cnnkit's global generator, see ``manual_seed``).
        bias: learn a bias too.
        border: padding rule for ``"same"`` targets (see :func:`filter2d`).

    Returns:
        :class:`LearnResult` with the learned ``kernel`` (correlation weights, directly comparable to
        the bank's kernels), ``bias``, the loss history and the training time.

    Example::

        >>> x = read_image("photo.png", mode="gray")[..., 0] / 255.0
        >>> res = learn(x, filter2d(x, "sobel_x"))
        >>> res.kernel.round(2)    # ≈ [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    """
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"learn: kernel_size must be a positive odd int, got kernel_size={kernel_size!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"learn: steps must be a positive int, got steps={steps!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"learn: lr must be a positive number, got lr={lr!r}")
    if border not in BORDERS:
        raise ValueError(f"learn: border must be one of {', '.join(BORDERS)}; got border={border!r}")
    x, y = _stack(inputs, "inputs"), _stack(targets, "targets")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"learn: {x.shape[0]} input image(s) but {y.shape[0]} target(s)")
    n, h, w = x.shape
    k, p = kernel_size, kernel_size // 2
    if y.shape[1:] == (h, w):
        x = np.pad(x, ((0, 0), (p, p), (p, p)), mode=BORDERS[border])          # (N, H+k−1, W+k−1)
    elif y.shape[1:] != (h - k + 1, w - k + 1):
        raise ValueError(f"learn: targets of size {y.shape[1]}×{y.shape[2]} match neither the inputs' {h}×{w} "
                         f"('same') nor {h - k + 1}×{w - k + 1} ('valid' with kernel_size={k})")
    # With a bias, train on mean-centred inputs: k⋆(x − m) + b' is k⋆x + b with b = b' − m·Σk, the same
    # model, but the kernel's sum no longer fights the bias (a far better conditioned problem).
    shift = float(x.mean()) if bias else 0.0
    xt = Tensor((x - shift)[:, None].astype(np.float32))                       # (N, 1, Hp, Wp)
    yt = Tensor(y[:, None].astype(np.float32))                                 # (N, 1, Ho, Wo)

    from .. import optim  # imported here: filters must not need the optimisers just to filter

    conv = nn.Conv2d(1, 1, k, bias=bias)                                       # weight (1, 1, k, k)
    if seed is not None:
        # Same distribution as Conv2d's default (Kaiming-uniform, a=√5: U(−1/√fan_in, 1/√fan_in)),
        # re-drawn from a local generator so that the start depends on ``seed`` alone.
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(k * k)
        conv.weight.data[...] = rng.uniform(-bound, bound, conv.weight.shape)
        if bias:
            conv.bias.data[...] = rng.uniform(-bound, bound, conv.bias.shape)
    opt = optim.Adam(conv.parameters(), lr=lr)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        diff = conv(xt) - yt                                                   # (N, 1, Ho, Wo)
        loss = (diff * diff).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.item()))
    seconds = time.perf_counter() - start
    kernel = conv.weight.data[0, 0].astype(np.float64)                         # (k, k)
    b = None
    if bias:
        b = float(conv.bias.data[0]) - shift * float(kernel.sum())
        conv.bias.data[...] = b            # the returned model takes raw (uncentred) inputs
    return LearnResult(kernel=kernel, bias=b, losses=losses, seconds=seconds, model=conv)

