"""Images in and out, in the lecture's encoding: ``N×N×3`` (RGB) or ``N×N×1`` (greyscale), 8 bits.

Convention: an *image* is a NumPy ``uint8`` array in HWC layout, ``(H, W, 3)`` or ``(H, W, 1)``,
values 0–255 (what :func:`read_image` returns and :func:`write_image` takes). A *tensor* is a
cnnkit ``Tensor`` of ``float32`` in CHW layout (:func:`to_tensor`); :func:`to_image` goes back,
with explicit clipping or min–max normalisation for filter responses outside 0–255.

Files that do not fit the 8-bit encoding are converted by stated rules or rejected, never
silently mangled:

* 16-bit samples (16-bit PNG/TIFF, grey or colour) keep their high byte, ``v >> 8`` (Pillow does
  this itself for 16-bit colour PNGs; cnnkit does the same for 16-bit grey so both agree).
  32-bit integer samples above 65535 and floating-point images are rejected.
* Transparency: a fully opaque alpha channel is dropped. Any other alpha raises ``ValueError``
  unless ``alpha="drop"`` (keep the colour as stored, ignore alpha) or ``alpha="white"`` /
  ``alpha="black"`` (composite over that background, rounded to the nearest integer).
* Palette and bilevel images are expanded; CMYK/YCbCr are converted to RGB by Pillow.
* Multi-frame files (GIF, TIFF): the first frame.

Pillow does the file formats (PNG, JPEG, BMP, TIFF by the file's suffix for writing).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..tensor import Tensor
from .atomic import atomic_path

__all__ = ["read_image", "write_image", "to_tensor", "to_image"]

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"}


def read_image(path, mode: str = "rgb", alpha: str = "error") -> np.ndarray:
    """Read an image file as ``uint8`` HWC.

    Args:
        path: file to read (any format Pillow reads: PNG, JPEG, BMP, TIFF, GIF, ...).
        mode: ``"rgb"`` → ``(H, W, 3)``; ``"gray"`` → ``(H, W, 1)`` (ITU-R 601 luma,
            ``L = 0.299 R + 0.587 G + 0.114 B`` as Pillow and OpenCV compute it); ``"auto"`` keeps
            greyscale files ``(H, W, 1)`` and reads everything else as ``(H, W, 3)``.
        alpha: what to do with a transparent pixel: ``"error"`` (default), ``"drop"``,
            ``"white"`` or ``"black"`` (see the module notes). Fully opaque alpha is always dropped.

    Raises:
        FileNotFoundError: no such file. ValueError: not an image, or a sample format or
        transparency the rules above reject.

    Example::

        >>> img = read_image("photo.png", mode="gray")   # (H, W, 1) uint8
    """
    from PIL import Image, UnidentifiedImageError

    if mode not in ("rgb", "gray", "auto"):
        raise ValueError(f"read_image: mode must be 'rgb', 'gray' or 'auto', got mode={mode!r}")
    if alpha not in ("error", "drop", "white", "black"):
        raise ValueError(f"read_image: alpha must be 'error', 'drop', 'white' or 'black', got alpha={alpha!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"image path {str(path)!r} is a directory")
    try:
        with Image.open(path) as im:
            im.load()
            return _decode(im, path, mode, alpha)
    except UnidentifiedImageError:
        raise ValueError(f"cannot read {str(path)!r}: not an image format Pillow recognises") from None
    except (OSError, SyntaxError) as exc:  # truncated or corrupt data
        raise ValueError(f"cannot read {str(path)!r}: {exc}") from None


def _decode(im, path: Path, mode: str, alpha: str) -> np.ndarray:
    src = im.mode
    grey_source = src in _GREY_MODES or (src == "P" and _palette_is_grey(im))
    if src in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        data = np.asarray(im)
        if data.size and (data.min() < 0 or data.max() > 65535):
            raise ValueError(f"cannot read {str(path)!r}: {src} samples outside 0–65535 "
                             f"(range {data.min()}–{data.max()}); only 8- and 16-bit images are supported")
        rgb = (data.astype(np.uint32) >> 8).astype(np.uint8)[..., None]           # (H, W, 1)
        a = None
    elif src == "F":
        raise ValueError(f"cannot read {str(path)!r}: floating-point images are not supported "
                         f"(8- or 16-bit integer samples expected)")
    else:
        if src == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif src == "PA":
            im = im.convert("RGBA")
        elif src == "1":
            im = im.convert("L")
        elif src == "La":
            im = im.convert("LA")
        elif src not in ("L", "LA", "RGB", "RGBA"):
            try:
                im = im.convert("RGBA" if "A" in src.upper() else "RGB")  # RGBa (premultiplied) too
            except ValueError:
                raise ValueError(f"cannot read {str(path)!r}: unsupported pixel mode {src!r}") from None
        arr = np.asarray(im)
        if arr.ndim == 2:
            arr = arr[..., None]                                                 # (H, W, 1)
        if arr.dtype != np.uint8:
            raise ValueError(f"cannot read {str(path)!r}: unsupported sample type {arr.dtype} (mode {src!r})")
        if arr.shape[2] in (2, 4):
            rgb, a = arr[..., :-1], arr[..., -1:]
        else:
            rgb, a = arr, None
    if a is not None and not np.all(a == 255):
        rgb = _apply_alpha(rgb, a, alpha, path)
    if mode == "auto":
        mode = "gray" if grey_source else "rgb"
    if mode == "rgb":
        return np.ascontiguousarray(np.broadcast_to(rgb, rgb.shape[:2] + (3,)) if rgb.shape[2] == 1 else rgb)
    if rgb.shape[2] == 1:
        return np.ascontiguousarray(rgb)
    from PIL import Image
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").convert("L"))[..., None].copy()


def _palette_is_grey(im) -> bool:
    pal = im.getpalette() or []
    triples = np.array(pal[: len(pal) // 3 * 3]).reshape(-1, 3)
    return bool(len(triples)) and bool(np.all(triples == triples[:, :1]))


def _apply_alpha(rgb: np.ndarray, a: np.ndarray, rule: str, path: Path) -> np.ndarray:
    if rule == "error":
        n = int(np.count_nonzero(a != 255))
        raise ValueError(f"{str(path)!r} has transparency ({n} pixels with alpha < 255); pass "
                         f"alpha='drop' to ignore it or alpha='white'/'black' to composite over a background")
    if rule == "drop":
        return rgb
    bg = 255.0 if rule == "white" else 0.0
    w = a.astype(np.float64) / 255.0
    return np.rint(rgb * w + bg * (1.0 - w)).astype(np.uint8)


def write_image(path, image, quality: int = 95) -> None:
    """Write a ``uint8`` image to ``path`` atomically (the file appears whole or not at all).

    Args:
        path: output file; the format comes from the suffix: ``.png``, ``.jpg``/``.jpeg``,
            ``.bmp``, ``.tif``/``.tiff``.
        image: ``uint8`` array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (RGBA, not for
            JPEG/BMP). Convert float responses first with :func:`to_image`.
        quality: JPEG quality, 1–100 (above 95 gains little).

    Example::

        >>> write_image("edges.png", to_image(response, scale="raw", normalize="minmax"))
    """
    from PIL import Image

    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"write_image: cannot tell the format of {str(path)!r}; use one of "
                         f"{', '.join(sorted(_FORMATS))}")
    if isinstance(image, Tensor):
        raise TypeError("write_image: got a Tensor; convert it with cnnkit.files.to_image(tensor) first")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"write_image: image must be uint8 (0–255), got dtype {arr.dtype}; "
                        f"convert with cnnkit.files.to_image(array, scale=..., clip=True or normalize='minmax')")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))) or arr.size == 0:
        raise ValueError(f"write_image: image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                         f"got shape {np.asarray(image).shape}")
    if arr.ndim == 3 and arr.shape[2] == 4 and fmt in ("JPEG", "BMP"):
        raise ValueError(f"write_image: {fmt} cannot store an alpha channel ({str(path)!r}); use .png")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"write_image: quality must be an int from 1 to 100, got quality={quality!r}")
    pil = Image.fromarray(np.ascontiguousarray(arr))
    options = {"quality": int(quality)} if fmt == "JPEG" else {}
    with atomic_path(path) as tmp:
        pil.save(tmp, format=fmt, **options)


def to_tensor(image, scale: str = "unit") -> Tensor:
    """An image as a ``float32`` CHW tensor.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array (usually ``uint8`` from :func:`read_image`).
        scale: ``"unit"`` divides by 255 (0–255 → 0–1, as torchvision's ``to_tensor``); ``"raw"``
            keeps the values (0–255).

    Shape:
        ``(H, W, C)`` → ``(C, H, W)``; ``(H, W)`` → ``(1, H, W)``.
    """
    if scale not in ("unit", "raw"):
        raise ValueError(f"to_tensor: scale must be 'unit' or 'raw', got scale={scale!r}")
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"to_tensor: image must hold numbers, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"to_tensor: image must be (H, W) or (H, W, C), got shape {arr.shape}")
    out = arr.transpose(2, 0, 1).astype(np.float32)                              # (C, H, W)
    if scale == "unit":
        out /= np.float32(255.0)
    return Tensor(np.ascontiguousarray(out))


def to_image(array, scale: str = "unit", clip: bool = True, normalize: str | None = None,
             layout: str = "auto") -> np.ndarray:
    """Turn a tensor or float array into a ``uint8`` HWC image.

    Args:
        array: a ``Tensor`` (CHW by default) or a NumPy array (HWC by default); 2-D means ``(H, W)``.
        scale: units of ``array``: ``"unit"`` (0–1, multiplied by 255; the inverse of
            ``to_tensor``'s default) or ``"raw"`` (already 0–255, e.g. a filter response of a
            ``uint8`` image).
        clip: values outside 0–255 (after scaling) are clipped; with ``clip=False`` they raise
            ``ValueError`` instead.
        normalize: ``"minmax"`` maps ``[min, max]`` of the whole array linearly onto 0–255 (a
            constant array gives 0), ignoring ``scale`` and ``clip``; ``None`` (default) does not.
        layout: ``"auto"`` (Tensor → CHW, ndarray → HWC), ``"chw"`` or ``"hwc"``.

    Returns:
        ``uint8`` array ``(H, W, C)`` (``(H, W, 1)`` for a 2-D input), rounded to nearest.
    """
    if scale not in ("unit", "raw"):
        raise ValueError(f"to_image: scale must be 'unit' or 'raw', got scale={scale!r}")
    if normalize not in (None, "minmax"):
        raise ValueError(f"to_image: normalize must be None or 'minmax', got normalize={normalize!r}")
    if layout not in ("auto", "chw", "hwc"):
        raise ValueError(f"to_image: layout must be 'auto', 'chw' or 'hwc', got layout={layout!r}")
    is_tensor = isinstance(array, Tensor)
    arr = np.asarray(array.data if is_tensor else array)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"to_image: array must hold numbers, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]                                                     # (H, W, 1)
    elif arr.ndim == 3:
        if layout == "chw" or (layout == "auto" and is_tensor):
            arr = arr.transpose(1, 2, 0)                                         # (H, W, C)
    else:
        raise ValueError(f"to_image: array must be 2-D or 3-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"to_image: array is empty (shape {arr.shape})")
    x = arr.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("to_image: array has NaN or infinite values")
    if normalize == "minmax":
        lo, hi = x.min(), x.max()
        x = (x - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(x)
    else:
        if scale == "unit":
            x = x * 255.0
        if clip:
            x = np.clip(x, 0.0, 255.0)
        elif x.min() < -0.5 or x.max() > 255.5:
            raise ValueError(f"to_image: values outside 0–255 after scale={scale!r} "
                             f"(min {x.min():.4g}, max {x.max():.4g}); pass clip=True or normalize='minmax'")
    return np.ascontiguousarray(np.clip(np.rint(x), 0, 255).astype(np.uint8))
