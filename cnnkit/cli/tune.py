"""``cnnkit tune MODEL``: measure which convolution algorithm is fastest for each layer of a network, ahead of time.

The same measurement a process does the first time it meets a layer configuration
(:mod:`cnnkit.nn.functional.conv.tuning`), for every convolution of one pass of ``MODEL`` at a batch size; the
choices go into this machine's cache, where later runs find them.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time

DIRECTIONS = ("forward", "input_grad", "weight_grad")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tune", help="measure the fastest convolution algorithm for each layer of a model (cached per machine)",
        description="Run one pass of MODEL (a zoo name) on random data at --batch, measuring for every convolution "
                    "which algorithm is fastest on this machine, and store the choices in cnnkit's cache (keyed by "
                    "the CPU, the BLAS kernel, the thread count and cnnkit's version), where every later run finds "
                    "them. --train measures the backward's algorithms too.")
    p.add_argument("model", help="zoo model name (see `cnnkit models`)")
    p.add_argument("--input", help="input size C,H,W (default: the model's)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32): choices depend on it")
    p.add_argument("--train", action="store_true", help="a training step: forward and backward (else inference)")
    p.add_argument("--threads", type=int, help="threads (default: cnnkit.get_num_threads()); choices depend on it")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="default float32")
    p.add_argument("--force", action="store_true", help="measure again the layers the cache already has")
    p.add_argument("--json", action="store_true", help="print the choices as JSON")
    p.set_defaults(func=_tune)


def _tune(args) -> int:
    import numpy as np

    import cnnkit
    from ..analysis.summary import resolve_model
    from ..nn.functional import conv
    from ..nn.functional.conv import tuning
    from ..nn import Conv1d, Conv2d, Conv3d
    from . import CLIError, parse_size
    for name, v in (("--batch", args.batch), ("--threads", args.threads)):
        if v is not None and v < 1:
            raise CLIError(f"{name} must be at least 1, got {v}")
    try:
        model, name, size = resolve_model(args.model, parse_size(args.input))
    except (KeyError, ValueError) as e:
        raise CLIError(f"tune: {e}") from None
    if args.threads:
        cnnkit.set_num_threads(args.threads)
    model = model.to(args.dtype)
    layers, hooks = {}, []

    def seen(mod, inp, out, lname):
        layers.setdefault(lname, (mod, tuple(inp[0].shape)))
    for lname, m in model.named_modules():
        if isinstance(m, (Conv1d, Conv2d, Conv3d)):
            hooks.append(m.register_forward_hook(lambda mod, inp, out, lname=lname: seen(mod, inp, out, lname)))
    x = cnnkit.tensor(np.random.default_rng(0).standard_normal((args.batch,) + tuple(size)).astype(args.dtype))
    print(f"… measuring {name}'s convolutions, batch {args.batch}{', training step' if args.train else ''}, "
          f"{cnnkit.get_num_threads()} thread(s)", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with conv.measuring(True), (tuning.fresh() if args.force else contextlib.nullcontext()):
        try:
            if args.train:
                model.train()
                model(x).sum().backward()
            else:
                model.eval()
                with cnnkit.no_grad():
                    model(x)
        except ValueError as e:
            raise CLIError(f"tune: {e}") from None
        finally:
            for h in hooks:
                h.remove()
        rows = [_row(lname, mod, shape, args.dtype, args.train, i == 0) for i, (lname, (mod, shape))
                in enumerate(layers.items())]
    result = {"model": name, "batch": args.batch, "threads": cnnkit.get_num_threads(), "train": args.train,
              "seconds": round(time.perf_counter() - start, 2), "cache": str(conv.cache_path()),
              "machine": tuning.machine(), "layers": rows}
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


def _row(lname, mod, shape, dtype, train: bool, first: bool) -> dict:
    from ..nn.functional.conv import algorithm
    row = {"layer": lname, "type": type(mod).__name__, "input": list(shape)}
    for d in DIRECTIONS:
        if d == "forward" or (train and not (d == "input_grad" and first)):   # the first layer needs no dX
            row[d] = algorithm(shape, mod.weight.shape, mod.stride, mod.padding, mod.dilation, mod.groups, dtype,
                               direction=d, measure_now=train or d == "forward")
        else:
            row[d] = None
    return row


def _table(result: dict) -> str:
    rows = result["layers"]
    head = ["layer", "type", "input", *DIRECTIONS]
    cells = [[r["layer"], r["type"], "×".join(map(str, r["input"])), *(r[d] or "—" for d in DIRECTIONS)]
             for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *cells)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head] + cells]
    m = result["machine"]
    lines += ["", f"{len(rows)} convolution(s) measured in {result['seconds']} s on {m['cpu']} ({m['isa']}), BLAS "
                  f"{m['blas']}, {result['threads']} thread(s); choices stored in {result['cache']}"]
    return "\n".join(lines)
