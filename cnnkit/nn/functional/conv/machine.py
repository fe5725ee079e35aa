"""What a machine's measured choices are keyed by (:mod:`.tuning`), and what the benchmark's header says of the machine:
the CPU (model, family numbers, instruction-set class, a hash of its flags), NumPy's BLAS and its kernel, Numba, and
cnnkit's version with a fingerprint of this package's source."""
from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

from .... import parallel

__all__ = ["machine"]


def _cpu() -> dict:
    info = {"model": platform.processor() or platform.machine(), "flags": ""}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name":
                    info["model"] = value
                elif key in ("cpu family", "model", "stepping"):           # Zen 5: family 26
                    info[{"cpu family": "family", "model": "model number"}.get(key, key)] = value
                elif key in ("flags", "Features") and not info["flags"]:
                    info["flags"] = value
                elif not line.strip() and info["flags"]:
                    break                                   # the first processor is enough
    except OSError:
        pass
    return info


_MACHINE = None


def _fingerprint() -> str:
    """cnnkit's version and a hash of this package's source: an edited algorithm invalidates the cache."""
    try:
        from importlib.metadata import version
        ver = version("cnnkit")
    except Exception:                                       # not installed (a source tree on sys.path)
        ver = "unknown"
    digest = hashlib.sha1()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return f"{ver}+{digest.hexdigest()[:10]}"


def machine() -> dict:
    """What the cache is keyed by, and what the benchmark's header prints: ``cpu`` (model name, family/model
    numbers), ``isa`` (``AVX-512``, ``AVX2``, …), ``flags`` (a hash of the CPU's flags), ``blas`` (threadpoolctl's
    ``internal_api`` ``version`` ``architecture``, e.g. ``openblas 0.3.31 Haswell``), ``openblas_coretype`` (the
    environment's, or None), ``numba``, ``cnnkit`` (version + source fingerprint). The thread count is added by
    :func:`cache_path`."""
    global _MACHINE
    if _MACHINE is None:
        cpu = _cpu()
        flags = set(cpu["flags"].split())
        isa = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "AVX" if "avx" in flags
               else platform.machine())
        blas = "; ".join(" ".join(str(b[k]) for k in ("internal_api", "version", "architecture") if b.get(k))
                         for b in parallel.blas_info()) or "unknown"
        try:
            from importlib.metadata import version
            numba = version("numba")
        except Exception:
            numba = None
        numbers = [f"{k} {cpu[k]}" for k in ("family", "model number", "stepping") if k in cpu]
        _MACHINE = {"cpu": ", ".join([cpu["model"]] + numbers),
                    "isa": isa, "flags": hashlib.sha1(" ".join(sorted(flags)).encode()).hexdigest()[:12],
                    "blas": blas, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "numba": numba,
                    "cnnkit": _fingerprint()}
    return dict(_MACHINE)
