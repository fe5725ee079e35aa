"""Export a cnnkit model to ONNX, so it can leave cnnkit for serving or for training at scale.

The exporter runs the model once on a batch of one with autograd recording on, then walks the
recorded graph back from the output. Outputs of known layers (Conv, Linear, pooling, BatchNorm,
LRN, activations…) become one ONNX node each, read from the layer's attributes; the glue between
layers that models write in ``forward`` (``+`` of a residual, ``cat`` of an Inception block,
slicing, reshape) is recognised from the op that produced it. Anything else is refused with the
name of the op, never exported wrongly. Needs the ``onnx`` package (``pip install onnx``).
"""
from __future__ import annotations

import math
import sys

import numpy as np

from .. import nn
from ..shape import resolve_padding
from ..tensor import Tensor, enable_grad
from ..files import atomic_write

__all__ = ["export_onnx", "OPSET", "OUTPUT"]

OPSET = 17


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ValueError("ONNX export needs the onnx package: pip install onnx") from None
    return onnx, helper, numpy_helper


def _closure(fn) -> dict:
    cells = fn.__closure__ or ()
    return {name: c.cell_contents for name, c in zip(fn.__code__.co_freevars, cells)}


class _Builder:
    def __init__(self, model, x: Tensor):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.nodes, self.inits, self.names = [], [], {}
        self.x = x
        self.produced_by = {}          # id(output tensor) → (module, input tensor)
        self.keep = []                 # keeps traced tensors alive so ids stay unique
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def init(self, name: str, array: np.ndarray) -> str:
        name = self.fresh(name.replace(".", "_"))
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def constant(self, t: Tensor) -> str:
        """A constant; zeros made for a batch of the traced size (zero channels concatenated to a batch, say)
        follow the input's batch size at run time."""
        if t.ndim and t.shape[0] == self.x.shape[0] and not np.any(t.data):
            batch = self.node("Shape", ["input"], start=0, end=1)
            rest = self.init("shape", np.array(t.shape[1:], dtype=np.int64))
            shape = self.node("Concat", [batch, rest], axis=0)
            zero = self.helper.make_tensor("zero", self.onnx.TensorProto.FLOAT, [1], [0.0])
            return self.node("ConstantOfShape", [shape], value=zero)
        return self.init("const", t.data)

    def node(self, op: str, inputs, **attrs) -> str:
        out = self.fresh(op.lower())
        self.nodes.append(self.helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    # --- graph walk
    def name_of(self, t: Tensor) -> str:
        key = id(t)
        if key in self.names:
            return self.names[key]
        if t is self.x:
            name = "input"
        elif key in self.produced_by:
            module, inp = self.produced_by[key]
            name = self.module_node(module, self.name_of(inp), inp)
        elif not t._parents:
            name = self.constant(t)
        else:
            name = self.glue_node(t)
        self.names[key] = name
        return name

    def glue_node(self, t: Tensor) -> str:
        fn = t._backward
        qual = getattr(fn, "__qualname__", "")
        parents = t._parents
        if qual.startswith("Tensor.__add__"):
            return self.node("Add", [self.name_of(p) for p in parents])
        if qual.startswith("Tensor.__sub__"):
            return self.node("Sub", [self.name_of(p) for p in parents])
        if qual.startswith("Tensor.__mul__"):
            return self.node("Mul", [self.name_of(p) for p in parents])
        if qual.startswith("cat."):
            dim = _closure(fn)["dim"] % t.ndim
            return self.node("Concat", [self.name_of(p) for p in parents], axis=dim)
        if qual.startswith("Tensor.reshape"):
            (src,) = parents
            if t.ndim == 2 and t.shape[0] == src.shape[0]:
                return self.node("Flatten", [self.name_of(src)], axis=1)
            shape = self.init("shape", np.array((0,) + t.shape[1:], dtype=np.int64))
            return self.node("Reshape", [self.name_of(src), shape])
        if qual.startswith("Tensor.__getitem__"):
            return self.slice_node(t, _closure(fn)["index"])
        if qual.startswith("relu."):
            return self.node("Relu", [self.name_of(parents[0])])
        if qual.startswith("pad."):
            return self.pad_node(t, _closure(fn))
        raise ValueError(f"export_onnx: the op {qual.split('.<locals>')[0]!r} (output shape {t.shape}) has no "
                         f"ONNX translation in cnnkit; use layers (nn modules) for it")

    def slice_node(self, t: Tensor, index) -> str:
        (src,) = t._parents
        index = index if isinstance(index, tuple) else (index,)
        picks = [a for a, i in enumerate(index) if isinstance(i, (list, np.ndarray))]
        if len(picks) == 1 and all(i == slice(None) for a, i in enumerate(index) if a != picks[0]):
            axis = picks[0]
            ids = self.init("indices", np.asarray(index[axis], dtype=np.int64))
            return self.node("Gather", [self.name_of(src), ids], axis=axis)
        if not all(isinstance(i, slice) for i in index):
            raise ValueError(f"export_onnx: only slicing with ':' ranges can be exported, got index {index!r}")
        starts, ends, axes, steps = [], [], [], []
        for axis, sl in enumerate(index):
            if sl == slice(None):
                continue
            start, stop, step = sl.indices(src.shape[axis])
            starts.append(start)
            ends.append(stop)
            axes.append(axis)
            steps.append(step)
        ins = [self.name_of(src)] + [self.init(n, np.array(v, dtype=np.int64)) for n, v in
                                     (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps))]
        return self.node("Slice", ins)

    def pad_node(self, t: Tensor, cells: dict) -> str:
        """``F.pad`` as ONNX's Pad: each axis' amounts from the slices the op copied (``src`` of the input to ``dst``
        of the output; negative amounts crop), the fill value read back from a padded place of the traced output."""
        (src,) = t._parents
        begins = [d.start - s.start for s, d in zip(cells["src"], cells["dst"])]
        ends = [(o - d.stop) - (i - s.stop) for s, d, i, o in zip(cells["src"], cells["dst"], src.shape, t.shape)]
        axis = next((a for a, (d, o) in enumerate(zip(cells["dst"], t.shape)) if d.start or d.stop < o), None)
        value = 0.0 if axis is None else float(t.data[(0,) * axis + (0 if cells["dst"][axis].start else -1,)]
                                                .reshape(-1)[0])
        pads = self.init("pads", np.array(begins + ends, dtype=np.int64))
        fill = self.init("value", np.array(value, dtype=np.float32))
        return self.node("Pad", [self.name_of(src), pads, fill], mode="constant")

    def module_node(self, m: nn.Module, x: str, inp: Tensor) -> str:
        window = dict()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            pads = resolve_padding(m.padding, m.kernel_size, m.stride, m.dilation)
            ins = [x, self.init("weight", m.weight.data)]
            if m.bias is not None:
                ins.append(self.init("bias", m.bias.data))
            return self.node("Conv", ins, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                             pads=[p[0] for p in pads] + [p[1] for p in pads], dilations=list(m.dilation),
                             group=m.groups)
        if isinstance(m, nn.Linear):
            ins = [x, self.init("weight", m.weight.data)]
            if m.bias is not None:
                ins.append(self.init("bias", m.bias.data))
            return self.node("Gemm", ins, transB=1)
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
            k, s, p = m._geometry
            window = dict(kernel_shape=list(k), strides=list(s), pads=list(p) * 2, ceil_mode=int(m.ceil_mode))
            if m._kind == "max":
                d = m.dilation
                window["dilations"] = [d] * len(k) if isinstance(d, int) else list(d)
                return self.node("MaxPool", [x], **window)
            return self.node("AveragePool", [x], count_include_pad=int(m.count_include_pad), **window)
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.GlobalAvgPool2d)):
            in_size = inp.shape[2:]
            out = getattr(m, "output_size", 1)
            out = (out,) * len(in_size) if isinstance(out, int) else tuple(
                i if o is None else o for i, o in zip(in_size, out))
            if all(o == 1 for o in out) or isinstance(m, nn.GlobalAvgPool2d):
                y = self.node("GlobalAveragePool", [x])
                return self.node("Flatten", [y], axis=1) if getattr(m, "flatten", False) is True else y
            if all(o % i == 0 for i, o in zip(in_size, out)):  # each window is one input cell: nearest upsampling
                scales = self.init("scales", np.array([1.0, 1.0] + [o / i for i, o in zip(in_size, out)], np.float32))
                return self.node("Resize", [x, "", scales], mode="nearest", nearest_mode="floor",
                                 coordinate_transformation_mode="asymmetric")
            if any(i % o for i, o in zip(in_size, out)):
                raise ValueError(f"export_onnx: {m!r} on a {in_size} input has uneven windows; ONNX has no "
                                 f"adaptive pooling — export at an input size divisible by {out}")
            k = [i // o for i, o in zip(in_size, out)]
            return self.node("AveragePool", [x], kernel_shape=k, strides=k)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            w = m.weight.data if m.weight is not None else np.ones(c, np.float32)
            b = m.bias.data if m.bias is not None else np.zeros(c, np.float32)
            return self.node("BatchNormalization", [x, self.init("gamma", w), self.init("beta", b),
                                                    self.init("mean", m.running_mean.data),
                                                    self.init("var", m.running_var.data)], epsilon=float(m.eps))
        if isinstance(m, nn.LocalResponseNorm):
            return self.node("LRN", [x], size=int(m.size), alpha=float(m.alpha), beta=float(m.beta),
                             bias=float(m.k))
        if isinstance(m, nn.ReLU):
            return self.node("Relu", [x])
        if isinstance(m, nn.LeakyReLU):
            return self.node("LeakyRelu", [x], alpha=float(m.negative_slope))
        if isinstance(m, nn.Sigmoid):
            return self.node("Sigmoid", [x])
        if isinstance(m, nn.Tanh):
            return self.node("Tanh", [x])
        if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            axis = m.dim if m.dim is not None else 1
            base = getattr(m, "base", None)
            if base is not None:
                x = self.node("Mul", [x, self.init("log_base", np.array(math.log(base), dtype=np.float32))])
            return self.node("Softmax" if isinstance(m, nn.Softmax) else "LogSoftmax", [x], axis=axis)
        if isinstance(m, nn.Flatten):
            return self.node("Flatten", [x], axis=m.start_dim)
        if isinstance(m, (nn.Dropout, nn.Identity)):
            return self.node("Identity", [x])
        raise ValueError(f"export_onnx: no ONNX translation for layer {type(m).__name__}")


_LEAF_TYPES = None


def _leaf_types():
    global _LEAF_TYPES
    if _LEAF_TYPES is None:
        _LEAF_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
                       nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                       nn.AdaptiveAvgPool3d, nn.GlobalAvgPool2d, nn.BatchNorm1d, nn.BatchNorm2d,
                       nn.LocalResponseNorm, nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softmax,
                       nn.LogSoftmax, nn.Flatten, nn.Dropout, nn.Identity)
    return _LEAF_TYPES


