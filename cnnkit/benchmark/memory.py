"""Peak memory of one case, measured in a fresh interpreter per engine."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from .cases import MEMORY_CASES, QUICK_SKIP
from .timing import blas_threads
from .twins import torch_twin


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


def memory_child(engine: str, label: str, quick: bool) -> dict:
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


def memory_row(label: str, quick: bool, with_torch: bool) -> dict:
    row = {"name": f"peak RSS {label}"}
    for engine in ("cnnkit", "torch") if with_torch else ("cnnkit",):
        code = ("import json, sys; from cnnkit.benchmark import memory_child; "
                "print(json.dumps(memory_child(sys.argv[1], sys.argv[2], sys.argv[3] == '1')))")
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
