"""Views of a :class:`~cnnkit.analysis.records.Summary`: text table, rich table, Markdown, CSV, HTML.

The table views render the cells of one list of columns (:data:`COLUMNS`): a narrow view, the default,
that fits a terminal :data:`WIDTH` characters wide for every zoo model, and a wide view with every column
(``cnnkit summary --wide``). None computes a number of its own beyond unit formatting; JSON and CSV
(:func:`to_csv`) carry every field of every record.
"""
from __future__ import annotations

import csv
import html
import io
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from .. import shape
from .records import COUNTS, LayerRecord, Summary

__all__ = ["Column", "COLUMNS", "columns", "table", "to_text", "to_markdown", "to_csv", "to_rich", "to_html",
           "human", "human_bytes", "wrap", "WIDTH"]

WIDTH = 100  # the text view fits a terminal this wide (every zoo model, narrow view); footers wrap here

def human(n: float, digits: int = 3) -> str:
    """``1813561344`` → ``'1.81 G'``, ``7800000000`` → ``'7.80 G'`` (``digits`` significant digits, zeros
    kept); numbers below 1,000 as they are."""
    units = ((1e3, "K"), (1e6, "M"), (1e9, "G"), (1e12, "T"))
    for i in reversed(range(len(units))):
        div, unit = units[i]
        if abs(n) >= div:
            text = f"{n / div:#.{digits}g}".rstrip(".")
            if "e" not in text:
                return f"{text} {unit}"
            if i + 1 == len(units):                   # past the last unit: digits grouped
                return f"{n / div:,.0f} {unit}"
            return f"{n / units[i + 1][0]:#.{digits}g}".rstrip(".") + f" {units[i + 1][1]}"   # 999,999 → 1.00 M
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


@dataclass(frozen=True)
class Row:
    """One line of the table: its record, what it shows (``"layer"``: its own numbers; ``"block"``: a block
    whose layers follow, its totals in parentheses; ``"folded"``: a block shown as one line at ``depth``) and
    its name in the tree (relative to the block above it) and in full."""

    record: LayerRecord
    kind: str
    tree_name: str
    full_name: str


def _count(row: Row, own: int, subtree: int) -> str:
    """A count for a row: its own, a folded block's total, or ``(total)`` for a block whose layers follow."""
    if row.kind == "block":
        return f"({subtree:,})" if subtree else ""
    return f"{subtree if row.kind == 'folded' else own:,}"


def _params(row: Row) -> str:
    r = row.record
    if row.kind == "block":
        return f"({r.subtree_params:,})"
    cell = f"{r.subtree_params if row.kind == 'folded' else r.params:,}"
    return cell + " (again)" if r.repeat else cell


def _macs(row: Row, factor: int = 1) -> str:
    r = row.record
    if row.kind == "block":
        return f"({human(factor * r.subtree_macs)})"
    n = factor * (r.subtree_macs if row.kind == "folded" else r.macs)
    return human(n) if n else "0"


def _padding(r: LayerRecord) -> str:
    return _axes(r.padding) if r.padding_after is None else f"{_axes(r.padding)}/{_axes(r.padding_after)}"


def _frozen(row: Row) -> str:
    r = row.record
    return "" if row.kind != "layer" or not r.params else f"{r.frozen_params:,}"


def _trainable(row: Row) -> str:
    r = row.record
    return "" if row.kind != "layer" or not r.params else f"{r.trainable_params:,}"


@dataclass(frozen=True)
class Column:
    """One column of the table: its header, the text of a row's cell, its alignment, the views that show it
    (``"both"``, ``"narrow"`` or ``"wide"``) and (``when``) a condition on the whole summary."""

    header: str
    cell: Callable[[Row], str]
    right: bool = True
    views: str = "both"
    when: Callable[[Summary], bool] | None = None


