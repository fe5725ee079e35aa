"""Benchmarks: cnnkit next to PyTorch in one process, same data, same thread count.

Each case times cnnkit and (when it is installed) PyTorch on the same arrays: warm-up calls, then
``repeats`` timed calls in a few blocks per engine, the engines' blocks alternating, and the median
(:func:`time_pair` says why blocks and not single calls alternate). Achieved GFLOP/s and the share of the float32 matrix-multiply peak (a 2048² NumPy
matmul timed in the same run) put the numbers on the machine's own scale. Peak memory runs each
engine in a fresh subprocess and compares it with what :func:`cnnkit.summary` predicts.

PyTorch is optional: without it the torch columns stay empty. Used by ``cnnkit bench`` and
``benchmarks/bench.py``::

    report = run(quick=True, select=["conv"])
    print(format_table(report))

Modules: ``timing`` (threads, medians, matmul peak), ``cases`` (what is timed), ``twins`` (PyTorch
copies of cnnkit models), ``memory`` (peak RSS in subprocesses), ``report`` (run, table), ``layers``
(each layer's inference time, ``cnnkit bench --layers MODEL``).
"""
from __future__ import annotations

from .cases import CONV_LAYERS, MEMORY_CASES, Case, cases
from .memory import memory_child, memory_row
from .report import Result, format_table, run
from .timing import blas_threads, matmul_peak, time_pair
from .twins import torch_twin

__all__ = ["Case", "Result", "cases", "run", "format_table", "matmul_peak", "blas_threads", "time_pair",
           "torch_twin", "CONV_LAYERS", "MEMORY_CASES"]
