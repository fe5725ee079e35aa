"""Reused per-thread work buffers (column matrices, GEMM outputs, Winograd's tiles) for the convolution algorithms."""
from __future__ import annotations

import math
import threading

import numpy as np

__all__ = ["scratch", "SCRATCH_KEEP_BYTES"]

_SCRATCH = threading.local()

#: Work buffers up to this size are kept for reuse (per thread and role); larger ones are allocated per
#: call and freed, so that big layers (VGG at 224²) do not keep memory alive after they ran.
SCRATCH_KEEP_BYTES = 16 * 2**20


def scratch(name: str, shape, dtype) -> np.ndarray:
    """A reused per-thread work array (column matrices, GEMM outputs) — contents undefined.

    Fresh large arrays cost a page fault per 4 KB on first touch (the allocator returns them to the
    system when freed); reusing one buffer per role avoids that. Never let one escape an op.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > SCRATCH_KEEP_BYTES:  # large layers: the page faults are cheap next to their GEMMs
        return np.empty(shape, dtype=dtype)
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(max(nbytes, 1), dtype=np.uint8)
        setattr(_SCRATCH, name, buf)
    return buf[:nbytes].view(dtype).reshape(shape)
