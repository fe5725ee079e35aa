"""``imagefolder(path)``: the user's own pictures, one sub-folder per class (as torchvision's ImageFolder).

::

    path/
        cat/  a.png  b.jpg ...
        dog/  c.jpeg ...

Classes are the sub-folder names in sorted order. Every PNG/JPEG is read with Pillow, converted to
one colour mode and resized to one size, then the set is split stratified like ``digits``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .sets import _check_fraction, _check_size, split_pool

__all__ = ["imagefolder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _scan(root: Path):
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"imagefolder: {root} has no sub-folders; expected one sub-folder of images per class")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
        if not found:
            raise ValueError(f"imagefolder: class folder {root / name} has no PNG or JPEG images")
        files += found
        labels += [label] * len(found)
    return classes, files, np.asarray(labels, dtype=np.int64)


def imagefolder(path, size=None, mode: str = "auto", seed: int = 0, val_fraction: float = 0.1,
                test_fraction: float = 0.2):
    """Load a folder of labelled images as :class:`~cnnkit.data.Splits`.

    Args:
        path: folder with one sub-folder per class (nested folders inside a class are included).
        size: ``(h, w)`` or an int; ``None`` uses the most common image size among the files.
        mode: ``"L"`` (grey, 1 channel), ``"RGB"`` (3 channels), or ``"auto"``: RGB if any image is in
            colour, else grey. Alpha is dropped; palette images are expanded.
        seed, val_fraction, test_fraction: the stratified split, as in :func:`cnnkit.data.digits`.

    Raises:
        ValueError: no class folders, an empty class folder, an unreadable image (the file is named).
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"imagefolder: {root} is not a folder")
    mode = str(mode)
    if mode.lower() == "auto":
        mode = "auto"
    elif mode.upper() in ("L", "RGB"):
        mode = mode.upper()
    else:
        raise ValueError(f"imagefolder: mode must be 'L', 'RGB' or 'auto', got {mode!r}")
    size = _check_size(size, "imagefolder")
    val_fraction = _check_fraction(val_fraction, "val_fraction", "imagefolder")
    test_fraction = _check_fraction(test_fraction, "test_fraction", "imagefolder")
    classes, files, labels = _scan(root)

    pictures = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                pictures.append(im.copy())
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ValueError(f"imagefolder: cannot read image {f}: {e}") from None
    if mode == "auto":
        mode = "RGB" if any(p.mode not in _GREY_MODES for p in pictures) else "L"
    if size is None:
        (w, h), _ = Counter(p.size for p in pictures).most_common(1)[0]
        size = (h, w)
    h, w = size
    channels = 3 if mode == "RGB" else 1
    images = np.empty((len(pictures), channels, h, w), dtype=np.float32)  # (N, C, h, w)
    for i, p in enumerate(pictures):
        if p.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float greys: scale to 8 bits first
            a = np.asarray(p, dtype=np.float64)
            top = 65535.0 if p.mode.startswith("I") and a.max() > 255 else 255.0
            p = Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8))
        if p.mode == "P" or p.mode == "PA":
            p = p.convert("RGBA")
        p = p.convert(mode)
        if p.size != (w, h):
            p = p.resize((w, h), Image.Resampling.BILINEAR)
        a = np.asarray(p, dtype=np.uint8)
        images[i] = (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)) / np.float32(255)  # (C, h, w)
    return split_pool(root.name or str(root), images, labels, classes, seed, val_fraction, test_fraction)
