"""Shape arithmetic: the one home of every size, padding, parameter and multiply formula.

The layers, the analysis report and ``cnnkit explain`` all call these functions, so the
numbers a user reads in a report are the numbers the layers compute with.

Conventions (the lecture's notation in brackets):

* ``size`` is one spatial extent of the input (W1 or H1), ``kernel_size`` the filter's (F),
  ``stride`` (S), ``padding`` (P) per side, ``dilation`` d (an F×F filter with dilation d covers
  ``d·(F−1)+1`` input positions).
* Output size: ``floor((W1 + 2P − d·(F−1) − 1)/S) + 1`` which, for d = 1, is the lecture's
  ``W2 = (W1 − F + 2P)/S + 1``.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

__all__ = [
    "ntuple", "conv_output_size", "pool_output_size", "same_padding", "resolve_padding",
    "unprocessed", "conv_params", "conv_macs", "linear_params", "linear_macs",
    "receptive_field", "adaptive_bins",
    "pool_ops", "adaptive_pool_ops", "dtype_size", "optimizer_state_copies", "memory_footprint",
]


def ntuple(value, n: int, name: str, *, minimum: int = 1, owner: str = "") -> tuple[int, ...]:
    """Expand ``value`` (an int or a sequence of ``n`` ints) to an ``n``-tuple and validate it.

    Raises ``TypeError`` for non-integers and ``ValueError`` for a wrong length or a value below
    ``minimum``; the message names ``owner`` (a layer or function) and the argument.
    """
    where = f"{owner}: " if owner else ""
    if isinstance(value, bool):
        raise TypeError(f"{where}{name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, (str, bytes))
                                  and not hasattr(value, "__len__")):
        out = (int(value),) * n
    elif isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{where}{name} must have {n} elements, got {value!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise TypeError(f"{where}{name} must contain ints, got {value!r}")
        out = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{where}{name} must be an int or a tuple of {n} ints, got {value!r}")
    for v in out:
        if v < minimum:
            qual = "positive" if minimum == 1 else f">= {minimum}"
            raise ValueError(f"{where}{name} must be {qual}, got {name}={value!r}")
    return out


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding=0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Output extent of a convolution or pooling window along one axis.

    ``padding`` is the zero padding on each side (an int), or ``(before, after)`` for asymmetric
    padding (``'same'`` with an even kernel). Returns ``floor((size + P_before + P_after −
    d·(F−1) − 1)/S) + 1`` (``ceil`` with ``ceil_mode``); may be ``<= 0`` when the window does not fit —
    callers turn that into an error naming the layer.
    """
    lo, hi = (padding, padding) if isinstance(padding, int) else padding
    span = size + lo + hi - dilation * (kernel_size - 1) - 1
    if ceil_mode:
        # a last, partial window counts (even one larger than the input, as in PyTorch) ...
        out = -(-span // stride) + 1
        # ... but it must start inside the input or the left padding
        if (out - 1) * stride >= size + lo:
            out -= 1
        return max(out, 0)
    return max(span // stride + 1, 0)


def pool_output_size(size: int, kernel_size: int, stride: int | None = None, padding: int = 0,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output extent of a pooling window: the lecture's ``W2 = (W1 − F)/S + 1`` (stride defaults to F)."""
    return conv_output_size(size, kernel_size, kernel_size if stride is None else stride, padding,
                            dilation, ceil_mode)


def same_padding(kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """``(before, after)`` zero padding that keeps the size at stride 1 (PyTorch's ``'same'``).

    Total padding is ``d·(F−1)``; with an odd kernel it splits evenly, ``P = (F−1)/2`` as in the
    lecture; with an even kernel the extra element goes after (bottom/right), as PyTorch does.
    """
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2


def resolve_padding(padding, kernel_size: Sequence[int], stride: Sequence[int],
                    dilation: Sequence[int], owner: str = "") -> tuple[tuple[int, int], ...]:
    """Turn ``padding`` (int, tuple, ``'same'`` or ``'valid'``) into ``(before, after)`` per axis."""
    n = len(kernel_size)
    where = f"{owner}: " if owner else ""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{where}padding='same' is not supported for strided convolutions "
                                 f"(stride={tuple(stride)}); use an explicit padding")
            return tuple(same_padding(k, d) for k, d in zip(kernel_size, dilation))
        raise ValueError(f"{where}padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    p = ntuple(padding, n, "padding", minimum=0, owner=owner)
    return tuple((v, v) for v in p)


def unprocessed(size: int, kernel_size: int, stride: int = 1, padding=0, dilation: int = 1) -> int:
    """How many input positions (padding included) the last window leaves untouched.

    The lecture's 7×7 input with a 3×3 filter at stride 3 leaves 1 column (and row) unprocessed;
    with padding 1 it leaves none of the real input out (returns 0 when only padding is left).
    """
    lo, hi = (padding, padding) if isinstance(padding, int) else padding
    out = conv_output_size(size, kernel_size, stride, (lo, hi), dilation)
    if out <= 0:
        return 0
    covered = (out - 1) * stride + dilation * (kernel_size - 1) + 1
    left = size + lo + hi - covered
    return max(0, left - hi)


def conv_params(in_channels: int, out_channels: int, kernel_size: Iterable[int], groups: int = 1,
                bias: bool = True) -> int:
    """Parameters of a convolution: ``(F·F·D1/groups)·K`` weights plus ``K`` biases.

    For ``groups=1`` this is the lecture's ``(F·F·D1 + 1)·K``.
    """
    return out_channels * (in_channels // groups) * math.prod(kernel_size) + (out_channels if bias else 0)


def conv_macs(in_channels: int, out_channels: int, kernel_size: Iterable[int], output_size: Iterable[int],
              groups: int = 1, bias: bool = False) -> int:
    """Multiply-accumulates of a convolution for one image.

    ``(F·F·D1/groups)·K·W2·H2``; with ``bias=True`` the lecture's ``(F·F·D1 + 1)·K·W2·H2`` (the bias
    counted as one more multiply per output element).
    """
    per_output = (in_channels // groups) * math.prod(kernel_size) + (1 if bias else 0)
    return per_output * out_channels * math.prod(output_size)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a fully-connected layer: the lecture's ``(N_in + 1)·N_out``."""
    return (in_features + (1 if bias else 0)) * out_features


def linear_macs(in_features: int, out_features: int, bias: bool = False) -> int:
    """Multiplies of a fully-connected layer for one input vector (``+1`` per output with bias)."""
    return (in_features + (1 if bias else 0)) * out_features


def receptive_field(rf: int, jump: int, start: float, kernel_size: int, stride: int = 1,
                    padding: int = 0, dilation: int = 1) -> tuple[int, int, float]:
    """Propagate one axis of (receptive field, jump, start) through a window layer.

    ``rf`` is how many input pixels one position sees, ``jump`` the distance in input pixels
    between neighbouring positions (the effective stride) and ``start`` the input coordinate of
    the centre of the first position's field. Layer: ``rf' = rf + d·(F−1)·jump``,
    ``jump' = jump·S``, ``start' = start + ((d·(F−1))/2 − P)·jump``.
    """
    span = dilation * (kernel_size - 1)
    return rf + span * jump, jump * stride, start + (span / 2 - padding) * jump


def adaptive_bins(size: int, output_size: int) -> list[tuple[int, int]]:
    """Start/end of each window of adaptive pooling: ``[floor(i·L/out), ceil((i+1)·L/out))``."""
    return [((i * size) // output_size, -(-((i + 1) * size) // output_size)) for i in range(output_size)]


# ----------------------------------------------------------------------------- counting beyond conv/linear
def pool_ops(kernel_size: Iterable[int], output_size: Iterable[int]) -> int:
    """Operations of a window pooling layer per channel: ``F·F`` (one compare or add per window
    element) for each of the ``W2·H2`` outputs (multiply by the channel count for the layer)."""
    return math.prod(kernel_size) * math.prod(output_size)


def adaptive_pool_ops(input_size: Sequence[int], output_size: Sequence[int]) -> int:
    """Operations of adaptive pooling per channel: the summed sizes of every window
    (:func:`adaptive_bins`), which may overlap when the input does not divide evenly."""
    total = 1
    for size, out in zip(input_size, output_size):
        total *= sum(end - begin for begin, end in adaptive_bins(size, out))
    return total


# ----------------------------------------------------------------------------- memory
#: Bytes per stored number: the lecture's "4 B for floating point, 8 B for double, or 1 B or smaller
#: for optimized fixed-point implementations".
DTYPE_BYTES = {"float64": 8, "double": 8, "float32": 4, "float": 4, "float16": 2, "half": 2,
               "bfloat16": 2, "int8": 1, "uint8": 1}

#: Copies of the parameter vector an optimiser keeps as state (the lecture's "step cache"):
#: plain SGD none, SGD with momentum (or Nesterov) one velocity, RMSprop one squared-gradient average,
#: Adagrad one squared-gradient sum, Adam/AdamW two (first and second moments).
OPTIMIZER_STATE = {"sgd": 0, "none": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adagrad": 1,
                   "adam": 2, "adamw": 2}


def dtype_size(dtype) -> int:
    """Bytes per element of ``dtype`` (a name such as ``"float32"``/``"int8"`` or a NumPy dtype)."""
    import numpy as np
    key = dtype.lower() if isinstance(dtype, str) else None
    if key not in DTYPE_BYTES:
        try:
            return int(np.dtype(dtype).itemsize)
        except TypeError:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}") from None
    return DTYPE_BYTES[key]


def optimizer_state_copies(optimizer: str) -> int:
    """How many parameter-sized buffers ``optimizer`` keeps (SGD 0, momentum 1, Adam 2; see ``OPTIMIZER_STATE``)."""
    key = str(optimizer).lower()
    if key not in OPTIMIZER_STATE:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZER_STATE)}")
    return OPTIMIZER_STATE[key]


def memory_footprint(params: int, trainable_params: int, activations: int, peak_activations: int,
                     input_elements: int, buffers: int = 0, dtype="float32", batch_size: int = 1,
                     optimizer: str = "sgd") -> dict:
    """Bytes a network needs, from element counts (activations are per image).

    * ``param_bytes`` = params·B, ``buffer_bytes`` = buffers·B (e.g. BatchNorm running statistics),
      ``gradient_bytes`` = trainable·B, ``optimizer_bytes`` = copies·trainable·B
      (:func:`optimizer_state_copies`),
    * ``input_bytes`` = input_elements·N·B, ``activation_bytes`` = activations·N·B (every layer's
      output, kept for the backward pass),
    * ``training_bytes`` = param + buffer + gradient + optimizer + input + 2·activation bytes (the
      activations and their gradients "of equal size", as the lecture counts them — an upper bound, since
      a backward pass frees them as it goes),
    * ``inference_bytes`` = param + buffer + peak_activations·N·B, where the peak counts only the
      activations alive at once (input included) — the lecture's "store only the current activations".

    ``B`` = :func:`dtype_size` of ``dtype``, ``N`` = ``batch_size``.
    """
    b = dtype_size(dtype)
    n = int(batch_size)
    out = {
        "param_bytes": params * b,
        "buffer_bytes": buffers * b,
        "gradient_bytes": trainable_params * b,
        "optimizer_bytes": optimizer_state_copies(optimizer) * trainable_params * b,
        "input_bytes": input_elements * n * b,
        "activation_bytes": activations * n * b,
        "peak_activation_bytes": peak_activations * n * b,
    }
    out["training_bytes"] = (out["param_bytes"] + out["buffer_bytes"] + out["gradient_bytes"]
                             + out["optimizer_bytes"] + out["input_bytes"] + 2 * out["activation_bytes"])
    out["inference_bytes"] = out["param_bytes"] + out["buffer_bytes"] + out["peak_activation_bytes"]
    return out
