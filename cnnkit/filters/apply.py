"""Applying a kernel to an image: ``filter2d`` is a Conv2d with fixed weights.

The image is padded here with NumPy (the border rule), then cnnkit's own
``nn.functional.conv2d`` does the sliding dot products, so a filter response and a CNN layer run
the same code. Border names and their equivalents elsewhere:

=============== ================= ================== ====================== ==================
cnnkit          ``np.pad`` mode    OpenCV             scipy.ndimage           PyTorch ``F.pad``
=============== ================= ================== ====================== ==================
``constant``    ``constant`` (0)   BORDER_CONSTANT    ``constant`` (cval 0)   ``constant``
``reflect_101`` ``reflect``        BORDER_REFLECT_101 ``mirror``              ``reflect``
``reflect``     ``symmetric``      BORDER_REFLECT     ``reflect``             —
``replicate``   ``edge``           BORDER_REPLICATE   ``nearest``             ``replicate``
``wrap``        ``wrap``           BORDER_WRAP        ``wrap``                ``circular``
=============== ================= ================== ====================== ==================
"""
from __future__ import annotations

import numpy as np

from ..nn import functional as F
from ..shape import same_padding
from ..tensor import Tensor, no_grad
from .bank import kernel as _bank_kernel

__all__ = ["filter2d", "gradient_magnitude", "BORDERS", "MODES"]

BORDERS = {"constant": "constant", "reflect_101": "reflect", "reflect": "symmetric",
           "replicate": "edge", "wrap": "wrap"}
MODES = ("same", "valid")


def _as_kernel(kernel, owner: str) -> np.ndarray:
    if isinstance(kernel, str):
        return _bank_kernel(kernel)
    if isinstance(kernel, Tensor):
        kernel = kernel.data
    try:
        k = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: kernel must be a bank name or a 2-D array of numbers, got {kernel!r}") from None
    if k.ndim != 2 or k.size == 0:
        raise ValueError(f"{owner}: kernel must be a non-empty 2-D array, got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{owner}: kernel has a non-finite value")
    return k


def _as_planes(image, owner: str):
    """``(C, H, W)`` float planes of an ``(H, W)`` or ``(H, W, C)`` image, and a function putting
    ``(C, Ho, Wo)`` back into the image's layout."""
    if isinstance(image, Tensor):
        raise TypeError(f"{owner}: image must be a NumPy array (H, W) or (H, W, C), got a cnnkit Tensor; "
                        f"pass tensor.numpy() in HWC layout")
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: image must hold numbers, got dtype {arr.dtype}")
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"{owner}: image must be (H, W) or (H, W, C) and non-empty, got shape {arr.shape}")
    dtype = np.float64 if arr.dtype == np.float64 else np.float32
    arr = arr.astype(dtype, copy=False)
    if arr.ndim == 2:
        return arr[None], lambda out: out[0]                                     # (1, H, W)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)), lambda out: out.transpose(1, 2, 0)  # (C, H, W)


