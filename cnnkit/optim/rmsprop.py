"""RMSprop (Hinton's lecture 6e), centred variant and momentum, with torch.optim's update rule."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_nonnegative, lerp_

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop``.

    With gradient :math:`g` (negated when ``maximize``, plus :math:`\lambda\theta` with weight decay):

    .. math::
        v &\leftarrow \alpha v + (1 - \alpha) g^2\\
        \bar g &\leftarrow \alpha \bar g + (1 - \alpha) g, \qquad
            \tilde v = v - \bar g^2 \quad\text{(centered only; else } \tilde v = v)\\
        b &\leftarrow \mu b + g / (\sqrt{\tilde v} + \epsilon), \qquad \theta \leftarrow \theta - \gamma b
            \quad\text{(momentum } \mu > 0)\\
        \theta &\leftarrow \theta - \gamma\, g / (\sqrt{\tilde v} + \epsilon) \quad\text{(otherwise)}

    State per parameter: ``step``, ``square_avg`` (:math:`v`), ``momentum_buffer`` (with momentum),
    ``grad_avg`` (centered).

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float, optional): learning rate :math:`\gamma` (default: 1e-2).
        alpha (float, optional): smoothing constant :math:`\alpha` (default: 0.99).
        eps (float, optional): :math:`\epsilon` added to the denominator (default: 1e-8).
        weight_decay (float, optional): L2 penalty :math:`\lambda` (default: 0).
        momentum (float, optional): momentum factor :math:`\mu` (default: 0).
        centered (bool, optional): normalise by an estimate of the gradient's variance (default: False).
        maximize (bool, optional): maximise the objective (default: False).

    Example::

        >>> opt = cnnkit.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9)
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        check_nonnegative(group["lr"], "learning rate")
        check_nonnegative(group["eps"], "epsilon value")
        check_nonnegative(group["momentum"], "momentum value")
        check_nonnegative(group["weight_decay"], "weight_decay value")
        check_nonnegative(group["alpha"], "alpha value")

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(param)
        g = -grad if group["maximize"] else grad
        state["step"] += 1
        if weight_decay != 0:
            g = g + weight_decay * param
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, g, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            param += -lr * buf
        else:
            param += (-lr * g) / avg
