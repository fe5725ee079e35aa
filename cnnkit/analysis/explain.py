"""``cnnkit explain``: each layer's numbers derived as the lecture derives them, numbers substituted.

The text is a view of a :class:`~cnnkit.analysis.records.Summary`: every number printed comes from
the records (themselves from :mod:`cnnkit.shape`); this module only writes the formulas out.
Where a published table cannot be reproduced from its own layer definitions, the text says so.
"""
from __future__ import annotations

import math

from .. import shape
from .records import LayerRecord, volume
from .summary import resolve_model, summary

__all__ = ["explain", "explain_dict", "explain_layer", "published_rows", "weights_only", "PUBLISHED_NOTES", "PUBLISHED_ROWS"]

#: What the papers (or the lecture) print that the layer definitions do not give — by zoo name.
PUBLISHED_NOTES = {
    "lenet5": [
        "The lecture treats C3 as fully connected: (5·5·6 + 1)·16 = 2,416 parameters. LeCun et al. (1998) "
        "connect each C3 map to a subset of S2's maps (their Table I): 1,516 parameters (c3_table=True).",
        "The 1998 output layer is 10 Euclidean RBF units; the lecture uses FC + softmax: (84 + 1)·10 = 850.",
    ],
    "alexnet": [
        "The paper states a 224×224 input, but (224 − 11)/4 + 1 = 54.25 is not an integer; with 227 (as the "
        "lecture uses) (227 − 11)/4 + 1 = 55.",
        "The lecture's 'Total # params: 60M' is rounded; the count below is exact for this definition.",
    ],
    "googlenet": [
        "Szegedy et al. (2014) Table 1: 'params' counts weights only, 'ops' are multiply-accumulates, K = 1,024. "
        "Its rows are compared with this model below; rows 'convolution 7×7/2', 4c and 5a do not follow from "
        "their own layer definitions (a 7×7×3 → 64 conv has 7·7·3·64 = 9,408 weights, not 2.7K).",
    ],
    "mobilenet_v1": [
        "Howard et al. (2017) Table 1 lists the last depthwise layer on the 7×7×1024 input with stride 2; it "
        "must be stride 1 for the 7×7 output the table gives. 1.0-224: ≈ 4.2M parameters, 569M mult-adds.",
    ],
}


#: Published per-row tables: zoo name → [(layers summed, the row's label, params in K = 1,024, ops in M)]
PUBLISHED_ROWS = {
    "googlenet": [  # Szegedy et al. 2014, Table 1
        ("conv1", "convolution 7×7/2", 2.7, 34), ("conv2+conv3", "convolution 3×3/1", 112, 360),
        ("inception3a", "inception (3a)", 159, 128), ("inception3b", "inception (3b)", 380, 304),
        ("inception4a", "inception (4a)", 364, 73), ("inception4b", "inception (4b)", 437, 88),
        ("inception4c", "inception (4c)", 463, 100), ("inception4d", "inception (4d)", 580, 119),
        ("inception4e", "inception (4e)", 840, 170), ("inception5a", "inception (5a)", 1072, 54),
        ("inception5b", "inception (5b)", 1388, 71), ("fc", "linear", 1000, 1),
    ],
}
#: A printed row "reproduces" when both numbers are within this fraction (or one printed unit) of the
#: definition's: the papers round to whole K and M, and loosely.
ROW_TOLERANCE = 0.02


def weights_only(rows, prefix: str) -> int:
    """Parameters minus biases of the layers named ``prefix`` or inside it (what papers call weights)."""
    return sum(r.params - ((r.filters or r.output[-1]) if r.bias else 0) for r in rows
               if r.leaf and (r.name == prefix or r.name.startswith(prefix + ".")))


def published_rows(s, name: str) -> list:
    """Lines comparing a published per-row table with the model's own numbers (empty if none applies)."""
    table = PUBLISHED_ROWS.get(str(name).lower())
    names = {r.name for r in s.layers}
    if not table or not all(n in names for layers, *_ in table for n in layers.split("+")):
        return []
    lines = []
    for layers, label, params_k, ops_m in table:
        parts = layers.split("+")
        w = sum(weights_only(s.layers, n) for n in parts)
        macs = sum(s[n].subtree_macs for n in parts)
        ok = (abs(w / 1024 - params_k) <= max(1, ROW_TOLERANCE * params_k)
              and abs(macs / 1e6 - ops_m) <= max(1, ROW_TOLERANCE * ops_m))
        lines.append(f"{label:<18} printed {params_k:>6g}K {ops_m:>4g}M; definition gives {w / 1024:7.1f}K "
                     f"{macs / 1e6:6.1f}M  {'reproduces' if ok else 'DOES NOT reproduce'}")
    return lines


