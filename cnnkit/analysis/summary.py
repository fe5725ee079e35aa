"""``cnnkit.summary``: the layer-by-layer report, computed from shapes alone.

How the numbers are obtained (no multiply of the network is executed):

1. :func:`~cnnkit.analysis.trace.trace` runs the model on a zero-size batch with hooks on every
   module: the calls, their nesting and the per-image input/output shapes.
2. :class:`~cnnkit.analysis.graph.Graph` follows the autograd graph of that pass: receptive fields
   through branches, the additions and concatenations the model makes itself, and the live-memory peak.
3. Each call's parameters, MACs and window geometry come from the module's attributes
   (``in_channels``, ``out_channels``, ``kernel_size``, ``stride``, ``padding``, ``dilation``,
   ``groups``, ``in_features``, ``out_features``) through :mod:`cnnkit.shape`.
"""
from __future__ import annotations

import math

import numpy as np

from .. import shape
from .graph import Graph, per_image
from .records import COUNTS, LayerRecord, Summary
from .trace import geometry_of, trace

__all__ = ["summary", "resolve_model"]


def resolve_model(model_or_name, input_size=None):
    """``(model, name, input_size)`` from a module or a zoo name (default input size from the zoo)."""
    if isinstance(model_or_name, str):
        from .. import models
        model = models.create(model_or_name)
        name = model_or_name
    else:
        model = model_or_name
        name = (getattr(model, "__dict__", {}).get("config") or {}).get("name") or type(model).__name__
    if input_size is None:
        input_size = _default_input_size(model, name)
    return model, name, _validate_input_size(input_size)


def _default_input_size(model, name):
    size = getattr(model, "__dict__", {}).get("default_input_size")
    if size is not None:
        return size
    try:
        from .. import models
        return models.default_input_size(name)
    except Exception:  # not a zoo model
        raise ValueError(f"{name}: input_size is required (C, H, W), e.g. input_size=(3, 224, 224)") from None


