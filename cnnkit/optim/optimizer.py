"""``Optimizer``: the base class of every optimiser, with torch.optim's parameter groups and state dicts.

An optimiser holds ``param_groups`` (a list of dicts: ``"params"`` plus that group's options) and
``state`` (per-parameter buffers such as momentum). State is keyed by the parameter's *position*
(its index in the concatenation of all groups' params), so ``state_dict()`` needs no translation
and loads into a fresh optimiser built over parameters in the same order. ``opt.state[p]`` also
works with the parameter itself, as in PyTorch.

A subclass sets its defaults, validates a group's options in ``_validate_group`` and implements the
update of one parameter in ``_update(param, grad, state, group)``, working in place on the
parameter's array in the parameter's dtype. ``step()`` skips parameters whose ``grad`` is ``None``
or that do not require grad; a parameter never updated has no state.
"""
from __future__ import annotations

import copy
import numbers

import numpy as np

from ..tensor import Tensor, enable_grad

__all__ = ["Optimizer", "required", "check_nonnegative", "lerp_"]


class _RequiredParameter:
    """Singleton marking a default every parameter group must set (as ``torch.optim.optimizer.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def check_nonnegative(value, what: str) -> None:
    """Raise like torch.optim for a negative (or NaN) option: ``Invalid learning rate: -0.1`` (every
    optimiser's ``_validate_group`` checks its options with it)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {what}: expected a real number, got {value!r}")
    if not 0.0 <= value:
        raise ValueError(f"Invalid {what}: {value}")


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start.lerp_(end, weight)`` in place, with torch's two-sided formula for accuracy (Adam's and
    RMSprop's running averages)."""
    diff = end - start
    if abs(weight) < 0.5:
        start += weight * diff
    else:
        np.subtract(end, diff * (1 - weight), out=start)


class ParamState(dict):
    """Per-parameter optimiser state: ``{position: {name: value}}``.

    Keys are the parameters' positions in the optimiser; a parameter (Tensor) is accepted wherever
    a key is, and is translated to its position.
    """

    def __init__(self, optimizer: "Optimizer"):
        super().__init__()
        self._optimizer = optimizer

    def _key(self, key):
        if isinstance(key, Tensor):
            index = self._optimizer._index.get(id(key))
            if index is None:
                raise KeyError("parameter is not managed by this optimizer")
            return index
        return key

    def __getitem__(self, key):
        return super().__getitem__(self._key(key))

    def __setitem__(self, key, value):
        super().__setitem__(self._key(key), value)

    def __delitem__(self, key):
        super().__delitem__(self._key(key))

    def __contains__(self, key):
        if isinstance(key, Tensor) and id(key) not in self._optimizer._index:
            return False
        return super().__contains__(self._key(key))

    def get(self, key, default=None):
        if isinstance(key, Tensor) and id(key) not in self._optimizer._index:
            return default
        return super().get(self._key(key), default)

    def pop(self, key, *default):
        return super().pop(self._key(key), *default)

    def setdefault(self, key, default=None):
        return super().setdefault(self._key(key), default)


class Optimizer:
    r"""Base class for all optimisers (``torch.optim.Optimizer``).

    Args:
        params (iterable): an iterable of :class:`~cnnkit.Tensor` s (or ``(name, tensor)`` pairs), or
            of dicts defining parameter groups: ``{"params": ..., <option>: value}``; options a
            group does not set take the optimiser's defaults.
        defaults (dict): default values of the optimisation options.

    Example::

        >>> opt = cnnkit.optim.SGD([
        ...     {"params": model.features.parameters()},
        ...     {"params": model.classifier.parameters(), "lr": 1e-2},
        ... ], lr=1e-3, momentum=0.9)
        >>> opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self._validate_group({k: v for k, v in self.defaults.items() if v is not required})
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors "
                            f"or dicts, but got {type(params).__name__}")
        if isinstance(params, dict):
            params = [params]
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list instead.")
        try:
            param_groups = list(params)
        except TypeError:
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors "
                            f"or dicts, but got {type(params).__name__}") from None
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        self.param_groups: list[dict] = []
        self.state = ParamState(self)
        self._index: dict[int, int] = {}  # id(param) -> position
        self._params: list[Tensor] = []  # position -> param
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def _validate_group(self, group: dict) -> None:
        """Raise ValueError/TypeError for an invalid option of ``group`` (overridden by subclasses)."""

    def add_param_group(self, param_group: dict) -> None:
        """Add a parameter group (a dict with ``"params"`` and optional per-group options).

        Useful when fine-tuning: unfreeze a layer and hand its parameters to the optimiser.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            group["param_names"] = names
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
            if p.data.dtype.kind != "f":
                raise TypeError(f"optimizer can only optimize floating-point Tensors, got dtype {p.data.dtype}")
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        self._validate_group(group)
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        if any(("param_names" in g) != ("param_names" in group) for g in self.param_groups):
            txt = "with names" if "param_names" in group else "without names"
            raise ValueError("all optimizer param groups should be with/without names. "
                             f"cannot add param group {txt} to the optimizer")
        if any(id(p) in self._index for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        for p in params:
            self._index[id(p)] = len(self._params)
            self._params.append(p)
        self.param_groups.append(group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimised tensors (to ``None`` by default, else to zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """Perform a single optimisation step.

        Args:
            closure (callable, optional): re-evaluates the model and returns the loss (called with
                gradients enabled); its result is returned.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or not p.requires_grad:
                    continue
                index = self._index[id(p)]
                grad = p.grad.data if isinstance(p.grad, Tensor) else np.asarray(p.grad)
                if grad.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}.step: parameter {index} has shape "
                                     f"{p.data.shape} but its grad has shape {grad.shape}")
                if grad.dtype != p.data.dtype:
                    grad = grad.astype(p.data.dtype)
                if not p.data.flags.writeable:  # e.g. loaded from a read-only buffer: own a copy
                    p.data = np.array(p.data, copy=True)
                state = self.state.get(index, {})
                self._update(p.data, grad, state, group)
                if state:  # an optimiser that keeps nothing (plain SGD) stores nothing
                    self.state[index] = state
        return loss

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        """Update ``param`` in place from ``grad`` (never modified), creating/updating ``state``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict:
        """The optimiser's state as ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``.

        Arrays are copies, so the dict stays as it was however long training goes on.
        """
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [self._index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {i: {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else copy.deepcopy(v))
                     for k, v in s.items()}
                 for i, s in sorted(self.state.items())}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state produced by :meth:`state_dict` (of an optimiser over parameters in the same order).

        Floating arrays are cast to their parameter's dtype (``step`` is kept as it is).
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("loaded state dict must be a dict with keys 'state' and 'param_groups'")
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                             "optimizer's group")
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            for p, k in zip(g["params"], s["params"]):
                id_map[k] = self._index[id(p)]
        new_state = {}
        for k, values in state_dict["state"].items():
            if k not in id_map:
                raise ValueError(f"loaded state dict has state for parameter {k}, which is in no parameter group")
            p = self._params[id_map[k]]
            new_state[id_map[k]] = {name: self._cast(p, k, name, v) for name, v in values.items()}
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            for name, default in self.defaults.items():  # options this version knows but the file lacks
                if default is not required:
                    s.setdefault(name, default)
            self._validate_group(s)
            new_groups.append(s)
        self.param_groups[:] = new_groups
        dict.clear(self.state)
        for i, s in new_state.items():
            self.state[i] = s

    @staticmethod
    def _cast(param: Tensor, key, name: str, value):
        if isinstance(value, (bool, int, float, str)) or value is None:
            return value
        if isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__array__"):
            arr = np.array(value, copy=True)
            if name == "step":
                return arr.item() if arr.ndim == 0 else arr
            if arr.ndim > 0 and arr.shape != param.data.shape:
                raise ValueError(f"loaded state dict: state '{name}' of parameter {key} has shape "
                                 f"{arr.shape}, but the parameter has shape {param.data.shape}")
            if arr.dtype.kind == "f":
                arr = arr.astype(param.data.dtype, copy=False)
            return arr
        return copy.deepcopy(value)

    def __repr__(self) -> str:
        out = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            out += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    out += f"    {key}: {group[key]}\n"
        return out + ")"
