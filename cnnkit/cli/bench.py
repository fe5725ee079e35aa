"""``cnnkit bench``: time cnnkit next to PyTorch (when installed) on this machine."""
from __future__ import annotations

import contextlib
import json
import os
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="time convolutions, pooling and whole networks next to PyTorch",
        description="Time cnnkit and PyTorch (if installed) side by side in one process: same data, same "
                    "thread count, warm-up then the median of repeated runs. Prints ms, the ratio "
                    "cnnkit/torch, GFLOP/s and the share of the float32 matmul peak measured in the same run.")
    p.add_argument("--quick", action="store_true", help="small sizes, 2 repeats, no VGG-16: a smoke run (about a minute)")
    p.add_argument("--cases", nargs="+", metavar="PATTERN",
                   help="only cases whose name contains PATTERN, or a group: conv, pool, norm, network, memory")
    p.add_argument("--repeats", type=int, help="timed runs per case (default 5, quick 2)")
    p.add_argument("--threads", type=int, help="threads for cnnkit, NumPy's BLAS and PyTorch (default: cnnkit.get_num_threads(), "
                        "the BLAS's count)")
    p.add_argument("--no-torch", action="store_true", help="time cnnkit only")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--disable", nargs="+", metavar="ALGORITHM", default=[],
                   help="switch these convolution algorithms (or families: winograd, direct, depthwise, row-shifted, "
                        "transposed) off, as CNNKIT_CONV_OFF does: an A/B of what they bring")
    p.add_argument("--no-measure", action="store_true",
                   help="convolution algorithms by the default order, not by measurement (as CNNKIT_CONV_MEASURE=0)")
    p.add_argument("--no-order", action="store_true",
                   help="skip timing cnnkit a second time with the default order's algorithms (the 'vs order' column)")
    p.add_argument("--no-winograd", action="store_true", help="as --disable winograd")
    p.add_argument("--no-direct", action="store_true", help="as --disable direct")
    p.add_argument("--layers", metavar="MODEL",
                   help="instead of the table: each layer's inference time in MODEL (a zoo name), next to PyTorch")
    p.add_argument("--batch", type=int, default=8, help="batch size for --layers (default 8)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_bench)


def _bench(args) -> int:
    from .. import benchmark
    from . import CLIError
    if args.list:
        for c in benchmark.cases():
            print(f"{c.group:8s} {c.name}")
        for label, *_ in benchmark.MEMORY_CASES:
            print(f"{'memory':8s} peak RSS {label}")
        return 0
    for name, v in (("--repeats", args.repeats), ("--threads", args.threads), ("--batch", args.batch)):
        if v is not None and v < 1:
            raise CLIError(f"{name} must be at least 1, got {v}")
    off = list(args.disable) + ["winograd"] * args.no_winograd + ["direct"] * args.no_direct
    if args.no_measure:
        return _without_measurement(lambda a: _with_algorithms_off(_run, a, off), args)
    return _with_algorithms_off(_run, args, off) if off else _run(args)


@contextlib.contextmanager
def _environment(name: str, value: str):
    """``os.environ[name] = value`` inside the block (the memory subprocesses inherit it), as before after it."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def _without_measurement(run, args) -> int:
    """``run(args)`` with measurement off, in this process and (``CNNKIT_CONV_MEASURE=0``) the memory subprocesses."""
    from ..nn.functional import conv
    with _environment("CNNKIT_CONV_MEASURE", "0"), conv.measuring(False):
        return run(args)


def _with_algorithms_off(run, args, off) -> int:
    """``run(args)`` with the convolution algorithms ``off`` switched off, in this process and (``CNNKIT_CONV_OFF``)
    the memory subprocesses; restored afterwards."""
    from ..nn.functional import conv
    if not off:
        return run(args)
    with conv.switched_off(*off), _environment("CNNKIT_CONV_OFF", ",".join(sorted(conv.disabled() | set(off)))):
        return run(args)


def _run(args) -> int:
    from .. import benchmark
    from . import CLIError
    if args.layers:
        return _layers(args)
    names = [c.name for c in benchmark.cases()] + [f"peak RSS {c[0]}" for c in benchmark.MEMORY_CASES]
    groups = {"conv", "pool", "norm", "network", "memory"}
    for pattern in args.cases or ():
        if pattern.lower() not in groups and not any(pattern.lower() in n.lower() for n in names):
            raise CLIError(f"--cases: no case matches {pattern!r} (see cnnkit bench --list)")
    report = benchmark.run(select=args.cases, quick=args.quick, repeats=args.repeats,
                           with_torch=not args.no_torch, threads=args.threads, memory=not args.no_memory,
                           against_order=not args.no_order,
                           progress=lambda msg: print(f"… {msg}", file=sys.stderr, flush=True))
    print(json.dumps(report, indent=2) if args.json else benchmark.format_table(report))
    return 0


def _layers(args) -> int:
    import numpy as np

    import cnnkit
    from ..benchmark.layers import format_layers, layer_times
    from ..benchmark.timing import import_torch
    from . import CLIError
    try:
        model = cnnkit.models.create(args.layers)
    except (KeyError, ValueError) as e:
        raise CLIError(f"--layers: {e}") from None
    size = cnnkit.models.default_input_size(model)
    x = np.random.default_rng(0).standard_normal((args.batch,) + tuple(size), dtype=np.float32)
    torch = None if args.no_torch else import_torch()
    print(f"… timing {args.layers} layer by layer, batch {args.batch}", file=sys.stderr, flush=True)
    result = layer_times(model, x, torch, repeats=args.repeats or 5, threads=args.threads)
    print(json.dumps(result, indent=2) if args.json else format_layers(result))
    return 0
