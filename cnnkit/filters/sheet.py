"""A labelled contact sheet: the image and every filter's response side by side (``cnnkit filter --all``)."""
from __future__ import annotations

import math

import numpy as np

from .apply import filter2d
from .bank import names as bank_names

__all__ = ["contact_sheet", "GAP", "LABEL_HEIGHT"]

GAP = 4            # pixels of background around and between tiles
LABEL_HEIGHT = 14  # pixels of label band above each tile


def contact_sheet(image, filters=None, border: str = "reflect_101", scaling: str = "minmax") -> np.ndarray:
    """Tile the image and its response to each filter, each under a label, on a white sheet.

    Layout: ``n = 1 + len(filters)`` tiles (the first is the image, labelled ``original``), in
    ``cols = ceil(sqrt(n))`` columns and ``rows = ceil(n / cols)`` rows, row by row. Tile ``t`` sits at
    ``x = GAP + (t % cols)·(W + GAP)``, ``y = GAP + (t // cols)·(LABEL_HEIGHT + H + GAP) + LABEL_HEIGHT``;
    its label (Pillow's default font, black) is in the band above it.

    Args:
        image: ``uint8`` ``(H, W, 1)`` or ``(H, W, 3)`` image (or ``(H, W)``).
        filters: bank names (default: the whole bank).
        border: border rule for :func:`filter2d`.
        scaling: ``"minmax"`` stretches each response to 0–255 (each tile separately); ``"clip"``
            clips it to 0–255.

    Shape:
        Output ``(rows·(LABEL_HEIGHT + H + GAP) + GAP, cols·(W + GAP) + GAP, C)`` ``uint8``, ``C`` the
        image's channels.
    """
    from PIL import Image, ImageDraw, ImageFont

    from ..files import to_image

    if scaling not in ("minmax", "clip"):
        raise ValueError(f"contact_sheet: scaling must be 'minmax' or 'clip', got scaling={scaling!r}")
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"contact_sheet: image must be uint8 (H, W, 1) or (H, W, 3), got {img.dtype} {img.shape}")
    filters = bank_names() if filters is None else list(filters)
    h, w, c = img.shape
    tiles = [("original", img)]
    for name in filters:
        response = filter2d(img, name, border=border)                           # (H, W, C) float32
        tiles.append((name, to_image(response, scale="raw", normalize="minmax" if scaling == "minmax" else None,
                                     clip=True)))
    n = len(tiles)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell_h = LABEL_HEIGHT + h + GAP
    sheet = np.full((rows * cell_h + GAP, cols * (w + GAP) + GAP, c), 255, dtype=np.uint8)
    for t, (_, tile) in enumerate(tiles):
        y = GAP + (t // cols) * cell_h + LABEL_HEIGHT
        x = GAP + (t % cols) * (w + GAP)
        sheet[y:y + h, x:x + w] = tile
    pil = Image.fromarray(sheet[..., 0] if c == 1 else sheet)
    font = ImageFont.load_default()
    ink = 0 if c == 1 else (0, 0, 0)
    for t, (label, _) in enumerate(tiles):
        y = GAP + (t // cols) * cell_h
        x = GAP + (t % cols) * (w + GAP)
        # draw the label on its own band-sized canvas so long names are cut at the tile's edge
        band = Image.new(pil.mode, (w, LABEL_HEIGHT), 255 if c == 1 else (255, 255, 255))
        ImageDraw.Draw(band).text((1, 1), label, fill=ink, font=font)
        pil.paste(band, (x, y))
    out = np.asarray(pil)
    return out[..., None] if c == 1 else out.copy()
