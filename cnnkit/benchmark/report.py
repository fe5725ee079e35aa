"""Run the cases and print the table."""
from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

import numpy as np

from .cases import MEMORY_CASES, WINOGRAD_NOTE, Skip, cases
from .memory import memory_row
from .timing import import_torch, set_threads, blas_threads, matmul_peak, time_blocks


@dataclass
class Result:
    name: str
    group: str
    cnnkit_ms: float | None = None
    torch_ms: float | None = None
    ratio: float | None = None
    gflops: float | None = None
    peak_pct: float | None = None
    order_ms: float | None = None      # cnnkit with measurement off: the default order's algorithms
    vs_order: float | None = None      # cnnkit_ms / order_ms: what selection by measurement gains (below 1)
    note: str = ""


def _selected(name: str, group: str, select) -> bool:
    if not select:
        return True
    low = name.lower()
    return any(s.lower() == group or s.lower() in low for s in select)


def run(select=None, quick: bool = False, repeats: int | None = None, with_torch: bool = True,
        threads: int | None = None, memory: bool = True, progress=None, against_order: bool = True) -> dict:
    """Run the cases whose name contains (or whose group equals) one of ``select`` (all when empty).

    Returns a report dict: ``machine``, ``threads``, ``peak_gflops``, ``results`` (one dict per case,
    see :class:`Result`) and ``memory`` rows. ``progress(msg)`` is called before each case. With measurement on
    (:func:`cnnkit.nn.functional.conv.measure`) and ``against_order``, each case is also timed with measurement off
    — the default order's hand-set choices — in the same alternating blocks (``order_ms``, ``vs_order``).
    """
    from ..nn.functional import conv
    torch = import_torch() if with_torch else None
    against_order = against_order and conv.measure()
    threads = threads or blas_threads()
    set_threads(threads, torch)
    repeats = repeats or (2 if quick else 5)
    peak = matmul_peak(1024 if quick else 2048, repeats=2 if quick else 3)
    results = []
    for case in cases():
        if not _selected(case.name, case.group, select):
            continue
        if progress:
            progress(case.name)
        res = Result(case.name, case.group)
        try:
            built = case.build(quick, torch)
            cn, th, flops = built[:3]
            res.note = built[3] if len(built) > 3 else ""
            order = _in_order(cn) if against_order else None
            res.cnnkit_ms, res.torch_ms, res.order_ms = time_blocks((cn, th, order), repeats=repeats)
        except Skip as exc:
            res.note = f"skipped: {exc}"
            results.append(res)
            continue
        except Exception as exc:  # a missing layer or model must not stop the whole table
            res.note = f"skipped: {type(exc).__name__}: {exc}"[:120]
            results.append(res)
            continue
        if res.torch_ms:
            res.ratio = res.cnnkit_ms / res.torch_ms
        if res.order_ms:
            res.vs_order = res.cnnkit_ms / res.order_ms
        if flops:
            res.gflops = flops / res.cnnkit_ms / 1e6
            res.peak_pct = 100 * res.gflops / peak
        results.append(res)
    mem = []
    if memory:
        for label, *_ in MEMORY_CASES:
            if _selected(f"peak RSS {label}", "memory", select):
                if progress:
                    progress(f"peak RSS {label}")
                mem.append(memory_row(label, quick, torch is not None))
    peak = max(peak, matmul_peak(1024 if quick else 2048, repeats=2 if quick else 3))
    for r in results:
        if r.gflops:
            r.peak_pct = 100 * r.gflops / peak
    tuned = conv.tuning.machine()
    return {
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "torch": getattr(torch, "__version__", None), "isa": tuned["isa"],
                    "cpu_id": tuned["cpu"], "blas": tuned["blas"], "openblas_coretype": tuned["openblas_coretype"],
                    "numba": tuned["numba"]},
        "threads": threads, "quick": quick, "repeats": repeats, "peak_gflops": peak,
        "selection": {"measure": conv.measure(), "cache": str(conv.cache_path()), "off": sorted(conv.disabled())},
        "results": [asdict(r) for r in results], "memory": mem,
    }


def _in_order(fn):
    """``fn`` with measurement off: the convolutions take the default order's algorithms."""
    from ..nn.functional import conv

    def ordered():
        with conv.measuring(False):
            return fn()
    return ordered


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def format_table(report: dict) -> str:
    """The report as Markdown tables (speed, then memory)."""
    m, sel = report["machine"], report.get("selection", {})
    order = any(r.get("order_ms") for r in report["results"])
    lines = [f"{m['cpu']} ({m.get('isa', '?')}; {m.get('cpu_id', '')}), {report['threads']} thread(s); numpy "
             f"{m['numpy']}, BLAS {m.get('blas', '?')} (OPENBLAS_CORETYPE={m.get('openblas_coretype') or 'unset'}), "
             f"torch {m['torch'] or 'not installed'}, numba {m.get('numba')}; float32 matmul peak "
             f"{report['peak_gflops']:.0f} GFLOP/s (2048², same run)"
             + ("; QUICK sizes" if report["quick"] else "") + f"; median of {report['repeats']} runs",
             "",
             "Convolution algorithms: " + ("chosen by measurement (cache " + sel["cache"] + ")" if sel.get("measure")
                                          else "the default order (measurement off)")
             + (f"; switched off: {', '.join(sel['off'])}" if sel.get("off") else "")
             + ("; 'vs order' = cnnkit's time over its time with the default order's hand-set choices, timed in the "
                "same alternating blocks" if order else ""),
             "",
             "| case | cnnkit ms | torch ms | ratio | GFLOP/s | % peak | " + ("vs order | " if order else "")
             + "note |",
             "|---|---:|---:|---:|---:|---:|" + ("---:|" if order else "") + "---|"]
    for r in report["results"]:
        lines.append(f"| {r['name']} | {_fmt(r['cnnkit_ms'], '.1f')} | {_fmt(r['torch_ms'], '.1f')} | "
                     f"{_fmt(r['ratio'], '.2f')} | {_fmt(r['gflops'], '.1f')} | {_fmt(r['peak_pct'], '.0f')} | "
                     + (f"{_fmt(r.get('vs_order'), '.2f')} | " if order else "") + f"{r['note']} |")
    if any(WINOGRAD_NOTE in r["note"] for r in report["results"]):
        lines += ["", f"GFLOP/s and % peak count every convolution's multiply-adds as the direct method does them. "
                      f"Layers on {WINOGRAD_NOTE}-rows or -images run F(2×2, 3×3), whose GEMMs do 2.25× fewer "
                      "multiplies, so their share of the peak can pass 100 %."]
    if report["memory"]:
        lines += ["", "| peak memory (RSS above the interpreter's baseline) | cnnkit MB | torch MB | "
                      "predicted MB (summary) | cnnkit / predicted | limit MB |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in report["memory"]:
            lines.append(f"| {r['name']} | {_fmt(r.get('cnnkit_mb'), '.0f')} | {_fmt(r.get('torch_mb'), '.0f')} | "
                         f"{_fmt(r.get('predicted_mb'), '.0f')} | {_fmt(r.get('ratio_to_predicted'), '.2f')} | "
                         f"{_fmt(r.get('limit_mb') if 'VGG' in r['name'] else None, '.0f')} |")
    return "\n".join(lines)
