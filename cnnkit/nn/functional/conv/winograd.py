"""Winograd's F(2×2, 3×3) forward with the tiles in rows (VGG's wide 3×3 layers): each 2×2 block of outputs from a
4×4 tile of input in 16 multiplies per (input, output) channel pair instead of 36 — 2.25× fewer.

``Y = Aᵀ·[Σ_c (G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A`` per tile: the filters are transformed once (``U``, 16 × K × C), the input
tiles by compiled loops (``V``, 16 × C × tiles, tiles at stride 2), then ``M[i] = U[i] @ V[i]`` — 16 GEMMs with the
channels as inner axis — and the output transform folds ``M`` back into the output (:mod:`.winograd_loops`; in
NumPy the three transforms are strided passes that cost as much as the GEMMs save). Exact in exact arithmetic; in
float32 within about 1e-6 of the output's largest value of the direct sum. A layer whose input or weights hold an
infinity or NaN is refused (:func:`all_finite`): the transforms would spread it as NaN over its tile. For many
images of small maps, :mod:`.winograd_images` lays the tiles out with the images innermost.
"""
from __future__ import annotations

import math

import numpy as np

from .... import jit, parallel
from .algorithm import FORWARD, Algorithm
from .geometry import Geometry
from .plan import chunks
from .scratch import scratch

__all__ = ["FORWARD_WINOGRAD", "WINOGRAD_MIN_CHANNELS", "WINOGRAD_MIN_WIDTH", "WINOGRAD_CHUNK_BYTES", "structure",
           "wide", "all_finite", "filters", "buffer", "setup"]


def loops():
    from . import winograd_loops  # Numba: imported at the first compiled call
    return winograd_loops


#: The default order takes Winograd with the tiles in rows for layers with at least this many input and output
#: channels and outputs at least this wide: VGG-16's layers from 128 channels on. At 64 channels (VGG's first
#: layers, 224²) the gain on the machine that set these limits did not pay for loading Numba (about 90 MB) next to
#: VGG's two largest activations; ResNet-20's layers (16–64 channels, 32²–8²) ran slower this way: narrow rows of
#: tiles cost more to transform than their 16 small GEMMs save (figures and commands: benchmarks/RESULTS.md,
#: "Winograd"). Measurement (:mod:`.tuning`) tries it on every 3×3 stride-1 layer.
WINOGRAD_MIN_CHANNELS = 128
WINOGRAD_MIN_WIDTH = 14

#: Winograd's transformed tiles (16 × channels × tiles) are made and used chunk by chunk under this size.
WINOGRAD_CHUNK_BYTES = 8 * 2**20


def structure(geom: Geometry) -> bool:
    """What F(2×2, 3×3) computes: 2-D 3×3 kernels at stride 1, undilated, no groups, float32/float64."""
    return (geom.ksize == (3, 3) and geom.stride == (1, 1) and geom.dilation == (1, 1) and geom.groups == 1
            and np.dtype(geom.dtype) in jit.DTYPES)


def wide(geom: Geometry) -> bool:
    """Whether a layer is wide enough for the tiles in rows (:data:`WINOGRAD_MIN_CHANNELS`)."""
    return min(geom.c, geom.k_out) >= WINOGRAD_MIN_CHANNELS and geom.out_size[1] >= WINOGRAD_MIN_WIDTH


def _preferred(geom: Geometry) -> bool:
    return wide(geom) and geom.nbytes >= jit.MIN_BYTES


def all_finite(x, w, *rest) -> bool:
    """Whether every value is finite, by one summing pass over each array (a sum that overflows only refuses the
    layer). Winograd's transforms would turn an infinity into NaN in the other outputs of its tile; the direct sum
    keeps PyTorch's pattern of infinities and NaNs."""
    return bool(np.isfinite(np.sum(x)) and np.isfinite(np.sum(w)))


def buffer(name: str, shape, dtype):
    """A work buffer of 16 matrices ``shape`` (Winograd's U, V or M): ``(flat buffer, (16, *shape) view)``. The
    matrices are 64 bytes further apart than their size: rows a multiple of 4 KB apart would fall into the
    same cache sets, and the transforms, which touch all 16 at once, ran several times slower so."""
    size = math.prod(shape)
    flat = scratch(name, (16 * (size + 16),), dtype)
    return flat, flat.reshape(16, size + 16)[:, :size].reshape((16,) + tuple(shape))


