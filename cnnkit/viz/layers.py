"""Pictures of what the layers hold and compute: filters, activation maps, receptive fields, and the
classic filter bank's responses. Each function returns a Figure (:func:`cnnkit.viz.save` writes it)."""
from __future__ import annotations

import math

import numpy as np

from . import maps
from .common import as_input, find_layer, layer_summary, leaf_layers, model_label
from .draw import (DIVERGING, GAP, HEAD, INK, MUTED, SEQUENTIAL, TEXT, axes_at, colourbar, new_figure, picture,
                   show, text_at, text_size, text_width, title)

__all__ = ["plot_filters", "plot_activations", "plot_receptive_field", "plot_responses", "first_conv"]



def _volume(shape) -> str:
    """``(C, H, W)`` → the lecture's ``W×H×D``; ``(K,)`` → ``K``."""
    return "×".join(str(s) for s in (list(reversed(shape[1:])) + [shape[0]] if len(shape) > 1 else shape))


def _type(model, layer: str) -> str:
    return type(dict(model.named_modules())[layer]).__name__


def first_conv(model) -> str:
    """The name of the first module with a 4-D ``weight`` (a 2-D convolution)."""
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if name and w is not None and getattr(w, "ndim", 0) == 4:
            return name
    raise ValueError(f"{model_label(model)} has no convolution layer (a module with a 4-D weight)")


# ----------------------------------------------------------------------------- filters
def plot_filters(model, layer: str | None = None, max_filters: int = 16, max_channels: int = 8):
    """A convolution's kernels as a grid: the first layer's 3-channel filters in colour, grey-input
    filters one tile each, deeper layers one row per filter and one column per input channel (the
    ``max_filters`` filters and ``max_channels`` channels with the largest weights when there are
    more). Signed weights use a red (positive) – white (0) – blue (negative) scale shared by all
    tiles; 3×3 and smaller kernels print their values.

    Args:
        model: an ``nn.Module``. layer: a convolution's name (default the first convolution).
        max_filters, max_channels: how many filters / input channels to show at most.
    """
    layer = first_conv(model) if layer is None else layer
    module = find_layer(model, layer, "plot_filters")
    weight = getattr(module, "weight", None)
    if weight is None or getattr(weight, "ndim", 0) != 4:
        raise ValueError(f"plot_filters: layer {layer!r} ({type(module).__name__}) has no 2-D convolution "
                         f"weight (K, D, F, F)")
    w = weight.data.astype(np.float64)                                         # (K, D, kh, kw)
    k, d, kh, kw = w.shape
    shown = np.arange(k)
    if k > max_filters:
        shown = np.sort(np.argsort(-np.sqrt((w ** 2).sum(axis=(1, 2, 3))), kind="stable")[:max_filters])
    w = w[shown]
    heading = f"{layer} ({type(module).__name__}): {k} filters of {kw}×{kh}×{d}"
    note = f"the {len(shown)} with the largest weights" if len(shown) < k else None
    if d == 3:
        return _filter_grid(w, shown, heading, note or "each filter's weights for red, green, blue; grey = 0",
                            colour=True)
    if d == 1:
        return _filter_grid(w[:, 0], shown, heading, note)
    channels = np.arange(d)
    if d > max_channels:
        strength = np.sqrt((w ** 2).sum(axis=(0, 2, 3)))
        channels = np.sort(np.argsort(-strength, kind="stable")[:max_channels])
        note = ", ".join(filter(None, [note, f"input channels: the {max_channels} with the largest weights"]))
    return _filter_table(w[:, channels], shown, channels, heading, note)


