"""Views of a :class:`~cnnkit.analysis.records.Summary`: text table, rich table, Markdown, CSV, HTML.

All views render the same cells (:func:`table`); none computes a number of its own beyond unit
formatting.
"""
from __future__ import annotations

import csv
import html
import io

from .. import shape
from .records import COUNTS, Summary

__all__ = ["table", "to_text", "to_markdown", "to_csv", "to_rich", "to_html", "human", "human_bytes"]

HEADERS = ["Layer", "Type", "Input W×H×D", "Output W×H×D", "Filter F×F×D/S", "P", "K", "Params", "MACs",
           "Activations", "RF", "Jump", "Algorithm"]
_RIGHT = 5  # columns from here on are right-aligned numbers


def human(n: float, digits: int = 3) -> str:
    """``1813561344`` → ``'1.814 G'``; small numbers as they are."""
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.{digits}g} {unit}" if n / div < 10 ** digits else f"{n / div:,.0f} {unit}"
    return f"{n:,}"


def human_bytes(n: float) -> str:
    """Bytes in decimal units (1 MB = 10⁶ B), as the lecture's "72MB"."""
    for div, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{int(n)} B"


def _axes(v) -> str:
    if v is None:
        return ""
    v = list(v)
    return str(v[0]) if len(set(v)) == 1 else "×".join(str(a) for a in reversed(v))


def table(s: Summary, depth: int | None = None) -> tuple[list, list, list]:
    """``(headers, rows, footer lines)``; rows deeper than ``depth`` are folded into their block's row."""
    rows = []
    layers = s.layers
    for i, r in enumerate(layers):
        if depth is not None and r.depth > depth:
            continue
        has_children = i + 1 < len(layers) and layers[i + 1].depth > r.depth and layers[i + 1].called
        folded = has_children and depth is not None and r.depth == depth
        if r.leaf or folded or not has_children:
            params, macs = (r.subtree_params, r.subtree_macs) if folded else (r.params, r.macs)
            p_cell = f"{params:,}" if params or r.leaf else "0"
            m_cell = human(macs) if macs else "0"
        else:  # a block whose layers follow: its totals, already counted in them
            p_cell = f"({r.subtree_params:,})"
            m_cell = f"({human(r.subtree_macs)})"
        if r.repeat:
            p_cell += " (again)"
        elif r.frozen_params and not folded:
            p_cell += " (frozen)" if r.frozen_params == r.params else f" ({r.frozen_params:,} frozen)"
        acts = r.subtree_activations if folded else r.activations
        a_cell = f"{acts:,}" if acts else ""
        if not (r.leaf or folded or not has_children):
            a_cell = f"({r.subtree_activations:,})"
        name = "  " * max(0, r.depth - 1) + (r.name or "(model)")
        kernel = r.kernel + ("  !" if r.flagged else "")
        pad = _axes(r.padding) if r.padding_after is None else f"{_axes(r.padding)}/{_axes(r.padding_after)}"
        rows.append([name, r.type, r.input_volume, r.output_volume if r.called else "(not run)", kernel, pad,
                     "" if r.filters is None else str(r.filters), p_cell, m_cell, a_cell,
                     _axes(r.receptive_field), _axes(r.jump), r.algorithm or ""])
    return list(HEADERS), rows, footer(s)


def footer(s: Summary) -> list:
    t = s.total
    b = shape.dtype_size(s.dtype)
    lines = [
        f"Input: {_in_volume(s.input_size)} (C,H,W = {','.join(str(v) for v in s.input_size)}), "
        f"batch {s.batch_size}, {s.dtype} ({b} B per number)",
        f"Params: {t['params']:,} (trainable {t['trainable_params']:,}, frozen {t['frozen_params']:,})",
        f"MACs: {t['macs']:,} ({human(t['macs'])}) per image; FLOPs = 2 × MACs = {t['flops']:,}",
        f"  counting: {s.count} — {COUNTS[s.count]}",
        f"Activations: {t['activations']:,} per image; peak alive at once {t['peak_activations']:,}",
        f"Memory ({s.dtype}, batch {s.batch_size}, optimizer {s.optimizer}): "
        f"params {human_bytes(t['param_bytes'])}, gradients {human_bytes(t['gradient_bytes'])}, "
        f"optimizer state {human_bytes(t['optimizer_bytes'])}, activations {human_bytes(t['activation_bytes'])}",
        f"  training ≈ {human_bytes(t['training_bytes'])} (params + buffers + gradients + optimizer state + "
        f"input + activations and their gradients); inference peak ≈ {human_bytes(t['inference_bytes'])} "
        f"(params + buffers + live activations)",
    ]
    if any(r.flagged for r in s.layers):
        lines.append("  ! the stride leaves input columns/rows unprocessed (W1 − F + 2P not divisible by S)")
    if any(r.algorithm for r in s.layers):
        lines.append(f"Algorithm: the forward algorithm each convolution takes at batch {s.batch_size} on this machine "
                     f"(measured choices where cnnkit's cache has them — `cnnkit tune` measures — else the default "
                     f"order)")
    if any(r.subtree_params and not r.leaf for r in s.layers):
        lines.append("  (n) = a block's total, already counted in its layers' rows")
    lines += [f"Note: {n}" for n in s.notes]
    return lines


