"""1×1 convolutions at stride 1 without padding (MobileNet's pointwise layers, bottlenecks): one GEMM per image on the
input as it lies, ``y[n] = W (K, C) @ x[n] (C, L)`` — no column matrix to build (the GEMM algorithm copies every
image into its columns and the product back out of them) — and ``dW = Σ_n dY[n] @ x[n]ᵀ``. The input gradient is a
pointwise convolution too (:mod:`.transposed`). A chunk of images per thread, the BLAS at one thread inside.
"""
from __future__ import annotations

import math

import numpy as np

from .... import parallel
from .algorithm import FORWARD, WEIGHT_GRAD, Algorithm
from .geometry import Geometry
from .plan import CHUNK_BYTES

__all__ = ["FORWARD_POINTWISE", "WEIGHT_GRAD_POINTWISE", "POINTWISE_MIN_POSITIONS"]

#: The default order takes the per-image GEMMs for the forward from this many positions per image: on smaller maps
#: (MobileNet's 7×7) one GEMM over all the images' columns ran faster; the weight gradient takes them everywhere
#: (paired figures: benchmarks/RESULTS.md, "Pointwise").
POINTWISE_MIN_POSITIONS = 196


def _applies(geom: Geometry) -> bool:
    return (all(k == 1 for k in geom.ksize) and geom.unit_stride and geom.groups == 1
            and all(lo == 0 and hi == 0 for lo, hi in geom.pads))


def _preferred(geom: Geometry) -> bool:
    return math.prod(geom.in_size) >= POINTWISE_MIN_POSITIONS


def _chunks(geom: Geometry) -> list:
    """Images in chunks of about :data:`.plan.CHUNK_BYTES` of input and output, for the threads."""
    per_image = (geom.c + geom.k_out) * math.prod(geom.in_size) * geom.itemsize
    return parallel.split(geom.n, per_image, CHUNK_BYTES)


def _forward(geom: Geometry, x: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    n, length = geom.n, math.prod(geom.in_size)
    x3 = np.ascontiguousarray(x).reshape(n, geom.c, length)
    w2 = np.ascontiguousarray(w.reshape(geom.k_out, geom.c))
    out = np.empty((n, geom.k_out, length), dtype=x.dtype)

    def work(images):  # its own images of ``out``
        for i in range(images.start, images.stop):
            np.matmul(w2, x3[i], out=out[i])
            if bias is not None:
                out[i] += bias.reshape(-1, 1)
    parallel.map(work, _chunks(geom))
    return out.reshape((n, geom.k_out) + tuple(geom.out_size))


def _weight_grad(geom: Geometry, g: np.ndarray, x: np.ndarray) -> np.ndarray:
    n, length = geom.n, math.prod(geom.in_size)
    x3 = np.ascontiguousarray(x).reshape(n, geom.c, length)
    g3 = np.ascontiguousarray(g).reshape(n, geom.k_out, length)

    def part(images):  # → this chunk's Σ dY[n] @ x[n]ᵀ
        acc = np.zeros((geom.k_out, geom.c), dtype=x.dtype)
        for i in range(images.start, images.stop):
            acc += g3[i] @ x3[i].T
        return acc
    gw = np.zeros((geom.k_out, geom.c), dtype=x.dtype)
    for p in parallel.map(part, _chunks(geom)):           # added in chunk order: the same for any thread count
        gw += p
    return gw.reshape((geom.k_out, geom.c) + geom.ksize)


FORWARD_POINTWISE = Algorithm("pointwise", FORWARD, _forward, _applies, _preferred)
WEIGHT_GRAD_POINTWISE = Algorithm("pointwise", WEIGHT_GRAD, _weight_grad, _applies)
