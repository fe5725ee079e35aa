"""Where a network's inference time goes: each layer's forward time in cnnkit next to its PyTorch twin.

``cnnkit bench --layers resnet20`` times every leaf module (a convolution, a batch norm, a ReLU…) of one
inference pass with forward hooks, in both engines, on the same batch and thread count, and prints one row
per layer and one per layer type, with the ratio cnnkit/torch. The whole-network rows of the main table
say *whether* cnnkit is slower; this says *which layers* make the difference. With hooks on every layer,
cnnkit does not fold batch norm into the convolution before it (:mod:`cnnkit.nn.fusion`), so each batch norm
gets its own row and the whole pass here is slower than in the main table.
"""
from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from .cases import conv_path
from .timing import set_threads
from .twins import torch_twin


def _hooked(named_leaves, times: dict) -> list:
    """Forward pre/post hooks that add each leaf's wall time (ms) to ``times[name]``; returns the handles."""
    handles, start = [], {}
    for name, m in named_leaves:
        def pre(mod, inputs, name=name):
            start[name] = time.perf_counter()

        def post(mod, inputs, output, name=name):
            times[name].append((time.perf_counter() - start[name]) * 1e3)
        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    return handles


def _leaves(model) -> list:
    return [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]


def layer_times(model, x: np.ndarray, torch=None, repeats: int = 5, threads: int | None = None) -> dict:
    """Median forward time of each leaf of ``model`` (eval mode, no graph) on the batch ``x``, and of its
    PyTorch twin's layer of the same name when ``torch`` is given.

    Returns ``{"rows": [{"name", "type", "shape", "cnnkit_ms", "torch_ms"}], "total": {"cnnkit_ms",
    "torch_ms"}, "threads": n, "note": twin check}``; the totals are medians of whole passes. A convolution's type
    names the forward algorithm it runs (``"Conv2d winograd-images"``, ``"Conv2d gemm"``, …:
    :func:`cnnkit.nn.functional.conv.conv2d_path`), so the by-type sums keep the algorithms apart.
    """
    import cnnkit
    if threads is not None:
        set_threads(threads, torch)
    model.eval()
    leaves = _leaves(model)
    shapes, kinds = {}, {n: type(m).__name__ for n, m in leaves}

    def record(mod, inputs, out, name):
        shapes[name] = tuple(out.shape)
        path = conv_path(mod, inputs[0].shape)
        if path:
            kinds[name] = f"{type(mod).__name__} {path}"
    shape_hooks = [m.register_forward_hook(lambda mod, i, out, name=n: record(mod, i, out, name)) for n, m in leaves]
    cx = cnnkit.tensor(x)
    with cnnkit.no_grad():
        model(cx)                                              # warm-up (and output shapes)
    for h in shape_hooks:
        h.remove()

    def timed(leaf_list, call):
        times = defaultdict(list)
        call()                                                 # warm-up without hooks
        handles = _hooked(leaf_list, times)
        totals = []
        try:
            for _ in range(max(1, repeats)):
                t0 = time.perf_counter()
                call()
                totals.append((time.perf_counter() - t0) * 1e3)
        finally:
            for h in handles:
                h.remove()
        return {k: float(np.median(v)) for k, v in times.items()}, float(np.median(totals))

    def cn_call():
        with cnnkit.no_grad():
            model(cx)
    ours, our_total = timed(leaves, cn_call)
    theirs, their_total, note = {}, None, ""
    twin = None
    if torch is not None:
        try:
            twin, note = torch_twin(model, torch, x)
        except (NotImplementedError, RuntimeError) as e:  # no twin for this architecture: cnnkit alone
            note = f"no PyTorch twin for {type(model).__name__} ({str(e).splitlines()[0][:120]}): cnnkit only"
    if twin is not None:
        twin.eval()
        tx = torch.tensor(x)

        def th_call():
            with torch.no_grad():
                twin(tx)
        theirs, their_total = timed(_leaves(twin), th_call)
    rows = [{"name": n, "type": kinds[n], "shape": shapes.get(n), "cnnkit_ms": ours.get(n),
             "torch_ms": theirs.get(n)} for n, _ in leaves]
    return {"rows": rows, "total": {"cnnkit_ms": our_total, "torch_ms": their_total},
            "threads": cnnkit.get_num_threads(), "note": note}


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a is not None and b else "—"


def _ms(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def format_layers(result: dict) -> str:
    """The per-layer table, then one row per layer type (summed), then the whole pass."""
    rows = result["rows"]
    lines = [f"{'layer':32} {'type':22} {'output':18} {'cnnkit ms':>9} {'torch ms':>9} {'ratio':>6}"]
    for r in rows:
        shape = "×".join(map(str, r["shape"])) if r["shape"] else "—"
        lines.append(f"{r['name']:32} {r['type']:22} {shape:18} {_ms(r['cnnkit_ms']):>9} {_ms(r['torch_ms']):>9} "
                     f"{_ratio(r['cnnkit_ms'], r['torch_ms']):>6}")
    kinds: dict = {}
    for r in rows:
        a, b = kinds.setdefault(r["type"], [0.0, 0.0])
        kinds[r["type"]] = [a + (r["cnnkit_ms"] or 0.0), b + (r["torch_ms"] or 0.0)]
    lines.append("")
    lines.append(f"{'by type':32} {'':22} {'':18} {'cnnkit ms':>9} {'torch ms':>9} {'ratio':>6}")
    for kind, (a, b) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"{kind:32} {'':22} {'':18} {a:9.2f} {_ms(b or None):>9} {_ratio(a, b):>6}")
    tot = result["total"]
    lines.append(f"{'whole pass (median)':32} {'':22} {'':18} {_ms(tot['cnnkit_ms']):>9} {_ms(tot['torch_ms']):>9} "
                 f"{_ratio(tot['cnnkit_ms'], tot['torch_ms']):>6}")
    lines.append(f"{result['threads']} thread(s); forward hooks around each leaf module, eval mode, no graph "
                 "(hooks keep batch norm out of the convolutions: cnnkit.nn.fusion)"
                 + (f"; {result['note']}" if result["note"] else ""))
    return "\n".join(lines)