def _cell(kh, kw, limit=216):
    return max(6, min(72 if max(kh, kw) <= 3 else 40, limit // max(kh, kw)))


def _annotate(ax, kernel, m):
    if kernel.shape[0] * kernel.shape[1] > 9:
        return
    for (i, j), v in np.ndenumerate(kernel):
        ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=text_size("note"),
                color="white" if abs(v) > 0.6 * m else INK)


def _filter_grid(kernels, shown, heading, note, colour: bool = False):
    """One tile per filter: ``kernels`` ``(n, kh, kw)`` on the signed scale with a colour bar, or
    ``colour=True``: ``(n, 3, kh, kw)`` as RGB images (grey = 0)."""
    n, kh, kw = kernels.shape[0], kernels.shape[-2], kernels.shape[-1]
    cell = _cell(kh, kw)
    tw, th = kw * cell, kh * cell
    cols = min(n, max(3, math.ceil(math.sqrt(n))))
    rows = math.ceil(n / cols)
    label_h = TEXT["label"] + 12
    height = HEAD + 30 + rows * (th + label_h + GAP) + (GAP if colour else 100)
    fig = new_figure(cols * (tw + GAP) + GAP, height, [(heading, "title"), (note or "", "note")])
    title(fig, heading, note)
    width = fig._px[0]
    m = float(np.abs(kernels).max()) or 1.0
    x0 = (width - cols * (tw + GAP) + GAP) / 2
    im = None
    for t in range(n):
        r, c = divmod(t, cols)
        ax = axes_at(fig, x0 + c * (tw + GAP), HEAD + 30 + r * (th + label_h + GAP) + label_h, tw, th)
        if colour:
            show(ax, (kernels[t].transpose(1, 2, 0) / m + 1) / 2, None, title=f"filter {shown[t]}")
            continue
        im = show(ax, kernels[t], DIVERGING, -m, m, title=f"filter {shown[t]}")
        _annotate(ax, kernels[t], m)
    if not colour:
        colourbar(fig, im, width / 2 - 180, height - 86, 360, "weight")
    return fig


def _filter_table(w, shown, channels, heading, note):
    n, d, kh, kw = w.shape
    cell = _cell(kh, kw, limit=96)
    tw, th = kw * cell, kh * cell
    left, head = 150, TEXT["label"] + 14
    width = max(left + d * (tw + GAP) + GAP, 620)
    height = HEAD + 30 + head + n * (th + GAP) + 100
    fig = new_figure(width, height, [(heading, "title"), (note or "", "note")])
    title(fig, heading, note)
    width = fig._px[0]
    m = float(np.abs(w).max()) or 1.0
    top0 = HEAD + 30 + head
    for c, ch in enumerate(channels):
        text_at(fig, left + c * (tw + GAP) + tw / 2, top0 - 8, f"in {ch}", ha="center", va="bottom")
    im = None
    for r in range(n):
        text_at(fig, left - 12, top0 + r * (th + GAP) + th / 2, f"filter {shown[r]}", ha="right", va="center")
        for c in range(d):
            ax = axes_at(fig, left + c * (tw + GAP), top0 + r * (th + GAP), tw, th)
            im = show(ax, w[r, c], DIVERGING, -m, m)
            _annotate(ax, w[r, c], m)
    colourbar(fig, im, width / 2 - 180, height - 86, 360, "weight")
    return fig


# ----------------------------------------------------------------------------- activations
_QUIET = ("ReLU", "LeakyReLU", "Tanh", "Sigmoid", "ELU", "GELU", "SiLU", "Dropout", "Dropout2d", "BatchNorm2d",
          "Identity", "LocalResponseNorm")


def _default_layers(model, found: dict) -> list:
    spatial = [n for n, a in found.items() if a.ndim == 3 and a.shape[1] * a.shape[2] > 1]
    if len(spatial) > 12:
        spatial = [n for n in spatial if _type(model, n) not in _QUIET]
    return spatial


def plot_activations(model, x, layers=None, max_maps: int = 16, classes=None):
    """Each layer's activation maps for one input, a row per layer labelled with its name, type and
    the lecture's W×H×D volume, and the class probabilities last.

    Args:
        model: an ``nn.Module``. x: one model input ``(C, H, W)`` (or a ``(1, C, H, W)`` Tensor).
        layers: names (default: every leaf layer with a spatial output; for models with more than
            12 of them, the convolutions and pooling layers).
        max_maps: maps shown per layer (the most active ones when there are more).
        classes: class names for the probabilities (default ``0, 1, …``).
    """
    found = maps.activation_maps(model, x, None)
    names = _default_layers(model, found) if layers is None else list(maps.activation_maps(model, x, layers))
    last = list(found)[-1]
    probs = None
    if found[last].ndim == 1 and found[last].size <= 20:
        z = found[last].astype(np.float64)
        probs = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    x = as_input(x, "plot_activations")
    rows = [("input", "", x)] + [(n, _type(model, n), found[n]) for n in names]
    tile, left = 80, 290
    width = left + max_maps * (tile + 8) + GAP
    bars_h = 360 if probs is not None else 0
    height = HEAD + 20 + len(rows) * (tile + GAP + 8) + bars_h + GAP
    fig = new_figure(width, height)
    title(fig, f"activations of {model_label(model)}", "each row shares one colour scale: black 0 … white max, "
                                                        "or blue − / white 0 / red +")
    top = HEAD + 20
    for name, kind, a in rows:
        a = a.reshape(-1, 1, 1) if a.ndim == 1 else a
        if name == "input":
            order = np.arange(1) if a.shape[0] == 3 else np.arange(min(a.shape[0], max_maps))
        else:
            order = np.arange(a.shape[0])
            if len(order) > max_maps:
                order = np.sort(np.argsort(-a.reshape(a.shape[0], -1).max(1), kind="stable")[:max_maps])
        sub = f"{len(order)} of {a.shape[0]} maps" if len(order) < a.shape[0] and name != "input" else ""
        text_at(fig, 16, top + 6, name, va="top", weight="bold")
        text_at(fig, 16, top + 38, " ".join(filter(None, [kind, _volume(a.shape if name != "input" else x.shape)])),
                va="top")
        if sub:
            text_at(fig, 16, top + 70, sub, "note", va="top", color=MUTED)
        lo, hi = float(a[order].min()), float(a[order].max())
        for i, ch in enumerate(order):
            ax = axes_at(fig, left + i * (tile + 8), top, tile, tile)
            if name == "input":
                img, cmap = picture(a if a.shape[0] == 3 else a[ch:ch + 1])
                show(ax, img, cmap)
            elif lo < 0:
                m = max(-lo, hi) or 1.0
                show(ax, a[ch], DIVERGING, -m, m)
            else:
                show(ax, a[ch], SEQUENTIAL, 0, hi or 1.0)
        top += tile + GAP + 8
    if probs is not None:
        _probability_bars(fig, probs, classes, left, top + 50, min(width - left - GAP, 80 * len(probs)), bars_h - 110)
    return fig


def _probability_bars(fig, probs, classes, left, top, width, height):
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(len(probs))]
    ax = axes_at(fig, left, top, width, height, frame=True)
    best = int(np.argmax(probs))
    ax.bar(range(len(probs)), probs, color=["#c0392b" if i == best else "#7f8c8d" for i in range(len(probs))])
    ax.set_xticks(range(len(probs)), names, fontsize=text_size("label"))
    ax.set_ylim(0, 1)
    ax.set_yticks([0, 0.5, 1])
    ax.tick_params(axis="y", labelsize=text_size("note"))
    ax.set_title(f"prediction: {names[best]} ({100 * probs[best]:.1f} %)", fontsize=text_size("label"), color=INK)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    text_at(fig, 16, top - 44, "output", va="top", weight="bold")
    text_at(fig, 16, top - 12, "softmax", va="top")


