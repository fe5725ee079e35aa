"""im2col + GEMM: the reference algorithm of every direction, for any convolution (1-D/2-D/3-D, strided, dilated,
grouped). It always applies and comes last in each list.

Forward: pad, build the column matrix (im2col), one GEMM per group ``W(K, C·∏k) @ cols(C·∏k, positions)``,
chunk by chunk (:class:`.plan.Plan`). Stride-1 columns are contiguous runs of the flattened padded image
(:func:`kernels.flat_windows`), computed on an output "frame" whose extra columns are dropped.
Weight gradient: ``dW = (cols @ dYᵀ)ᵀ`` with the columns rebuilt (not kept: memory). Input gradient: ``Wᵀ @ dY``
added back by col2im (at stride 1 the :mod:`.transposed` algorithm usually takes it, as a convolution of dY).
"""
from __future__ import annotations

import numpy as np

from .... import parallel
from .algorithm import FORWARD, INPUT_GRAD, WEIGHT_GRAD, Algorithm
from .geometry import Geometry
from .plan import Plan
from .scratch import scratch

__all__ = ["FORWARD_GEMM", "INPUT_GRAD_GEMM", "WEIGHT_GRAD_GEMM", "group_matmul", "gemm_forward", "exact_weight_grad",
           "exact_input_grad"]


def group_matmul(a: np.ndarray, b: np.ndarray, groups: int, out: np.ndarray) -> np.ndarray:
    """``out[g] = a[g] @ b[g]`` with a, b and out split into ``groups`` row blocks: 2-D GEMMs only."""
    if groups == 1:
        return parallel.matmul(a, b, out=out)
    ra, rb = a.shape[0] // groups, b.shape[0] // groups
    for i in range(groups):
        parallel.matmul(a[i * ra:(i + 1) * ra], b[i * rb:(i + 1) * rb], out=out[i * ra:(i + 1) * ra])
    return out


