"""Adam and AdamW (decoupled weight decay), with torch.optim's update rule and AMSGrad variant."""
from __future__ import annotations

import numbers

import numpy as np

from .optimizer import Optimizer, check_nonnegative, lerp_

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2014), as ``torch.optim.Adam``.

    At step :math:`t`, with gradient :math:`g` (negated when ``maximize``):

    .. math::
        g &\leftarrow g + \lambda\theta \quad\text{(or } \theta \leftarrow \theta(1 - \gamma\lambda)
            \text{ when weight decay is decoupled)}\\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad v \leftarrow \beta_2 v + (1 - \beta_2) g^2\\
        \hat v &= \max(\hat v_{t-1}, v) \text{ if amsgrad, else } v\\
        \theta &\leftarrow \theta - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m}{\sqrt{\hat v} / \sqrt{1 - \beta_2^t} + \epsilon}

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`) and, with
    AMSGrad, ``max_exp_avg_sq``.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float, optional): learning rate :math:`\gamma` (default: 1e-3).
        betas (tuple[float, float], optional): :math:`(\beta_1, \beta_2)` (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon` added to the denominator (default: 1e-8).
        weight_decay (float, optional): weight decay :math:`\lambda` (default: 0).
        amsgrad (bool, optional): use AMSGrad (Reddi et al., 2018) (default: False).
        maximize (bool, optional): maximise the objective (default: False).
        decoupled_weight_decay (bool, optional): decay the weights directly, as AdamW (default: False).

    Example::

        >>> opt = cnnkit.optim.Adam(model.parameters(), lr=1e-3)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        check_nonnegative(group["lr"], "learning rate")
        check_nonnegative(group["eps"], "epsilon value")
        betas = group["betas"]
        if isinstance(betas, list):
            betas = group["betas"] = tuple(betas)
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ValueError(f"betas must be a pair of floats, got {betas!r}")
        for i, beta in enumerate(betas):
            if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        check_nonnegative(group["weight_decay"], "weight_decay value")

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        g = -grad if group["maximize"] else grad
        state["step"] += 1
        step = state["step"]
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * param
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        lerp_(exp_avg, g, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2 ** 0.5
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            denom = np.sqrt(state["max_exp_avg_sq"]) / bias_correction2_sqrt
        else:
            denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt
        denom += eps
        param += (-step_size * exp_avg) / denom


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Same as :class:`Adam` except that weight decay shrinks the parameters directly,
    :math:`\theta \leftarrow \theta(1 - \gamma\lambda)`, instead of adding :math:`\lambda\theta` to the
    gradient (so it does not pass through the moment estimates). Default ``weight_decay`` is 1e-2.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float, optional): learning rate (default: 1e-3).
        betas (tuple[float, float], optional): (default: (0.9, 0.999)).
        eps (float, optional): (default: 1e-8).
        weight_decay (float, optional): decoupled weight decay coefficient (default: 1e-2).
        amsgrad (bool, optional): use AMSGrad (default: False).
        maximize (bool, optional): maximise the objective (default: False).

    Example::

        >>> opt = cnnkit.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # an AdamW always decouples, whatever the file says
            group["decoupled_weight_decay"] = True