def _in_volume(size) -> str:
    from .records import volume
    return volume(tuple(size))


def to_text(s: Summary, depth: int | None = None) -> str:
    headers, rows, foot = table(s, depth)
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)] if rows else [len(h) for h in headers]
    right = set(range(_RIGHT, len(headers)))

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    rule = "─" * len(line(headers))
    out = [f"{s.model_name}", rule, line(headers), rule] + [line(r) for r in rows] + [rule] + foot
    return "\n".join(out) + "\n"


def to_markdown(s: Summary, depth: int | None = None) -> str:
    headers, rows, foot = table(s, depth)

    def esc(c):
        return str(c).replace("|", "\\|")
    out = [f"### {s.model_name}", "", "| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if i >= _RIGHT else "---" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(esc(c).strip() if i else esc(c).replace("  ", "&nbsp;&nbsp;")
                              for i, c in enumerate(r)) + " |" for r in rows]
    out += [""] + [f"- {line.strip()}" for line in foot]
    return "\n".join(out) + "\n"


def to_html(s: Summary, depth: int | None = None) -> str:
    """The table as an HTML ``<table>`` (a notebook's rich display), the footer lines under it."""
    headers, rows, foot = table(s, depth)
    esc = html.escape
    right = ' style="text-align:right"'
    head = "".join(f"<th{right if i >= _RIGHT else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for r in rows:
        name = r[0]
        indent = (len(name) - len(name.lstrip(" "))) // 2
        cells = [f'<td style="padding-left:{0.4 + 1.2 * indent:.1f}em">{esc(name.strip())}</td>']
        cells += [f"<td{right if i >= _RIGHT else ''}>{esc(str(c))}</td>" for i, c in enumerate(r[1:], 1)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<li>{esc(line.strip())}</li>" for line in foot)
    return (f'<div class="cnnkit-summary"><table><caption style="text-align:left"><b>{esc(s.model_name)}</b>'
            f"</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f'<ul style="margin-top:0.5em">{notes}</ul></div>')


CSV_FIELDS = ["name", "type", "depth", "leaf", "input", "output", "input_volume", "output_volume", "kernel",
              "kernel_size", "stride", "padding", "dilation", "groups", "filters", "params", "trainable_params",
              "frozen_params", "macs", "flops", "activations", "receptive_field", "jump", "start", "unprocessed",
              "repeat", "called", "subtree_params", "subtree_macs", "algorithm"]


def to_csv(s: Summary) -> str:
    """One line per layer call (all depths); tuples as ``a,b,c`` inside one field."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in s.layers:
        d = r.to_dict()
        w.writerow([",".join(str(v) for v in d[k]) if isinstance(d[k], list) else
                    ("" if d[k] is None else d[k]) for k in CSV_FIELDS])
    return buf.getvalue()


def rich_widths(headers, rows) -> list:
    return [max(len(str(x)) for x in col) for col in zip(headers, *rows)]


def rich_width(s: Summary, depth: int | None = None) -> int:
    """Console width the rich table needs to show every cell whole."""
    headers, rows, _ = table(s, depth)
    return sum(rich_widths(headers, rows)) + 3 * len(headers) + 1


def to_rich(s: Summary, depth: int | None = None):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    headers, rows, foot = table(s, depth)
    t = Table(title=s.model_name, show_lines=False)
    widths = rich_widths(headers, rows)
    for i, (h, w) in enumerate(zip(headers, widths)):
        # numbers are never wrapped or cut ("2,4…"): a narrow terminal scrolls instead (see rich_width)
        t.add_column(h, justify="right" if i >= _RIGHT else "left", no_wrap=True, min_width=w)
    for r in rows:
        t.add_row(*r)
    return Group(t, Text("\n".join(foot)))