def export_onnx(model: nn.Module, input_size, path, opset: int = OPSET, check: bool = True, *, classes=None,
                mean=None, std=None, metadata: dict | None = None):
    """Write ``model`` (in inference mode) as an ONNX file with a dynamic batch dimension.

    The graph's input is named ``input`` (``N×C×H×W`` float32) and its output ``logits``. What a serving
    runtime needs beside the weights goes into the model's ``metadata_props`` (strings; lists as JSON):
    ``input_size`` (``[C, H, W]``), ``input_layout`` (``NCHW``), ``output`` (what the output is), and when
    given ``classes`` (the class of each output, in order), ``mean`` and ``std`` (per channel: the input is
    ``(pixel / 255 − mean) / std``), and any entries of ``metadata`` (JSON-encoded unless strings).
    ``onnx.load(path).metadata_props`` or onnxruntime's ``session.get_modelmeta().custom_metadata_map``
    read them back.

    Args:
        model: a cnnkit ``Module``.
        input_size: ``(C, H, W)`` (or ``(C, L)``, ``(C, D, H, W)``) of one input.
        path: output ``.onnx`` file, written atomically.
        opset: ONNX opset version. Default: 17.
        check: run ``onnx.checker.check_model`` on the result.
        classes: the class names, one per output (their number must equal the model's outputs).
        mean, std: the normalisation of the input, one value per channel.
        metadata: more ``metadata_props`` entries.

    Returns:
        the ``onnx.ModelProto``. Layers: Conv (strides, pads, dilations, group), MaxPool, AveragePool,
        GlobalAveragePool, Gemm, Relu, LeakyRelu, Sigmoid, Tanh, BatchNormalization, LRN, Concat, Add,
        Slice, Pad (``F.pad``), Softmax, Flatten, Dropout (as Identity).
    """
    input_size = tuple(int(v) for v in input_size)
    props = _metadata(input_size, classes, mean, std, metadata)
    was_training = model.training
    model.eval()
    x = Tensor(np.zeros((1,) + input_size, dtype=np.float32), requires_grad=True)
    b = _Builder(model, x)
    handles = []

    def hook(module, inputs, output):
        if isinstance(output, Tensor) and output is not inputs[0]:
            b.produced_by[id(output)] = (module, inputs[0])
            b.keep.append(output)

    for m in model.modules():
        if isinstance(m, _leaf_types()) and not any(True for _ in m.children()):
            handles.append(m.register_forward_hook(hook))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))  # the graph walk recurses once per layer (ResNet-152: ~500)
    try:
        with enable_grad():
            y = model(x)
        if not isinstance(y, Tensor):
            raise ValueError(f"export_onnx: the model returned {type(y).__name__}; only a single tensor output "
                             f"can be exported (for GoogLeNet build it with aux_logits=False)")
        out_name = b.name_of(y)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        sys.setrecursionlimit(limit)
    if classes is not None and (y.ndim != 2 or y.shape[1] != len(classes)):
        raise ValueError(f"export_onnx: {len(classes)} classes given, but the model's output is "
                         f"{'×'.join(map(str, y.shape[1:]))} per input")
    helper, onnx = b.helper, b.onnx
    b.nodes.append(helper.make_node("Identity", [out_name], [OUTPUT], name=OUTPUT))   # the output's public name
    dims = ["N"] + list(input_size)
    graph = helper.make_graph(
        b.nodes, type(model).__name__,
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, ["N"] + list(y.shape[1:]))],
        initializer=b.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="cnnkit")
    proto.ir_version = min(proto.ir_version, 8)
    helper.set_model_props(proto, props)
    if check:
        onnx.checker.check_model(proto)
    atomic_write(path, proto.SerializeToString())
    return proto