# ----------------------------------------------------------------------------- receptive field
def plot_receptive_field(model, layer: str, index=None, x=None, input_size=None):
    """The input pixels one output of ``layer`` sees, drawn on the input, with the boxes of the
    earlier window layers' units at the same place (each layer's field grows from the last), and
    the layer's map with that unit marked.

    Args:
        model: an ``nn.Module``. layer: a name from ``model.named_modules()``.
        index: ``(row, column)`` of the unit (default the map's centre).
        x: one model input to draw on (default a blank input of ``input_size``).
        input_size: ``(C, H, W)``; default ``x``'s shape or the model's default input size.
    """
    from ..analysis.summary import resolve_model

    if x is not None:
        x = as_input(x, "plot_receptive_field")
        input_size = x.shape
    elif input_size is None:
        input_size = resolve_model(model)[2]
    input_size = tuple(int(v) for v in input_size)
    find_layer(model, layer, "plot_receptive_field")
    records = {r.name: r for r in layer_summary(model, input_size).layers}
    rec = records[layer]
    spatial = tuple(rec.output[1:]) if rec.output and len(rec.output) > 1 else ()
    index = tuple(s // 2 for s in spatial) if index is None else tuple(int(v) for v in index)[-len(spatial or (0,)):]
    box = maps.receptive_box(model, layer, index if spatial else (0, 0), input_size)
    centre = ((box[0] + box[1] - 1) / 2, (box[2] + box[3] - 1) / 2)
    earlier = []
    for name in leaf_layers(model):
        if name == layer:
            break
        r = records.get(name)
        if r is None or r.kernel_size is None or not r.output or len(r.output) < 3 or r.jump is None:
            continue
        near = tuple(int(min(max(round((c - s) / j), 0), n - 1)) for c, s, j, n in
                     zip(centre, r.start, r.jump, r.output[1:]))
        earlier.append((name, r, maps.receptive_box(model, name, near, input_size)))
    h, w = input_size[1:]
    panel = (420, max(1, round(420 * h / w)))                                 # the input at 420 px wide
    rf = "×".join(str(v) for v in reversed(rec.receptive_field))
    labels = [f"{name} {'×'.join(str(v) for v in reversed(r.receptive_field))}" for name, r, _ in earlier[-6:]]
    legend_w = max(text_width(t) for t in labels + [f"{layer} {rf}", "receptive field"]) + 80
    where = f"unit (row {index[0]}, column {index[1]})" if spatial else "every unit"
    heading = f"{layer}: {where} sees a {rf} input window"
    note = f"input rows {box[0]}–{box[1] - 1}, columns {box[2]}–{box[3] - 1} (jump {rec.jump[0]} px per step)"
    fig = new_figure(GAP * 3 + panel[0] * 2 + legend_w, HEAD + 90 + panel[1] + 40, [(heading, "title"),
                                                                                    (note, "note")])
    title(fig, heading, note)
    ax = axes_at(fig, GAP, HEAD + 70, *panel)
    if x is not None:
        img, cmap = picture(x)
        show(ax, img, cmap)
    else:
        show(ax, np.full((h, w), 0.92), SEQUENTIAL, 0, 1)
    ax.set_title("input", fontsize=text_size("label"), color=INK)
    from matplotlib.patches import Rectangle
    colours = ["#35a7ff", "#2ecc71", "#b266ff", "#ff9f1a", "#1abc9c", "#bdc3c7"]  # bright: seen on black and white
    handles = []
    for i, ((name, r, (t, b, l, rt)), label) in enumerate(zip(earlier[-6:], labels)):
        patch = Rectangle((l - 0.5, t - 0.5), rt - l, b - t, fill=False, lw=2, ec=colours[i % len(colours)],
                          label=label)
        ax.add_patch(patch)
        handles.append(patch)
    main = Rectangle((box[2] - 0.5, box[0] - 0.5), box[3] - box[2], box[1] - box[0], lw=3.5, ec="#c0392b",
                     fc=(0.75, 0.22, 0.17, 0.18), label=f"{layer} {rf}")
    ax.add_patch(main)
    handles.append(main)
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=((GAP * 2 + panel[0] * 2 + 10) / fig._px[0],
                                                                   1 - (HEAD + 70) / fig._px[1]),
               fontsize=text_size("label"), frameon=False, title="receptive field",
               title_fontsize=text_size("label"))
    right = axes_at(fig, GAP * 2 + panel[0], HEAD + 70, *panel)
    if spatial and x is not None:
        a = maps.activation_maps(model, x, layer)[layer]
        ch = int(np.argmax(a[:, index[0], index[1]]))
        lo, hi = float(a[ch].min()), float(a[ch].max())
        m = max(-lo, hi) or 1.0
        show(right, a[ch], DIVERGING if lo < 0 else SEQUENTIAL, -m if lo < 0 else 0, m)
        right.set_title(f"{layer}, channel {ch}", fontsize=text_size("label"), color=INK)
    else:
        show(right, np.full(spatial or (1, 1), 0.92), SEQUENTIAL, 0, 1)
        right.set_title(f"{layer} {_volume(rec.output)}", fontsize=text_size("label"), color=INK)
    if spatial:
        right.add_patch(Rectangle((index[1] - 0.5, index[0] - 0.5), 1, 1, fill=False, lw=3.5, ec="#c0392b"))
    return fig


