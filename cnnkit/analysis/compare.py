"""``cnnkit compare``: the lecture's side-by-side comparisons, with the numbers derived.

* ``compare("stacked")`` — one F×F convolution vs L stacked 3×3 ones with the same receptive field
  (7×7 vs three 3×3: 49D² vs 27D² parameters; L stacked 3×3 see 1 + 2L pixels).
* ``compare("bottleneck")`` — Inception's 5×5 branch on 28×28×192 without and with the 1×1 reduction
  (153,600 vs 15,872 weights; ≈120M vs ≈12.4M multiplies).
* ``compare("separable")`` — regular vs depthwise-separable convolution on 6×6×2 → 4×4×4
  (72 vs 26 weights; 1,152 vs 416 multiplies).
* ``compare(["resnet18", "vgg16"])`` — zoo models' totals side by side.

Biases are left out of the layer comparisons, as the lecture does there. Every number comes from
:mod:`cnnkit.shape`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import shape

__all__ = ["Comparison", "compare", "KINDS"]

KINDS = ("stacked", "bottleneck", "separable")
#: The text view's header of each column (the JSON keeps the keys).
LABELS = {"receptive_field": "receptive field", "params": "params", "params_per_D2": "params / D²", "macs": "MACs",
          "input": "input", "activations": "activations", "training_bytes": "training memory",
          "inference_bytes": "inference memory"}


@dataclass
class Comparison:
    """Rows of the same quantities for each alternative, plus the derivation as text lines."""
    title: str
    columns: list
    rows: list                      # dicts: {"label": ..., <column>: value}
    lines: list = field(default_factory=list)

    def __getitem__(self, label: str) -> dict:
        for r in self.rows:
            if r["label"] == label:
                return r
        raise KeyError(f"no row {label!r} in comparison {self.title!r}; rows: {[r['label'] for r in self.rows]}")

    def to_dict(self) -> dict:
        return {"title": self.title, "columns": list(self.columns), "rows": [dict(r) for r in self.rows],
                "derivation": list(self.lines)}

    def __str__(self) -> str:
        from .views import WIDTH, wrap
        heads = ["", *(LABELS.get(c, c.replace("_", " ")) for c in self.columns)]
        cells = [[r["label"]] + [_cell(r.get(c), c) for c in self.columns] for r in self.rows]
        widths = [max(len(str(x)) for x in col) for col in zip(heads, *cells)]
        fmt = lambda row: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                    for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        out = [self.title, fmt(heads)] + [fmt(c) for c in cells]
        if self.lines:
            out += [""] + [w for line in self.lines for w in wrap(line, WIDTH)]
        return "\n".join(out) + "\n"


def _cell(v, column: str = "") -> str:
    if v is None:
        return ""
    if column.endswith("_bytes"):
        from .views import human_bytes
        return human_bytes(v)
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"compare: {name} must be a positive int, got {v!r}")
    return v


def stacked(depth: int = 64, layers: int = 3, kernel_size: int = 3, size: int = 56) -> Comparison:
    """One big convolution vs ``layers`` stacked ``kernel_size`` ones with the same receptive field.

    All volumes have depth ``D = depth`` and spatial size ``size`` (stride 1, 'same' padding).
    """
    d, n, k, sz = (_positive(a, v) for a, v in (("depth", depth), ("layers", layers), ("kernel_size", kernel_size),
                                                  ("size", size)))
    rf = 1
    jump = 1
    for _ in range(n):
        rf, jump, _s = shape.receptive_field(rf, jump, 0.0, k)
    big = rf  # the single kernel with the same receptive field: 1 + L·(k − 1)
    big_rf = shape.receptive_field(1, 1, 0.0, big)[0]
    p_big = shape.conv_params(d, d, (big, big), bias=True)
    p_small = n * shape.conv_params(d, d, (k, k), bias=True)
    m_big = shape.conv_macs(d, d, (big, big), (sz, sz))
    m_small = n * shape.conv_macs(d, d, (k, k), (sz, sz))
    rows = [
        {"label": f"one {big}×{big} conv", "receptive_field": big_rf, "params": p_big, "params_per_D2": big * big,
         "macs": m_big},
        {"label": f"{n} stacked {k}×{k} convs", "receptive_field": rf, "params": p_small,
         "params_per_D2": n * k * k, "macs": m_small},
    ]
    lines = [
        f"receptive field: {n} stacked {k}×{k} (stride 1) see 1 + {n}·({k} − 1) = {rf} pixels"
        + (f" (= 1 + 2L for L = {n})" if k == 3 else "") + f"; one {big}×{big} sees {big_rf}",
        f"params: ({big}·{big}·D + 1)·D ≈ {big * big}D² vs {n}·({k}·{k}·D + 1)·D ≈ {n * k * k}D²; "
        f"for D = {d}: {p_big:,} vs {p_small:,} (ratio {p_small / p_big:.2f})",
        f"MACs at {sz}×{sz} (bias excluded): {big}·{big}·{d}·{d}·{sz}·{sz} = {m_big:,} vs "
        f"{n}·{k}·{k}·{d}·{d}·{sz}·{sz} = {m_small:,}",
        f"and {n} non-linearities instead of 1: more depth, more capacity",
    ]
    return Comparison(f"One {big}×{big} convolution vs {n} stacked {k}×{k} (depth D = {d})",
                      ["receptive_field", "params", "params_per_D2", "macs"], rows, lines)


def bottleneck(input_size=(192, 28, 28), reduce: int = 16, out_channels: int = 32, kernel_size: int = 5) -> Comparison:
    """Inception's F×F branch without and with the 1×1 bottleneck ('same' padding, stride 1, no bias)."""
    c, h, w = input_size
    r, k, f = (_positive(a, v) for a, v in (("reduce", reduce), ("out_channels", out_channels),
                                            ("kernel_size", kernel_size)))
    p_direct = shape.conv_params(c, k, (f, f), bias=False)
    m_direct = shape.conv_macs(c, k, (f, f), (h, w))
    p1, m1 = shape.conv_params(c, r, (1, 1), bias=False), shape.conv_macs(c, r, (1, 1), (h, w))
    p2, m2 = shape.conv_params(r, k, (f, f), bias=False), shape.conv_macs(r, k, (f, f), (h, w))
    rows = [
        {"label": f"{f}×{f} conv directly", "params": p_direct, "macs": m_direct},
        {"label": f"1×1 to {r}, then {f}×{f}", "params": p1 + p2, "macs": m1 + m2},
    ]
    lines = [
        f"input {w}×{h}×{c}, output {w}×{h}×{k} (biases not counted, as in the lecture)",
        f"without the bottleneck: params = {f}·{f}·{c}·{k} = {p_direct:,}; "
        f"MULs = ({f}·{f}·{c})·({k}·{h}·{w}) = {m_direct:,} (≈ {m_direct / 1e6:.1f}M)",
        f"with the bottleneck: params = 1·1·{c}·{r} + {f}·{f}·{r}·{k} = {p1:,} + {p2:,} = {p1 + p2:,}; "
        f"MULs = (1·1·{c})·({r}·{h}·{w}) + ({f}·{f}·{r})·({k}·{h}·{w}) = {m1:,} + {m2:,} = {m1 + m2:,} "
        f"(≈ {(m1 + m2) / 1e6:.1f}M)",
        f"≈ {p_direct / (p1 + p2):.1f}× fewer parameters, {m_direct / (m1 + m2):.1f}× fewer multiplies",
    ]
    return Comparison(f"Inception {f}×{f} branch on {w}×{h}×{c}: without vs with 1×1 bottleneck",
                      ["params", "macs"], rows, lines)


