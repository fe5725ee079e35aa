"""One value of one layer, derived from the numbers the layer saw: the lecture's ``w·x + b`` made concrete.

:func:`derive` answers "where does this number come from?" for a value a user clicks:

* a convolution: the input patch under the filter (zeros where it hangs over the padding), the filter,
  their element-wise products, the sum per input channel and over all, the bias, and the result, next
  to the value the layer itself produced;
* a fully-connected layer: the input vector, the weight row, the products, their sum, the bias;
* max / average pooling: the window, which value wins (or the mean) and the result;
* batch norm in evaluation: ``(x − running mean) / √(running var + ε) · γ + β`` with its numbers;
* anything else: the value and the layer's formula.

The arithmetic is float64 on the recorded float32 arrays, written out here (not by calling the layer),
so the page can show that the sum of the products plus the bias *is* the activation.
"""
from __future__ import annotations

import numpy as np

from .backend import InputError

__all__ = ["derive", "MAX_TERMS", "MAX_CHANNELS"]

#: A fully-connected neuron with more inputs than this lists only its largest products (all are summed).
MAX_TERMS = 256
#: A convolution with more input channels than this details only the channels that contribute most.
MAX_CHANNELS = 16


def _index(shape: tuple, c, y, x, layer: str) -> tuple:
    """The clicked position as a tuple into an output of ``shape``, each coordinate range-checked."""
    want = {1: ("c",), 2: ("c", "y"), 3: ("c", "y", "x")}.get(len(shape))
    if want is None:
        raise InputError(f"layer {layer!r} has a {len(shape)}-d output; only 1-d and 2-d maps can be clicked")
    given = {"c": c, "y": y, "x": x}
    out = []
    for axis, size in zip(want, shape):
        v = given[axis]
        if v is None:
            raise InputError(f"layer {layer!r} has output {tuple(shape)}: the query needs {', '.join(want)}")
        if not 0 <= v < size:
            raise InputError(f"{axis}={v} is out of range for layer {layer!r}: 0..{size - 1} "
                             f"(output {tuple(shape)})")
        out.append(int(v))
    return tuple(out)


def _lst(a) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def derive(module, record, inputs: np.ndarray | None, output: np.ndarray, layer: str, c=None, y=None, x=None) -> dict:
    """The derivation of ``output[c, y, x]`` of ``layer`` (``module`` with its summary ``record``)."""
    idx = _index(output.shape, c, y, x, layer)
    value = float(output[idx])
    kind = type(module).__name__
    base = {"layer": layer, "type": kind, "index": list(idx), "value": value}
    if kind == "Conv2d" and inputs is not None and len(idx) == 3:
        return base | _conv(module, record, inputs, idx)
    if kind == "Linear" and inputs is not None and len(idx) == 1:
        return base | _linear(module, inputs, idx[0])
    if kind in ("MaxPool2d", "AvgPool2d") and inputs is not None and len(idx) == 3:
        return base | _pool(module, record, inputs, idx)
    if kind in ("BatchNorm2d", "BatchNorm1d") and inputs is not None and getattr(module, "running_mean", None) is not None:
        return base | _batchnorm(module, inputs, idx)
    formula = {"ReLU": "ReLU(x) = max(0, x)" + (": x was this value" if value > 0 else ": x was ≤ 0"),
               "Flatten": "a copy of one value of the previous layer's output, in C·H·W order",
               "Dropout": "in evaluation Dropout passes its input through unchanged"}.get(kind)
    return base | {"kind": "value", "formula": formula or f"{kind}: the layer's output at this position"}


def _window(record, idx, size):
    """Input rows and columns under the window of output ``idx`` (indices into the unpadded input;
    outside it: -1)."""
    _, oy, ox = idx
    (kh, kw), (sh, sw) = record.kernel_size, record.stride
    (ph, pw), (dh, dw) = record.padding or (0, 0), record.dilation or (1, 1)
    rows = [oy * sh - ph + a * dh for a in range(kh)]
    cols = [ox * sw - pw + b * dw for b in range(kw)]
    h, w = size
    return [r if 0 <= r < h else -1 for r in rows], [q if 0 <= q < w else -1 for q in cols]


def _gather(inputs, channels, rows, cols, fill: float) -> np.ndarray:
    """``inputs[channels][rows][:, cols]`` with ``fill`` where a row or column is -1 (padding)."""
    r, q = np.asarray(rows), np.asarray(cols)
    patch = inputs[np.ix_(channels, np.clip(r, 0, None), np.clip(q, 0, None))].astype(np.float64)
    patch[:, r < 0, :] = fill
    patch[:, :, q < 0] = fill
    return patch


