"""Keep freed array memory for the next step: glibc's malloc set as it settles for large blocks anyway.

A training step allocates and frees the same arrays every step. By default glibc hands blocks over
128 KB out as fresh ``mmap`` pages and returns freed memory at the top of the heap to the system, so
every step pays a page fault per 4 KB of every new activation, gradient and column buffer. glibc
raises both limits by itself after the first large block is freed (up to 32 MB, and twice that for
trimming), so a process that happened to free one big array runs faster than one that did not (a
LeNet-5 training step: ``CNNKIT_MALLOC=0 python benchmarks/bench.py --cases "LeNet-5"`` against the same
without ``CNNKIT_MALLOC=0``; figures in benchmarks/RESULTS.md, "Allocator").

At import cnnkit sets those limits explicitly (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`): blocks
up to 32 MB come from the heap and up to 64 MB of freed memory is kept for reuse. Nothing is done when
the C library is not glibc, when the user set ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or
``GLIBC_TUNABLES`` (their choice stands), or when ``CNNKIT_MALLOC=0``.
"""
from __future__ import annotations

import ctypes
import os

__all__ = ["tune", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: Blocks up to this size come from the heap (glibc's own ceiling for its sliding threshold).
MMAP_THRESHOLD = 32 * 2**20
#: Freed memory at the top of the heap is kept up to this size (glibc: twice the mmap threshold).
TRIM_THRESHOLD = 64 * 2**20

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3          # glibc's mallopt parameter numbers
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def tune() -> bool:
    """Set glibc's mmap and trim thresholds (see the module docstring); True if they were set."""
    if os.environ.get("CNNKIT_MALLOC", "1").lower() in ("0", "false", "no", ""):
        return False
    if any(os.environ.get(k) for k in _USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version                      # glibc only (musl, macOS: leave the allocator alone)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
