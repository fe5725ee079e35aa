"""Winograd's F(2×2, 3×3) forward with the images innermost in the tiles' layout: many images of small maps
(ResNet's 64-channel 8×8 stage at batch 128, its forward and — as a convolution of dY — its input gradient).

A row of tiles of an 8×8 map is 4 tiles long, too short for the row-wise transforms of :mod:`.winograd` (they took
3× the GEMMs' time); gathered one channel of every image at a time, each step of the transforms is a run of one
value per image. Each thread takes whole chunks of images (transforms and GEMMs). Otherwise as :mod:`.winograd`.
"""
from __future__ import annotations

import numpy as np

from .... import jit, parallel
from .algorithm import FORWARD, Algorithm
from .geometry import Geometry
from .winograd import all_finite, buffer, loops, setup, structure, wide

__all__ = ["FORWARD_WINOGRAD_IMAGES", "WINOGRAD_IMAGES_MIN", "WINOGRAD_IMAGES_MAX_WIDTH",
           "WINOGRAD_IMAGES_MIN_CHANNELS", "WINOGRAD_IMAGES_CHUNK_BYTES"]

#: The default order takes this layout for at least this many images, outputs at most this wide and at least this
#: many input and output channels (ResNet's 64-channel 8×8 stage at batch 128), where the rows layout does not
#: apply. On the machine that set these limits (AVX2) it paid on 8×8 maps with 64–128 images, not with 16–32 or on
#: 12×12 and 16×16 maps; on VGG's wide layers at 14² and 16² with 16–32 images the rows layout, whose GEMMs span all
#: the images on all the BLAS's threads, ran faster (benchmarks/RESULTS.md, "Winograd, images innermost").
WINOGRAD_IMAGES_MIN = 64
WINOGRAD_IMAGES_MAX_WIDTH = 8
WINOGRAD_IMAGES_MIN_CHANNELS = 64

#: ... in chunks of whole images of at most this many bytes of transformed tiles, each thread taking whole chunks.
WINOGRAD_IMAGES_CHUNK_BYTES = 2**21


def _preferred(geom: Geometry) -> bool:
    return (geom.n >= WINOGRAD_IMAGES_MIN and geom.out_size[1] <= WINOGRAD_IMAGES_MAX_WIDTH
            and min(geom.c, geom.k_out) >= WINOGRAD_IMAGES_MIN_CHANNELS and not wide(geom)
            and geom.nbytes >= jit.MIN_BYTES)


def _forward(geom: Geometry, xd: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    x, u, b, out, pads, tiles, tile = setup(geom, xd, w, bias)
    parallel.map(lambda images: _block(x, u, b, out, pads, images, tiles),   # chunks of whole images, one at a
                 parallel.split(geom.n, tiles[0] * tiles[1] * tile, WINOGRAD_IMAGES_CHUNK_BYTES))  # time per thread
    return out


def _block(x, u, b, out, pads, images: slice, tiles: tuple) -> None:
    """The tiles of ``images`` through the three steps, on the calling thread. Entry (i, j) of channel c's tile
    (ty, tx) of image ``images.start + n`` goes to ``v[(4i + j)·vs + c·T + (ty·tw + tx)·nn + n]`` (``tiles`` = (th,
    tw), T = th·tw·nn, nn images): each channel's planes are gathered into one buffer with the images last."""
    dtype, count = x.dtype, (images.stop - images.start) * tiles[0] * tiles[1]
    v_flat, v = buffer("cols", (u.shape[2], count), dtype)
    m_flat, m = buffer("gemm", (u.shape[1], count), dtype)
    loops().wino_input_images(x, v_flat, v.strides[0] // dtype.itemsize, images.start, images.stop, pads[0], pads[1],
                              tiles[0], tiles[1])
    np.matmul(u, v, out=m)                                         # M[i] = U[i] @ V[i], 16 GEMMs
    loops().wino_output_images(m_flat, m.strides[0] // dtype.itemsize, images.start, images.stop, out, b, tiles[0],
                               tiles[1])


FORWARD_WINOGRAD_IMAGES = Algorithm("winograd-images", FORWARD, _forward, structure, _preferred, all_finite,
                                    family="winograd", compiled=True)
