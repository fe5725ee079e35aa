"""Small real photographs for the filter tests (scikit-image's sample images, cropped/downscaled)."""
from __future__ import annotations

import functools

import numpy as np
import skimage.data


@functools.lru_cache(maxsize=None)
def photos() -> dict:
    """name -> uint8 image: greyscale (H, W) or colour (H, W, 3), all small (<= 64 px a side)."""
    return {
        "camera": skimage.data.camera()[96:160, 200:264].copy(),           # (64, 64) grey, crop
        "coins": skimage.data.coins()[::5, ::5][:60, :64].copy(),           # (60, 64) grey, downscaled
        "astronaut": skimage.data.astronaut()[:384:8, 64:448:6].copy(),     # (48, 64, 3) colour
        "chelsea": skimage.data.chelsea()[100:150, 150:211].copy(),         # (50, 61, 3) colour, odd width
    }
