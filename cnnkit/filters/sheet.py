"""A labelled contact sheet: the image and every filter's response side by side (``cnnkit filter --all``).

Each response is scaled on its own so that it stays readable (``scaling="auto"``):

* a kernel whose weights sum to 0 (edges, derivatives, Laplacians) answers 0 on flat areas and both
  signs at edges: 0 is mid-grey and ±(the 99th percentile of |response|) black and white, so the few
  strongest edges do not squeeze the rest into a sliver of the grey scale;
* any other kernel (blurs, sharpen, emboss: their weights sum to 1) answers in the image's own units:
  divided by that sum and clipped to 0–255, as OpenCV writes an 8-bit result. Sharpen's −232…584 on a
  photograph is not stretched (min–max left the photograph 31 % of the grey scale): it looks sharpened.

The sheet says so in its caption and writes under each name the range it shows and the share of pixels
clipped. ``"minmax"`` (each panel's [min, max] to 0–255) and ``"clip"`` (values clipped to 0–255) are
the alternatives.

Size: the columns and the tile size are chosen so that the sheet fits a 1920×1080 screen where it can
(:data:`SCREEN`): labels of :data:`LABEL_SIZE` px are then seen at that size. A large image is shown
reduced (each response computed at full size, then averaged down); a small one is enlarged by a whole
factor (nearest neighbour) up to :data:`MAX_TILE`; no tile is narrower than :data:`MIN_TILE`, which
holds the longest name. The caption gives the display size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .apply import filter2d
from .bank import kernel as bank_kernel
from .bank import names as bank_names

__all__ = ["contact_sheet", "panel_scale", "sheet_layout", "Layout", "SCALINGS", "GAP", "LABEL_SIZE", "NOTE_SIZE", "MIN_TILE", "MAX_TILE"]

SCALINGS = ("auto", "minmax", "clip")
GAP = 8              # pixels of background around and between tiles
LABEL_SIZE = 32      # font size (px) of the names: a name with ascenders and descenders spans ≥ 24 px of ink
NOTE_SIZE = 20       # font size (px) of each panel's range and of the caption
MIN_TILE = 240      # no tile is narrower (the longest name, horizontal_edge, is 237 px at LABEL_SIZE)
MAX_TILE = 320      # tiles are never shown wider
SCREEN = (1920, 1080)  # the sheet fits this where the tiles can stay at least MIN_TILE wide
PERCENTILE = 99.0   # zero-sum kernels: the share of |response| kept inside the grey scale (the rest is clipped)


def panel_scale(response: np.ndarray, weights: np.ndarray | None, scaling: str = "auto") -> tuple[float, float, str]:
    """``(low, high, text)``: the response values shown black and white, and how the panel says it."""
    r = np.asarray(response, dtype=np.float64)
    total = float(np.sum(weights)) if weights is not None else 1.0
    if scaling == "minmax":
        lo, hi = float(r.min()), float(r.max())
        return lo, hi, f"{_num(lo)}…{_num(hi)} (min…max)"
    if scaling == "auto" and abs(total) < 1e-9:                             # zero-sum: signed around 0
        a = float(np.percentile(np.abs(r), PERCENTILE)) or 1.0
        return -a, a, f"0 = grey, ±{_num(a)}"
    s = total if scaling == "auto" else 1.0                                # the image's units: 0...255
    lo, hi = sorted((0.0, 255.0 * s))
    return lo, hi, ("0…255" if s == 1 else f"0…255 x {s:g}") + _clipped(r, lo, hi)


def _clipped(r: np.ndarray, lo: float, hi: float) -> str:
    share = float(np.mean((r < lo) | (r > hi)))
    return f", {100 * share:.1f} % clipped" if share >= 0.0005 else ""


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.3g}"


def _to_grey_levels(response: np.ndarray, lo: float, hi: float) -> np.ndarray:
    x = (np.asarray(response, dtype=np.float64) - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros(response.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Layout:
    """Where :func:`contact_sheet` puts things: ``factor`` (display size / image size), the tile size
    ``tile_h × tile_w``, ``cols`` and ``rows``, ``top`` (the caption band's height), ``band`` (each label's
    height, above its tile) and the sheet's ``height × width``."""

    factor: float
    tile_h: int
    tile_w: int
    cols: int
    rows: int
    top: int
    band: int
    height: int
    width: int

    def tile(self, t: int) -> tuple[int, int]:
        """``(y, x)`` of the top-left pixel of tile ``t`` (0: the image); its label band is the ``band`` rows above."""
        return (self.top + (t // self.cols) * (self.band + self.tile_h + GAP) + self.band,
                GAP + (t % self.cols) * (self.tile_w + GAP))


_BAND = round(1.25 * LABEL_SIZE) + round(1.25 * NOTE_SIZE) + 4   # a tile's label band: its name, then its range
_LINE = round(1.25 * NOTE_SIZE)                                    # a caption line


def _fit_screen(h: int, w: int, n: int, caption_lines: int) -> tuple[int, float]:
    """``(cols, tile width)``: the column count whose tiles are widest with the sheet inside :data:`SCREEN`."""
    best = None
    top = 2 * GAP + caption_lines * _LINE
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        by_width = (SCREEN[0] - GAP) / cols - GAP
        by_height = ((SCREEN[1] - top) / rows - _BAND - GAP) * w / h
        tw = min(by_width, by_height, MAX_TILE)
        if best is None or tw > best[1] + 1e-9:
            best = (cols, tw)
    return best


def _tile_factor(w: int, target: float) -> float:
    """Display size / image size: a reduction of a large image, a whole enlargement of a small one."""
    target = max(target, MIN_TILE)
    if w > target:
        return target / w
    k = max(1, math.floor(target / w))
    return float(k if w * k >= MIN_TILE else math.ceil(MIN_TILE / w))


def sheet_layout(image_shape, n: int, caption_lines: int) -> Layout:
    """The :class:`Layout` of a sheet of ``n`` tiles of an image of ``image_shape`` ``(H, W, ...)`` under a
    caption of ``caption_lines`` lines."""
    h, w = image_shape[:2]
    cols, target = _fit_screen(h, w, n, caption_lines)
    factor = _tile_factor(w, target)
    th, tw = max(1, round(h * factor)), max(1, round(w * factor))
    rows = math.ceil(n / cols)
    top = 2 * GAP + caption_lines * _LINE
    return Layout(factor, th, tw, cols, rows, top, _BAND, top + rows * (_BAND + th + GAP), cols * (tw + GAP) + GAP)


def _resize(tile: np.ndarray, lay: Layout) -> np.ndarray:
    from PIL import Image
    if lay.factor == 1.0:
        return tile
    channels = [np.asarray(Image.fromarray(tile[..., i]).resize(
        (lay.tile_w, lay.tile_h), Image.NEAREST if lay.factor > 1 else Image.BOX)) for i in range(tile.shape[2])]
    return np.stack(channels, axis=-1)


def contact_sheet(image, filters=None, border: str = "reflect_101", scaling: str = "auto") -> np.ndarray:
    """Tile the image and its response to each filter, each under its name and the range it shows.

    Layout: a caption band on top (how the panels are scaled, the display size), then ``n = 1 +
    len(filters)`` tiles (the first is the image, ``original``) in ``cols = ceil(sqrt(n))`` columns, row by
    row, each under a band holding its name (:data:`LABEL_SIZE` px) and its range (:data:`NOTE_SIZE` px).

    Args:
        image: ``uint8`` ``(H, W, 1)`` or ``(H, W, 3)`` image (or ``(H, W)``).
        filters: bank names (default: the whole bank).
        border: border rule for :func:`filter2d`.
        scaling: ``"auto"`` (default: each panel by :func:`panel_scale`, see the module docstring),
            ``"minmax"`` (each panel's [min, max] to 0–255) or ``"clip"`` (clipped to 0–255).

    Returns:
        ``uint8`` ``(height, width, C)``, ``C`` the image's channels, on a white background.
    """
    from PIL import Image, ImageDraw, ImageFont

    if scaling not in SCALINGS:
        raise ValueError(f"contact_sheet: scaling must be one of {', '.join(SCALINGS)}, got scaling={scaling!r}")
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"contact_sheet: image must be uint8 (H, W, 1) or (H, W, 3), got {img.dtype} {img.shape}")
    filters = bank_names() if filters is None else list(filters)
    h, w, c = img.shape
    note_font = ImageFont.load_default(size=NOTE_SIZE)
    lay = sheet_layout(img.shape, 1 + len(filters), 3)
    for _ in range(2):                     # the caption names the display size, which its height changes
        caption_lines = _fit(_caption(scaling, lay.factor, w, h), note_font, lay.width - 2 * GAP)
        lay = sheet_layout(img.shape, 1 + len(filters), len(caption_lines))
    tiles = [("original", _resize(img, lay), "the image")]
    for name in filters:
        response = filter2d(img, name, border=border)                           # (H, W, C) float32
        lo, hi, text = panel_scale(response, bank_kernel(name), scaling)
        tiles.append((name, _resize(_to_grey_levels(response, lo, hi), lay), text))
    label_font = ImageFont.load_default(size=LABEL_SIZE)
    sheet = np.full((lay.height, lay.width, c), 255, dtype=np.uint8)
    for t, (_, tile, _) in enumerate(tiles):
        y, x = lay.tile(t)
        sheet[y:y + lay.tile_h, x:x + lay.tile_w] = tile
    pil = Image.fromarray(sheet[..., 0] if c == 1 else sheet)
    white = 255 if c == 1 else (255, 255, 255)
    ink, muted = (0, 90) if c == 1 else ((0, 0, 0), (90, 90, 90))
    draw = ImageDraw.Draw(pil)
    for i, line in enumerate(caption_lines):
        draw.text((GAP, GAP + i * round(1.25 * NOTE_SIZE)), line, fill=ink, font=note_font)
    for t, (label, _, text) in enumerate(tiles):
        y, x = lay.tile(t)
        # each label on its own tile-wide canvas, so a long name is cut at the tile's edge
        canvas = Image.new(pil.mode, (lay.tile_w, lay.band), white)
        d = ImageDraw.Draw(canvas)
        d.text((1, 0), label, fill=ink, font=label_font)
        d.text((1, round(1.25 * LABEL_SIZE) + 2), text, fill=muted, font=note_font)
        pil.paste(canvas, (x, y - lay.band))
    out = np.asarray(pil)
    return out[..., None] if c == 1 else out.copy()


def _caption(scaling: str, factor: float, w: int, h: int) -> str:
    how = {"auto": f"Each panel scaled on its own. Kernels summing to 0 (edges): 0 is mid-grey, ±(the {PERCENTILE:g}th "
                   "percentile of |response|) black and white. The others (blurs, sharpen, emboss: weights summing "
                   "to 1): in the image's units, 0…255, as OpenCV writes 8 bits.",
           "minmax": "Each panel's [min, max] stretched to black…white.",
           "clip": "Responses clipped to 0…255."}[scaling]
    how += " Values beyond are clipped; under each name: the range shown, the share clipped."
    shown = f"{round(w * factor)}x{round(h * factor)}"
    if factor > 1:
        size = f" Tiles {shown}: the {w}x{h} image enlarged {factor:g}x."
    elif factor < 1:
        size = f" Tiles {shown}: reduced from the {w}x{h} image (filtered at full size)."
    else:
        size = f" Tiles at the image's {w}x{h}."
    return how + size


def _fit(text: str, font, width: int) -> list:
    """``text`` broken into lines no wider than ``width`` pixels in ``font``."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and font.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])
