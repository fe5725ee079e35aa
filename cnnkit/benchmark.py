"""Benchmarks: cnnkit next to PyTorch in one process, same data, same thread count.

Each case times cnnkit and (when it is installed) PyTorch on the same arrays: one warm-up call each,
then ``repeats`` calls alternating between the two engines (so a busy machine slows both alike), and
the median of each. Achieved GFLOP/s and the share of the float32 matrix-multiply peak (a 2048² NumPy
matmul timed in the same run) put the numbers on the machine's own scale. Peak memory runs each
engine in a fresh subprocess and compares it with what :func:`cnnkit.summary` predicts.

PyTorch is optional: without it the torch columns stay empty. Used by ``cnnkit bench`` and
``benchmarks/bench.py``::

    report = run(quick=True, select=["conv"])
    print(format_table(report))
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Case", "Result", "cases", "run", "format_table", "matmul_peak", "blas_threads", "time_pair",
           "torch_twin"]


# ----------------------------------------------------------------------------- timing
def blas_threads() -> int:
    """Threads NumPy's BLAS uses (via threadpoolctl when installed, else the CPU count)."""
    try:
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return max(counts)
    except Exception:  # threadpoolctl missing or unable to inspect this BLAS
        pass
    return os.cpu_count() or 1


def _set_threads(n: int, torch) -> None:
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n, user_api="blas")
    except Exception:
        pass
    if torch is not None:
        torch.set_num_threads(n)


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def time_pair(fn_a, fn_b=None, repeats: int = 5, warmup: int = 1) -> tuple:
    """Median milliseconds of ``fn_a`` and ``fn_b`` (``None`` when absent), runs interleaved."""
    fns = [f for f in (fn_a, fn_b) if f is not None]
    for f in fns:
        for _ in range(warmup):
            f()
    times = [[] for _ in fns]
    for _ in range(max(1, repeats)):
        for f, ts in zip(fns, times):
            t0 = time.perf_counter()
            f()
            ts.append((time.perf_counter() - t0) * 1e3)
    med = [float(np.median(ts)) for ts in times]
    return (med[0], med[1] if fn_b is not None else None)


