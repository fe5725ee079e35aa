"""Batch norm folded into the convolution before it, for inference (PyTorch's ``torch.nn.utils.fusion``).

In inference batch norm is a fixed affine map per channel, ``y = x·α + (β − μ·α)`` with
``α = γ/sqrt(σ² + eps)`` from the running statistics, so a convolution followed by it is one convolution:

    ``w' = w·α`` (filter k scaled by ``α_k``),  ``b' = (b − μ)·α + β``.

That saves batch norm's whole pass over the activations, which in a network runs at memory speed (ResNet-20's
inference, paired with and without the folding: benchmarks/RESULTS.md, "Fusion"). :func:`residual_relu` ends a
residual block, ``relu(out + identity)``, in one pass in place.
In training, where nothing folds, :func:`bn_relu` runs a batch norm and the ReLU after it as one op (the ReLU made in
batch norm's last pass).

:func:`conv_bn` is what the zoo's models and :class:`cnnkit.nn.Sequential` call for every convolution that a
batch norm follows: it folds only where nothing can tell the difference — the batch norm in ``eval()`` with
running statistics, no graph recorded (``cnnkit.no_grad()``, or nothing that needs a gradient), no hooks on
either module — and otherwise runs the two modules as written. The folded filters are computed afresh at
every call (from float64), so a changed weight or statistic is always used; the outputs agree with the two
layers run one after the other to float32 rounding (about 1e-7 of the largest value).
"""
from __future__ import annotations

import numpy as np

from .. import jit, parallel
from ..tensor import Tensor, records_graph
from .modules.activation import ReLU
from .modules.conv import Conv1d, Conv2d
from .functional.norm import batch_norm_relu
from .modules.norm import BatchNorm1d, BatchNorm2d

__all__ = ["fuse_conv_bn_weights", "fuse_conv_bn_eval", "conv_bn", "run_in_order", "foldable", "residual_relu",
           "fusable", "bn_relu", "conv_bn_relu"]

_PAIRS = {Conv1d: BatchNorm1d, Conv2d: BatchNorm2d}
_BATCH_NORMS = tuple(_PAIRS.values())
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps: float, bn_w, bn_b) -> tuple:
    """The filters and bias of the convolution ``conv_w, conv_b`` followed by batch norm in inference.

    ``w' = conv_w·α`` per output channel and ``b' = (conv_b − bn_rm)·α + bn_b`` with
    ``α = bn_w/sqrt(bn_rv + bn_eps)``; ``conv_b``, ``bn_w`` and ``bn_b`` may be ``None`` (0, 1 and 0).
    Arrays or Tensors in, NumPy arrays of ``conv_w``'s dtype out, computed in float64 (PyTorch's
    ``fuse_conv_bn_weights``, same arguments).

    Shape:
        ``conv_w`` ``(K, C/groups, *kernel)``, the others ``(K,)``; out: ``(K, C/groups, *kernel)`` and ``(K,)``.

    Example:
        >>> w, b = fuse_conv_bn_weights(conv.weight, None, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    """
    arr = [None if t is None else np.asarray(t.data if isinstance(t, Tensor) else t)
           for t in (conv_w, conv_b, bn_rm, bn_rv, bn_w, bn_b)]
    w, b, rm, rv, gamma, beta = arr
    k = w.shape[0]
    for name, a in (("conv_b", b), ("bn_rm", rm), ("bn_rv", rv), ("bn_w", gamma), ("bn_b", beta)):
        if a is not None and a.shape != (k,):
            raise ValueError(f"fuse_conv_bn_weights: {name} has shape {a.shape}, expected ({k},) "
                             f"(one value per filter of conv_w, shape {w.shape})")
    alpha = (1.0 if gamma is None else gamma.astype(np.float64)) / np.sqrt(rv.astype(np.float64) + float(bn_eps))
    bias = ((0.0 if b is None else b.astype(np.float64)) - rm) * alpha + (0.0 if beta is None else beta)
    scaled = w.astype(np.float64) * alpha.reshape((k,) + (1,) * (w.ndim - 1))
    return scaled.astype(w.dtype), np.broadcast_to(bias, (k,)).astype(w.dtype)


def fuse_conv_bn_eval(conv: Conv1d | Conv2d, bn: BatchNorm1d | BatchNorm2d) -> Conv1d | Conv2d:
    """A new convolution (with bias) equal to ``bn(conv(x))`` with ``bn`` in ``eval()`` (PyTorch's name).

    Raises:
        ValueError: ``bn`` is training or has no running statistics, or its channels differ from the filters.

    Example:
        >>> fused = fuse_conv_bn_eval(model.conv1, model.bn1.eval())
    """
    if bn.training or bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"fuse_conv_bn_eval: {type(bn).__name__}({bn.num_features}) must be in eval() mode with "
                         f"running statistics (training={bn.training}, track_running_stats={bn.track_running_stats})")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"fuse_conv_bn_eval: {type(bn).__name__}({bn.num_features}) after a convolution with "
                         f"{conv.out_channels} filters")
    w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    fused = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True, dtype=w.dtype)
    fused.weight.data[...] = w
    fused.bias.data[...] = b
    fused.train(conv.training)
    return fused


