"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (torch.optim.SGD)."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_nonnegative

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum, as ``torch.optim.SGD``.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``):

    .. math::
        g &\leftarrow g + \lambda\theta \quad(\text{weight decay } \lambda)\\
        b &\leftarrow g \text{ at the first step, else } \mu b + (1 - \tau) g\\
        g &\leftarrow g + \mu b \text{ if nesterov, else } b\\
        \theta &\leftarrow \theta - \gamma g

    Momentum is applied to the gradient *before* scaling by the learning rate (PyTorch's form,
    unlike Sutskever et al.); the buffer :math:`b` is stored as ``state["momentum_buffer"]``.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float, optional): learning rate :math:`\gamma` (default: 1e-3).
        momentum (float, optional): momentum factor :math:`\mu` (default: 0).
        dampening (float, optional): dampening :math:`\tau` for momentum (default: 0).
        weight_decay (float, optional): L2 penalty :math:`\lambda` (default: 0).
        nesterov (bool, optional): Nesterov momentum; needs momentum > 0 and zero dampening (default: False).
        maximize (bool, optional): maximise the objective instead of minimising (default: False).

    Example::

        >>> opt = cnnkit.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> opt.zero_grad()
        >>> loss_fn(model(x), y).backward()
        >>> opt.step()
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        check_nonnegative(group["lr"], "learning rate")
        check_nonnegative(group["momentum"], "momentum value")
        check_nonnegative(group["weight_decay"], "weight_decay value")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay, dampening = float(group["weight_decay"]), float(group["dampening"])
        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                buf += (1 - dampening) * g
            g = g + momentum * buf if group["nesterov"] else buf
        param += -lr * g