def _n(v) -> str:
    """Integers with thousands separators, other numbers compactly."""
    if isinstance(v, float) and not v.is_integer():
        return f"{v:g}"
    return f"{int(v):,}"


def _axes_names(n: int) -> list:
    return {1: ["L"], 2: ["H", "W"], 3: ["T", "H", "W"]}.get(n, [f"X{i}" for i in range(n)])


def _size_lines(r: LayerRecord, ceil_mode: bool = False) -> list:
    """``W2 = (W1 − F + 2P)/S + 1 = … = 28`` for each spatial axis (W first, as the lecture)."""
    sp_in, sp_out = r.input[1:], r.output[1:]
    names = _axes_names(len(sp_in))
    lines, done = [], {}
    for ax in reversed(range(len(sp_in))):
        k, s, d = r.kernel_size[ax], r.stride[ax], (r.dilation or (1,) * len(sp_in))[ax]
        p1 = r.padding[ax]
        p2 = p1 if r.padding_after is None else r.padding_after[ax]
        w1, w2 = sp_in[ax], sp_out[ax]
        key = (w1, k, s, d, p1, p2)
        a = names[ax]
        if key in done:  # same numbers as another axis: say so once
            lines[done[key]] += f"  ({a}2 the same)"
            continue
        f = d * (k - 1) + 1
        pre = ""
        if d != 1:
            pre = f"F' = d·(F − 1) + 1 = {d}·({k} − 1) + 1 = {f} (dilated); "
        pad = "0" if p1 == p2 == 0 else f"2·{p1}" if p1 == p2 else f"{p1} + {p2}"
        sym = "2P" if p1 == p2 else "P1 + P2"
        num = w1 - f + p1 + p2
        if num % s == 0:
            tail = f"= ({w1} − {f} + {pad})/{s} + 1 = {w2}"
        else:
            rnd = "⌈" if ceil_mode else "⌊"
            end = "⌉" if ceil_mode else "⌋"
            tail = f"= {rnd}({w1} − {f} + {pad})/{s}{end} + 1 = {rnd}{num}/{s}{end} + 1 = {w2}"
            if ceil_mode:
                tail += "  (ceil_mode: rounded up)"
            if not ceil_mode and r.unprocessed and r.unprocessed[ax]:
                tail += (f"  ← {num}/{s} is not an integer: the last {r.unprocessed[ax]} input "
                         f"{'column' if ax == len(sp_in) - 1 else 'row'}(s) are never processed")
        fsym = "F'" if d != 1 else "F"
        lines.append(f"{pre}{a}2 = ({a}1 − {fsym} + {sym})/S + 1 {tail}")
        done[key] = len(lines) - 1
    return lines


def _rf_line(r: LayerRecord) -> str:
    if r.receptive_field is None or r.kernel_size is None:
        return ""
    ax = len(r.receptive_field) - 1
    rf, jump = r.receptive_field[ax], r.jump[ax]
    k, s = r.kernel_size[ax], r.stride[ax]
    d = (r.dilation or (1,) * (ax + 1))[ax]
    jin = jump // s if s and jump % s == 0 else jump / s
    span = d * (k - 1)
    rin = rf - span * jin
    dpart = f"{d}·" if d != 1 else ""
    d_sym = "d·" if d != 1 else ""
    return (f"RF = RF_in + {d_sym}(F − 1)·jump_in = {_n(rin)} + {dpart}({k} − 1)·{_n(jin)} = {_n(rf)}; "
            f"jump = jump_in·S = {_n(jin)}·{s} = {_n(jump)}")