def gemm_forward(geom: Geometry, x: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    """``(N, C, *in)`` → ``(N, K, *out)`` by im2col and one GEMM per group and chunk of images."""
    plan, groups, k_out = Plan(geom), geom.groups, geom.k_out
    w2 = w.reshape(k_out, -1)                                               # (K, C/g·∏k)
    if plan.n == 0:  # the report's shape trace: no work, and no transient copies left in the heap
        return np.empty((0, k_out) + tuple(plan.out_size), dtype=x.dtype)
    fold = bias is not None and groups == 1   # y = [W | b] @ [cols; 1]: no separate pass to add the bias
    if fold:
        w2 = np.concatenate([w2, bias.reshape(k_out, 1)], axis=1)
    xe = plan.pad(x, scratch_buffer=True)
    out = np.empty((plan.n, k_out) + tuple(plan.out_size), dtype=x.dtype)
    keep = (slice(None),) * 3 + plan.valid[1:]

    def work(chunk):  # on any thread: its own column and GEMM buffers, a disjoint part of ``out``
        n0, n1, r0, r1 = chunk
        cols = plan.columns(xe, chunk, ones=fold)                          # (C·∏k (+1), nb·rows·F1)
        y = group_matmul(w2, cols, groups, scratch("gemm", (k_out, cols.shape[1]), x.dtype))  # (K, nb·rows·F1)
        del cols
        if bias is not None and not fold:
            y += bias.reshape(k_out, 1)
        y = y.reshape((k_out, n1 - n0, r1 - r0) + plan.frame[1:])[keep]    # (K, nb, rows, *o[1:])
        out[n0:n1, :, r0:r1] = y.swapaxes(0, 1)
    parallel.map(work, plan.chunks)                                        # chunks handed out one at a time
    return out


def _weight_grad(geom: Geometry, g: np.ndarray, x: np.ndarray, frame: bool = True) -> np.ndarray:
    """``dW = dY @ colsᵀ``, computed as ``(cols @ dYᵀ)ᵀ`` chunk by chunk, the columns rebuilt. ``frame=False``: no
    stride-1 frame (:func:`exact_weight_grad`)."""
    plan, groups, k_out = Plan(geom, frame), geom.groups, geom.k_out
    kg = k_out // groups
    if plan.n == 0:
        return np.zeros((k_out, geom.c // groups) + geom.ksize, dtype=x.dtype)
    xe = plan.pad(x, scratch_buffer=True)                                  # recomputed: saves memory

    def work(chunk):  # → this chunk's dW
        n0, n1, r0, r1 = chunk
        gy = plan.to_frame(g[n0:n1, :, r0:r1]).reshape(k_out, -1)         # (K, nb·rows·F1)
        cols = plan.columns(xe, chunk)                                     # (C·∏k, nb·rows·F1)
        rc = cols.shape[0] // groups
        part = np.empty((k_out, rc), dtype=x.dtype)
        for i in range(groups):  # OpenBLAS threads the product with the long inner axis badly in the form
            # dY @ colsᵀ (benchmarks/RESULTS.md, "GEMM weight gradient")
            part[i * kg:(i + 1) * kg] = parallel.matmul(cols[i * rc:(i + 1) * rc], gy[i * kg:(i + 1) * kg].T).T
        return part
    gw = np.zeros((k_out, geom.c // groups * geom.taps), dtype=x.dtype)
    for part in parallel.map(work, plan.chunks):                           # added in chunk order: any thread count
        gw += part
    return gw.reshape((k_out, geom.c // groups) + geom.ksize)


def _input_grad(geom: Geometry, g: np.ndarray, w: np.ndarray, frame: bool = True) -> np.ndarray:
    """``dX``: ``Wᵀ @ dY`` chunk by chunk, added back into the padded gradient by col2im, cropped. ``frame=False``:
    no stride-1 frame (:func:`exact_input_grad`)."""
    plan, groups, k_out = Plan(geom, frame), geom.groups, geom.k_out
    kg = k_out // groups
    if plan.n == 0:
        return np.zeros((0, geom.c) + geom.in_size, dtype=w.dtype)
    wt = w.reshape(groups, kg, -1).transpose(0, 2, 1).reshape(-1, kg)     # (C·∏k, K/g) per group, stacked
    gxe = np.zeros((plan.n, plan.c) + plan.ext, dtype=w.dtype)

    def work(chunk_list):  # col2im writes only its own images' part of gxe
        for chunk in chunk_list:
            n0, n1, r0, r1 = chunk
            gy = plan.to_frame(g[n0:n1, :, r0:r1]).reshape(k_out, -1)     # (K, nb·rows·F1)
            gcols = group_matmul(wt, gy, groups, scratch("gemm", (wt.shape[0], gy.shape[1]), w.dtype))
            plan.col2im(gcols, gxe, chunk)                                 # Wᵀ @ dY, added back
    # chunks of one image's rows overlap in the padded gradient: those run in one thread
    if all(r0 == 0 and r1 == plan.frame[0] for _, _, r0, r1 in plan.chunks):
        parallel.map(lambda chunk: work([chunk]), plan.chunks)
    else:
        work(plan.chunks)
    return gxe[(slice(None), slice(None)) + plan.crop]                     # (N, C, *in) view of the padded grad


def exact_weight_grad(geom: Geometry, g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The weight gradient without the stride-1 frame, for an input with infinities or NaN: every algorithm that sums
    over a frame multiplies its wrap-around columns' zero gradient by the input they read, and ``0·inf`` is NaN
    where PyTorch's sum has an infinity."""
    return _weight_grad(geom, g, x, frame=False)


def exact_input_grad(geom: Geometry, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The input gradient without the stride-1 frame, for weights with infinities or NaN (as
    :func:`exact_weight_grad`: a frame's zero columns times an infinite weight would leak NaN into dX)."""
    return _input_grad(geom, g, w, frame=False)


FORWARD_GEMM = Algorithm("gemm", FORWARD, gemm_forward)
INPUT_GRAD_GEMM = Algorithm("gemm", INPUT_GRAD, _input_grad)
WEIGHT_GRAD_GEMM = Algorithm("gemm", WEIGHT_GRAD, _weight_grad)
