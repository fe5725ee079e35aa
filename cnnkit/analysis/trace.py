"""Record what a network does to shapes, without doing its arithmetic.

:func:`trace` calls the model once on a **zero-size batch** (``N = 0``): every op still computes its
output shape, but there is nothing to multiply. Forward pre/post hooks on every module record, per
call, the module, its dotted name, its nesting depth and its input/output tensors; the input requires
grad, so the autograd graph (``Tensor._parents``) is recorded too — empty arrays included. The graph
then tells how the layers are wired (residual additions, Inception concatenations), which the receptive
field and the live-memory peak need.

If some op refuses an empty batch, the trace falls back to a batch of one (a real forward pass of one
image) and says so in ``Trace.batch``. The model runs in eval mode (BatchNorm cannot average an empty
batch; dropout is off) and its modes are restored afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import shape
from ..tensor import Tensor, enable_grad
from .records import volume

__all__ = ["Call", "Trace", "trace", "ShapeError", "Geometry", "geometry_of"]


class ShapeError(ValueError):
    """An input too small (or of the wrong shape) for a layer; the message names the layer."""


@dataclass
class Call:
    """One call of one module during the traced forward pass."""
    module: object
    name: str                      # dotted name ("" for the model itself)
    depth: int                     # nesting level of the call (the model is 0)
    parent: "Call | None"
    index: int                     # order in which the calls started (pre-order)
    inputs: list = field(default_factory=list)   # Tensors among the positional arguments
    outputs: list = field(default_factory=list)  # Tensors in the returned value

    @property
    def is_leaf(self) -> bool:
        return not any(m is not None for m in self.module._modules.values())

    @property
    def type(self) -> str:
        return type(self.module).__name__


@dataclass
class Trace:
    """The calls, the input tensor and the outputs of one traced forward pass."""
    calls: list
    input: Tensor
    outputs: list
    batch: int                     # 0 (shapes only) or 1 (fallback: one real image)


# ----------------------------------------------------------------------------- geometry
@dataclass
class Geometry:
    """A window layer's hyper-parameters, one entry per spatial axis (PyTorch's attribute names)."""
    kind: str                      # "conv", "conv_transpose", "pool", "adaptive", "global"
    kernel_size: tuple
    stride: tuple
    padding: tuple                 # ((before, after), ...) per axis
    dilation: tuple
    groups: int = 1
    in_channels: int | None = None
    out_channels: int | None = None
    bias: bool = False
    ceil_mode: bool = False


def _tuple(value, n, name, owner, minimum=1):
    return shape.ntuple(tuple(value) if isinstance(value, list) else value, n, name, minimum=minimum, owner=owner)


def geometry_of(module, spatial: tuple) -> Geometry | None:
    """The window geometry of ``module`` for an input with spatial size ``spatial``, or ``None``.

    Recognises convolutions (``in_channels``, ``out_channels``, ``kernel_size``, ``stride``,
    ``padding``, ``dilation``, ``groups``), window pooling (``kernel_size``, ``stride``, ``padding``,
    ``dilation``, ``ceil_mode``), adaptive pooling (``output_size``) and global pooling, by attribute.
    """
    n, name = len(spatial), type(module).__name__
    d = module.__dict__
    if "kernel_size" in d and n:
        try:
            k = _tuple(d["kernel_size"], n, "kernel_size", name)
            s = k if d.get("stride") is None else _tuple(d["stride"], n, "stride", name)
            dil = _tuple(d.get("dilation", 1), n, "dilation", name)
            pad = d.get("padding", 0)
            if isinstance(pad, str):
                pad = shape.resolve_padding(pad, k, s, dil, owner=name)
            else:
                pad = tuple((p, p) for p in _tuple(pad, n, "padding", name, minimum=0))
        except (TypeError, ValueError):
            return None  # same attribute names, other meaning (or a different rank): not a window layer
        if "in_channels" in d and "out_channels" in d:
            kind = "conv_transpose" if "Transpose" in name else "conv"
            return Geometry(kind, k, s, pad, dil, int(d.get("groups", 1)), d["in_channels"], d["out_channels"],
                            bias=module._parameters.get("bias") is not None)
        return Geometry("pool", k, s, pad, dil, ceil_mode=bool(d.get("ceil_mode", False)))
    if "output_size" in d and n and "Pool" in name:
        osz = d["output_size"]
        osz = (osz,) * n if isinstance(osz, int) else tuple(osz) if isinstance(osz, (tuple, list)) else None
        if osz is None or len(osz) != n:
            return None
        return _adaptive(spatial, tuple(spatial[i] if o is None else int(o) for i, o in enumerate(osz)))
    if "Global" in name and "Pool" in name and n:
        return _adaptive(spatial, (1,) * n)
    return None


def _adaptive(spatial, out) -> Geometry:
    # Window i covers [floor(i·L/o), ceil((i+1)·L/o)): the widest window is the kernel, L // o the step
    # (exact when o divides L, e.g. global pooling: kernel = L).
    kernel = tuple(max(e - b for b, e in shape.adaptive_bins(L, o)) for L, o in zip(spatial, out))
    stride = tuple(max(1, L // o) for L, o in zip(spatial, out))
    return Geometry("adaptive", kernel, stride, ((0, 0),) * len(out), (1,) * len(out))


def _expected_spatial(g: Geometry, spatial: tuple) -> tuple:
    if g.kind == "conv_transpose":
        return spatial  # grows; never below 1×1
    return tuple(shape.conv_output_size(size, k, s, p, d, g.ceil_mode)
                 for size, k, s, p, d in zip(spatial, g.kernel_size, g.stride, g.padding, g.dilation))


def _check_fits(call: Call, x: Tensor) -> None:
    g = geometry_of(call.module, tuple(x.shape[2:]))
    if g is None or g.kind in ("adaptive",):
        return
    out = _expected_spatial(g, tuple(x.shape[2:]))
    if all(o >= 1 for o in out):
        return
    axis = next(i for i, o in enumerate(out) if o < 1)
    size, k, s, (lo, hi), d = (x.shape[2 + axis], g.kernel_size[axis], g.stride[axis], g.padding[axis],
                               g.dilation[axis])
    f = d * (k - 1) + 1
    raise ShapeError(
        f"layer {call.name or '<model>'} ({type(call.module).__name__}({call.module.extra_repr()})) receives "
        f"{volume(tuple(x.shape[1:]))} and would output less than 1×1: "
        f"(W1 − F + 2P)/S + 1 = ({size} − {f} + {lo + hi})/{s} + 1 < 1; use a larger input")


# ----------------------------------------------------------------------------- running
def _tensors(obj) -> list:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    return []


def _run(model, input_size: tuple, batch: int, dtype) -> Trace:
    names = {id(m): n for n, m in model.named_modules()}
    calls, stack, handles = [], [], []

    def pre(module, args):
        call = Call(module, names.get(id(module), type(module).__name__), len(stack),
                    stack[-1] if stack else None, len(calls))
        calls.append(call)
        stack.append(call)
        xs = _tensors(args)
        if xs and xs[0].ndim >= 3:
            _check_fits(call, xs[0])

    def post(module, args, out):
        call = stack.pop()
        call.inputs, call.outputs = _tensors(args), _tensors(out)

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    x = Tensor(np.zeros((batch,) + tuple(input_size), dtype=dtype), requires_grad=True)
    try:
        with enable_grad():
            out = model(x)
    except ShapeError:
        raise
    except Exception as exc:  # name the layer that failed
        where = stack[-1] if stack else None
        if where is None:
            raise
        raise _LayerFailure(where, exc) from exc
    finally:
        for h in handles:
            h.remove()
    return Trace(calls, x, _tensors(out), batch)


class _LayerFailure(Exception):
    def __init__(self, call: Call, exc: Exception):
        self.call, self.exc = call, exc
        super().__init__(str(exc))


def trace(model, input_size: tuple) -> Trace:
    """Run ``model`` once on a zero-size batch of ``input_size`` = ``(C, H, W)`` and record every call.

    Raises :class:`ShapeError` (a ``ValueError``) naming the layer when the input is too small for it,
    or ``ValueError`` naming the layer whose forward pass failed.
    """
    params = list(model.parameters())
    dtype = params[0].data.dtype if params else np.float32
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        try:
            return _run(model, input_size, 0, dtype)
        except _LayerFailure:
            pass  # some op does not take an empty batch: trace one real image instead
        try:
            return _run(model, input_size, 1, dtype)
        except _LayerFailure as failure:
            c = failure.call
            msg = str(failure.exc)
            label = f"{c.name or '<model>'} ({type(c.module).__name__})"
            raise ValueError(f"layer {label} fails on input {tuple(input_size)}: {msg}") from failure.exc
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
