"""Timing helpers: thread counts, medians of each engine timed on its own, the matmul peak."""
from __future__ import annotations

import time

import numpy as np


def blas_threads() -> int:
    """Threads cnnkit uses inside an op (by default the BLAS's count): see :mod:`cnnkit.parallel`."""
    from .. import parallel
    return parallel.get_num_threads()


def _set_threads(n: int, torch) -> None:
    from .. import parallel
    parallel.set_num_threads(n)  # cnnkit's pool and NumPy's BLAS
    if torch is not None:
        torch.set_num_threads(n)


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def time_pair(fn_a, fn_b=None, repeats: int = 5, warmup: int = 1, warmup_s: float = 0.3) -> tuple:
    """Median milliseconds of ``fn_a`` and of ``fn_b`` (``None`` when absent), each timed in its own block.

    Each function warms up (``warmup`` runs and at least ``warmup_s`` seconds) and then runs ``repeats``
    times back to back. Not interleaved: PyTorch's OpenMP threads keep spinning for a while after each
    op, and a cnnkit run started in that window shares the two cores with them — a 16-channel
    convolution measured 1.7× slower interleaved with PyTorch than on its own.
    """
    med = []
    for f in (fn_a, fn_b):
        if f is None:
            med.append(None)
            continue
        start = time.perf_counter()
        for i in range(10**6):
            if i >= warmup and time.perf_counter() - start >= warmup_s:
                break
            f()
        ts = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            f()
            ts.append((time.perf_counter() - t0) * 1e3)
        med.append(float(np.median(ts)))
    return med[0], med[1]


def matmul_peak(size: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of a float32 ``size``² NumPy matrix multiply (median of ``repeats``)."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    ms, _ = time_pair(lambda: a @ a, repeats=repeats)
    return 2 * size ** 3 / ms / 1e6
