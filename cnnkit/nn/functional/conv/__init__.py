"""Convolution: the ops (``conv1d``, ``conv2d``, ``conv3d``, ``im2col``, ``col2im``) and the algorithms behind them.

Where things are — one algorithm or one concern per file, each algorithm beside its compiled loops:

- ``api.py``: ``conv1d``/``conv2d``/``conv3d`` (argument checks, the autograd op) and ``conv2d_path``;
  ``im2col.py``: ``im2col``/``col2im``.
- ``registry.py``: each direction's ordered list of algorithms, ``select()``, switching algorithms off;
  ``tuning.py``: selection by measurement and its cache file; ``machine.py``: what the cache is keyed by;
  ``algorithm.py``: what an algorithm is; ``geometry.py``: a convolution's shapes (what selection reads);
  ``plan.py``: the im2col layout; ``scratch.py``: reused work buffers.
- The algorithms: ``gemm.py`` (im2col + GEMM, the reference of every direction), ``transposed.py`` (the input
  gradient as a convolution of dY), ``row_shifted.py`` (the row-shifted GEMM forward), ``pointwise.py`` (1×1
  layers, one GEMM per image), ``winograd.py`` and ``winograd_images.py`` (F(2×2, 3×3), tiles in rows or images
  innermost; loops: ``winograd_loops.py``), ``direct.py`` and ``direct_stride2.py`` (the compiled direct
  convolution at stride 1 and at stride 2, each direction; loops: ``direct_loops.py``, ``direct_stride2_loops.py``),
  ``depthwise.py`` (compiled; ``depthwise_loops.py``) and ``depthwise_numpy.py`` (NumPy tap sums). ``loops.py``:
  compiled helpers the loops share.

Every fast algorithm is tested against PyTorch and against the reference (``tests/nn/test_conv_algorithms.py``).
"""
from .api import algorithm, conv1d, conv2d, conv2d_path, conv3d
from .geometry import Geometry, output_geometry
from .im2col import col2im, im2col
from .registry import algorithms, disable, disabled, enable, select, switched_off
from .tuning import cache_path, measure, measuring

__all__ = ["conv1d", "conv2d", "conv3d", "im2col", "col2im"]
