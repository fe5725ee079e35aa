"""MNIST's preparation of a picture of a digit: :func:`prepare_digit`.

MNIST's makers (LeCun, Cortes, Burges) stored every digit as white ink on black, scaled, aspect kept,
so that its longer side fills a 20×20 box, and placed in a 28×28 frame with its centre of mass at the
frame's centre; LeNet-5 reads it zero-padded to 32×32. A network trained on those images misreads a
photo or a drawing that is not brought to the same form first: dark ink on white paper, off-centre,
large or small. :func:`prepare_digit` does those steps for any picture, and ``cnnkit predict`` applies
it to runs trained on ``mnist`` and ``mnist-5k`` (their ``Splits.prepare``).
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

__all__ = ["prepare_digit", "FRAME", "BOX"]

FRAME = 28  # MNIST's frame (pixels)
BOX = 20    # MNIST's box for the longer side of the digit (pixels)
FRINGE, FAINT = 2, 0.02  # the crop keeps up to 2 rows/columns of anti-aliased edge above 0.02


def prepare_digit(image, *, invert="auto", threshold: float = 0.2, box: int = BOX, size: int = FRAME) -> np.ndarray:
    """Bring a picture of one digit to MNIST's form: white ink on black, 20-pixel box, centred by mass.

    Steps (each one as MNIST's makers describe theirs):

    1. **grey** in [0, 1] (ITU-R 601 luma for colour). A picture with transparency (a canvas drawing)
       is first laid on a background opposite to its strokes: white under dark strokes, black under
       light ones.
    2. **invert** when the ink is dark on light paper: ``invert="auto"`` inverts when the median of the
       picture's outermost rows and columns is above 0.5; ``True``/``False`` force it.
    3. **background to 0, ink to 1**: ``x ← clip((x − b) / (m − b), 0, 1)`` with ``b`` that border
       median and ``m`` the brightest pixel.
    4. **crop to the ink**: the smallest box holding every pixel above ``threshold``, and the
       anti-aliased edge next to it (up to 2 rows or columns of fainter ink, above 0.02).
    5. **scale** the crop, aspect kept, so that its longer side is ``box`` pixels (Pillow's bilinear
       resampling, which averages over the source pixels when it shrinks).
    6. **centre** it in a 28×28 frame with its centre of mass (intensity-weighted mean row and column)
       at (14, 14), to the nearest pixel, as in MNIST itself (its digits' centres of mass lie in
       13.5–14.5).
    7. **pad** the frame with black to ``size`` × ``size`` (``size=32`` for LeNet-5, as LeCun did).

    Args:
        image: a file path, a Pillow image, or an array ``(H, W)``, ``(H, W, 1|2|3|4)`` (grey, grey +
            alpha, RGB, RGBA) or ``(1|3, H, W)``, of any size. Integer arrays are read as 0–255 (16-bit
            as 0–65535); float arrays as [0, 1], or as 0–255 when their maximum is above 1.
        invert: ``"auto"`` (default), ``True`` or ``False`` (see step 2).
        threshold: ink level, in (0, 1), that the crop of step 4 keeps (default 0.2).
        box: pixels of the longer side after scaling, 1–28 (default 20, MNIST's).
        size: side of the result, at least 28 (default 28; 32 for LeNet-5).

    Returns:
        float32 array ``(size, size)`` in [0, 1], white ink on black.

    Raises:
        FileNotFoundError: a path that does not exist. ValueError: not an image, an array of another
        shape or range, a picture without ink (uniform to within 0.05 of its border), or an argument
        out of range. TypeError: an argument of the wrong type.

    Example::

        >>> x = cnnkit.data.prepare_digit("my_digit.png", size=32)    # (32, 32) for LeNet-5
        >>> model(cnnkit.tensor(((x - mean) / std)[None, None]))
    """
    if invert not in ("auto", True, False):
        raise ValueError(f"prepare_digit: invert must be 'auto', True or False, got invert={invert!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold < 1:
        raise ValueError(f"prepare_digit: threshold must be a number in (0, 1), got threshold={threshold!r}")
    for name, value, lo, hi in (("box", box, 1, FRAME), ("size", size, FRAME, None)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"prepare_digit: {name} must be an int, got {name}={value!r}")
        if value < lo or (hi is not None and value > hi):
            bounds = f"{lo}–{hi}" if hi is not None else f"at least {lo}"
            raise ValueError(f"prepare_digit: {name} must be {bounds}, got {name}={value!r}")
    grey = _grey(image)                                                         # (H, W) float64 in [0, 1]
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    if invert is True or (invert == "auto" and np.median(border) > 0.5):
        grey, border = 1.0 - grey, 1.0 - border
    b, m = float(np.median(border)), float(grey.max())
    if m - b < 0.05:
        raise ValueError(f"prepare_digit: no ink found: every pixel is within {m - b:.3f} of the "
                         f"background ({b:.3f}); expected a digit darker or lighter than its paper")
    ink = np.clip((grey - b) / (m - b), 0.0, 1.0)                              # (H, W), background 0
    top, bottom, left, right = _ink_box(ink, threshold)
    crop = ink[top:bottom, left:right]                                        # (h, w)
    scaled = _scale(crop, int(box))                                            # longer side = box
    return _centre(scaled, int(size))


def _ink_box(ink: np.ndarray, threshold: float) -> tuple:
    """The smallest box holding every pixel above ``threshold``, widened on each side by up to
    ``FRINGE`` rows or columns of fainter edge (above ``FAINT``) that touch it."""
    rows, cols = np.flatnonzero((ink > threshold).any(1)), np.flatnonzero((ink > threshold).any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    for _ in range(FRINGE):
        if top > 0 and ink[top - 1, left:right].max() > FAINT:
            top -= 1
        if bottom < ink.shape[0] and ink[bottom, left:right].max() > FAINT:
            bottom += 1
        if left > 0 and ink[top:bottom, left - 1].max() > FAINT:
            left -= 1
        if right < ink.shape[1] and ink[top:bottom, right].max() > FAINT:
            right += 1
    return top, bottom, left, right


def _scale(crop: np.ndarray, box: int) -> np.ndarray:
    from PIL import Image

    h, w = crop.shape
    longer = max(h, w)
    th, tw = max(1, round(h * box / longer)), max(1, round(w * box / longer))
    pil = Image.fromarray(crop.astype(np.float32), mode="F")
    out = np.asarray(pil.resize((tw, th), Image.BILINEAR), dtype=np.float64)   # (th, tw)
    return np.clip(out, 0.0, 1.0)


def _centre(digit: np.ndarray, size: int) -> np.ndarray:
    """Place ``digit`` in a FRAME×FRAME frame with its centre of mass at (FRAME/2, FRAME/2), then pad."""
    h, w = digit.shape
    mass = digit.sum()
    cy = (digit.sum(1) * np.arange(h)).sum() / mass
    cx = (digit.sum(0) * np.arange(w)).sum() / mass
    top, left = int(np.floor(FRAME / 2 - cy + 0.5)), int(np.floor(FRAME / 2 - cx + 0.5))
    frame = np.zeros((FRAME, FRAME), np.float32)
    r0, c0 = max(top, 0), max(left, 0)                       # the part of the digit inside the frame
    r1, c1 = min(top + h, FRAME), min(left + w, FRAME)
    frame[r0:r1, c0:c1] = digit[r0 - top:r1 - top, c0 - left:c1 - left]
    pad = (size - FRAME) // 2
    return np.pad(frame, ((pad, size - FRAME - pad), (pad, size - FRAME - pad)))


# ----------------------------------------------------------------------------- reading
def _grey(image) -> np.ndarray:
    """A path, Pillow image or array → ``(H, W)`` float64 grey in [0, 1], transparency resolved."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        return _grey(_open(Path(image)))
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"prepare_digit: image must be a path, a PIL image or a numpy array, "
                        f"got {type(image).__name__}")
    return _from_array(image)


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise FileNotFoundError(f"prepare_digit: image file {str(path)!r} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"prepare_digit: image path {str(path)!r} is a directory")
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except UnidentifiedImageError:
        raise ValueError(f"prepare_digit: cannot read {str(path)!r}: not an image format Pillow recognises") from None
    except (OSError, SyntaxError) as exc:  # truncated or corrupt
        raise ValueError(f"prepare_digit: cannot read {str(path)!r}: {exc}") from None


def _from_pil(im) -> np.ndarray:
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16-bit / float greys
        return _from_array(np.asarray(im))
    if "A" in im.getbands() or "transparency" in im.info:
        return _from_array(np.asarray(im.convert("LA")))                        # (H, W, 2) uint8
    return _from_array(np.asarray(im.convert("L")))                             # (H, W) uint8


def _from_array(a: np.ndarray) -> np.ndarray:
    shape = a.shape
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 2, 3, 4):
        a = a.transpose(1, 2, 0)                                                # (C, H, W) → (H, W, C)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or min(a.shape[:2]) < 2:
        raise ValueError(f"prepare_digit: image must be (H, W), (H, W, C) with C in 1–4 or (C, H, W) with "
                         f"C in (1, 3), at least 2×2, got shape {shape}")
    if a.dtype == np.bool_:
        x = a.astype(np.float64)
    elif a.dtype.kind in "ui":
        x = a.astype(np.float64) / (65535.0 if a.dtype.itemsize > 1 and a.max(initial=0) > 255 else 255.0)
    elif a.dtype.kind == "f":
        x = a.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError("prepare_digit: image has NaN or infinite values")
        if x.max() > 1.0:
            x = x / 255.0
    else:
        raise TypeError(f"prepare_digit: image must hold numbers, got dtype {a.dtype}")
    if x.min() < 0 or x.max() > 1.0:
        raise ValueError(f"prepare_digit: image values must lie in [0, 1] or 0–255, got "
                         f"{a.min()}–{a.max()}")
    alpha = x[..., -1] if x.shape[2] in (2, 4) else None
    colour = x[..., :-1] if alpha is not None else x
    grey = (colour[..., 0] if colour.shape[2] == 1 else
            colour[..., 0] * 0.299 + colour[..., 1] * 0.587 + colour[..., 2] * 0.114)  # (H, W)
    if alpha is not None and np.any(alpha < 1.0):
        weight = alpha.sum()
        strokes = (grey * alpha).sum() / weight if weight > 0 else 0.0
        background = 1.0 if strokes < 0.5 else 0.0      # white paper under dark strokes, black under light
        grey = grey * alpha + background * (1.0 - alpha)
    return grey