#: The columns of every table view, in order. The narrow (default) view fits :data:`WIDTH` columns for every
#: zoo model; ``wide=True`` adds the rest. A new column is one more line here.
COLUMNS = [
    Column("Layer", lambda row: row.tree_name, right=False, views="narrow"),
    Column("Layer", lambda row: row.full_name, right=False, views="wide"),
    Column("Type", lambda row: row.record.type, right=False),
    Column("Input W×H×D", lambda row: row.record.input_volume, right=False, views="wide"),
    Column("Output W×H×D", lambda row: row.record.output_volume if row.record.called else "(not run)", right=False),
    Column("Filter", lambda row: row.record.kernel, right=False),
    Column("", lambda row: "!" if row.record.flagged else "", right=False,
           when=lambda s: any(r.flagged for r in s.layers)),
    Column("P", lambda row: _padding(row.record)),
    Column("K", lambda row: "" if row.record.filters is None else str(row.record.filters), views="wide"),
    Column("Params", _params),
    Column("", lambda row: "*" if row.kind == "layer" and row.record.frozen_params else "", right=False,
           when=lambda s: s.total["frozen_params"] > 0),
    Column("Trainable", _trainable, views="wide"),
    Column("Frozen", _frozen, views="wide"),
    Column("MACs", _macs),
    Column("FLOPs", lambda row: _macs(row, 2), views="wide"),
    Column("Activations", lambda row: _count(row, row.record.activations, row.record.subtree_activations),
           views="wide"),
    Column("RF", lambda row: _axes(row.record.receptive_field)),
    Column("Jump", lambda row: _axes(row.record.jump), views="wide"),
    Column("Start", lambda row: _axes(row.record.start), views="wide"),
    Column("Algorithm", lambda row: row.record.algorithm or "", right=False, views="wide"),
]


def columns(s: Summary, wide: bool = False) -> list:
    """The :data:`COLUMNS` the narrow (default) or the wide view of ``s`` shows."""
    view = "wide" if wide else "narrow"
    return [c for c in COLUMNS if c.views in ("both", view) and (c.when is None or c.when(s))]


def rows(s: Summary, depth: int | None = None) -> list:
    """The :class:`Row` of each shown record; records deeper than ``depth`` are folded into their block's row."""
    out, parents = [], []   # parents: (depth, full name) of the rows above, innermost last
    layers = s.layers
    for i, r in enumerate(layers):
        if depth is not None and r.depth > depth:
            continue
        has_children = i + 1 < len(layers) and layers[i + 1].depth > r.depth and layers[i + 1].called
        folded = has_children and depth is not None and r.depth == depth
        kind = "folded" if folded else "block" if has_children else "layer"
        while parents and parents[-1][0] >= r.depth:
            parents.pop()
        full = r.name or "(model)"
        above = parents[-1][1] if parents else ""
        tree = full[len(above) + 1:] if above and full.startswith(above + ".") else full
        indent = "  " * max(0, r.depth - 1)
        out.append(Row(r, kind, indent + tree, indent + full))
        parents.append((r.depth, r.name))
    return out


def table(s: Summary, depth: int | None = None, wide: bool = False) -> tuple[list, list, list]:
    """``(headers, rows of cells, footer lines)`` of the narrow (default) or the wide view."""
    cols = columns(s, wide)
    cells = [[c.cell(row) for c in cols] for row in rows(s, depth)]
    return [c.header for c in cols], cells, footer(s, wide)


def footer(s: Summary, wide: bool = False) -> list:
    """The lines under the table: totals, memory, the counting convention and what the marks mean."""
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
    lines.append("  Filter F×F×D/S: an F×F window over D input channels (per group) at stride S; P: padding; "
                 "RF: receptive field in input pixels")
    if any(r.flagged for r in s.layers):
        lines.append("  ! the stride leaves input columns/rows unprocessed (W1 − F + 2P not divisible by S)")
    if wide and any(r.algorithm for r in s.layers):
        lines.append(f"  Algorithm: the forward algorithm each convolution takes at batch {s.batch_size} on this "
                     f"machine (measured choices where cnnkit's cache has them — `cnnkit tune` measures — else the "
                     f"default order)")
    if any(r.subtree_params and not r.leaf for r in s.layers):
        lines.append("  (n) = a block's total, already counted in its layers' rows")
    if t["frozen_params"]:
        lines.append("  * = frozen parameters (all or some of the row's; --wide shows Trainable and Frozen)")
    if not wide:
        lines.append("  --wide adds input volume, K, trainable/frozen, FLOPs, activations, jump, start and each "
                     "convolution's algorithm")
        if any("." in r.name for r in s.layers):
            lines.append("  names are relative to the block above; the full name joins them with dots "
                         f"({_example_name(s)}; --wide shows full names)")
    lines += [f"Note: {n}" for n in s.notes]
    return lines


