"""The kernel bank: the lecture's hand-crafted filters, OpenCV's derivative filters and ``gaussian``.

Every kernel is a small function returning a fresh ``float64`` array; its docstring shows the
matrix and what it does. Look kernels up by name with :func:`kernel`; :func:`names` lists them in
the bank's order. All kernels are written for *correlation* (what ``filter2d`` and
``cv2.filter2D`` compute by default): the weight at row ``i``, column ``j`` multiplies the pixel
``i − kh//2`` rows below and ``j − kw//2`` columns right of the output pixel.

Sign conventions: ``sobel_x``/``prewitt_x``/``scharr_x`` are OpenCV's (positive where intensity
rises to the right), ``*_y`` positive where it rises downward. The lecture's ``vertical_edge`` and
``sobel_vertical`` are the opposite (positive on a bright-left/dark-right step: +30 and +40 on
its 6×6 example).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["kernel", "names", "describe", "kernel_fraction", "gaussian", "parse_kernel",
           "identity", "box_blur", "gaussian_3x3", "gaussian_5x5", "edge_cross", "laplacian_4",
           "laplacian_8", "sharpen", "unsharp_5x5", "vertical_edge", "horizontal_edge",
           "sobel_vertical", "sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "scharr_x",
           "scharr_y", "emboss"]

_BANK: dict = {}  # name -> (function, integer matrix, divisor)

_BINOMIAL_5 = [[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6], [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]]


def _register(matrix, divisor=1):
    """Attach ``matrix / divisor`` to the decorated function and list it in the bank."""
    def wrap(fn):
        def build():
            return np.asarray(matrix, dtype=np.float64) / divisor
        build.__name__, build.__qualname__, build.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        build.__module__ = fn.__module__
        _BANK[fn.__name__] = (build, matrix, divisor)
        return build
    return wrap


@_register([[0, 0, 0], [0, 1, 0], [0, 0, 0]])
def identity():
    """Identity: the output equals the input.

    ::

        [[0, 0, 0],
         [0, 1, 0],
         [0, 0, 0]]
    """


@_register([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 9)
def box_blur():
    """Box blur (normalised): the mean of the 3×3 neighbourhood (``cv2.blur(img, (3, 3))``).

    ::

        1/9 × [[1, 1, 1],
               [1, 1, 1],
               [1, 1, 1]]
    """


@_register([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 16)
def gaussian_3x3():
    """Gaussian blur 3×3 (binomial approximation; equals ``gaussian(3)`` and OpenCV's 3×3 kernel).

    ::

        1/16 × [[1, 2, 1],
                [2, 4, 2],
                [1, 2, 1]]
    """


@_register(_BINOMIAL_5, 256)
def gaussian_5x5():
    """Gaussian blur 5×5 (binomial approximation; equals ``gaussian(5)`` and OpenCV's 5×5 kernel).

    ::

        1/256 × [[1,  4,  6,  4, 1],
                 [4, 16, 24, 16, 4],
                 [6, 24, 36, 24, 6],
                 [4, 16, 24, 16, 4],
                 [1,  4,  6,  4, 1]]
    """


@_register([[1, 0, -1], [0, 0, 0], [-1, 0, 1]])
def edge_cross():
    """Edge detection (the lecture's first edge kernel): responds to diagonal structure, 0 on flat areas.

    ::

        [[ 1, 0, -1],
         [ 0, 0,  0],
         [-1, 0,  1]]
    """


@_register([[0, -1, 0], [-1, 4, -1], [0, -1, 0]])
def laplacian_4():
    """Laplacian, 4-neighbour (the lecture's second edge kernel): ``4·centre − up − down − left − right``.

    Zero on flat areas and linear ramps; the negative of OpenCV's ``cv2.Laplacian(ksize=1)``.

    ::

        [[ 0, -1,  0],
         [-1,  4, -1],
         [ 0, -1,  0]]
    """


@_register([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
def laplacian_8():
    """Laplacian, 8-neighbour (the lecture's third edge kernel): ``8·centre − the 8 neighbours``.

    ::

        [[-1, -1, -1],
         [-1,  8, -1],
         [-1, -1, -1]]
    """


@_register([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
def sharpen():
    """Sharpen: the image plus its 4-neighbour Laplacian (``identity + laplacian_4``).

    ::

        [[ 0, -1,  0],
         [-1,  5, -1],
         [ 0, -1,  0]]
    """


@_register([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, -476, 24, 6], [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]],
           -256)
def unsharp_5x5():
    """Unsharp masking 5×5 (Gaussian blur, amount 1, threshold 0): ``2·image − gaussian_5x5(image)``.

    ::

        -1/256 × [[1,  4,    6,  4, 1],
                  [4, 16,   24, 16, 4],
                  [6, 24, -476, 24, 6],
                  [4, 16,   24, 16, 4],
                  [1,  4,    6,  4, 1]]
    """


@_register([[1, 0, -1], [1, 0, -1], [1, 0, -1]])
def vertical_edge():
    """The lecture's vertical-edge filter: left column minus right column (+30 on a 10|0 step).

    ::

        [[1, 0, -1],
         [1, 0, -1],
         [1, 0, -1]]
    """


@_register([[1, 1, 1], [0, 0, 0], [-1, -1, -1]])
def horizontal_edge():
    """Horizontal-edge filter (``vertical_edge`` transposed): top row minus bottom row.

    ::

        [[ 1,  1,  1],
         [ 0,  0,  0],
         [-1, -1, -1]]
    """


@_register([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
def sobel_vertical():
    """The lecture's Sobel filter for vertical edges (+40 on a 10|0 step); ``-sobel_x``.

    ::

        [[1, 0, -1],
         [2, 0, -2],
         [1, 0, -1]]
    """


@_register([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
def sobel_x():
    """Sobel x-derivative, OpenCV's convention (``cv2.Sobel(img, ddepth, 1, 0, ksize=3)``): positive
    where intensity rises to the right.

    ::

        [[-1, 0, 1],
         [-2, 0, 2],
         [-1, 0, 1]]
    """


@_register([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
def sobel_y():
    """Sobel y-derivative, OpenCV's convention (``cv2.Sobel(img, ddepth, 0, 1, ksize=3)``): positive
    where intensity rises downward.

    ::

        [[-1, -2, -1],
         [ 0,  0,  0],
         [ 1,  2,  1]]
    """


@_register([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])
def prewitt_x():
    """Prewitt x-derivative: positive where intensity rises to the right (unweighted rows).

    ::

        [[-1, 0, 1],
         [-1, 0, 1],
         [-1, 0, 1]]
    """


@_register([[-1, -1, -1], [0, 0, 0], [1, 1, 1]])
def prewitt_y():
    """Prewitt y-derivative: positive where intensity rises downward.

    ::

        [[-1, -1, -1],
         [ 0,  0,  0],
         [ 1,  1,  1]]
    """


@_register([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
def scharr_x():
    """Scharr x-derivative (``cv2.Scharr(img, ddepth, 1, 0)``): a better-isotropy Sobel.

    ::

        [[ -3, 0,  3],
         [-10, 0, 10],
         [ -3, 0,  3]]
    """


@_register([[-3, -10, -3], [0, 0, 0], [3, 10, 3]])
def scharr_y():
    """Scharr y-derivative (``cv2.Scharr(img, ddepth, 0, 1)``).

    ::

        [[-3, -10, -3],
         [ 0,   0,  0],
         [ 3,  10,  3]]
    """


@_register([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
def emboss():
    """Emboss: a diagonal derivative plus the image, giving a relief lit from the top-left.

    ::

        [[-2, -1, 0],
         [-1,  1, 1],
         [ 0,  1, 2]]
    """


def names() -> list[str]:
    """Names of the kernels in the bank, in the lecture's order then OpenCV's derivative filters."""
    return list(_BANK)


def kernel(name: str) -> np.ndarray:
    """The bank's kernel ``name`` as a new ``float64`` array (see :func:`names`).

    Example::

        >>> kernel("sobel_x")
        array([[-1.,  0.,  1.],
               [-2.,  0.,  2.],
               [-1.,  0.,  1.]])
    """
    if not isinstance(name, str):
        raise TypeError(f"kernel: name must be a string, got {name!r}")
    if name not in _BANK:
        raise ValueError(f"unknown filter {name!r}; known filters: {', '.join(_BANK)}")
    return _BANK[name][0]()


def describe(name: str) -> tuple[str, str]:
    """``(summary, matrix text)`` of the bank's kernel ``name``: the docstring's first line and the
    matrix with its common factor, e.g. ``'1/16 × ...'`` (used by ``cnnkit filters``)."""
    kernel(name)  # validates the name
    fn, matrix, divisor = _BANK[name]
    summary = " ".join(fn.__doc__.split("\n\n")[0].split()).replace("``", "")
    return summary, format_matrix(matrix, divisor)


def kernel_fraction(name: str) -> tuple[list, int]:
    """``(matrix, divisor)`` of the bank's kernel ``name`` as written: the kernel is ``matrix / divisor``
    (``gaussian_5x5``: the binomial integers and 256)."""
    kernel(name)  # validates the name
    _, matrix, divisor = _BANK[name]
    return [list(row) for row in matrix], divisor


def format_matrix(matrix, divisor=1) -> str:
    """Text of an integer (or float) matrix, each column right-aligned,, prefixed by ``1/d ×``."""
    rows = [[_fmt(v) for v in row] for row in np.asarray(matrix).tolist()]
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]   # per column
    lines = ["[" + ", ".join(v.rjust(wd) for v, wd in zip(row, widths)) + "]" for row in rows]
    prefix = "" if divisor == 1 else ("-" if divisor < 0 else "") + f"1/{abs(divisor)} × "
    pad = " " * len(prefix)
    return "\n".join((prefix if i == 0 else pad) + line for i, line in enumerate(lines))


def _fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:.6g}"


# Kernels OpenCV tabulates for sigma <= 0 (getGaussianKernel's SMALL_GAUSSIAN tables): sizes 1, 3,
# 5, 7 are binomial; 9 is OpenCV's own table. Other sizes use the formula with sigma from the size.
_SMALL_GAUSSIAN = {
    1: [1.0],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
    9: [4 / 256, 13 / 256, 30 / 256, 51 / 256, 60 / 256, 51 / 256, 30 / 256, 13 / 256, 4 / 256],
}


def gaussian(size: int, sigma: float | None = None, ndim: int = 2) -> np.ndarray:
    r"""Gaussian kernel built as OpenCV's ``getGaussianKernel`` (normalised to sum 1).

    Weights ``exp(−x²/(2σ²))`` at ``x = i − (size−1)/2``, divided by their sum. Without ``sigma``
    (or ``sigma <= 0``) it is derived from the size, ``σ = 0.3·((size−1)/2 − 1) + 0.8``, and sizes 1,
    3, 5, 7, 9 use OpenCV's fixed tables (binomial for 3, 5, 7: ``gaussian(3)`` is ``gaussian_3x3``).

    Args:
        size: number of taps, positive and odd.
        sigma: standard deviation in pixels; ``None`` or ``<= 0`` derives it from ``size``.
        ndim: 2 (default) for the ``size×size`` outer product, 1 for the 1-D vector.

    Shape:
        ``(size, size)`` for ``ndim=2``, ``(size,)`` for ``ndim=1``.

    Example::

        >>> gaussian(5, 1.1, ndim=1).round(4)
        array([0.0708, 0.2445, 0.3695, 0.2445, 0.0708])
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
        hint = (" (OpenCV's even-size kernels set both middle taps to the peak value: not a sampled Gaussian)"
                if isinstance(size, (int, np.integer)) and size > 0 and size % 2 == 0 else "")
        raise ValueError(f"gaussian: size must be a positive odd int, got size={size!r}{hint}")
    if ndim not in (1, 2):
        raise ValueError(f"gaussian: ndim must be 1 or 2, got ndim={ndim!r}")
    if sigma is not None:
        try:
            sigma = float(sigma)
        except (TypeError, ValueError):
            raise TypeError(f"gaussian: sigma must be a number or None, got sigma={sigma!r}") from None
        if not math.isfinite(sigma):
            raise ValueError(f"gaussian: sigma must be finite, got sigma={sigma!r}")
    size = int(size)
    if (sigma is None or sigma <= 0) and size in _SMALL_GAUSSIAN:
        g = np.array(_SMALL_GAUSSIAN[size], dtype=np.float64)
    else:
        s = sigma if sigma is not None and sigma > 0 else 0.3 * ((size - 1) * 0.5 - 1) + 0.8
        x = np.arange(size, dtype=np.float64) - (size - 1) / 2
        g = np.exp(-x * x / (2 * s * s))
        g /= g.sum()
    return g if ndim == 1 else np.outer(g, g)


def parse_kernel(text: str) -> np.ndarray:
    """Parse a kernel written as rows separated by ``;`` and values by ``,`` (or spaces).

    Values may be integers, decimals or fractions: ``"1,0,-1;2,0,-2;1,0,-1"``, ``"1/9 1/9; 1/9 1/9"``.
    Raises ``ValueError`` for an empty string, a non-numeric value, rows of different lengths or a
    non-finite value.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"kernel string is empty: {text!r}; expected rows like '1,0,-1;2,0,-2;1,0,-1'")
    rows = []
    for r, row in enumerate(text.strip().strip(";").split(";")):
        tokens = row.replace(",", " ").split()
        if not tokens:
            raise ValueError(f"kernel {text!r}: row {r + 1} is empty")
        values = []
        for tok in tokens:
            try:
                values.append(float(Fraction(tok)))
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"kernel {text!r}: {tok!r} in row {r + 1} is not a number") from None
        rows.append(values)
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise ValueError(f"kernel {text!r} is ragged: rows have {', '.join(str(len(r)) for r in rows)} "
                         f"values; every row needs the same number")
    arr = np.array(rows, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"kernel {text!r} has a non-finite value")
    return arr
