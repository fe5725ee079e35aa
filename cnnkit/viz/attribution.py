"""Pictures of where a network looks and what its units respond to: occlusion, saliency, Zeiler &
Fergus' top patches, activation maximisation. Each function returns a Figure."""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor, no_grad
from . import maps
from .common import as_input, find_layer, inspecting
from .draw import (GAP, HEAD, INK, SEQUENTIAL, TEXT, axes_at, colourbar, new_figure, picture, show, text_at,
                   text_size, title)

__all__ = ["plot_occlusion", "plot_saliency", "plot_top_patches", "plot_maximize"]


def _name(classes, i: int) -> str:
    return f"‘{classes[i]}’" if classes is not None else f"class {i}"


def _panels(n: int, h: int, w: int, heading: str, note: str):
    """A titled figure of ``n`` panels side by side for an ``h × w`` input, ~300 px each, centred."""
    scale = max(1, 300 // max(h, w))
    pw, ph = w * scale, h * scale
    fig = new_figure(n * (pw + GAP) + GAP, HEAD + 40 + TEXT["label"] + ph + 90, [(heading, "title"), (note, "note")])
    title(fig, heading, note)
    x0 = (fig._px[0] - n * (pw + GAP) + GAP) / 2
    axes = [axes_at(fig, x0 + i * (pw + GAP), HEAD + 40 + TEXT["label"], pw, ph) for i in range(n)]
    return fig, axes, (x0, pw, ph)


def _scores(model, x) -> np.ndarray:
    """The model's output for one input, without the batch axis."""
    with inspecting(model), no_grad():
        return np.asarray(model(Tensor(x[None])).data[0], dtype=np.float64)


def _probabilities(model, x) -> np.ndarray:
    z = _scores(model, x).ravel()
    e = np.exp(z - z.max())
    return e / e.sum()


def _glow(values: np.ndarray, rgb) -> np.ndarray:
    """An RGBA layer of one colour whose opacity follows ``values`` (0 → clear, the maximum → 85 %)."""
    top = float(values.max())
    layer = np.zeros(values.shape + (4,))
    layer[..., :3] = rgb
    layer[..., 3] = 0.85 * values / top if top > 0 else 0.0
    return layer


# ----------------------------------------------------------------------------- occlusion
def plot_occlusion(model, x, target=None, size=None, stride=None, fill=None, classes=None):
    """Zeiler & Fergus' occlusion experiment: the input, the probability of the class at each position
    of a grey square (:func:`~cnnkit.viz.maps.occlusion_map`), and the input where the probability drops.

    Args:
        model: a classifier. x: one model input ``(C, H, W)``. target, size, stride, fill: as for
            :func:`~cnnkit.viz.maps.occlusion_map`. classes: class names for the title.
    """
    x = as_input(x, "plot_occlusion")
    c, h, w = x.shape
    probs = _probabilities(model, x)
    target = int(np.argmax(probs)) if target is None else target
    size = max(1, round(min(h, w) / 4)) if size is None else size
    stride = max(1, math.ceil(min(h, w) / 16)) if stride is None else stride
    occ = maps.occlusion_map(model, x, target, size, stride, fill)                # (rows, cols)
    fig, (a0, a1, a2), (x0, pw, ph) = _panels(
        3, h, w, f"occlusion: p({_name(classes, target)}) while a grey square ({size}×{size}) hides each part",
        f"the square steps {stride} px; without it p = {probs[target]:.3f}; dark = the network needs that part")
    img, cmap = picture(x)
    from matplotlib.patches import Rectangle
    show(a0, img, cmap, title="input")
    a0.add_patch(Rectangle((0.5, 0.5), size, size, fc=(0.5, 0.5, 0.5, 0.85), ec="#f1c40f", lw=2))
    a0.text(size + 1.5, 0.5 + size / 2, "the square", ha="left", va="center", color="#f1c40f",
            fontsize=text_size("note"))
    extent = (-0.5, occ.shape[1] * stride - 0.5, occ.shape[0] * stride - 0.5, -0.5)
    im = a1.imshow(occ, cmap="viridis", vmin=0, vmax=1, extent=extent, interpolation="nearest")
    a1.set_xlim(-0.5, w - 0.5)
    a1.set_ylim(h - 0.5, -0.5)
    a1.set_title(f"p({_name(classes, target)}) by position", fontsize=text_size("label"), color=INK)
    drop = np.clip(probs[target] - occ, 0, 1)
    show(a2, img, cmap, title="where hiding hurts")
    a2.imshow(_glow(drop, (0.9, 0.1, 0.1)), extent=extent, interpolation="bilinear")
    a2.set_xlim(-0.5, w - 0.5)
    a2.set_ylim(h - 0.5, -0.5)
    colourbar(fig, im, x0 + pw + GAP + pw * 0.1, HEAD + 40 + TEXT["label"] + ph + 20, pw * 0.8, "probability")
    return fig


# ----------------------------------------------------------------------------- saliency
def plot_saliency(model, x, target=None, classes=None):
    """Simonyan et al.'s saliency: the input, ``|∂ score / ∂ input|`` (max over colour channels,
    :func:`~cnnkit.viz.maps.saliency_map`), and the two overlaid.

    Args:
        model: a classifier. x: one model input ``(C, H, W)``. target: class (default the predicted).
        classes: class names for the title.
    """
    x = as_input(x, "plot_saliency")
    probs = _probabilities(model, x)
    target = int(np.argmax(probs)) if target is None else target
    sal = maps.saliency_map(model, x, target)                                 # (H, W)
    fig, (a0, a1, a2), (x0, pw, ph) = _panels(
        3, *x.shape[1:], f"saliency: how much each pixel moves the score of {_name(classes, target)}",
        f"|∂ score / ∂ pixel| (Simonyan et al. 2014); p = {probs[target]:.3f}")
    img, cmap = picture(x)
    show(a0, img, cmap, title="input")
    im = show(a1, sal, "hot", 0, float(sal.max()) or 1.0, title="|gradient|")
    show(a2, img, cmap, title="overlaid")
    a2.imshow(_glow(sal, (1.0, 0.55, 0.0)), interpolation="nearest")
    colourbar(fig, im, x0 + pw + GAP + pw * 0.1, HEAD + 40 + TEXT["label"] + ph + 20, pw * 0.8,
              "|∂ score / ∂ pixel|")
    return fig


# ----------------------------------------------------------------------------- top patches
def plot_top_patches(model, layer: str, images, k: int = 9, channels=None, max_channels: int = 16):
    """Zeiler & Fergus' figure: for each channel of ``layer``, the ``k`` input patches (cropped by the
    receptive field) that activate it most over ``images`` (:func:`~cnnkit.viz.maps.top_patches`).

    Args:
        model: an ``nn.Module``. layer: a name from ``model.named_modules()``.
        images: model inputs ``(N, C, H, W)`` (or an ``ArrayDataset``). k: patches per channel.
        channels: channel indices (default the first ``max_channels``).
    """
    images = getattr(images, "images", images)
    find_layer(model, layer, "plot_top_patches")
    if channels is None:
        n_channels = next(iter(maps.activation_maps(model, images[0], layer).values())).shape[0]
        channels = range(min(n_channels, max_channels))
    tp = maps.top_patches(model, layer, images, k=k, channels=channels)
    n, kk = tp.values.shape
    side = math.ceil(math.sqrt(kk))
    rf_h, rf_w = tp.receptive_field
    pw, ph = round(rf_w * 72 / max(rf_h, rf_w)), round(rf_h * 72 / max(rf_h, rf_w))   # 72 px the longer side
    block_w, block_h = side * (pw + 2), side * (ph + 2) + TEXT["label"] + 12
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    rf = "×".join(str(v) for v in reversed(tp.receptive_field))
    heading = f"{layer}: the {kk} strongest activations of each channel over {len(images)} images"
    note = f"each patch is the {rf} input window the unit sees (Zeiler & Fergus 2013); grey = outside the image"
    fig = new_figure(cols * (block_w + 3 * GAP) + GAP, HEAD + 30 + rows * (block_h + 2 * GAP),
                     [(heading, "title"), (note, "note")])
    title(fig, heading, note)
    left = (fig._px[0] - cols * (block_w + 3 * GAP) + 2 * GAP) / 2
    lo, hi = float(np.nanmin(images)), float(np.nanmax(images))
    for a in range(n):
        r, c = divmod(a, cols)
        x0, y0 = left + c * (block_w + 3 * GAP), HEAD + 30 + r * (block_h + 2 * GAP)
        text_at(fig, x0 + block_w / 2, y0, f"channel {tp.channels[a]}", ha="center", va="top")
        for b in range(kk):
            i, j = divmod(b, side)
            ax = axes_at(fig, x0 + j * (pw + 2), y0 + TEXT["label"] + 12 + i * (ph + 2), pw, ph)
            patch = (tp.patches[a, b] - lo) / ((hi - lo) or 1.0)                  # the set's range: comparable
            if patch.shape[0] == 3:
                show(ax, np.nan_to_num(patch.transpose(1, 2, 0), nan=0.87), None)
            else:
                show(ax, patch[0], SEQUENTIAL, 0, 1)
    return fig


# ----------------------------------------------------------------------------- maximisation
def plot_maximize(model, layer: str | None = None, channels=None, classes=None, max_tiles: int = 16,
                  input_size=None, **options):
    """Activation maximisation (:func:`~cnnkit.viz.maps.maximize_input`): for each channel of
    ``layer`` (or, without a layer, each class of the output) the input that makes it largest.

    Args:
        model: an ``nn.Module``. layer: a name (default: the classes). channels: channel or class
            indices (default the first ``max_tiles``). classes: class names for the labels.
        input_size: ``(C, H, W)`` (default the model's). **options: ``steps``, ``lr``, ``jitter``,
            ``blur``, ``l2``, ``seed`` of :func:`~cnnkit.viz.maps.maximize_input`.
    """
    from ..analysis.summary import resolve_model

    input_size = resolve_model(model, input_size)[2]
    blank = np.zeros(input_size, np.float32)
    count = (maps.activation_maps(model, blank, layer)[layer] if layer is not None else _scores(model, blank)).shape[0]
    chosen = list(range(min(count, max_tiles))) if channels is None else [int(c) for c in channels]
    images = [maps.maximize_input(model, layer, ch, None, input_size=input_size, **options) if layer is not None
              else maps.maximize_input(model, target=ch, input_size=input_size, **options) for ch in chosen]
    c, h, w = input_size
    tw, th = round(128 * w / max(h, w)), round(128 * h / max(h, w))            # 128 px the longer side
    cols = min(len(chosen), 8)
    rows = math.ceil(len(chosen) / cols)
    label_h = TEXT["label"] + 12
    what = f"unit of {layer}" if layer is not None else "class"
    heading = f"activation maximisation: the input each {what} responds to most"
    note = ("gradient ascent from noise with jitter, blur and L2 decay (Olah et al. 2017); "
            + ("the centre unit of each channel" if layer is not None else "each class's score"))
    fig = new_figure(cols * (tw + GAP) + GAP, HEAD + 30 + rows * (th + label_h + GAP), [(heading, "title"),
                                                                                       (note, "note")])
    title(fig, heading, note)
    x0 = (fig._px[0] - cols * (tw + GAP) + GAP) / 2
    for t, (ch, img) in enumerate(zip(chosen, images)):
        r, col = divmod(t, cols)
        ax = axes_at(fig, x0 + col * (tw + GAP), HEAD + 30 + r * (th + label_h + GAP) + label_h, tw, th)
        label = (str(classes[ch]) if classes is not None and layer is None else
                 f"{'class' if layer is None else 'channel'} {ch}")
        shown, cmap = picture(img)
        show(ax, shown, cmap, title=label)
    return fig
