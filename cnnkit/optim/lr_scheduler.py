"""Learning-rate schedulers with torch.optim.lr_scheduler's formulas, step for step.

A scheduler rewrites ``group["lr"]`` of its optimiser's parameter groups each time ``step()`` is
called (once per epoch, after ``optimizer.step()``). Like PyTorch, the recursive ("chainable")
forms are used, computing the next lr from the current ``group["lr"]``, so the values equal
PyTorch's to the last bit; the starting lrs are kept in ``group["initial_lr"]`` and ``base_lrs``.
"""
from __future__ import annotations

import copy
import math
import numbers
from collections import Counter

from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR"]


def _check_positive_int(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def _check_real(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")


class LRScheduler:
    """Base class of the schedulers (``torch.optim.lr_scheduler.LRScheduler``).

    Constructing a scheduler performs its initial step (``last_epoch`` becomes 0). Subclasses
    implement ``get_lr()``, returning the next lr of every parameter group.

    Args:
        optimizer (Optimizer): the wrapped optimiser.
        last_epoch (int, optional): index of the last epoch when resuming; the groups must then
            hold ``initial_lr`` (default: -1, a fresh start).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral) or last_epoch < -1:
            raise ValueError(f"{type(self).__name__}: last_epoch must be an integer >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                                   "scheduler with last_epoch >= 0 (load the optimizer's state first)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:
        """The next learning rate of each parameter group (called by :meth:`step`)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and write the new learning rates into the optimiser's groups."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        """The learning rates the last :meth:`step` set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Every attribute except the optimiser, as in PyTorch."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore attributes saved by :meth:`state_dict`."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a dict, got {type(state_dict).__name__}")
        self.__dict__.update({k: copy.deepcopy(v) for k, v in state_dict.items() if k != "optimizer"})

    def _current_lrs(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    r"""Multiply each group's lr by ``gamma`` every ``step_size`` epochs.

    :math:`\mathrm{lr}_e = \mathrm{lr}_0 \cdot \gamma^{\lfloor e / \mathrm{step\_size} \rfloor}`.

    Args:
        optimizer (Optimizer): the wrapped optimiser.
        step_size (int): period of the decay, in epochs.
        gamma (float, optional): multiplicative factor (default: 0.1).
        last_epoch (int, optional): (default: -1).

    Example::

        >>> sched = cnnkit.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
        >>> for epoch in range(100):
        ...     train(...); sched.step()
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        _check_positive_int("StepLR", "step_size", step_size)
        _check_real("StepLR", "gamma", gamma)
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class MultiStepLR(LRScheduler):
    r"""Multiply each group's lr by ``gamma`` at each epoch listed in ``milestones``.

    Args:
        optimizer (Optimizer): the wrapped optimiser.
        milestones (iterable of int): epochs at which to decay (a repeated epoch decays repeatedly).
        gamma (float, optional): multiplicative factor (default: 0.1).
        last_epoch (int, optional): (default: -1).

    Example::

        >>> sched = cnnkit.optim.lr_scheduler.MultiStepLR(opt, milestones=[30, 80], gamma=0.1)
    """

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        for m in milestones:
            if isinstance(m, bool) or not isinstance(m, numbers.Integral):
                raise TypeError(f"MultiStepLR: milestones must be integers, got {m!r}")
        _check_real("MultiStepLR", "gamma", gamma)
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._current_lrs()]


class ExponentialLR(LRScheduler):
    r"""Multiply each group's lr by ``gamma`` every epoch: :math:`\mathrm{lr}_e = \mathrm{lr}_0 \gamma^e`.

    Args:
        optimizer (Optimizer): the wrapped optimiser.
        gamma (float): multiplicative factor.
        last_epoch (int, optional): (default: -1).

    Example::

        >>> sched = cnnkit.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        _check_real("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing (SGDR without restarts, Loshchilov & Hutter 2017), as PyTorch computes it.

    The lr follows :math:`\eta_{min} + \tfrac12(\mathrm{lr}_0 - \eta_{min})(1 + \cos(\pi e / T_{max}))`,
    computed recursively from the current lr exactly as PyTorch does, so past ``T_max`` it rises
    again (a period of ``2 * T_max``) and outside changes to ``group["lr"]`` are honoured.

    Args:
        optimizer (Optimizer): the wrapped optimiser.
        T_max (int): number of epochs of a half period.
        eta_min (float, optional): minimum learning rate (default: 0).
        last_epoch (int, optional): (default: -1).

    Example::

        >>> sched = cnnkit.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        _check_real("CosineAnnealingLR", "T_max", T_max)
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        _check_real("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        groups = self.optimizer.param_groups
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and self.last_epoch > 0:  # resuming: closed form
            return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                    for base_lr in self.base_lrs]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:  # leaving the minimum
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * self.last_epoch / self.T_max))
                / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
                * (group["lr"] - self.eta_min) + self.eta_min
                for group in groups]


class LinearLR(LRScheduler):
    r"""Scale each group's lr by a factor moving linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` epochs (a warm-up when ``start_factor < 1``).

    Args:
        optimizer (Optimizer): the wrapped optimiser.
        start_factor (float, optional): factor at epoch 0, in (0, 1] (default: 1/3).
        end_factor (float, optional): factor from epoch ``total_iters`` on, in [0, 1] (default: 1).
        total_iters (int, optional): epochs of the ramp (default: 5).
        last_epoch (int, optional): (default: -1).

    Example::

        >>> sched = cnnkit.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        _check_real("LinearLR", "start_factor", start_factor)
        _check_real("LinearLR", "end_factor", end_factor)
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        _check_positive_int("LinearLR", "total_iters", total_iters)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        delta = self.end_factor - self.start_factor
        return [lr * (1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta))
                for lr in self._current_lrs()]
