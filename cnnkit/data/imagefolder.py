"""``imagefolder(path)``: the user's own pictures, one sub-folder per class (as torchvision's ImageFolder).

::

    path/                          or, already split:     path/train/cat/ ...  path/train/dog/ ...
        cat/  a.png  b.jpg ...                            path/test/cat/ ...   path/test/dog/ ...
        dog/  c.jpeg ...                                  (path/val/... optional)

Classes are the sub-folder names in sorted order. Every PNG/JPEG is read with Pillow, converted to
one colour mode and resized to one size (:func:`load_image` does the same for a single picture, so
prediction sees images prepared exactly as in training); then the set is split stratified like
``digits`` unless it comes already split.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .dataset import Splits, check_fraction, check_size, split_pool, stratified_split

__all__ = ["imagefolder", "load_image", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_MAX_BYTES = 2 << 30  # refuse to build a float array over 2 GiB without an explicit size


def _class_dirs(root: Path) -> list:
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _scan(root: Path, classes: list | None = None):
    found_classes = _class_dirs(root)
    if not found_classes:
        raise ValueError(f"imagefolder: {root} has no sub-folders; expected one sub-folder of images per class")
    if classes is None:
        classes = found_classes
    else:
        extra = sorted(set(found_classes) - set(classes))
        if extra:
            raise ValueError(f"imagefolder: {root} has class folders {extra} that the training folder lacks")
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        found = sorted(p for p in folder.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
        if not found and folder.is_dir():
            raise ValueError(f"imagefolder: class folder {folder} has no PNG or JPEG images")
        files += found
        labels += [label] * len(found)
    return classes, files, np.asarray(labels, dtype=np.int64)


def _check_mode(mode) -> str:
    mode = str(mode)
    if mode.lower() == "auto":
        return "auto"
    if mode.upper() in ("L", "RGB"):
        return mode.upper()
    raise ValueError(f"imagefolder: mode must be 'L', 'RGB' or 'auto', got {mode!r}")


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from None


def _convert(picture, mode: str, size: tuple) -> np.ndarray:
    """A Pillow image → float32 ``(C, h, w)`` in [0, 1]: mode ``"L"``/``"RGB"``, bilinear resize."""
    from PIL import Image

    p = picture
    if p.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float greys: scale to 8 bits first
        a = np.asarray(p, dtype=np.float64)
        top = 65535.0 if p.mode.startswith("I") and a.max() > 255 else 255.0
        top = 1.0 if p.mode == "F" and a.max() <= 1.0 else top
        p = Image.fromarray(np.clip(a / top * 255.0, 0, 255).round().astype(np.uint8))
    if p.mode in ("P", "PA"):
        p = p.convert("RGBA")
    p = p.convert(mode)
    h, w = size
    if p.size != (w, h):
        p = p.resize((w, h), Image.Resampling.BILINEAR)
    a = np.asarray(p, dtype=np.uint8)
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)).astype(np.float32) / np.float32(255)  # (C, h, w)


def load_image(path, input_size) -> np.ndarray:
    """Read one picture the way :func:`imagefolder` prepares training images.

    Args:
        path: a PNG or JPEG (any format Pillow reads).
        input_size: ``(C, H, W)`` the model expects; ``C`` = 1 converts to grey, 3 to RGB.

    Returns:
        float32 array ``(C, H, W)`` in [0, 1].
    """
    if len(tuple(input_size)) != 3 or tuple(input_size)[0] not in (1, 3):
        raise ValueError(f"load_image: input_size must be (C, H, W) with C = 1 or 3, got {tuple(input_size)}")
    c, h, w = (int(v) for v in input_size)
    with _open(Path(path)) as im:
        try:
            im.load()
        except (OSError, SyntaxError) as e:
            raise ValueError(f"cannot read image {path}: {e}") from None
        return _convert(im, "L" if c == 1 else "RGB", (h, w))


def _read_all(files: list, mode: str, size: tuple) -> np.ndarray:
    h, w = size
    out = np.empty((len(files), 1 if mode == "L" else 3, h, w), dtype=np.float32)  # (N, C, h, w)
    for i, f in enumerate(files):
        with _open(f) as im:
            try:
                im.load()
            except (OSError, SyntaxError) as e:
                raise ValueError(f"imagefolder: cannot read image {f}: {e}") from None
            out[i] = _convert(im, mode, size)
    return out


def imagefolder(path, size=None, mode: str = "auto", seed: int = 0, val_fraction: float = 0.1,
                test_fraction: float = 0.2):
    """Load a folder of labelled images as :class:`~cnnkit.data.Splits`.

    Args:
        path: folder with one sub-folder per class (nested folders inside a class are included), or
            with ``train/`` and ``test/`` (and optionally ``val/``) folders laid out that way.
        size: ``(h, w)`` or an int; ``None`` uses the most common image size among the files.
        mode: ``"L"`` (grey, 1 channel), ``"RGB"`` (3 channels), or ``"auto"``: RGB if any image is in
            colour, else grey. Alpha is dropped; palette images are expanded.
        seed, val_fraction, test_fraction: the stratified split, as in :func:`cnnkit.data.digits`
            (for a pre-split folder without ``val/``, ``val_fraction`` of ``train/`` becomes validation).

    Raises:
        ValueError: no class folders, an empty class folder, an unreadable image (the file is named).
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"imagefolder: {root} is not a folder")
    mode = _check_mode(mode)
    size = check_size(size, "imagefolder")
    val_fraction = check_fraction(val_fraction, "val_fraction", "imagefolder")
    test_fraction = check_fraction(test_fraction, "test_fraction", "imagefolder")
    name = root.resolve().name or str(root)

    top = _class_dirs(root)
    presplit = "train" in top and "test" in top and bool(_class_dirs(root / "train"))
    if presplit:
        classes, files, labels = _scan(root / "train")
        parts = {"train": (files, labels)}
        for part in ("val", "test"):
            if (root / part).is_dir():
                _, f, y = _scan(root / part, classes)
                parts[part] = (f, y)
        files = [f for fs, _ in parts.values() for f in fs]
    else:
        classes, files, labels = _scan(root)

    if mode == "auto" or size is None:  # headers only: Pillow decodes no pixels here
        sizes, colour = Counter(), False
        for f in files:
            with _open(f) as im:
                sizes[im.size] += 1
                colour = colour or im.mode not in _GREY_MODES
        if mode == "auto":
            mode = "RGB" if colour else "L"
        if size is None:
            (w, h), _ = sizes.most_common(1)[0]
            size = (h, w)
            need = len(files) * (3 if mode == "RGB" else 1) * h * w * 4
            if need > _MAX_BYTES:
                raise ValueError(f"imagefolder: {len(files)} images at their common size {h}x{w} would need "
                                 f"{need / 2**30:.1f} GiB; pass size= (e.g. size=64) to shrink them")

    if not presplit:
        return split_pool(name, _read_all(files, mode, size), labels, classes, seed, val_fraction, test_fraction)
    data = {k: (_read_all(f, mode, size), y) for k, (f, y) in parts.items()}
    train_x, train_y = data["train"]
    if "val" in data:
        val_x, val_y = data["val"]
    else:
        val_idx, train_idx = stratified_split(train_y, (val_fraction,), seed)
        val_x, val_y = train_x[val_idx], train_y[val_idx]
        train_x, train_y = train_x[train_idx], train_y[train_idx]
    test_x, test_y = data["test"]
    return Splits.from_arrays(name, classes, train_x, train_y, test_x, test_y, val_x, val_y)
