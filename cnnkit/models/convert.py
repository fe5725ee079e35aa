"""``fc_to_conv``: turn a classifier's trailing fully-connected layers into convolutions.

An FC layer reading a flattened ``C×H×W`` volume is the convolution with ``K`` filters of size
``H×W×C`` (the lecture's "turning FC layers into CONV layers"); every later FC is a 1×1 conv. The
converted network gives the same numbers at the original input size — as a ``(N, K, 1, 1)`` score
map instead of ``(N, K)`` — and on a larger image slides the classifier over it, giving a score
map of ``(N, K, h, w)``.
"""
from __future__ import annotations

import copy

from .. import nn
from ..tensor import no_grad, zeros

__all__ = ["fc_to_conv"]

# Layers that act on each element (or are no-ops), so they work on a (N, K, h, w) map as on (N, K).
_ELEMENTWISE = ("ReLU", "Tanh", "Sigmoid", "LeakyReLU", "Dropout", "Identity", "ELU", "GELU")


def _trace(model, input_size):
    """Call order of the leaf modules on one zero image: ``[(name, module, input shape, output shape)]``."""
    names = {id(m): n for n, m in model.named_modules()}
    calls, handles = [], []

    def hook(module, inputs, output):
        shape = tuple(inputs[0].shape) if inputs and hasattr(inputs[0], "shape") else None
        out = tuple(output.shape) if hasattr(output, "shape") else None
        calls.append((names[id(module)], module, shape, out))

    for m in model.modules():
        if not any(True for _ in m.children()):
            handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(zeros(1, *input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return calls


def _replace(model, name, new):
    parent, parts = model, name.split(".")
    for p in parts[:-1]:
        parent = getattr(parent, p)
    parent.add_module(parts[-1], new)


def fc_to_conv(model, input_size=None, inplace: bool = False):
    """Replace the trailing ``Linear`` layers of ``model`` by equivalent ``Conv2d`` layers.

    The ``Flatten`` before the first trailing FC becomes an ``Identity``; that FC becomes a conv
    whose kernel is the incoming feature map (``H×W``, weights reshaped from ``(K, C·H·W)`` to
    ``(K, C, H, W)``), every later FC a 1×1 conv. An adaptive average pool feeding the flatten is
    replaced by its fixed equivalent at ``input_size`` (``Identity`` when it keeps the size;
    ``AvgPool2d(H×W, stride=1)`` for global pooling, so the window slides one feature position at a
    time; ``AvgPool2d(k, stride=k)`` when it divides the size evenly), so that larger images give
    larger maps. An adaptive pool that fits none of these is kept (same outputs, no sliding).

    Args:
        model (Module): a classifier ending in ``Flatten → Linear (→ activation/dropout → Linear …)``.
        input_size (tuple, optional): ``(C, H, W)`` the classifier was built for; default
            :func:`default_input_size` of a zoo model.
        inplace (bool): modify ``model`` itself instead of a deep copy.

    Returns:
        Module: the converted model; at ``input_size`` its output is ``(N, K, 1, 1)`` and equals the
        original ``(N, K)`` output. ``model.config["fc_to_conv"] = {"input_size": [C, H, W]}`` is
        recorded for zoo models so :func:`rebuild` can repeat the conversion.

    Raises:
        ValueError: when the model does not end in FC layers fed by a ``Flatten`` module.

    Example::

        >>> conv_net = cnnkit.models.fc_to_conv(cnnkit.models.lenet5())
        >>> conv_net(cnnkit.zeros(1, 1, 64, 64)).shape   # C5 slides: 9×9 positions
        (1, 10, 9, 9)
    """
    if input_size is None:
        from .registry import default_input_size
        input_size = default_input_size(model)
    input_size = tuple(int(v) for v in input_size)
    if len(input_size) != 3:
        raise ValueError(f"fc_to_conv: input_size must be (C, H, W), got {input_size!r}")
    if not inplace:
        model = copy.deepcopy(model)
    calls = _trace(model, input_size)
    # The last Flatten after which only FC and element-wise layers run.
    start = None
    for i in range(len(calls) - 1, -1, -1):
        kind = type(calls[i][1]).__name__
        if kind == "Flatten":
            start = i
            break
        if kind != "Linear" and kind not in _ELEMENTWISE:
            break
    tail = calls[start + 1:] if start is not None else []
    if start is None or not any(type(m).__name__ == "Linear" for _, m, _, _ in tail):
        raise ValueError(f"fc_to_conv: {type(model).__name__} does not end in Linear layers fed by a Flatten "
                         "module (followed only by activations and dropout); nothing to convert")
    flat_name, _, flat_in, _ = calls[start]
    if flat_in is None or len(flat_in) != 4:
        raise ValueError(f"fc_to_conv: the Flatten {flat_name!r} receives shape {flat_in}, expected (N, C, H, W)")
    names = [c[0] for c in calls]
    if len(set(names)) != len(names):
        raise ValueError("fc_to_conv: a layer is called more than once; cannot replace it safely")
    _, c, h, w = flat_in
    # A pooling layer right before the flatten that squeezes to a fixed size: make it a fixed window.
    if start > 0 and type(calls[start - 1][1]).__name__ == "AdaptiveAvgPool2d":
        pname, _, pin, pout = calls[start - 1]
        if pin[2:] == pout[2:]:
            _replace(model, pname, nn.Identity())
        elif pout[2:] == (1, 1):        # global pooling: one window, sliding at stride 1
            _replace(model, pname, nn.AvgPool2d(tuple(pin[2:]), stride=1))
        elif pin[2] % pout[2] == 0 and pin[3] % pout[3] == 0:
            k = (pin[2] // pout[2], pin[3] // pout[3])
            _replace(model, pname, nn.AvgPool2d(k, stride=k))
    _replace(model, flat_name, nn.Identity())
    first = True
    for name, m, _, _ in tail:
        if type(m).__name__ != "Linear":
            continue
        k_out, k_in = m.weight.shape
        kernel = (h, w) if first else (1, 1)
        channels = c if first else k_in
        conv = nn.Conv2d(channels, k_out, kernel, bias=m.bias is not None)
        conv.weight.data = m.weight.data.reshape(k_out, channels, *kernel).copy()   # (K, C, H, W)
        conv.weight.requires_grad_(m.weight.requires_grad)
        if m.bias is not None:
            conv.bias.data = m.bias.data.copy()
            conv.bias.requires_grad_(m.bias.requires_grad)
        _replace(model, name, conv)
        first = False
    config = getattr(model, "config", None)
    if isinstance(config, dict):
        model.config = dict(config, fc_to_conv={"input_size": list(input_size)})
    return model