def filter2d(image, kernel, border: str = "reflect_101", mode: str = "same", correlate: bool = True) -> np.ndarray:
    r"""Filter an image with a 2-D kernel: each channel separately, as ``cv2.filter2D`` does.

    Computes the correlation ``out[y, x] = Σ_ij k[i, j] · img[y + i − a_y, x + j − a_x]`` with the
    anchor ``a = (kh//2, kw//2)`` (OpenCV's; the centre for odd sizes), or with ``correlate=False``
    the true convolution (kernel flipped, anchor ``k − 1 − k//2``, as ``scipy.ndimage.convolve``).
    Implemented as cnnkit's ``conv2d`` with the kernel as a ``(1, 1, kh, kw)`` weight and the
    channels as the batch.

    Args:
        image: ``(H, W)`` greyscale or ``(H, W, C)`` array (any numeric dtype; ``uint8`` stays in
            0–255 units).
        kernel: a bank name (``"sobel_x"``, see :func:`cnnkit.filters.names`) or a 2-D array, any
            odd or even size.
        border: how pixels outside the image are read in ``mode="same"``: ``"reflect_101"``
            (OpenCV's default, ``gfedcb|abcdefgh|gfedcba``), ``"reflect"`` (``fedcba|abcdefgh|hgfedcb``),
            ``"replicate"`` (``aaaaaa|abcdefgh|hhhhhhh``), ``"wrap"`` (``cdefgh|abcdefgh|abcdefg``) or
            ``"constant"`` (zeros, the lecture's zero padding).
        mode: ``"same"`` (output size = input size) or ``"valid"`` (no padding: only positions where
            the kernel fits, as in the lecture's 6×6 ⊛ 3×3 → 4×4 examples).
        correlate: ``True`` for correlation (OpenCV, CNNs), ``False`` for convolution.

    Shape:
        - Input: ``(H, W)`` or ``(H, W, C)``; kernel ``(kh, kw)``.
        - Output: same layout; ``(H, W)`` for ``"same"``, ``(H − kh + 1, W − kw + 1)`` for ``"valid"``.
        - dtype: ``float64`` for a ``float64`` image, ``float32`` otherwise.

    Example::

        >>> step = np.tile([10, 10, 10, 0, 0, 0], (6, 1))
        >>> filter2d(step, "vertical_edge", mode="valid")[0]
        array([ 0., 30., 30.,  0.], dtype=float32)
    """
    owner = "filter2d"
    if border not in BORDERS:
        raise ValueError(f"{owner}: border must be one of {', '.join(BORDERS)}; got border={border!r}")
    if mode not in MODES:
        raise ValueError(f"{owner}: mode must be 'same' or 'valid', got mode={mode!r}")
    planes, restore = _as_planes(image, owner)                                   # (C, H, W)
    k = _as_kernel(kernel, owner)
    if not correlate:
        k = k[::-1, ::-1]
    kh, kw = k.shape
    _, h, w = planes.shape
    if mode == "same":
        # OpenCV's anchor k//2 puts k//2 pixels before and k−1−k//2 after: PyTorch's 'same' split
        # reversed. Convolution flips the kernel and the anchor, giving the split unreversed.
        pad_h, pad_w = same_padding(kh), same_padding(kw)
        if correlate:
            pad_h, pad_w = pad_h[::-1], pad_w[::-1]
        np_mode = BORDERS[border]
        extra = {"constant_values": 0} if np_mode == "constant" else {}
        planes = np.pad(planes, ((0, 0), pad_h, pad_w), mode=np_mode, **extra)  # (C, H+kh−1, W+kw−1)
    elif kh > h or kw > w:
        raise ValueError(f"{owner}: kernel {kh}×{kw} does not fit in the {h}×{w} image in mode='valid'")
    x = Tensor(planes[:, None])                                                  # (C, 1, Hp, Wp)
    weight = Tensor(np.ascontiguousarray(k, dtype=planes.dtype)[None, None])    # (1, 1, kh, kw)
    with no_grad():
        out = F.conv2d(x, weight).data[:, 0]                                     # (C, Ho, Wo)
    return np.ascontiguousarray(restore(out))


def gradient_magnitude(image, border: str = "reflect_101") -> np.ndarray:
    r"""Edge strength ``sqrt(Gx² + Gy²)`` from the Sobel derivatives (``sobel_x``, ``sobel_y``).

    Equals ``cv2.magnitude(cv2.Sobel(img, CV_32F, 1, 0), cv2.Sobel(img, CV_32F, 0, 1))``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array (each channel separately).
        border: as in :func:`filter2d`.

    Shape:
        Output has the image's shape; ``float32`` (``float64`` for a ``float64`` image).
    """
    gx = filter2d(image, "sobel_x", border=border)
    gy = filter2d(image, "sobel_y", border=border)
    return np.sqrt(gx * gx + gy * gy)