# ----------------------------------------------------------------------------- the filter bank
def plot_responses(image, filters=None, border: str = "reflect_101"):
    """The classic filter bank's responses to one image side by side, each labelled with the filter's name.

    The image is read as grey (ITU-R 601 luma); each response (:func:`cnnkit.filters.filter2d`) is
    stretched from its own minimum (black) to its maximum (white), as ``cnnkit filter --normalize``.

    Args:
        image: a file path or an array ``(H, W)`` / ``(H, W, C)`` (0–255 or [0, 1]).
        filters: bank names (default the whole bank, ``cnnkit.filters.names()``).
        border: border rule for :func:`~cnnkit.filters.filter2d`.
    """
    from ..filters import filter2d
    from ..filters import names as bank_names
    from ..io import read_image

    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        grey = read_image(image, mode="gray", alpha="white")[..., 0].astype(np.float64)
    else:
        a = np.asarray(image, dtype=np.float64)
        if a.ndim == 3:
            a = a[..., :3] @ np.array([0.299, 0.587, 0.114])[:a.shape[2]] if a.shape[2] >= 3 else a[..., 0]
        if a.ndim != 2:
            raise ValueError(f"plot_responses: image must be (H, W) or (H, W, C), got shape {np.shape(image)}")
        grey = a
    filters = bank_names() if filters is None else list(filters)
    tiles = [("original", grey)] + [(f, filter2d(grey, f, border=border)) for f in filters]
    h, w = grey.shape
    scale = 240 / max(h, w)
    tw, th = round(w * scale), round(h * scale)
    cols = min(len(tiles), max(3, math.ceil(math.sqrt(len(tiles)))))
    rows = math.ceil(len(tiles) / cols)
    label_h = TEXT["label"] + 14
    width = cols * (tw + GAP) + GAP
    note = "each stretched from its minimum (black) to its maximum (white)"
    fig = new_figure(width, HEAD + 20 + rows * (th + label_h + GAP), [(note, "note")])
    title(fig, "filter responses", note)
    for t, (name, r) in enumerate(tiles):
        row, col = divmod(t, cols)
        ax = axes_at(fig, GAP + col * (tw + GAP), HEAD + 20 + row * (th + label_h + GAP) + label_h, tw, th)
        lo, hi = float(r.min()), float(r.max())
        show(ax, (r - lo) / (hi - lo) if hi > lo else np.zeros_like(r), SEQUENTIAL, 0, 1, title=name)
    return fig