def _validate_input_size(input_size) -> tuple:
    if isinstance(input_size, str):
        parts = input_size.replace("x", ",").replace("×", ",").split(",")
        try:
            input_size = tuple(int(p) for p in parts if p.strip())
        except ValueError:
            raise ValueError(f"input_size must be C,H,W integers, got {input_size!r}") from None
    if isinstance(input_size, int) or not isinstance(input_size, (tuple, list)) or not input_size:
        raise TypeError(f"input_size must be a tuple (C, H, W) of ints, got {input_size!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in input_size):
        raise TypeError(f"input_size must contain ints, got {input_size!r}")
    if any(v < 1 for v in input_size):
        raise ValueError(f"input_size must be positive, got {tuple(input_size)}")
    return tuple(int(v) for v in input_size)


def summary(model, input_size=None, *, batch_size: int = 1, dtype="float32", optimizer: str = "sgd",
            count: str = "default", depth: int | None = None, name: str | None = None) -> Summary:
    """Layer-by-layer report of ``model`` for one input of ``input_size`` = ``(C, H, W)``.

    Args:
        model: an ``nn.Module`` or the name of a zoo model (``cnnkit.models.names()``).
        input_size: ``(C, H, W)`` of one image (``(C, L)`` in 1-D); a zoo model's default if omitted.
        batch_size: images per batch; scales the activation memory (counts stay per image).
        dtype: storage type for the memory figures: ``"float32"`` (4 B), ``"float64"`` (8 B),
            ``"int8"`` (1 B), ``"float16"``/``"bfloat16"`` (2 B).
        optimizer: ``"sgd"`` (no state), ``"momentum"``/``"nesterov"``/``"rmsprop"``/``"adagrad"`` (one
            parameter-sized buffer), ``"adam"``/``"adamw"`` (two).
        count: MAC convention — ``"default"`` (conv + linear, bias excluded: torchvision's GFLOPS),
            ``"lecture"`` ((F·F·D1 + 1)·K·W2·H2 with the bias), ``"all"`` (adds BatchNorm, pooling and
            element-wise joins). FLOPs are always 2 × MACs.
        depth: deepest nesting level shown by the text views (the numbers are always complete).
        name: label of the report (default: the zoo name or the class name).

    Returns:
        :class:`~cnnkit.analysis.records.Summary`.

    Raises:
        ValueError: naming the layer, when the input is too small for it (output below 1×1) or the
            layer rejects it (wrong channel count, wrong number of features).

    Example::

        >>> s = cnnkit.analysis.summary("lenet5")          # the zoo's default input, 1×32×32
        >>> s["c1"].output_volume, s["c1"].params, s["c1"].receptive_field
        ('28×28×6', 156, (5, 5))
        >>> s.total["params"], s.total["macs"]
        (61706, 416520)
        >>> print(s)                                       # the table; s.to_json(), s.to_csv(), s.to_markdown()
    """
    if count not in COUNTS:
        raise ValueError(f"count must be one of {', '.join(COUNTS)}, got {count!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth must be a positive int (1 = the model's direct children), got {depth!r}")
    shape.dtype_size(dtype)
    shape.optimizer_state_copies(optimizer)
    model, zoo_name, input_size = resolve_model(model, input_size)
    tr = trace(model, input_size)
    graph = Graph(tr)
    rows, notes = _records(model, tr, graph, count, batch_size, dtype)
    total = _totals(model, rows, graph, input_size, batch_size=batch_size, dtype=dtype, optimizer=optimizer)
    if tr.batch:
        notes.append("traced with one real image: some op of this model does not accept an empty batch")
    dtype = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    return Summary(name or zoo_name, input_size, rows, total, batch_size=batch_size, dtype=dtype,
                   optimizer=str(optimizer).lower(), count=count, depth=depth, traced_batch=tr.batch,
                   notes=notes)


# ----------------------------------------------------------------------------- per call
def _records(model, tr, graph: Graph, count: str, batch_size: int = 1, dtype="float32"):
    seen_params, seen_modules, notes = set(), set(), []
    by_index, rows = {}, []
    for c in tr.calls:
        m = c.module
        x = c.inputs[0] if c.inputs else None
        y = c.outputs[0] if c.outputs else None
        r = LayerRecord(name=c.name, type=c.type, depth=c.depth, leaf=c.is_leaf,
                        input=tuple(x.shape[1:]) if x is not None else None,
                        output=tuple(y.shape[1:]) if y is not None else None,
                        repeat=id(m) in seen_modules)
        seen_modules.add(id(m))
        own = [p for p in m._parameters.values() if p is not None and id(p) not in seen_params]
        seen_params.update(id(p) for p in own)
        r.params = sum(p.data.size for p in own)
        r.trainable_params = sum(p.data.size for p in own if p.requires_grad)
        if x is not None and y is not None and c.is_leaf:  # a block's layers carry its numbers
            _geometry(r, m, x, y, count)
            _algorithm(r, m, x, batch_size, dtype)
        if y is not None:
            if c.is_leaf and graph.field(y) is not None and id(y) in graph.produced:
                r.activations = per_image(y)
            f = graph.field(y)
            if f is not None:
                r.receptive_field, r.jump = tuple(f.rf), tuple(f.jump)
                r.start = tuple(int(s) if float(s).is_integer() else s for s in f.start)
        r.activations += graph.join_elements.get(c.index, 0)
        r.joins = _joins(graph, c.index)
        if count == "all":
            r.macs += graph.join_ops.get(c.index, 0)
        if r.repeat:
            r.notes.append("called again: parameters counted at its first call")
        by_index[c.index] = r
        rows.append((c, r))
    # the model's own row: kept only when it does something itself
    root = rows[0][1] if rows else None
    if root is not None and not root.leaf:
        root.activations += graph.join_elements.get(-1, 0)
        root.joins += _joins(graph, -1)
        if count == "all":
            root.macs += graph.join_ops.get(-1, 0)
    # modules that never ran (e.g. auxiliary heads in eval mode): one row per outermost such module,
    # holding the parameters of everything inside it not counted elsewhere
    extra = []
    ran = {id(c.module) for c, _ in rows}
    for name, m in model.named_modules():
        if id(m) in ran or any(name.startswith(r.name + ".") for r in extra):
            continue
        own = [p for p in m.parameters() if id(p) not in seen_params]
        if not own:
            continue
        seen_params.update(id(p) for p in own)
        n = sum(p.data.size for p in own)
        r = LayerRecord(name=name, type=type(m).__name__, depth=name.count(".") + 1,
                        leaf=not any(v is not None for v in m._modules.values()), called=False, params=n,
                        trainable_params=sum(p.data.size for p in own if p.requires_grad), subtree_params=n)
        r.notes.append("not called in the traced (eval-mode) forward pass; its parameters are counted, "
                       "its multiplies are not")
        extra.append(r)
    if extra:
        notes.append(f"not run in eval mode (no MACs counted), parameters still counted: "
                     f"{', '.join(r.name for r in extra)}")
    # block totals (pre-order: children follow their parent)
    for c, r in reversed(rows):
        r.subtree_params += r.params
        r.subtree_macs += r.macs
        r.subtree_activations += r.activations
        if c.parent is not None:
            p = by_index[c.parent.index]
            p.subtree_params += r.subtree_params
            p.subtree_macs += r.subtree_macs
            p.subtree_activations += r.subtree_activations
    out = [r for c, r in rows]
    if root is not None and not root.leaf and _idle(root):
        out = out[1:]
    return out + extra, notes


def _joins(graph: Graph, key: int) -> list:
    return [{"op": op, "inputs": [list(s) for s in ins], "output": list(out)}
            for op, ins, out in graph.joins.get(key, [])]


def _idle(root: LayerRecord) -> bool:
    """The model's own row says nothing the totals do not (no own parameters, ops or tensors)."""
    return root.params == 0 and root.macs == 0 and root.activations == 0


def _geometry(r: LayerRecord, m, x, y, count: str) -> None:
    """Window geometry, unprocessed input, parameter check and MACs of one call."""
    spatial_in, spatial_out = tuple(x.shape[2:]), tuple(y.shape[2:])
    g = geometry_of(m, spatial_in) if x.ndim >= 3 else None
    d = m.__dict__
    bias = m._parameters.get("bias") is not None
    lecture = count == "lecture"
    if g is not None:
        r.kernel_size, r.stride, r.dilation = g.kernel_size, g.stride, g.dilation
        r.padding = tuple(p[0] for p in g.padding)
        if any(p[0] != p[1] for p in g.padding):
            r.padding_after = tuple(p[1] for p in g.padding)
        if g.kind in ("conv", "pool") and not g.ceil_mode:
            left = tuple(shape.unprocessed(s, k, st, p, dl) for s, k, st, p, dl in
                         zip(spatial_in, g.kernel_size, g.stride, g.padding, g.dilation))
            r.unprocessed = left
            if any(left):
                r.notes.append(f"stride leaves {'×'.join(str(v) for v in reversed(left))} input "
                               f"columns/rows unprocessed (W1 − F + 2P not divisible by S)")
    if g is not None and g.kind in ("conv", "conv_transpose"):
        r.groups, r.filters, r.bias = g.groups, g.out_channels, bias
        expected = shape.conv_params(g.in_channels, g.out_channels, g.kernel_size, g.groups, bias)
        if not r.repeat and r.params != expected:
            r.notes.append(f"parameters {r.params:,} differ from the geometry's (F·F·D1/groups + 1)·K = {expected:,}")
        if g.kind == "conv":
            r.macs = shape.conv_macs(g.in_channels, g.out_channels, g.kernel_size, spatial_out, g.groups,
                                     bias=lecture and bias)
        else:  # every input element is multiplied by a (K/groups)×F×F slice of the weight
            r.macs = shape.conv_macs(g.out_channels, g.in_channels, g.kernel_size, spatial_in, g.groups,
                                     bias=False) + (g.out_channels * math.prod(spatial_out) if lecture and bias else 0)
    elif "in_features" in d and "out_features" in d:
        r.bias = bias
        rows = per_image(y) // max(1, d["out_features"])
        r.macs = rows * shape.linear_macs(d["in_features"], d["out_features"], bias=lecture and bias)
        expected = shape.linear_params(d["in_features"], d["out_features"], bias)
        if not r.repeat and r.params != expected:
            r.notes.append(f"parameters {r.params:,} differ from (N_in + 1)·N_out = {expected:,}")
    elif count == "all" and g is not None and x.ndim >= 3:
        channels = x.shape[1]
        if g.kind == "pool":
            r.macs = channels * shape.pool_ops(g.kernel_size, spatial_out)
        else:
            r.macs = channels * shape.adaptive_pool_ops(spatial_in, spatial_out)
    elif count == "all" and "running_mean" in m._buffers:
        r.macs = per_image(y)  # BatchNorm in inference: y = a·x + b per element


def _algorithm(r: LayerRecord, m, x, batch_size: int, dtype) -> None:
    """The forward algorithm a convolution takes at ``batch_size`` on this machine: the measured choice where the
    cache has one, else the default order's (nothing is measured here: :func:`cnnkit.nn.functional.conv.algorithm`
    with ``measure_now=False``)."""
    from ..nn.functional.conv import algorithm
    from ..nn import Conv1d, Conv2d, Conv3d
    if isinstance(m, (Conv1d, Conv2d, Conv3d)) and x.ndim == m._nd + 2:
        compute = dtype if np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.float64)) else np.float32
        r.algorithm = algorithm((batch_size,) + tuple(x.shape[1:]), m.weight.shape, m.stride, m.padding, m.dilation,
                                m.groups, compute, measure_now=False)


# ----------------------------------------------------------------------------- totals
def _totals(model, rows, graph: Graph, input_size, *, batch_size, dtype, optimizer) -> dict:
    params = list(model.parameters())   # unique tensors, shared ones once
    n_params = sum(p.data.size for p in params)
    n_train = sum(p.data.size for p in params if p.requires_grad)
    buffers = sum(b.data.size for b in model.buffers() if b.data.dtype.kind == "f")
    macs = sum(r.macs for r in rows)
    activations = sum(r.activations for r in rows)
    total = {
        "params": n_params,
        "trainable_params": n_train,
        "frozen_params": n_params - n_train,
        "buffers": buffers,
        "macs": macs,
        "flops": 2 * macs,
        "activations": activations,
        "peak_activations": graph.peak,
        "input_elements": math.prod(input_size),
    }
    total.update(shape.memory_footprint(n_params, n_train, activations, graph.peak, total["input_elements"],
                                        buffers, dtype=dtype, batch_size=batch_size, optimizer=optimizer))
    return total
