"""Argument checks shared by the ops of ``nn.functional`` (Chainer's ``type_check`` in miniature).

Each check raises ``TypeError``/``ValueError`` naming the op and repeating the value it received.
"""
from __future__ import annotations

from ...tensor import Tensor

__all__ = ["AXES", "check_float", "check_rank", "same_dtype"]

# the axes of an N-d batched input, for docstrings and messages
AXES = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def check_float(input, name: str) -> Tensor:
    """``input`` as a floating-point Tensor, or a TypeError naming ``name``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a cnnkit Tensor, got {type(input).__name__}")
    if input.data.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a floating-point tensor, got dtype {input.data.dtype}")
    return input


def check_rank(x, nd: int, name: str) -> None:
    """``x`` is a Tensor with a batch axis, a channel axis and ``nd`` spatial axes."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a cnnkit Tensor, got {type(x).__name__}")
    if x.ndim != nd + 2:
        hint = "; add a batch dimension with x.unsqueeze(0)" if x.ndim == nd + 1 else ""
        raise ValueError(f"{name}: expected a {nd + 2}-D input {AXES[nd]}, got a {x.ndim}-D input of shape "
                         f"{tuple(x.shape)}{hint}")


def same_dtype(name: str, x: Tensor, **others) -> None:
    """PyTorch refuses mixed float dtypes in one layer; so do we (NumPy would silently upcast)."""
    for arg, t in others.items():
        if t is not None and t.data.dtype != x.data.dtype:
            raise TypeError(f"{name}: input is {x.data.dtype} but {arg} is {t.data.dtype}; convert one of them "
                            f"(e.g. model.to(np.{x.data.dtype}) or x.to(np.{t.data.dtype}))")
