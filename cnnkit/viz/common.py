"""What the viz modules share: a model's name and layers, one input checked, the model held in eval
mode with frozen parameters while it is inspected, and its summary (cached per model)."""
from __future__ import annotations

import contextlib
import numbers
import weakref

import numpy as np

from ..tensor import Tensor

__all__ = ["model_label", "as_input", "check_int", "inspecting", "leaf_layers", "find_layer", "layer_summary"]


def model_label(model) -> str:
    """The zoo name a model was built with (``model.config["name"]``), else its class name."""
    return (getattr(model, "__dict__", {}).get("config") or {}).get("name") or type(model).__name__


def as_input(x, owner: str) -> np.ndarray:
    """``(C, H, W)`` ndarray or ``(1, C, H, W)`` Tensor/ndarray → a float32 ``(C, H, W)`` copy."""
    arr = x.data if isinstance(x, Tensor) else x
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{owner}: x must be a (C, H, W) numpy array or a (1, C, H, W) Tensor, got {type(x).__name__}")
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.dtype.kind not in "biuf" or 0 in arr.shape:
        raise ValueError(f"{owner}: x must be one image (C, H, W) or (1, C, H, W), got shape {arr.shape} "
                         f"of {arr.dtype}")
    return np.array(arr, dtype=np.float32)


def check_int(value, name: str, owner: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {name}={value!r}")
    return int(value)


@contextlib.contextmanager
def inspecting(model):
    """Eval mode and frozen parameters for the duration; both restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad = False
    try:
        yield model
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
        for p, flag in flags:
            p.requires_grad = flag


def leaf_layers(model) -> list:
    """Names (as in ``model.named_modules()``) of the modules without children, in definition order."""
    return [n for n, m in model.named_modules() if n and next(iter(m.children()), None) is None]


def find_layer(model, layer, owner: str):
    """The module named ``layer``, or a ValueError listing the model's layers."""
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or not layer or layer not in modules:
        raise ValueError(f"{owner}: no layer named {layer!r} in {model_label(model)}; layers: "
                         f"{', '.join(leaf_layers(model))}")
    return modules[layer]


_SUMMARIES = weakref.WeakKeyDictionary()  # model → {(input size, its modules): Summary}


def layer_summary(model, input_size: tuple):
    """:func:`cnnkit.summary` of ``model`` for ``input_size``, kept while its modules stay the same objects."""
    from ..analysis import summary

    key = (tuple(input_size), tuple((n, id(m)) for n, m in model.named_modules()))
    cache = _SUMMARIES.setdefault(model, {})
    if key not in cache:
        cache.clear()
        cache[key] = summary(model, tuple(input_size))
    return cache[key]