def separable(input_size=(2, 6, 6), out_channels: int = 4, kernel_size: int = 3) -> Comparison:
    """Regular vs depthwise-separable convolution (valid padding, stride 1, no bias)."""
    c, h, w = input_size
    k, f = _positive("out_channels", out_channels), _positive("kernel_size", kernel_size)
    ho, wo = shape.conv_output_size(h, f), shape.conv_output_size(w, f)
    if ho < 1 or wo < 1:
        raise ValueError(f"compare separable: a {f}×{f} kernel does not fit a {w}×{h} input")
    p_reg, m_reg = shape.conv_params(c, k, (f, f), bias=False), shape.conv_macs(c, k, (f, f), (ho, wo))
    p_dw = shape.conv_params(c, c, (f, f), groups=c, bias=False)        # depthwise: one f×f×1 filter per channel
    m_dw = shape.conv_macs(c, c, (f, f), (ho, wo), groups=c)
    p_pw, m_pw = shape.conv_params(c, k, (1, 1), bias=False), shape.conv_macs(c, k, (1, 1), (ho, wo))
    rows = [
        {"label": "regular", "params": p_reg, "macs": m_reg},
        {"label": "depthwise-separable", "params": p_dw + p_pw, "macs": m_dw + m_pw},
    ]
    lines = [
        f"input {w}×{h}×{c} → output {wo}×{ho}×{k} ({f}×{f} filters, stride 1, no padding, biases not counted)",
        f"regular: {k} {f}×{f}×{c} filters: params = {f}·{f}·{c}·{k} = {p_reg:,}; "
        f"MULs = ({f}·{f}·{c})·({k}·{ho}·{wo}) = {m_reg:,}",
        f"depthwise: {c} {f}×{f}×1 filters, then pointwise: {k} 1×1×{c} filters: "
        f"params = {f}·{f}·{c} + {c}·{k} = {p_dw + p_pw:,}; "
        f"MULs = ({f}·{f}·1)·({c}·{ho}·{wo}) + (1·1·{c})·({k}·{ho}·{wo}) = {m_dw:,} + {m_pw:,} = {m_dw + m_pw:,}",
    ]
    return Comparison(f"Regular vs depthwise-separable convolution, {w}×{h}×{c} → {wo}×{ho}×{k}",
                      ["params", "macs"], rows, lines)


