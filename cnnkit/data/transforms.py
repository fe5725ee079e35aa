"""Image transforms: callables on one image, a float32 array ``(C, H, W)``, composable with :class:`Compose`.

Random transforms draw from, in order of preference, the ``rng`` passed to the call (the
:class:`~cnnkit.data.DataLoader` passes one derived from its seed and epoch, so a resumed run sees
the same augmentations as an uninterrupted one), the ``generator`` given at construction, or
cnnkit's global generator (:func:`cnnkit.manual_seed`). Every transform here is also
``batched``: :meth:`Transform.apply_batch` transforms a batch ``(N, C, H, W)`` in one vectorised step
(random ones draw a separate crop / coin per image), and the loader uses it instead of a Python loop.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["Transform", "Compose", "Normalize", "Resize", "RandomCrop", "RandomHorizontalFlip", "ToTensor",
           "resize_images"]


def _pair(value, name: str, owner: str) -> tuple:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")
    if min(value) <= 0:
        raise ValueError(f"{owner}: {name} must be positive, got {value!r}")
    return int(value[0]), int(value[1])


def _check_image(x, owner: str, batched: bool = False) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{owner}: expected a numpy.ndarray image (C, H, W), got {type(x).__name__}")
    ok = (3, 4) if batched else (3,)
    if x.ndim not in ok:
        want = "(C, H, W) or (N, C, H, W)" if batched else "(C, H, W)"
        raise ValueError(f"{owner}: expected an image of shape {want}, got shape {x.shape}")
    return x


class Transform:
    """Base class: ``__call__(x, rng=None)``; subclasses that use randomness draw from :meth:`_rng`."""

    batched = False  # True: apply_batch transforms (N, C, H, W) at once, each image as __call__ would

    def apply_batch(self, x, rng=None):
        """Transform a batch ``(N, C, H, W)``; the default loops over the images."""
        return np.stack([self(im, rng=rng) for im in x])

    def __init__(self, generator: np.random.Generator | None = None):
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"{type(self).__name__}: generator must be a numpy.random.Generator, "
                            f"got {type(generator).__name__}")
        self.generator = generator

    def _rng(self, rng):
        if rng is not None:
            return rng
        if self.generator is not None:
            return self.generator
        from ..tensor import get_rng
        return get_rng()

    def __call__(self, x, rng=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


class Compose(Transform):
    """Apply ``transforms`` in order; the ``rng`` of the call is passed on to each cnnkit transform.

    Example::

        >>> t = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), Normalize(mean, std)])
    """

    def __init__(self, transforms):
        super().__init__()
        transforms = list(transforms)
        for t in transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {type(t).__name__}")
        self.transforms = transforms
        self.batched = all(isinstance(t, Transform) and t.batched for t in transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = t(x, rng=rng) if isinstance(t, Transform) else t(x)
        return x

    def apply_batch(self, x, rng=None):
        if not self.batched:
            return super().apply_batch(x, rng)
        for t in self.transforms:
            x = t.apply_batch(x, rng=rng)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` for each channel ``c``.

    Args:
        mean, std: one value per channel (a scalar applies to all channels).

    Shape:
        ``(C, H, W)`` or ``(N, C, H, W)`` → same shape, float32.
    """

    batched = True

    def __init__(self, mean, std):
        super().__init__()
        mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if mean.ndim != 1 or std.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be per-channel sequences, got {mean!r}, {std!r}")
        if mean.size != std.size and 1 not in (mean.size, std.size):
            raise ValueError(f"Normalize: mean has {mean.size} values but std has {std.size}")
        if np.any(std <= 0) or not np.all(np.isfinite(std)):
            raise ValueError(f"Normalize: std must be positive, got {tuple(std.tolist())}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._mean = mean.astype(np.float32)[:, None, None]  # (C, 1, 1)
        self._scale = (1.0 / std).astype(np.float32)[:, None, None]  # (C, 1, 1)

    def __call__(self, x, rng=None):
        x = _check_image(x, "Normalize", batched=True)
        c = x.shape[-3]
        if self._mean.shape[0] not in (1, c) or self._scale.shape[0] not in (1, c):
            raise ValueError(f"Normalize: image has {c} channel{'s' * (c != 1)}, "
                             f"but mean/std have {max(len(self.mean), len(self.std))} values")
        return ((x - self._mean) * self._scale).astype(np.float32, copy=False)

    def apply_batch(self, x, rng=None):
        return self(x)

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of bilinear resampling along one axis, computed as Pillow does.

    Output pixel ``o`` is centred at input coordinate ``(o + 0.5) * n_in / n_out`` (pixel centres,
    ``align_corners=False``); the triangle filter is widened by the scale factor when shrinking
    (antialiasing), and weights falling outside the image are dropped and the rest renormalised.
    """
    scale = n_in / n_out
    width = max(scale, 1.0)                  # filter scale: 1 when enlarging
    weights = np.zeros((n_out, n_in))
    for o in range(n_out):
        centre = (o + 0.5) * scale
        lo = max(int(centre - width + 0.5), 0)
        hi = min(int(centre + width + 0.5), n_in)
        x = np.arange(lo, hi)
        w = np.clip(1.0 - np.abs((x - centre + 0.5) / width), 0.0, None)
        weights[o, lo:hi] = w / w.sum()
    return weights


def resize_images(images: np.ndarray, size) -> np.ndarray:
    """Bilinear resize of ``(..., H, W)`` float images to ``size = (h, w)``, vectorised.

    The same resampling as Pillow's ``Image.resize(..., BILINEAR)`` (and PyTorch's
    ``interpolate(mode="bilinear", antialias=True)``): pixel centres, antialiased when shrinking.
    Separable, so the whole batch is two matrix products: ``A_h @ X @ A_w^T``.
    """
    h, w = _pair(size, "size", "resize_images")
    images = np.asarray(images, dtype=np.float32)
    H, W = images.shape[-2:]
    if (H, W) == (h, w):
        return images.copy()
    a_h = _bilinear_matrix(H, h).astype(np.float32)      # (h, H)
    a_w = _bilinear_matrix(W, w).T.astype(np.float32)    # (W, w)
    flat = images.reshape(-1, H, W)                      # (M, H, W)
    out = np.matmul(np.matmul(a_h, flat), a_w)           # (M, h, w)
    return out.reshape(*images.shape[:-2], h, w)


class Resize(Transform):
    """Bilinear resize to ``size`` (int for square, or ``(h, w)``); see :func:`resize_images`.

    Shape:
        ``(C, H, W)`` → ``(C, h, w)``; also ``(N, C, H, W)`` → ``(N, C, h, w)``.
    """

    batched = True

    def __init__(self, size):
        super().__init__()
        self.size = _pair(size, "size", "Resize")

    def __call__(self, x, rng=None):
        x = _check_image(x, "Resize", batched=True)
        return resize_images(x, self.size)

    def apply_batch(self, x, rng=None):
        return self(x)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class RandomCrop(Transform):
    """Pad each side by ``padding`` (with ``fill``), then cut a random ``size`` window.

    Args:
        size: output ``(h, w)`` (int for square).
        padding: pixels added on every side before cropping (the CIFAR recipe: ``size=32, padding=4``).
        fill: value of the padded pixels.
        generator: optional ``numpy.random.Generator`` (see the module note on randomness).

    Shape:
        ``(C, H, W)`` → ``(C, h, w)`` with ``h <= H + 2 * padding`` and ``w <= W + 2 * padding``.
    """

    def __init__(self, size, padding: int = 0, fill: float = 0.0, generator=None):
        super().__init__(generator)
        self.size = _pair(size, "size", "RandomCrop")
        if isinstance(padding, bool) or not isinstance(padding, numbers.Integral) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be a non-negative int, got {padding!r}")
        self.padding = int(padding)
        self.fill = float(fill)

    def __call__(self, x, rng=None):
        x = _check_image(x, "RandomCrop")
        p = self.padding
        if p:
            x = np.pad(x, ((0, 0), (p, p), (p, p)), constant_values=self.fill)  # (C, H+2p, W+2p)
        h, w = self.size
        H, W = x.shape[1:]
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded image ({H}, {W})")
        g = self._rng(rng)
        top = int(g.integers(0, H - h + 1))
        left = int(g.integers(0, W - w + 1))
        return np.ascontiguousarray(x[:, top:top + h, left:left + w], dtype=np.float32)  # (C, h, w)

    batched = True

    def apply_batch(self, x, rng=None):
        x = _check_image(x, "RandomCrop", batched=True)
        if x.ndim == 3:
            return self(x, rng)
        p = self.padding
        n, c, H, W = x.shape
        if p:
            padded = np.full((n, c, H + 2 * p, W + 2 * p), self.fill, dtype=np.float32)  # (N, C, H+2p, W+2p)
            padded[:, :, p:p + H, p:p + W] = x
            x, H, W = padded, H + 2 * p, W + 2 * p
        h, w = self.size
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded image ({H}, {W})")
        g = self._rng(rng)
        top = g.integers(0, H - h + 1, size=n)   # (N,)
        left = g.integers(0, W - w + 1, size=n)  # (N,)
        windows = np.lib.stride_tricks.sliding_window_view(x, (h, w), axis=(2, 3))  # (N, C, H-h+1, W-w+1, h, w)
        return windows[np.arange(n), :, top, left]  # (N, C, h, w)

    def extra_repr(self) -> str:
        return f"size={self.size}, padding={self.padding}"


class RandomHorizontalFlip(Transform):
    """Mirror the image left-right with probability ``p``.

    Shape:
        ``(C, H, W)`` → ``(C, H, W)``.
    """

    def __init__(self, p: float = 0.5, generator=None):
        super().__init__(generator)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, x, rng=None):
        x = _check_image(x, "RandomHorizontalFlip")
        if self._rng(rng).random() < self.p:
            return np.ascontiguousarray(x[:, :, ::-1])
        return x

    batched = True

    def apply_batch(self, x, rng=None):
        x = _check_image(x, "RandomHorizontalFlip", batched=True)
        if x.ndim == 3:
            return self(x, rng)
        flip = self._rng(rng).random(x.shape[0]) < self.p  # (N,)
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ToTensor(Transform):
    """Convert a picture to the layout cnnkit works in: uint8 ``(H, W, C)`` or ``(H, W)`` (or a Pillow
    image) → float32 ``(C, H, W)`` in [0, 1]. Float input is transposed but not rescaled.

    Named after torchvision's ``ToTensor``; the result is an array (the loader makes the Tensor).
    """

    def __call__(self, x, rng=None):
        try:
            from PIL import Image
            if isinstance(x, Image.Image):
                x = np.asarray(x)
        except ImportError:  # pragma: no cover - Pillow is a dependency
            pass
        if not isinstance(x, np.ndarray):
            raise TypeError(f"ToTensor: expected an (H, W, C) array or a PIL image, got {type(x).__name__}")
        if x.ndim == 2:
            x = x[:, :, None]  # (H, W, 1)
        if x.ndim != 3:
            raise ValueError(f"ToTensor: expected an image of shape (H, W) or (H, W, C), got shape {x.shape}")
        chw = np.transpose(x, (2, 0, 1))  # (C, H, W)
        if x.dtype == np.uint8:
            return chw.astype(np.float32) / np.float32(255)
        if x.dtype.kind in "f":
            return np.ascontiguousarray(chw, dtype=np.float32)
        raise TypeError(f"ToTensor: expected uint8 or float pixels, got dtype {x.dtype}")
