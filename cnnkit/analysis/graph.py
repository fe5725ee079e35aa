"""The wiring of a traced network: receptive fields through branches, joins, and live memory.

Nodes are the tensors the forward pass makes *between* layers: the input, each leaf layer's output,
and the outputs of the ops a model applies itself (``out + identity`` in a residual block, ``cat`` in
an Inception module, ``x.flatten(1)``). A leaf layer's output leads straight back to its input (the
ops inside the layer are not visited). A free op leads back to its parents that descend from the input
(weights and constants do not).

Receptive field, jump (effective stride) and start (centre of the first output's field, in input
pixel indices; negative = in the padding) follow the layers with :func:`cnnkit.shape.receptive_field`;
at a join (addition, concatenation) the path with the **largest** receptive field wins.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from .. import shape
from ..tensor import topological_order
from .trace import Trace, geometry_of

__all__ = ["Field", "Graph", "per_image"]


@dataclass(frozen=True)
class Field:
    """Receptive field, jump and start of one tensor, one entry per spatial axis (H, W order)."""
    rf: tuple
    jump: tuple
    start: tuple

    def through(self, kernel, stride, padding, dilation) -> "Field":
        axes = [shape.receptive_field(r, j, s0, k, s, p, d) for r, j, s0, k, s, p, d in
                zip(self.rf, self.jump, self.start, kernel, stride, padding, dilation)]
        return Field(*(tuple(a[i] for a in axes) for i in range(3)))

    def collapse(self, spatial) -> "Field":
        """Every output sees the whole input (flatten before a fully-connected layer, global pooling)."""
        n = len(spatial)
        return self.through(spatial, (1,) * n, (0,) * n, (1,) * n)

    @property
    def size(self) -> int:
        return sum(self.rf)


def _op_name(t) -> str:
    fn = getattr(t, "_backward", None)
    q = getattr(fn, "__qualname__", "") or ""
    head = q.split(".<locals>")[0]
    return head.split(".")[-1].strip("_") or "op"


def per_image(t) -> int:
    """Elements of one image of tensor ``t``: the product of its shape after the batch dimension."""
    return int(math.prod(t.shape[1:]))


class Graph:
    """Walks a :class:`~cnnkit.analysis.trace.Trace` once; answers per-tensor questions by id."""

    JOIN_OPS = {"add", "radd", "sub", "rsub", "mul", "rmul"}  # element-wise joins counted by count="all"

    def __init__(self, tr: Trace):
        self.trace = tr
        self.nsp = tr.input.ndim - 2
        self.produced = {}        # id(tensor) -> leaf Call that made it
        self.container_out = {}   # id(tensor) -> innermost container Call returning it
        for c in tr.calls:        # pre-order: inner calls come later and win
            in_ids = {id(t) for t in c.inputs}
            for o in c.outputs:
                if id(o) in in_ids:
                    continue      # returns its input (Identity, Dropout in eval): no new tensor
                if c.is_leaf:
                    self.produced.setdefault(id(o), c)
                else:
                    self.container_out[id(o)] = c
        self.order = self._topological()
        self.fields = self._fields()
        self._free_ops()
        self.peak = self._peak()

    # --- structure
    def sources(self, t) -> list:
        if t is self.trace.input:
            return []
        c = self.produced.get(id(t))
        if c is not None:
            return list(c.inputs)
        return [p for p in getattr(t, "_parents", ()) if p.requires_grad]

    def _topological(self) -> list:
        return topological_order(self.trace.outputs, self.sources)

    # --- receptive field
    def _fields(self) -> dict:
        fields = {}
        n = self.nsp
        for t in self.order:
            if t is self.trace.input:
                fields[id(t)] = Field((1,) * n, (1,) * n, (0.0,) * n)
                continue
            c = self.produced.get(id(t))
            if c is not None:
                x = c.inputs[0] if c.inputs else None
                f = fields.get(id(x)) if x is not None else None
                fields[id(t)] = None if f is None else self._through_layer(c, x, t, f)
                continue
            parents = [(p, fields.get(id(p))) for p in self.sources(t)]
            parents = [(p, f) for p, f in parents if f is not None]
            if not parents:
                fields[id(t)] = None
                continue
            p, f = max(parents, key=lambda pf: pf[1].size)
            fields[id(t)] = self._through_free_op(p, t, f)
        return fields

    def _through_layer(self, call, x, y, f: Field) -> Field:
        spatial = tuple(x.shape[2:])
        if len(spatial) == self.nsp and self.nsp:
            g = geometry_of(call.module, spatial)
            if g is not None and g.kind != "conv_transpose":
                return f.through(g.kernel_size, g.stride, tuple(p[0] for p in g.padding), g.dilation)
            if y.ndim < x.ndim:  # Flatten: the next layer sees everything
                return f.collapse(spatial)
        return f

    def _through_free_op(self, x, y, f: Field) -> Field:
        if x.ndim != 2 + self.nsp or not self.nsp:
            return f
        sx, sy = tuple(x.shape[2:]), tuple(y.shape[2:])
        if y.ndim < x.ndim:            # x.flatten(1) / x.view(N, -1)
            return f.collapse(sx)
        if y.ndim != x.ndim or sx == sy:
            return f
        # sub-sampling (x[:, :, ::2, ::2]) multiplies the jump; padding moves the start
        stride = tuple(max(1, round(a / b)) if b < a else 1 for a, b in zip(sx, sy))
        pad = tuple((b - a) // 2 if b > a else 0 for a, b in zip(sx, sy))
        return f.through((1,) * self.nsp, stride, pad, (1,) * self.nsp)

    def field(self, t) -> Field | None:
        return self.fields.get(id(t))

    # --- ops the model applies itself
    def _free_ops(self) -> None:
        """Per owning call: elements made by joins, element-wise join ops (for count='all')."""
        self.join_elements = defaultdict(int)   # Call index (or -1 = model) -> elements per image
        self.join_ops = defaultdict(int)
        self.joins = defaultdict(list)          # owner -> [(op name, [parent shapes], output shape)]
        consumer_call = {}
        for c in self.trace.calls:
            if c.is_leaf:
                for x in c.inputs:
                    consumer_call.setdefault(id(x), c.parent)
        for t in self.order:
            if t is self.trace.input or id(t) in self.produced or self.fields.get(id(t)) is None:
                continue
            act = [p for p in self.sources(t) if self.fields.get(id(p)) is not None]
            if len(act) < 2:
                continue
            owner = self.container_out.get(id(t)) or consumer_call.get(id(t))
            key = owner.index if owner is not None else -1
            self.join_elements[key] += per_image(t)
            self.joins[key].append((_op_name(t), [tuple(p.shape[1:]) for p in act], tuple(t.shape[1:])))
            if _op_name(t) in self.JOIN_OPS:
                self.join_ops[key] += per_image(t)

    def is_join(self, t) -> bool:
        return (t is not self.trace.input and id(t) not in self.produced
                and sum(self.fields.get(id(p)) is not None for p in self.sources(t)) >= 2)

    # --- live memory
    def _peak(self) -> int:
        """Largest number of activation elements (per image) alive at once during the forward pass.

        Real nodes: the input, each leaf layer's new output, each join's output. A single-input op of
        the model's own (reshape, slicing) is an alias of its source. A node is alive from the step that
        makes it to the last step that reads it; the model's outputs stay alive to the end.
        """
        real, alias = [], {}
        for t in self.order:
            if self.fields.get(id(t)) is None:
                continue
            if t is self.trace.input or id(t) in self.produced or self.is_join(t):
                real.append(t)
            else:
                srcs = [p for p in self.sources(t) if self.fields.get(id(p)) is not None]
                alias[id(t)] = alias.get(id(srcs[0]), srcs[0]) if srcs else t

        def resolve(t):
            return alias.get(id(t), t)

        pos = {id(t): i for i, t in enumerate(real)}
        last = {id(t): i for i, t in enumerate(real)}
        for i, t in enumerate(real):
            for s in self.sources(t):
                s = resolve(s)
                if id(s) in last:
                    last[id(s)] = max(last[id(s)], i)
        for o in self.trace.outputs:
            o = resolve(o)
            if id(o) in last:
                last[id(o)] = len(real)
        delta = [0] * (len(real) + 2)
        for t in real:
            delta[pos[id(t)]] += per_image(t)
            delta[last[id(t)] + 1] -= per_image(t)
        peak = running = 0
        for d in delta:
            running += d
            peak = max(peak, running)
        return peak