def filters(geom: Geometry, w: np.ndarray) -> np.ndarray:
    """``U`` (16, K, C): the filter transform ``G·g·Gᵀ`` of each 3×3 filter ``g``, entry (i, j) of filter (k, c) in
    matrix 4i + j."""
    k_out, c = geom.k_out, geom.c
    u_flat, u = buffer("gemm2", (k_out, c), w.dtype)
    w9 = np.ascontiguousarray(w).reshape(k_out * c, 9).T
    loops().wino_filters(w9, u_flat, u.strides[0] // w.itemsize, np.array(0.5, dtype=w.dtype)[()])
    return u


def setup(geom: Geometry, xd: np.ndarray, w: np.ndarray, bias) -> tuple:
    """What both layouts start from: ``(x contiguous, U, bias, empty output, (top, left) padding, (tiles down, tiles
    across), bytes of V or M per tile)``."""
    ho, wo = geom.out_size
    b = np.zeros(geom.k_out, dtype=xd.dtype) if bias is None else bias
    out = np.empty((geom.n, geom.k_out, ho, wo), dtype=xd.dtype)
    return (np.ascontiguousarray(xd), filters(geom, w), b, out, (geom.pads[0][0], geom.pads[1][0]),
            (-(-ho // 2), -(-wo // 2)), 16 * max(geom.c, geom.k_out) * xd.itemsize)


def _forward(geom: Geometry, xd: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    n = geom.n
    x, u, b, out, pads, (th, tw), tile = setup(geom, xd, w, bias)
    if n * th * tw * tile <= WINOGRAD_CHUNK_BYTES:                 # small: one block of all the tiles
        _tiles(x, u, b, out, pads, (0, n, 0, th), tw, split=True)
    else:                                                          # chunks, one at a time per thread
        parallel.map(lambda chunk: _tiles(x, u, b, out, pads, chunk, tw), chunks(n, th, tw * tile,
                                                                                 WINOGRAD_CHUNK_BYTES))
    return out


def _tiles(x, u, b, out, pads, chunk, tw: int, split: bool = False) -> None:
    """The tiles of ``chunk`` (images ``n0:n1``, rows of tiles ``r0:r1``) through the three steps, into ``out``. With
    ``split`` (a chunk of all the images, VGG's 14² layers: 49 tiles an image) the transforms are shared by cnnkit's
    threads, image by image, and the GEMMs, called from here, use all of the BLAS's threads: a few large GEMMs
    rather than many small ones.

    The input transform puts entry (i, j) of channel c's tile t at ``v[(4i + j)·vs + c·T + t]`` (T tiles, in the
    order images × rows of tiles × tiles across); the output transform reads ``M`` in that layout, adds the bias and
    drops the outputs past Ho/Wo. Each transform takes a part of the images, so that threads can share a block."""
    n0, n1, r0, r1 = chunk
    images, dtype = slice(n0, n1), x.dtype
    tiles = (n1 - n0) * (r1 - r0) * tw
    v_flat, v = buffer("cols", (u.shape[2], tiles), dtype)
    m_flat, m = buffer("gemm", (u.shape[1], tiles), dtype)
    vs, ms = v.strides[0] // dtype.itemsize, m.strides[0] // dtype.itemsize

    def each(transform, nbytes):  # over the chunk's images: here, or (split) on the threads, some images each
        return parallel.run_slices(transform, n1, nbytes) if split else transform(images)
    each(lambda part: loops().wino_input(x, v_flat, vs, tiles, n0, pads[0], pads[1], part.start, part.stop, r0, r1,
                                         tw), x.nbytes)
    np.matmul(u, v, out=m)                                         # M[i] = U[i] @ V[i], 16 GEMMs
    each(lambda part: loops().wino_output(m_flat, ms, tiles, n0, out, b, part.start, part.stop, r0, r1, tw),
         out.nbytes)


FORWARD_WINOGRAD = Algorithm("winograd-rows", FORWARD, _forward, structure, _preferred, all_finite,
                            family="winograd", compiled=True)
