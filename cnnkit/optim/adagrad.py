"""Adagrad (Duchi et al., 2011) with learning-rate decay, with torch.optim's update rule."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_nonnegative

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad``.

    At step :math:`t`, with gradient :math:`g` (negated when ``maximize``, plus :math:`\lambda\theta`
    with weight decay):

    .. math::
        \tilde\gamma = \frac{\gamma}{1 + (t - 1)\eta}, \qquad s \leftarrow s + g^2, \qquad
        \theta \leftarrow \theta - \tilde\gamma\, \frac{g}{\sqrt{s} + \epsilon}

    State per parameter: ``step`` and ``sum`` (:math:`s`, starting at ``initial_accumulator_value``).
    Unlike PyTorch, which fills the state of every parameter in the constructor, the state is made
    at a parameter's first update, so frozen parameters never get any (the updates are identical).

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float, optional): learning rate :math:`\gamma` (default: 1e-2).
        lr_decay (float, optional): learning-rate decay :math:`\eta` (default: 0).
        weight_decay (float, optional): L2 penalty :math:`\lambda` (default: 0).
        initial_accumulator_value (float, optional): starting value of :math:`s` (default: 0).
        eps (float, optional): :math:`\epsilon` added to the denominator (default: 1e-10).
        maximize (bool, optional): maximise the objective (default: False).

    Example::

        >>> opt = cnnkit.optim.Adagrad(model.parameters(), lr=1e-2)
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, *, maximize: bool = False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        check_nonnegative(group["lr"], "learning rate")
        check_nonnegative(group["lr_decay"], "lr_decay value")
        check_nonnegative(group["weight_decay"], "weight_decay value")
        check_nonnegative(group["initial_accumulator_value"], "initial_accumulator_value value")
        check_nonnegative(group["eps"], "epsilon value")

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(param, float(group["initial_accumulator_value"]))
        state["step"] += 1
        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            g = g + weight_decay * param
        clr = lr / (1 + (state["step"] - 1) * lr_decay)
        state_sum = state["sum"]
        state_sum += g * g
        std = np.sqrt(state_sum)
        std += eps
        param += (-clr * g) / std
