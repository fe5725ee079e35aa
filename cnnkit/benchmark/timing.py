"""Timing helpers: thread counts, medians of the engines timed in alternating blocks, the matmul peak."""
from __future__ import annotations

import time

import numpy as np


def blas_threads() -> int:
    """Threads cnnkit uses inside an op (by default the BLAS's count): see :mod:`cnnkit.parallel`."""
    from .. import parallel
    return parallel.get_num_threads()


def set_threads(n: int, torch) -> None:
    from .. import parallel
    parallel.set_num_threads(n)  # cnnkit's pool and NumPy's BLAS
    if torch is not None:
        torch.set_num_threads(n)


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


#: :func:`time_pair` splits each engine's timed runs into this many blocks, the engines' blocks alternating.
ROUNDS = 3

#: Seconds of rest after each block: PyTorch's OpenMP threads spin for a while after an op (a longer rest let the
#: cores idle down, and the next block ran slower: benchmarks/RESULTS.md, "Timing").
PAUSE_S = 0.005


def time_pair(fn_a, fn_b=None, repeats: int = 5, warmup: int = 1, warmup_s: float = 0.3, rounds: int = ROUNDS,
              pause_s: float = PAUSE_S, rewarm: bool = True) -> tuple:
    """Median milliseconds of ``fn_a`` and of ``fn_b`` (``None`` when absent), timed in alternating blocks
    (:func:`time_blocks` with two functions)."""
    return time_blocks((fn_a, fn_b), repeats, warmup, warmup_s, rounds, pause_s, rewarm)


def time_blocks(fns, repeats: int = 5, warmup: int = 1, warmup_s: float = 0.3, rounds: int = ROUNDS,
                pause_s: float = PAUSE_S, rewarm: bool = True) -> tuple:
    """Median milliseconds of each of ``fns`` (``None`` for an absent one), timed in alternating blocks.

    Each function first warms up (``warmup`` runs and at least ``warmup_s`` seconds). Its ``repeats`` timed runs
    are then split into ``rounds`` blocks of back-to-back runs, and the engines' blocks alternate, a b, b a,
    a b, …, with a pause of ``pause_s`` after each and (``rewarm``) one untimed run at the start of every block
    but the first: on a shared machine whose speed drifts by up to 2× from minute to minute, both engines then
    sample the same drift (one block each gave ratios that moved by half within an hour). Runs are never
    interleaved one by one: PyTorch's OpenMP threads keep spinning for a while after each op, and a cnnkit run
    started in that window shares the cores with them (figures: benchmarks/RESULTS.md, "Timing"). With three or
    more functions, the blocks of a round go in one order and those of the next in the reverse order.
    """
    times = tuple([] for _ in fns)
    fns = [(i, f) for i, f in enumerate(fns) if f is not None]
    for _, f in fns:
        start = time.perf_counter()
        for i in range(10**6):
            if i >= warmup and time.perf_counter() - start >= warmup_s:
                break
            f()
    repeats, rounds = max(1, repeats), max(1, min(rounds, repeats))
    for r in range(rounds):
        count = repeats * (r + 1) // rounds - repeats * r // rounds
        for i, f in (fns if r % 2 == 0 else fns[::-1]):
            if r > 0 and rewarm:
                f()                          # untimed: the other engine's threads may still spin, caches are cold
            for _ in range(count):
                t0 = time.perf_counter()
                f()
                times[i].append((time.perf_counter() - t0) * 1e3)
            if len(fns) > 1 and pause_s > 0:
                time.sleep(pause_s)
    return tuple(float(np.median(t)) if t else None for t in times)


def matmul_peak(size: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of a float32 ``size``² NumPy matrix multiply (median of ``repeats``)."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    ms, _ = time_pair(lambda: a @ a, repeats=repeats)
    return 2 * size ** 3 / ms / 1e6
