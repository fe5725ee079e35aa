"""Bold digits drawn with strokes, as a person draws them on paper or a canvas: dark ink on white,
off-centre, at any size. Made with Pillow's line drawing from hand-placed stroke paths, so nothing of
cnnkit is involved in making them."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def _arc(cx, cy, rx, ry, start, stop, n=16):
    """Points of an elliptic arc; angles in degrees, 0 = right, 90 = down (image coordinates)."""
    t = np.radians(np.linspace(start, stop, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


# each digit: strokes (lists of (x, y) in a unit box, y downwards)
STROKES = {
    0: [_arc(0.5, 0.5, 0.32, 0.47, 0, 360, 32)],
    1: [[(0.32, 0.22), (0.55, 0.02), (0.55, 0.98)]],
    2: [_arc(0.5, 0.3, 0.32, 0.27, 200, 380) + [(0.16, 0.97), (0.88, 0.97)]],
    3: [_arc(0.48, 0.26, 0.3, 0.23, 210, 450), _arc(0.48, 0.72, 0.34, 0.25, 270, 510)],
    4: [[(0.68, 0.98), (0.68, 0.02), (0.1, 0.66), (0.92, 0.66)]],
    5: [[(0.82, 0.03), (0.28, 0.03), (0.24, 0.45)] + _arc(0.5, 0.66, 0.32, 0.3, 220, 490)],
    6: [_arc(0.75, 0.6, 0.55, 0.6, 230, 180, 10) + _arc(0.5, 0.7, 0.3, 0.27, 180, 540)],
    7: [[(0.1, 0.03), (0.9, 0.03), (0.4, 0.98)]],
    8: [_arc(0.5, 0.26, 0.26, 0.23, 90, 450, 24), _arc(0.5, 0.73, 0.33, 0.25, 270, 630, 24)],
    9: [_arc(0.5, 0.3, 0.3, 0.27, 0, 360, 24) + [(0.8, 0.3), (0.72, 0.98)]],
}


def draw_digit(digit: int, canvas=(160, 200), box=(60, 30, 70, 110), width: int = 12, ink: int = 20,
               paper: int = 245) -> np.ndarray:
    """``digit`` drawn with strokes of ``width`` pixels into ``box = (left, top, width, height)`` of a
    ``canvas = (height, width)`` sheet: a ``uint8`` ``(H, W)`` array, dark ``ink`` on light ``paper``."""
    h, w = canvas
    im = Image.new("L", (w, h), paper)
    d = ImageDraw.Draw(im)
    left, top, bw, bh = box
    for stroke in STROKES[digit]:
        pts = [(left + x * bw, top + y * bh) for x, y in stroke]
        d.line(pts, fill=ink, width=width, joint="curve")
        for x, y in (pts[0], pts[-1]):                  # round pen ends
            r = width / 2
            d.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    return np.asarray(im)


def ten_digits(seed: int = 0) -> list:
    """0–9, each bold, off-centre and at its own size on a 160×200 sheet (the same sheets for a seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(10):
        bh = int(rng.integers(70, 130))
        bw = int(bh * rng.uniform(0.55, 0.75))
        left = int(rng.integers(5, 200 - bw - 5))
        top = int(rng.integers(5, 160 - bh - 5))
        out.append(draw_digit(d, box=(left, top, bw, bh), width=max(6, round(bh * rng.uniform(0.1, 0.15)))))
    return out
