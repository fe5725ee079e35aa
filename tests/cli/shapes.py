"""A small folder of generated pictures for training tests: circles, squares and triangles.

Each image is 32×32 RGB: one filled shape of a random colour, size and place on a random dark background,
drawn with Pillow (an independent renderer), so a network must learn the outline, not a colour.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("circle", "square", "triangle")


def shape_image(kind: str, rng: np.random.Generator, size: int = 32):
    from PIL import Image, ImageDraw

    bg = tuple(int(v) for v in rng.integers(0, 90, 3))
    fg = tuple(int(v) for v in rng.integers(140, 256, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    r = rng.uniform(0.22, 0.38) * size
    cx, cy = rng.uniform(r + 1, size - r - 1, 2)
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    return im


def make_shapes(root, per_class: int = 40, seed: int = 0, size: int = 32) -> Path:
    """``root/circle/*.png``, ``root/square/*.png``, ``root/triangle/*.png``: ``per_class`` images each."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind in CLASSES:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape_image(kind, rng, size).save(root / kind / f"{i:03d}.png")
    return root
