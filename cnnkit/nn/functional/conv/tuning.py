"""Selection by measurement, per machine (as ``torch.backends.cudnn.benchmark``), and its cache file.

The first time a process meets a layer configuration — a direction and a :class:`.geometry.Geometry` (shapes,
stride, padding, dilation, groups, dtype) at a thread count — :func:`choose` times every algorithm that applies
(:func:`.registry.usable`) on that call's own arrays, in alternating rounds after one warm-up run each, and ranks
them by their fastest run; the default order's choice (:func:`.registry.default`) stays first unless another's
fastest run is :data:`MARGIN` faster and it was faster in most rounds (a machine shared with other work slows single
runs by 2× and more: one lucky run must not decide). The ranking goes into a small JSON file per machine (:func:`cache_path`), keyed by the CPU
(model and instruction-set flags), the BLAS kernel in use, the thread count and cnnkit's version (with a
fingerprint of this package's source), so later processes on the same machine pay nothing. A given cache file
gives the same choices every run: results are repeatable, and a run resumed from a checkpoint computes the same
bits. Layers under :data:`MEASURE_MIN_MACS` multiply-adds are not worth timing: the default order takes them.

Switches: ``CNNKIT_CONV_MEASURE=0`` in the environment or :func:`measure(False) <measure>` (then the default order
decides every layer); ``CNNKIT_CACHE_DIR`` for the cache's folder (default ``$XDG_CACHE_HOME/cnnkit`` or
``~/.cache/cnnkit``); ``cnnkit tune MODEL --input …`` measures a network's layers ahead of time.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from .... import parallel
from .algorithm import FORWARD, INPUT_GRAD
from .geometry import Geometry
from .machine import machine

__all__ = ["measure", "measuring", "fresh", "cache_path", "cached", "machine", "choose", "MEASURE_MIN_MACS", "MARGIN"]

#: Layers with fewer multiply-adds than this are not measured (the default order takes them): timing them costs
#: more than any choice could save, and a tiny call (the report's one-image trace) never loads Numba for it.
MEASURE_MIN_MACS = 2**22

#: Another algorithm replaces the default order's choice only when its fastest run is this much faster (and it was
#: faster in most rounds): on a shared 2-core machine single runs move by a few per cent and more, and a choice by
#: noise must not cost anything.
MARGIN = 0.05

#: Each algorithm is timed at least this many times and for at least :data:`MEASURE_S` seconds in all (at most
#: :data:`MAX_ROUNDS` rounds); one that is :data:`PRUNE` times slower than the best after the first round stops.
ROUNDS, MAX_ROUNDS, MEASURE_S, PRUNE = 5, 15, 0.2, 3.0

FORMAT = 1

_on = os.environ.get("CNNKIT_CONV_MEASURE", "1") not in ("0", "false", "False", "")
_lock = threading.RLock()
_files: dict = {}            # cache path → {entry key: ranking}, loaded once per process
_warned: set = set()
_fresh: set | None = None    # inside fresh(): the entries measured there (others are measured again)


def measure(on: bool | None = None) -> bool:
    """Whether convolutions choose their algorithms by measurement; ``measure(False)`` switches it off (the default
    order then decides), ``measure(True)`` on. Returns the setting (after the change)."""
    global _on
    if on is not None:
        if not isinstance(on, bool):
            raise TypeError(f"measure: expected True, False or None, got {on!r}")
        _on = on
    return _on


@contextlib.contextmanager
def measuring(on: bool):
    """``with measuring(False): ...`` — measurement on or off inside the block, as before after it."""
    before = measure()
    measure(on)
    try:
        yield
    finally:
        measure(before)


def cache_dir() -> Path:
    """``CNNKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnnkit``, else ``~/.cache/cnnkit``."""
    if os.environ.get("CNNKIT_CACHE_DIR"):
        return Path(os.environ["CNNKIT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnnkit"


def _key() -> dict:
    return {**machine(), "threads": parallel.get_num_threads()}


_PATHS: dict = {}


def cache_path() -> Path:
    """The cache file for this machine, BLAS kernel, thread count and cnnkit version (:func:`machine`)."""
    where = (cache_dir(), parallel.get_num_threads())
    if where not in _PATHS:
        digest = hashlib.sha1(json.dumps(_key(), sort_keys=True).encode()).hexdigest()[:16]
        _PATHS[where] = where[0] / f"conv-algorithms-{digest}.json"
    return _PATHS[where]


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, stacklevel=3)


def _read(path: Path) -> dict:
    """The rankings stored at ``path`` (``{}`` when there is none or it is not a cache of this machine)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, ValueError) as exc:
        _warn_once(f"cnnkit: ignoring the convolution algorithm cache {path}: {exc}")
        return {}
    choices = data.get("choices") if isinstance(data, dict) else None
    if data.get("format") != FORMAT or data.get("machine") != _key() or not isinstance(choices, dict):
        _warn_once(f"cnnkit: ignoring the convolution algorithm cache {path}: not a cache of this machine")
        return {}
    return {k: v["ranking"] for k, v in choices.items() if isinstance(v, dict) and isinstance(v.get("ranking"), list)
            and all(isinstance(n, str) for n in v["ranking"])}