def matmul_peak(size: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of a float32 ``size``² NumPy matrix multiply (median of ``repeats``)."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    ms, _ = time_pair(lambda: a @ a, repeats=repeats)
    return 2 * size ** 3 / ms / 1e6


# ----------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One row of the table: ``build(quick, torch)`` returns ``(cnnkit_fn, torch_fn or None, flops)``."""
    name: str
    group: str
    build: object = field(repr=False)


@dataclass
class Result:
    name: str
    group: str
    cnnkit_ms: float | None = None
    torch_ms: float | None = None
    ratio: float | None = None
    gflops: float | None = None
    peak_pct: float | None = None
    note: str = ""


def _rng():
    return np.random.default_rng(0)


def _conv_case(shape, k_out, k, stride, pad, groups, backward):
    def build(quick, torch):
        import cnnkit
        from cnnkit.nn import functional as F
        n, c, h, w = shape
        if quick:
            n, h, w = max(1, n // 16), min(h, 32), min(w, 32)
        rng = _rng()
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        wt = (rng.standard_normal((k_out, c // groups, k, k), dtype=np.float32) * 0.1)
        out_hw = [cnnkit.shape.conv_output_size(s, k, stride, pad) for s in (h, w)]
        flops = 2 * n * cnnkit.shape.conv_macs(c, k_out, (k, k), out_hw, groups) * (3 if backward else 1)
        gy = rng.standard_normal((n, k_out, *out_hw), dtype=np.float32)
        cx, cw = cnnkit.tensor(x, requires_grad=backward), cnnkit.tensor(wt, requires_grad=backward)

        def cn():
            if not backward:
                with cnnkit.no_grad():
                    return F.conv2d(cx, cw, None, stride, pad, 1, groups)
            cx.grad = cw.grad = None
            F.conv2d(cx, cw, None, stride, pad, 1, groups).backward(gy)
        th = None
        if torch is not None:
            tx, tw = torch.tensor(x, requires_grad=backward), torch.tensor(wt, requires_grad=backward)
            tgy = torch.tensor(gy)

            def th():
                if not backward:
                    with torch.no_grad():
                        return torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups)
                tx.grad = tw.grad = None
                torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups).backward(tgy)
        return cn, th, flops
    return build


def _pool_case(shape, k, stride, pad, backward):
    def build(quick, torch):
        import cnnkit
        from cnnkit.nn import functional as F
        n, c, h, w = shape
        if quick:
            n = max(1, n // 16)
        rng = _rng()
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        out_hw = [cnnkit.shape.conv_output_size(s, k, stride, pad) for s in (h, w)]
        gy = rng.standard_normal((n, c, *out_hw), dtype=np.float32)
        cx = cnnkit.tensor(x, requires_grad=backward)

        def cn():
            if not backward:
                with cnnkit.no_grad():
                    return F.max_pool2d(cx, k, stride, pad)
            cx.grad = None
            F.max_pool2d(cx, k, stride, pad).backward(gy)
        th = None
        if torch is not None:
            tx, tgy = torch.tensor(x, requires_grad=backward), torch.tensor(gy)

            def th():
                if not backward:
                    with torch.no_grad():
                        return torch.nn.functional.max_pool2d(tx, k, stride, pad)
                tx.grad = None
                torch.nn.functional.max_pool2d(tx, k, stride, pad).backward(tgy)
        return cn, th, 0
    return build


def _batch_norm_case(shape):
    def build(quick, torch):
        import cnnkit
        from cnnkit.nn import functional as F
        n, c, h, w = shape
        if quick:
            n = max(2, n // 16)
        rng = _rng()
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        gy = rng.standard_normal((n, c, h, w), dtype=np.float32)
        cx = cnnkit.tensor(x, requires_grad=True)
        cg, cb = cnnkit.ones(c, requires_grad=True), cnnkit.zeros(c, requires_grad=True)
        rm, rv = cnnkit.zeros(c), cnnkit.ones(c)

        def cn():
            cx.grad = cg.grad = cb.grad = None
            F.batch_norm(cx, rm, rv, cg, cb, training=True).backward(gy)
        th = None
        if torch is not None:
            tx, tgy = torch.tensor(x, requires_grad=True), torch.tensor(gy)
            tg, tb = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
            trm, trv = torch.zeros(c), torch.ones(c)

            def th():
                tx.grad = tg.grad = tb.grad = None
                torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=True).backward(tgy)
        return cn, th, 0
    return build


def _model_flops(model, input_size, batch) -> float:
    try:
        import cnnkit
        return float(cnnkit.summary(model, input_size, batch_size=batch).total["flops"]) * batch
    except Exception:  # the analysis package is optional here
        return 0.0


class Skip(Exception):
    """A case that does not run in this mode."""


#: Models whose parameters alone make a --quick run slow (VGG-16: 138 M parameters).
QUICK_SKIP = {"vgg16"}


def _network_case(name, batch, input_size, train, num_classes=10):
    def build(quick, torch):
        import cnnkit
        from cnnkit.nn import functional as F
        n, size = batch, input_size
        if quick and name in QUICK_SKIP:
            raise Skip("too large for --quick")
        if quick:
            n = max(2, batch // 16)
            size = (size[0],) + tuple(min(s, 64) for s in size[1:])
        cnnkit.manual_seed(0)
        kwargs = {} if name == "vgg16" or name == "mobilenet_v1" else {"num_classes": num_classes}
        model = cnnkit.models.create(name, **kwargs)
        rng = _rng()
        x = rng.standard_normal((n,) + tuple(size), dtype=np.float32)
        flops = _model_flops(model, size, n) * (3 if train else 1)
        cx = cnnkit.tensor(x)
        if train:
            y = rng.integers(0, num_classes, n)
            opt = cnnkit.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            model.train()

            def cn():
                opt.zero_grad()
                F.cross_entropy(model(cx), cnnkit.tensor(y)).backward()
                opt.step()
        else:
            model.eval()

            def cn():
                with cnnkit.no_grad():
                    return model(cx)
        th, note = None, ""
        if torch is not None:
            twin, note = torch_twin(model, torch, x)
            tx = torch.tensor(x)
            if train:
                ty = torch.tensor(y)
                topt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
                twin.train()

                def th():
                    topt.zero_grad()
                    torch.nn.functional.cross_entropy(twin(tx), ty).backward()
                    topt.step()
            else:
                twin.eval()

                def th():
                    with torch.no_grad():
                        return twin(tx)
        return cn, th, flops, note
    return build


#: (label, input shape, out channels, kernel, stride, padding, groups) — the issue's layer cases.
CONV_LAYERS = [
    ("LeNet C1 1→6 5×5, 128×32²", (128, 1, 32, 32), 6, 5, 1, 0, 1),
    ("ResNet-20 3×3 16→16, 128×32²", (128, 16, 32, 32), 16, 3, 1, 1, 1),
    ("ResNet 3×3 64→64, 128×8²", (128, 64, 8, 8), 64, 3, 1, 1, 1),
    ("VGG-16 3×3 128→128, 4×112²", (4, 128, 112, 112), 128, 3, 1, 1, 1),
    ("1×1 256→256, 8×28²", (8, 256, 28, 28), 256, 1, 1, 0, 1),
    ("depthwise 3×3 256, 8×28²", (8, 256, 28, 28), 256, 3, 1, 1, 256),
    ("stride-2 3×3 16→32, 128×32²", (128, 16, 32, 32), 32, 3, 2, 1, 1),
]


def cases() -> list:
    """Every benchmark case, in table order."""
    out = []
    for label, shape, k_out, k, s, p, g in CONV_LAYERS:
        out.append(Case(f"conv {label} fwd", "conv", _conv_case(shape, k_out, k, s, p, g, False)))
        out.append(Case(f"conv {label} fwd+bwd", "conv", _conv_case(shape, k_out, k, s, p, g, True)))
    for label, k, s, p in (("2×2/2", 2, 2, 0), ("3×3/2 pad 1", 3, 2, 1)):
        out.append(Case(f"max pool {label}, 32×64×56² fwd", "pool", _pool_case((32, 64, 56, 56), k, s, p, False)))
        out.append(Case(f"max pool {label}, 32×64×56² fwd+bwd", "pool", _pool_case((32, 64, 56, 56), k, s, p, True)))
    out.append(Case("batch norm 2d, 128×16×32² fwd+bwd", "norm", _batch_norm_case((128, 16, 32, 32))))
    out += [
        Case("LeNet-5 train step, batch 128", "network", _network_case("lenet5", 128, (1, 32, 32), True)),
        Case("ResNet-20 train step, batch 128", "network", _network_case("resnet20", 128, (3, 32, 32), True)),
        Case("ResNet-20 inference, batch 128", "network", _network_case("resnet20", 128, (3, 32, 32), False)),
        Case("VGG-16 inference 224², batch 4", "network", _network_case("vgg16", 4, (3, 224, 224), False)),
        Case("MobileNet v1 inference 224², batch 8", "network",
             _network_case("mobilenet_v1", 8, (3, 224, 224), False)),
    ]
    return out


#: Peak-memory cases: (label, model, batch, input size, train).
MEMORY_CASES = [
    ("ResNet-20 train step, batch 128", "resnet20", 128, (3, 32, 32), True),
    ("VGG-16 inference 224², batch 4", "vgg16", 4, (3, 224, 224), False),
]


# ----------------------------------------------------------------------------- torch twins
def _torch_classes(torch):
    nn = torch.nn

    class Chain(nn.Module):
        """Runs its children in order (cnnkit's Sequential-style containers)."""

        def __init__(self, children):
            super().__init__()
            for key, m in children:
                self.add_module(key, m)

        def forward(self, x):
            for m in self._modules.values():
                x = m(x)
            return x

    class BasicBlock(Chain):
        def forward(self, x):
            m = self._modules
            out = m["relu1"](m["bn1"](m["conv1"](x)))
            out = m["bn2"](m["conv2"](out))
            identity = m["downsample"](x) if "downsample" in m else x
            return m["relu2"](out + identity)

    class ShortcutA(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.cin, self.cout, self.stride = cin, cout, stride

        def forward(self, x):
            x = x[:, :, ::self.stride, ::self.stride]
            extra = self.cout - self.cin
            return nn.functional.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    return Chain, BasicBlock, ShortcutA


def torch_twin(model, torch, x=None):
    """A ``torch.nn`` model with ``model``'s architecture, parameter names and weights.

    Leaves are mapped one to one; containers run their children in order (ResNet's basic block adds
    its shortcut). With a sample batch ``x`` the two models' eval outputs are compared and the
    returned note says whether they agree.
    """
    nn = torch.nn
    Chain, BasicBlock, ShortcutA = _torch_classes(torch)

    def mirror(m):
        kind = type(m).__name__
        if kind == "Conv2d":
            return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                             m.groups, bias=m.bias is not None)
        if kind == "Linear":
            return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        if kind in ("BatchNorm1d", "BatchNorm2d"):
            return getattr(nn, kind)(m.num_features, eps=m.eps, momentum=m.momentum)
        if kind in ("ReLU", "Tanh", "Sigmoid", "Identity"):
            return getattr(nn, kind)()
        if kind in ("MaxPool2d", "AvgPool2d"):
            extra = {"dilation": m.dilation} if kind == "MaxPool2d" else {}
            return getattr(nn, kind)(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode, **extra)
        if kind == "AdaptiveAvgPool2d":
            return nn.AdaptiveAvgPool2d(m.output_size)
        if kind == "Flatten":
            return nn.Flatten(m.start_dim, m.end_dim)
        if kind == "Dropout":
            return nn.Dropout(m.p)
        if kind == "ShortcutA":
            return ShortcutA(m.in_channels, m.out_channels, m.stride)
        children = [(k, mirror(c)) for k, c in m._modules.items()]
        if not children:
            raise NotImplementedError(f"torch_twin: no PyTorch equivalent for {kind}")
        return (BasicBlock if kind == "BasicBlock" else Chain)(children)

    twin = mirror(model)
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    missing, unexpected = twin.load_state_dict(state, strict=False)
    note = ""
    if x is not None:
        import cnnkit
        was_training = model.training
        model.eval()
        twin.eval()
        xs = x[:2]
        with cnnkit.no_grad(), torch.no_grad():
            a = model(cnnkit.tensor(xs)).data
            b = twin(torch.tensor(xs)).numpy()
        model.train(was_training)
        scale = max(1e-6, float(np.abs(b).max()))
        note = "outputs agree" if float(np.abs(a - b).max()) <= 1e-3 * scale else "twin outputs DIFFER"
    return twin, note


# ----------------------------------------------------------------------------- memory (subprocesses)
def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_now_mb() -> float:
    now = _status_mb("VmRSS")
    if now is not None:
        return now
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return float("nan")


def _reset_peak() -> bool:
    """Reset the kernel's high-water mark of this process (Linux ``clear_refs``); False when impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb / 1024 if sys.platform != "darwin" else kb / 2**20
    except ImportError:
        return float("nan")


def _memory_child(engine: str, label: str, quick: bool) -> dict:
    """Runs in a fresh interpreter: peak RSS above the baseline after imports, for one case."""
    _, name, batch, size, train = next(c for c in MEMORY_CASES if c[0] == label)
    if quick and name in QUICK_SKIP:
        return {"skipped": "too large for --quick"}
    if quick:
        batch = max(2, batch // 16)
        size = (size[0],) + tuple(min(s, 64) for s in size[1:])
    if engine == "torch":
        import torch
        import cnnkit  # for building the twin's architecture only
        torch.set_num_threads(blas_threads())
    else:
        import cnnkit
    from cnnkit.nn import functional as F
    import gc
    gc.collect()
    base = _rss_now_mb()                                  # the interpreter with its imports
    cnnkit.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((batch,) + tuple(size), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, batch)
    kwargs = {"num_classes": 10} if name == "resnet20" else {}
    model = cnnkit.models.create(name, **kwargs)
    info = {}
    try:
        s = cnnkit.summary(model, size, batch_size=batch, optimizer="momentum")
        info["predicted_mb"] = s.total["training_bytes" if train else "inference_bytes"] / 2**20
        acts = sorted((r.activations for r in s.leaves()), reverse=True)[:2]
        info["limit_mb"] = (s.total["param_bytes"] + 4 * batch * sum(acts)) / 2**20 + 150
    except Exception:  # the analysis package is optional here
        pass
    if engine == "torch":
        model, _ = torch_twin(model, torch)
    gc.collect()
    info["peak_reset"] = _reset_peak()                   # model building's transients do not count
    if engine == "torch":
        tx, ty = torch.tensor(x), torch.tensor(y)
        if train:
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            for _ in range(2):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(tx), ty).backward()
                opt.step()
        else:
            model.eval()
            with torch.no_grad():
                model(tx)
    else:
        cx = cnnkit.tensor(x)
        if train:
            opt = cnnkit.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            for _ in range(2):
                opt.zero_grad()
                F.cross_entropy(model(cx), cnnkit.tensor(y)).backward()
                opt.step()
        else:
            model.eval()
            with cnnkit.no_grad():
                model(cx)
    peak = _peak_mb()
    info.update(engine=engine, baseline_mb=base, peak_mb=peak, used_mb=peak - base)
    return info


def _memory_row(label: str, quick: bool, with_torch: bool) -> dict:
    row = {"name": f"peak RSS {label}"}
    for engine in ("cnnkit", "torch") if with_torch else ("cnnkit",):
        code = ("import json, sys; from cnnkit.benchmark import _memory_child; "
                "print(json.dumps(_memory_child(sys.argv[1], sys.argv[2], sys.argv[3] == '1')))")
        proc = subprocess.run([sys.executable, "-c", code, engine, label, "1" if quick else "0"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            row[f"{engine}_error"] = proc.stderr.strip().splitlines()[-1:] or ["failed"]
            continue
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        if "skipped" in info:
            row["note"] = f"skipped: {info['skipped']}"
            break
        row[f"{engine}_mb"] = info["used_mb"]
        row[f"{engine}_baseline_mb"] = info["baseline_mb"]
        for key in ("predicted_mb", "limit_mb"):
            if key in info:
                row[key] = info[key]
    if "cnnkit_mb" in row and "predicted_mb" in row:
        row["ratio_to_predicted"] = row["cnnkit_mb"] / row["predicted_mb"]
    return row


# ----------------------------------------------------------------------------- run and print
def _selected(name: str, group: str, select) -> bool:
    if not select:
        return True
    low = name.lower()
    return any(s.lower() == group or s.lower() in low for s in select)


def run(select=None, quick: bool = False, repeats: int | None = None, with_torch: bool = True,
        threads: int | None = None, memory: bool = True, progress=None) -> dict:
    """Run the cases whose name contains (or whose group equals) one of ``select`` (all when empty).

    Returns a report dict: ``machine``, ``threads``, ``peak_gflops``, ``results`` (one dict per case,
    see :class:`Result`) and ``memory`` rows. ``progress(msg)`` is called before each case.
    """
    torch = _import_torch() if with_torch else None
    threads = threads or blas_threads()
    _set_threads(threads, torch)
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
            res.cnnkit_ms, res.torch_ms = time_pair(cn, th, repeats=repeats)
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
                mem.append(_memory_row(label, quick, torch is not None))
    peak = max(peak, matmul_peak(1024 if quick else 2048, repeats=2 if quick else 3))
    for r in results:
        if r.gflops:
            r.peak_pct = 100 * r.gflops / peak
    return {
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "torch": getattr(torch, "__version__", None)},
        "threads": threads, "quick": quick, "repeats": repeats, "peak_gflops": peak,
        "results": [asdict(r) for r in results], "memory": mem,
    }


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
    m = report["machine"]
    lines = [f"{m['cpu']}, {report['threads']} thread(s); numpy {m['numpy']}, torch {m['torch'] or 'not installed'}; "
             f"float32 matmul peak {report['peak_gflops']:.0f} GFLOP/s (2048², same run)"
             + ("; QUICK sizes" if report["quick"] else "") + f"; median of {report['repeats']} runs",
             "",
             "| case | cnnkit ms | torch ms | ratio | GFLOP/s | % peak | note |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in report["results"]:
        lines.append(f"| {r['name']} | {_fmt(r['cnnkit_ms'], '.1f')} | {_fmt(r['torch_ms'], '.1f')} | "
                     f"{_fmt(r['ratio'], '.2f')} | {_fmt(r['gflops'], '.1f')} | {_fmt(r['peak_pct'], '.0f')} | "
                     f"{r['note']} |")
    if report["memory"]:
        lines += ["", "| peak memory (RSS above the interpreter's baseline) | cnnkit MB | torch MB | "
                      "predicted MB (summary) | cnnkit / predicted | limit MB |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in report["memory"]:
            lines.append(f"| {r['name']} | {_fmt(r.get('cnnkit_mb'), '.0f')} | {_fmt(r.get('torch_mb'), '.0f')} | "
                         f"{_fmt(r.get('predicted_mb'), '.0f')} | {_fmt(r.get('ratio_to_predicted'), '.2f')} | "
                         f"{_fmt(r.get('limit_mb') if 'VGG' in r['name'] else None, '.0f')} |")
    return "\n".join(lines)