def explain_layer(r: LayerRecord, ceil_mode: bool = False) -> str:
    """The derivation of one record's numbers, as lines of text."""
    head = f"{r.name or '(model)'} ({r.type}): {volume(r.input)} → {volume(r.output)}"
    if not r.called:
        return f"{r.name} ({r.type}): not run in this forward pass; {r.params:,} parameters counted"
    lines = [head]
    if r.filters is not None and r.kernel_size is not None:          # convolution
        g = r.groups or 1
        d1 = r.input[0]
        k_str = "·".join(str(k) for k in r.kernel_size)
        f_sym = "·".join(["F"] * len(r.kernel_size))
        lines += _size_lines(r)
        lines.append(f"D2 = K = {r.filters}")
        d_sym, d_val = ("D1", f"{d1}") if g == 1 else ("D1/g", f"{d1}/{g}")
        b, b_val = (" + 1", " + 1") if r.bias else ("", "")
        per = d1 // g * math.prod(r.kernel_size)
        params = shape.conv_params(d1, r.filters, r.kernel_size, g, bool(r.bias))
        lines.append(f"params = ({f_sym}·{d_sym}{b})·K = ({k_str}·{d_val}{b_val})·{r.filters} = {params:,}"
                     + ("" if r.bias else " (no bias)"))
        out_sp = r.output[1:]
        o_sym = "·".join(reversed([f"{a}2" for a in _axes_names(len(out_sp))]))
        o_val = "·".join(str(v) for v in reversed(out_sp))
        muls = shape.conv_macs(d1, r.filters, r.kernel_size, out_sp, g, bias=bool(r.bias))
        bare = shape.conv_macs(d1, r.filters, r.kernel_size, out_sp, g, bias=False)
        lines.append(f"MULs = ({f_sym}·{d_sym}{b})·K·{o_sym} = ({k_str}·{d_val}{b_val})·{r.filters}·{o_val} "
                     f"= {muls:,}" + ("" if r.bias else "  MACs"))
        if r.bias:
            lines.append(f"MACs (bias omitted) = {per:,}·{r.filters}·{o_val} = {bare:,}")
        if g > 1:
            lines.append(f"groups = {g}: each filter sees D1/g = {d1 // g} of the {d1} input channels"
                         + (" (depthwise)" if g == d1 else ""))
        lines.append(_rf_line(r))
    elif r.kernel_size is not None:                                   # pooling
        adaptive = r.type.startswith("Adaptive") or "Global" in r.type
        if adaptive:
            lines.append(f"adaptive pooling: output fixed at {'×'.join(str(v) for v in reversed(r.output[1:]))}; "
                         f"window ≈ {'×'.join(str(v) for v in reversed(r.kernel_size))} "
                         f"(window i covers [⌊i·W1/W2⌋, ⌈(i+1)·W1/W2⌉))")
        else:
            lines += _size_lines(r, ceil_mode)
        lines.append(f"D2 = D1 = {r.input[0]}; params = 0")
        lines.append(_rf_line(r))
    elif r.bias is not None and r.input and r.output:                 # fully connected
        n_in, n_out = r.input[-1], r.output[-1]
        rows = math.prod(r.output) // max(1, n_out)
        b, bv = (" + 1", " + 1") if r.bias else ("", "")
        params = shape.linear_params(n_in, n_out, bool(r.bias))
        muls, bare = shape.linear_macs(n_in, n_out, bool(r.bias)), shape.linear_macs(n_in, n_out)
        lines.append(f"params = (N_in{b})·N_out = ({n_in}{bv})·{n_out} = {params:,}")
        lines.append(f"MULs = (N_in{b})·N_out = ({n_in}{bv})·{n_out} = {muls:,}"
                     + (f", for each of {rows:,} positions" if rows > 1 else ""))
        if r.bias:
            lines.append(f"MACs (bias omitted) = {n_in}·{n_out} = {bare:,}")
        if r.receptive_field is not None:
            lines.append(f"RF = {'×'.join(str(v) for v in reversed(r.receptive_field))}: every output sees "
                         f"every input of the layer")
    elif r.params and r.leaf and r.input:                            # e.g. BatchNorm: γ and β per channel
        c = r.input[0]
        if r.params == 2 * c:
            lines.append(f"params = 2·D = 2·{c} = {r.params:,} (scale γ and shift β per channel; running "
                         f"statistics are buffers, not parameters)")
        else:
            lines.append(f"params = {r.params:,}")
    elif r.leaf:
        lines[0] += " — no parameters" + ("" if r.input == r.output else "")
    else:                                                             # a block
        lines[0] += f" — block: {r.subtree_params:,} parameters, {r.subtree_macs:,} MACs in its layers"
    for j in r.joins:
        ins = [tuple(s) for s in j["inputs"]]
        if j["op"] == "cat":
            depths = " + ".join(str(s[0]) for s in ins)
            lines.append(f"concatenation of {len(ins)} branches: D2 = {depths} = {j['output'][0]}")
        else:
            lines.append(f"element-wise {j['op']} of {len(ins)} branches "
                         f"({' and '.join(volume(s) for s in ins)}) → {volume(tuple(j['output']))}; "
                         f"the receptive field is the largest branch's")
    lines += [f"note: {n}" for n in r.notes if not n.startswith("stride leaves")]  # said in the size line
    return "\n".join([lines[0]] + ["  " + ln for ln in lines[1:] if ln])