def _write(path: Path, entry: str, ranking: list, ms: dict) -> None:
    """Add one entry to the file at ``path``, merged with what another process may have written meanwhile; the
    file is replaced whole (a temporary file renamed over it), so a reader never sees half of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):                       # none yet, or unreadable: start afresh
            data = None
        if not (isinstance(data, dict) and data.get("format") == FORMAT and data.get("machine") == _key()
                and isinstance(data.get("choices"), dict)):
            data = {"format": FORMAT, "machine": _key(), "choices": {}}
        data["choices"][entry] = {"ranking": ranking, "ms": {k: round(v, 4) for k, v in ms.items()}}
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        _warn_once(f"cnnkit: cannot write the convolution algorithm cache {path} ({exc}); choices are kept for "
                   f"this process only")


def entry_key(direction: str, geom: Geometry) -> str:
    return f"{direction} {geom.key()}"


def cached(direction: str, geom: Geometry) -> list | None:
    """The stored ranking of ``direction`` of ``geom`` (names, fastest first), or None (also, inside
    :func:`fresh`, for an entry not measured there)."""
    path, key = cache_path(), entry_key(direction, geom)
    with _lock:
        if path not in _files:
            _files[path] = _read(path)
        if _fresh is not None and (path, key) not in _fresh:
            return None
        return _files[path].get(key)


@contextlib.contextmanager
def fresh():
    """Inside the block every layer configuration is measured again, once (``cnnkit tune --force``); the new
    rankings replace the stored ones."""
    global _fresh
    before, _fresh = _fresh, set()
    try:
        yield
    finally:
        _fresh = before


def _arrays(direction: str, geom: Geometry) -> tuple:
    """Random arrays of ``geom`` for ``direction``: what to time an algorithm on when no call's arrays are at hand
    (:func:`cnnkit.nn.functional.conv.conv2d_path`) or they hold infinities or NaN."""
    rng = np.random.default_rng(0)
    dt = np.dtype(geom.dtype)
    x = rng.standard_normal((geom.n, geom.c) + geom.in_size, dtype=np.float32).astype(dt)
    w = rng.standard_normal((geom.k_out, geom.c // geom.groups) + geom.ksize, dtype=np.float32).astype(dt)
    if direction == FORWARD:
        return x, w, rng.standard_normal(geom.k_out, dtype=np.float32).astype(dt)
    g = rng.standard_normal((geom.n, geom.k_out) + geom.out_size, dtype=np.float32).astype(dt)
    return (g, w) if direction == INPUT_GRAD else (g, x)


def _time(candidates, geom: Geometry, arrays) -> dict:
    """``{name: [seconds of each round's run]}``: one warm-up run each (it compiles or loads the kernels), then rounds
    in alternating order (see :data:`ROUNDS`; a pruned algorithm's list stops after the first round)."""
    for alg in candidates:
        alg.run(geom, *arrays)
    runs = {alg.name: [] for alg in candidates}
    alive, start = list(candidates), time.perf_counter()
    for r in range(MAX_ROUNDS):
        for alg in (alive if r % 2 == 0 else alive[::-1]):
            t0 = time.perf_counter()
            alg.run(geom, *arrays)
            runs[alg.name].append(time.perf_counter() - t0)
        if r == 0:
            best = min(runs[a.name][0] for a in alive)
            alive = [a for a in alive if runs[a.name][0] <= PRUNE * best]
        if r + 1 >= ROUNDS and time.perf_counter() - start >= MEASURE_S:
            break
    return runs


def _beats(a: list, b: list) -> bool:
    """Whether runs ``a`` beat runs ``b`` (round by round): the fastest :data:`MARGIN` faster, and faster in most of
    the rounds both ran."""
    rounds = min(len(a), len(b))
    wins = sum(x < y for x, y in zip(a[:rounds], b[:rounds]))
    return min(a) * (1 + MARGIN) < min(b) and 2 * wins > rounds


def rank(runs: dict, default: str) -> list:
    """Names by their fastest run, those that beat the default order's choice ``default`` (:func:`_beats`) before it,
    the others after it."""
    order = sorted(runs, key=lambda n: min(runs[n]))
    if default not in runs:
        return order
    ahead = [n for n in order if n != default and _beats(runs[n], runs[default])]
    return ahead + [default] + [n for n in order if n != default and n not in ahead]


def choose(direction: str, geom: Geometry, candidates, default, arrays=None) -> list:
    """The ranking of ``candidates`` (algorithms that apply, the default order's choice ``default`` among them) for
    ``direction`` of ``geom``: from the cache, or measured now on ``arrays`` — the call's own, unless an algorithm
    refuses them — and stored."""
    ranking = cached(direction, geom)
    if ranking is not None:
        return ranking
    with _lock:                                             # one measurement at a time, and each only once
        ranking = cached(direction, geom)
        if ranking is not None:
            return ranking
        if arrays is None or any(a.accepts is not None and not a.accepts(*arrays) for a in candidates):
            arrays = _arrays(direction, geom)
        runs = _time(candidates, geom, arrays)
        ranking = rank(runs, default.name)
        ms = {name: 1e3 * min(t) for name, t in runs.items()}
        path, key = cache_path(), entry_key(direction, geom)
        _files.setdefault(path, _read(path))[key] = ranking
        if _fresh is not None:
            _fresh.add((path, key))
        _write(path, key, ranking, ms)
    return ranking