def _conv(module, record, inputs, idx) -> dict:
    k, _, _ = idx
    weight = module.weight.data                                     # (K, C/g, kh, kw)
    K, cg = weight.shape[:2]
    group = k // (K // module.groups)
    channels = np.arange(group * cg, (group + 1) * cg)
    rows, cols = _window(record, idx, inputs.shape[1:])
    patch = _gather(inputs, channels, rows, cols, 0.0)              # (C/g, kh, kw)
    w = weight[k].astype(np.float64)
    products = patch * w
    sums = products.sum(axis=(1, 2))                                # per input channel
    bias = float(module.bias.data[k]) if module.bias is not None else 0.0
    total = float(sums.sum())
    shown = np.arange(cg) if cg <= MAX_CHANNELS else np.sort(np.argsort(-np.abs(sums), kind="stable")[:MAX_CHANNELS])
    return {
        "kind": "conv",
        "filter": k, "group": int(group), "groups": int(module.groups),
        "kernel_size": list(record.kernel_size), "stride": list(record.stride),
        "padding": list(record.padding or (0, 0)), "dilation": list(record.dilation or (1, 1)),
        "rows": rows, "cols": cols,
        "in_channels": channels.tolist(),
        "channel_sums": _lst(sums),
        "channels": [{"channel": int(channels[i]), "patch": _lst(patch[i]), "weight": _lst(w[i]),
                      "products": _lst(products[i]), "sum": float(sums[i])} for i in shown],
        "terms": int(products.size),
        "sum": total, "bias": bias, "result": total + bias,
        "formula": "Σ w·x + b over the F×F×D window",
    }


def _linear(module, inputs, n) -> dict:
    xin = inputs.reshape(-1).astype(np.float64)
    w = module.weight.data[n].astype(np.float64)
    products = xin * w
    keep = np.arange(xin.size) if xin.size <= MAX_TERMS else np.sort(np.argsort(-np.abs(products))[:64])
    bias = float(module.bias.data[n]) if module.bias is not None else 0.0
    total = float(products.sum())
    return {"kind": "linear", "neuron": int(n), "terms": int(xin.size), "inputs": keep.tolist(),
            "x": _lst(xin[keep]), "weight": _lst(w[keep]), "products": _lst(products[keep]),
            "sum": total, "bias": bias, "result": total + bias, "formula": "Σ wᵢ·xᵢ + b"}


def _batchnorm(module, inputs, idx) -> dict:
    c = idx[0]
    x = float(inputs[idx])
    mean, var = float(module.running_mean.data[c]), float(module.running_var.data[c])
    gamma = float(module.weight.data[c]) if module.weight is not None else 1.0
    beta = float(module.bias.data[c]) if getattr(module, "bias", None) is not None else 0.0
    xhat = (x - mean) / np.sqrt(var + module.eps)
    return {"kind": "batchnorm", "channel": int(c), "x": x, "mean": mean, "var": var, "eps": float(module.eps),
            "normalized": float(xhat), "gamma": gamma, "beta": beta, "result": float(xhat * gamma + beta),
            "formula": "(x − running mean) / √(running var + ε) · γ + β"}


def _pool(module, record, inputs, idx) -> dict:
    c = idx[0]
    rows, cols = _window(record, idx, inputs.shape[1:])
    is_max = type(module).__name__ == "MaxPool2d"
    window = _gather(inputs, [c], rows, cols, -np.inf if is_max else 0.0)[0]     # (kh, kw)
    out = {"kind": "maxpool" if is_max else "avgpool", "channel": int(c), "rows": rows, "cols": cols,
           "kernel_size": list(record.kernel_size), "stride": list(record.stride),
           "padding": list(record.padding or (0, 0))}
    if is_max:
        a, b = np.unravel_index(int(np.argmax(window)), window.shape)
        out |= {"window": [[None if not np.isfinite(v) else v for v in row] for row in window.tolist()],
                "argmax": [int(a), int(b)], "result": float(window[a, b]), "formula": "max over the window"}
    else:
        inside = np.outer(np.asarray(rows) >= 0, np.asarray(cols) >= 0)
        count = window.size if getattr(module, "count_include_pad", True) else int(inside.sum())
        out |= {"window": _lst(window), "sum": float(window.sum()), "count": int(count),
                "result": float(window.sum() / count), "formula": "mean over the window"}
    return out