def foldable(conv, bn, x) -> bool:
    """Whether :func:`conv_bn` folds ``bn`` into ``conv`` for the input ``x`` (see the module docstring)."""
    return (_PAIRS.get(type(conv)) is type(bn) and not bn.training and bn.running_mean is not None
            and bn.running_var is not None and bn.num_features == conv.out_channels
            and not (conv._forward_hooks or conv._forward_pre_hooks or bn._forward_hooks or bn._forward_pre_hooks)
            and isinstance(x, Tensor) and x.ndim == conv._nd + 2 and x.shape[1] == conv.in_channels
            and x.data.dtype == conv.weight.data.dtype and x.data.dtype in _FLOATS
            and not records_graph(*(t for t in (x, conv.weight, conv.bias, bn.weight, bn.bias) if t is not None)))


def _folded(conv, bn, x):
    w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
    return conv._conv_forward(x, Tensor(w), Tensor(b))


def conv_bn(conv, bn, x):
    """``bn(conv(x))``, as one convolution when batch norm can be folded in (:func:`foldable`)."""
    return _folded(conv, bn, x) if foldable(conv, bn, x) else bn(conv(x))


def fusable(bn, relu, x) -> bool:
    """Whether :func:`bn_relu` runs ``relu(bn(x))`` as one op: a batch norm and a plain ReLU, no hooks on either, a
    float32 or float64 input."""
    return (isinstance(bn, _BATCH_NORMS) and type(relu) is ReLU
            and not (bn._forward_hooks or bn._forward_pre_hooks or relu._forward_hooks or relu._forward_pre_hooks)
            and isinstance(x, Tensor) and x.data.dtype in _FLOATS)


def bn_relu(bn, relu, x):
    """``relu(bn(x))``; as one op (:func:`cnnkit.nn.functional.norm.batch_norm_relu`: the ReLU made in batch norm's
    last pass) when :func:`fusable`: a pass over the activation saved (paired figures on ResNet-20's activations:
    benchmarks/RESULTS.md, "Fusion")."""
    return batch_norm_relu(x, *bn._arguments(x)) if fusable(bn, relu, x) else relu(bn(x))


def conv_bn_relu(conv, bn, relu, x):
    """``relu(bn(conv(x)))``: the batch norm folded into the convolution where :func:`foldable`, else :func:`bn_relu`."""
    return relu(_folded(conv, bn, x)) if foldable(conv, bn, x) else bn_relu(bn, relu, conv(x))


def run_in_order(modules, x):
    """``x`` through ``modules`` one after the other (:class:`cnnkit.nn.Sequential`), each convolution and the batch
    norm right after it through :func:`conv_bn`, a batch norm and the ReLU right after it through :func:`bn_relu`."""
    mods = list(modules)
    i = 0
    while i < len(mods):
        if i + 1 < len(mods) and foldable(mods[i], mods[i + 1], x):
            x, i = _folded(mods[i], mods[i + 1], x), i + 2
        elif i + 1 < len(mods) and fusable(mods[i], mods[i + 1], x):
            x, i = bn_relu(mods[i], mods[i + 1], x), i + 2
        else:
            x, i = mods[i](x), i + 1
    return x


def residual_relu(out: Tensor, identity: Tensor, relu, own: bool = False) -> Tensor:
    """``relu(out + identity)``, a residual block's end; in one pass over ``out``, in place, when nothing can tell.

    That is when ``own`` (``out`` is the caller's own fresh tensor, which no hook has seen: :func:`foldable` was
    true for the layers that made it), no graph is recorded, ``relu`` is a :class:`cnnkit.nn.ReLU` without
    hooks, and the two arrays are C-contiguous of one shape and dtype. Otherwise it runs as written (ResNet-20's
    inference, paired against the add and the ReLU apart: benchmarks/RESULTS.md, "Fusion"); NaN and −0 come out
    as PyTorch's ``relu(out + identity)``.
    """
    a, b = out.data, identity.data if isinstance(identity, Tensor) else None
    if not (own and type(relu) is ReLU and not (relu._forward_hooks or relu._forward_pre_hooks) and b is not None
            and a.shape == b.shape and a.dtype == b.dtype and a.ndim > 0 and a.flags.c_contiguous
            and b.flags.c_contiguous and a.flags.writeable and not records_graph(out, identity)):
        return relu(out + identity)
    if jit.ready(a.nbytes, a.dtype):
        def part(rows):
            jit.add_relu_inplace(a[rows], b[rows])
    else:
        def part(rows):
            np.add(a[rows], b[rows], out=a[rows])
            np.copyto(a[rows], 0, where=a[rows] < 0)   # NaN and −0 kept
    parallel.run_slices(part, a.shape[0], a.nbytes, parallel.STREAM_PARALLEL_BYTES)
    return out
