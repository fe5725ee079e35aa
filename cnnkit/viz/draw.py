"""What every picture shares: a Figure on matplotlib's Agg canvas (no pyplot, nothing global), sizes
in pixels, text sizes a learner reads at screen size, and an atomic PNG writer.

Figures are laid out in pixels (:func:`axes_at`), so a tile of a 28×28 map is a whole number of screen
pixels and text sizes are exact: ``TEXT`` gives them in pixels (24 px labels, 28 px titles).
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io.atomic import atomic_path

__all__ = ["VizFigure", "new_figure", "axes_at", "save", "picture", "show", "title", "colourbar", "sign", "text_at", "text_size",
           "text_width", "DPI", "TEXT", "GAP", "HEAD", "FOOT"]

DPI = 100
TEXT = {"title": 28, "label": 24, "note": 20}   # pixels
INK, MUTED, PAPER = "#1a1a1a", "#555555", "white"
GAP, HEAD, FOOT = 14, 56, 30  # pixels between tiles; the title band; the signature band at the bottom
DIVERGING, SEQUENTIAL = "RdBu_r", "gray"


def text_size(kind: str) -> float:
    """Matplotlib's font size (points) for ``TEXT[kind]`` pixels at :data:`DPI`."""
    return TEXT[kind] * 72 / DPI


class VizFigure(Figure):
    """A matplotlib Figure on the Agg canvas that also shows itself in a notebook (``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png")
        return buf.getvalue()


def text_width(text: str, kind: str = "label") -> int:
    """About how many pixels ``text`` takes at ``TEXT[kind]`` (DejaVu Sans: ~0.6 em a character)."""
    return round(len(text) * 0.6 * TEXT[kind])


def new_figure(width_px: int, height_px: int, texts=()):
    """A white figure on its own Agg canvas: ``width_px`` wide (or wider, to fit each ``(text, kind)``
    of ``texts`` with a margin) and ``height_px`` tall plus a ``FOOT``-pixel band at the bottom for a
    signature (:func:`sign`)."""
    width_px = max([int(width_px)] + [text_width(t, k) + 40 for t, k in texts])
    height_px = int(height_px) + FOOT
    fig = VizFigure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor=PAPER)
    FigureCanvasAgg(fig)
    fig._px = (width_px, height_px)
    return fig


def text_at(fig, left: float, top: float, text: str, kind: str = "label", **kwargs):
    """``text`` at a pixel position measured from the figure's top-left corner, ``TEXT[kind]`` pixels high."""
    kwargs.setdefault("color", INK)
    return fig.text(left / fig._px[0], 1 - top / fig._px[1], text, fontsize=text_size(kind), **kwargs)


def sign(fig, text: str, alert: bool = False) -> None:
    """``text`` in the bottom-left corner (which model the picture shows), red when ``alert``."""
    text_at(fig, 6, fig._px[1] - 5, text, "note", va="bottom", color="#c0392b" if alert else "#777777")


def axes_at(fig, left: float, top: float, width: float, height: float, frame: bool = False):
    """Axes at a pixel rectangle measured from the figure's top-left corner (ticks off unless ``frame``)."""
    w, h = fig._px
    ax = fig.add_axes((left / w, 1 - (top + height) / h, width / w, height / h))
    if not frame:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color("#999999")
    return ax


def title(fig, text: str, note: str | None = None) -> None:
    """The figure's title (28 px) and a muted note under it (20 px), centred in the top band."""
    text_at(fig, fig._px[0] / 2, 10, text, "title", ha="center", va="top")
    if note:
        text_at(fig, fig._px[0] / 2, 44, note, "note", ha="center", va="top", color=MUTED)


def colourbar(fig, im, left, top, width, label):
    """A horizontal colour bar for ``im`` at a pixel position, ticks and label at 20 px."""
    cax = axes_at(fig, left, top, width, 18, frame=True)
    bar = fig.colorbar(im, cax=cax, orientation="horizontal")
    bar.ax.tick_params(labelsize=text_size("note"))
    bar.set_label(label, fontsize=text_size("note"), color=MUTED)
    return bar


def picture(chw: np.ndarray) -> tuple:
    """A model input or patch ``(C, H, W)`` → what ``imshow`` takes: ``(H, W)`` grey or ``(H, W, 3)`` colour,
    stretched to [0, 1] over its own range (NaN kept: shown as the background)."""
    a = np.asarray(chw, dtype=np.float64)
    lo, hi = np.nanmin(a), np.nanmax(a)
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    if a.shape[0] == 3:
        return np.nan_to_num(a.transpose(1, 2, 0), nan=1.0), None
    return a[0], SEQUENTIAL


def show(ax, image, cmap=SEQUENTIAL, vmin=None, vmax=None, title: str | None = None, size: str = "label"):
    """``imshow`` with square pixels, no smoothing, NaN as light grey, and an optional title."""
    cm = matplotlib.colormaps[cmap].with_extremes(bad="#dddddd") if cmap else None
    im = ax.imshow(image, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=text_size(size), color=INK, pad=4)
    return im


def save(fig, path) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (the file appears whole or not at all)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"output must be a .png file, got {str(path)!r}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", facecolor=fig.get_facecolor())
    return path