def _example_name(s: Summary) -> str:
    return max((r.name for r in s.layers if r.leaf), key=lambda n: (n.count("."), -len(n)), default="")


def _in_volume(size) -> str:
    from .records import volume
    return volume(tuple(size))


def _view(s: Summary, depth, wide):
    cols = columns(s, wide)
    cells = [[c.cell(row) for c in cols] for row in rows(s, depth)]
    return cols, cells, footer(s, wide)


_UNIT = re.compile(r"([\d≈]) (?=(?:[kMGT]?B|[KMGT])\b|\d)")   # "0 B", "1.81 G", "≈ 12.4M" stay on one line


def wrap(line: str, width: int = WIDTH) -> list:
    """``line`` wrapped at ``width``, continuation lines indented two more than its own indent; a number
    and its unit, and a `command` in backticks, are never split."""
    indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
    kept = _UNIT.sub("\\1\u00a0", line)
    kept = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\u00a0"), kept)   # a `command` stays whole
    return [w.replace("\u00a0", " ") for w in
            textwrap.wrap(kept, width=width, subsequent_indent=indent, break_on_hyphens=False)] or [""]


def to_text(s: Summary, depth: int | None = None, wide: bool = False) -> str:
    """The table as plain text: the narrow view fits :data:`WIDTH` columns; ``wide`` adds the other columns."""
    cols, cells, foot = _view(s, depth, wide)
    widths = [max([len(c.header)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]

    def line(values):
        return "  ".join(v.rjust(w) if c.right else v.ljust(w) for c, v, w in zip(cols, values, widths)).rstrip()
    rule = "─" * len(line([c.header for c in cols]))
    out = [f"{s.model_name}", rule, line([c.header for c in cols]), rule] + [line(r) for r in cells] + [rule]
    out += [w for f in foot for w in wrap(f, max(WIDTH, len(rule)) if wide else WIDTH)]
    return "\n".join(out) + "\n"


def to_markdown(s: Summary, depth: int | None = None, wide: bool = False) -> str:
    cols, cells, foot = _view(s, depth, wide)

    def esc(c):
        return str(c).replace("|", "\\|")
    out = [f"### {s.model_name}", "", "| " + " | ".join(c.header for c in cols) + " |",
           "|" + "|".join("---:" if c.right else "---" for c in cols) + "|"]
    out += ["| " + " | ".join(esc(v).strip() if i else esc(v).replace("  ", "&nbsp;&nbsp;")
                              for i, v in enumerate(r)) + " |" for r in cells]
    out += [""] + [f"- {line.strip()}" for line in foot]
    return "\n".join(out) + "\n"


def to_html(s: Summary, depth: int | None = None, wide: bool = True) -> str:
    """The table as an HTML ``<table>`` (a notebook's rich display; the wide view), the footer lines under it."""
    cols, cells, foot = _view(s, depth, wide)
    esc = html.escape
    right = ' style="text-align:right"'
    head = "".join(f"<th{right if c.right else ''}>{esc(c.header)}</th>" for c in cols)
    body = []
    for r in cells:
        name = r[0]
        indent = (len(name) - len(name.lstrip(" "))) // 2
        tds = [f'<td style="padding-left:{0.4 + 1.2 * indent:.1f}em">{esc(name.strip())}</td>']
        tds += [f"<td{right if c.right else ''}>{esc(v)}</td>" for c, v in zip(cols[1:], r[1:])]
        body.append("<tr>" + "".join(tds) + "</tr>")
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


def to_rich(s: Summary, depth: int | None = None, wide: bool = False):
    """The table as a ``rich`` renderable (``rich.print(summary)``), same columns as :func:`to_text`."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    cols, cells, foot = _view(s, depth, wide)
    t = Table(title=s.model_name, box=box.SIMPLE_HEAD, pad_edge=False)
    for c, i in zip(cols, range(len(cols))):
        w = max([len(c.header)] + [len(r[i]) for r in cells])
        # numbers are never wrapped or cut ("2,4…"): a narrow terminal scrolls instead
        t.add_column(c.header, justify="right" if c.right else "left", no_wrap=True, min_width=w)
    for r in cells:
        t.add_row(*r)
    return Group(t, Text("\n".join(foot)))