def _explained(model_or_name, layer, input_size) -> dict:
    """What :func:`explain` writes out, as values: the summary, the records explained with their text, the
    totals line and the published notes and rows (both views read this)."""
    model, name, size = resolve_model(model_or_name, input_size)
    s = summary(model, size, name=name)
    ceil = {n: bool(m.__dict__.get("ceil_mode", False)) for n, m in model.named_modules()}
    rows = s.layers
    if layer is not None:
        if not any(r.name == layer for r in rows):
            close = [r.name for r in rows if layer in r.name][:5]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{name} has no layer named {layer!r}{hint}")
        rows = [r for r in rows if r.name == layer or r.name.startswith(layer + ".")]
    shown = [(r, explain_layer(r, ceil.get(r.name, False))) for r in rows
             if not (r.repeat and not r.params) and (r.leaf or r.joins or r.name == layer)]  # plain containers: their layers say it all
    notes = PUBLISHED_NOTES.get(str(name).lower(), []) if layer is None else []
    return {"name": name, "summary": s, "model": model, "shown": shown, "notes": notes,
            "published": published_rows(s, name) if notes else []}


def explain(model_or_name, layer: str | None = None, input_size=None) -> str:
    """Derivations of every layer of ``model_or_name`` (or of ``layer`` and the layers inside it).

    Args:
        model_or_name: an ``nn.Module`` or a zoo name (``cnnkit.models.names()``).
        layer: dotted name of one layer or block (``"C1"``, ``"inception3a"``); all layers if ``None``.
        input_size: ``(C, H, W)``; a zoo model's default if omitted.

    Returns:
        Text: per layer the output-size formula (W2 = (W1 − F + 2P)/S + 1), the parameter and multiply
        counts ((F·F·D1 + 1)·K and (F·F·D1 + 1)·K·W2·H2) and the receptive-field step, numbers
        substituted; then notes where a published table disagrees with its own definitions.
        :func:`explain_dict` gives the same as values.

    Example::

        >>> print(cnnkit.analysis.explain("lenet5", layer="c1"))
        lenet5: input 32×32×1 (C,H,W = 1,32,32)

        c1 (Conv2d): 32×32×1 → 28×28×6
          W2 = (W1 − F + 2P)/S + 1 = (32 − 5 + 0)/1 + 1 = 28  (H2 the same)
          ...
    """
    e = _explained(model_or_name, layer, input_size)
    s = e["summary"]
    parts = [f"{e['name']}: input {volume(s.input_size)} (C,H,W = {','.join(map(str, s.input_size))})"]
    parts += [text for _, text in e["shown"]]
    if layer is None:
        t = s.total
        parts.append(f"total: params = {t['params']:,}; MACs = {t['macs']:,} (conv + linear, bias excluded)")
    if e["notes"]:
        parts.append("Published numbers:\n" + "\n".join(f"  - {n}" for n in e["notes"]))
        if e["published"]:
            parts.append("\n".join(["Published table vs this model (K: 1,024 weights, biases left out; M: 10⁶ MACs):"]
                                   + [f"  {ln}" for ln in e["published"]]))
    return "\n\n".join(parts) + "\n"


def explain_dict(model_or_name, layer: str | None = None, input_size=None) -> dict:
    """:func:`explain` as values (``cnnkit explain --json``): ``model``, ``input`` (C, H, W), ``layers`` (per
    layer explained: the summary record's fields, ``muls`` — the lecture's (F·F·D1 + 1)·K·W2·H2 with the bias
    — and ``derivation``, the text's lines), ``total`` (``None`` for one layer) and ``published`` (the notes
    and the compared table rows)."""
    e = _explained(model_or_name, layer, input_size)
    s = e["summary"]
    lecture = {r.name: r.macs for r in summary(e["model"], s.input_size, count="lecture", name=e["name"]).layers}
    layers = []
    for r, text in e["shown"]:
        d = r.to_dict()
        d["muls"] = lecture.get(r.name, r.macs)
        d["derivation"] = [ln.strip() for ln in text.splitlines()]
        layers.append(d)
    return {"model": e["name"], "input": list(s.input_size), "layers": layers,
            "total": dict(s.total) if layer is None else None,
            "published": {"notes": list(e["notes"]), "rows": list(e["published"])}}