OUTPUT = "logits"


def _metadata(input_size, classes, mean, std, extra) -> dict:
    """The ``metadata_props`` of an export, checked before anything is traced."""
    import json
    channels = input_size[0]
    props = {"input_size": json.dumps(list(input_size)), "input_layout": "NC" + "DHW"[3 - (len(input_size) - 1):],
             "output": "logits: one unnormalised score per class (softmax gives the probabilities)"}
    if classes is not None:
        classes = [str(c) for c in classes]
        props["classes"] = json.dumps(classes)
    for key, v in (("mean", mean), ("std", std)):
        if v is None:
            continue
        v = [float(a) for a in np.atleast_1d(np.asarray(v, dtype=np.float64))]
        if len(v) != channels or not all(math.isfinite(a) for a in v) or (key == "std" and min(v) <= 0):
            raise ValueError(f"export_onnx: {key} must be {channels} finite value(s){' > 0' if key == 'std' else ''}, "
                             f"one per input channel, got {v}")
        props[key] = json.dumps(v)
    if mean is not None or std is not None:
        props["normalize"] = "input = (pixel / 255 - mean) / std, per channel"
    for k, v in (extra or {}).items():
        props[str(k)] = v if isinstance(v, str) else json.dumps(v, allow_nan=False)
    return props
