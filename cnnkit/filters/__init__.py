"""Classic image filters: the lecture's hand-crafted kernels, applied with cnnkit's own convolution,
and filters learned from data.

* :func:`kernel`, :func:`names`, :func:`gaussian` — the kernel bank (``cnnkit filters`` lists it).
* :func:`filter2d` — apply a kernel (a Conv2d with fixed weights; OpenCV's ``filter2D`` semantics,
  five border rules, ``same``/``valid``, correlation or convolution); :func:`gradient_magnitude`.
* :func:`contact_sheet` — every response tiled and labelled (``cnnkit filter --all``).
* :func:`filter_file`, :func:`contact_sheet_file` — the same from an image file to image / ``.npy`` files
  (``cnnkit filter``).
* :func:`learn` — fit a single Conv2d to a filter's responses by gradient descent.
"""
from .apply import BORDERS, MODES, filter2d, gradient_magnitude
from .bank import describe, format_matrix, gaussian, kernel, names, parse_kernel
from .learn import LearnResult, learn
from .files import contact_sheet_file, filter_file
from .sheet import contact_sheet

__all__ = ["kernel", "names", "describe", "format_matrix", "gaussian", "parse_kernel", "filter2d",
           "gradient_magnitude", "BORDERS", "MODES", "learn", "LearnResult", "contact_sheet", "filter_file",
           "contact_sheet_file"]