def models(names, input_size=None, **summary_kwargs) -> Comparison:
    """Totals of several models (zoo names or modules) side by side."""
    from .records import volume
    from .summary import summary
    rows = []
    for item in names:
        s = summary(item, input_size, **summary_kwargs)
        t = s.total
        rows.append({"label": s.model_name, "input": volume(s.input_size), "params": t["params"],
                     "macs": t["macs"], "activations": t["activations"],
                     "training_bytes": t["training_bytes"], "inference_bytes": t["inference_bytes"]})
    return Comparison("Models side by side (MACs: conv + linear, bias excluded; per image; memory at batch "
                      f"{summary_kwargs.get('batch_size', 1)})",
                      ["input", "params", "macs", "activations", "training_bytes", "inference_bytes"], rows)


def compare(what="stacked", **kwargs) -> Comparison:
    """One of the lecture's comparisons (``"stacked"``, ``"bottleneck"``, ``"separable"``) or a list of
    models. Keyword arguments go to :func:`stacked`, :func:`bottleneck`, :func:`separable` or :func:`models`.

    Example::

        >>> c = cnnkit.analysis.compare("bottleneck")
        >>> c["5×5 conv directly"]["params"], c["1×1 to 16, then 5×5"]["params"]
        (153600, 15872)
    """
    if isinstance(what, str):
        fn = {"stacked": stacked, "bottleneck": bottleneck, "separable": separable}.get(what)
        if fn is None:
            raise ValueError(f"compare: unknown comparison {what!r}; expected one of {', '.join(KINDS)} "
                             f"or a list of models")
        return fn(**kwargs)
    return models(list(what), **kwargs)
