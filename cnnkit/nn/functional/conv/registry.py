"""The convolution algorithms of each direction, in order, and the one place that picks among them: :func:`select`.

As oneDNN's ``cpu_convolution_list.cpp``: each direction has an ordered list (:data:`ORDER`), each algorithm says
itself whether it applies (:mod:`.algorithm`), and the generic reference (im2col + GEMM) comes last and always
applies. With measurement on (the default, :mod:`.tuning`) the first call of a process that meets a layer
configuration times every algorithm that applies and keeps the fastest, in a cache file per machine; with it off
(``CNNKIT_CONV_MEASURE=0`` or :func:`measure(False) <measure>`), or for layers too small to be worth timing, the
default order decides: the first algorithm in the list that applies and whose ``preferred`` rule takes the layer.
:func:`cnnkit.nn.functional.conv.conv2d_path` reports what :func:`select` decides, so it never disagrees with what
runs.

Switching algorithms off: :func:`disable` / :func:`enable` (a name, or a family: ``"winograd"`` is both of its
layouts, ``"direct"`` both strides), the context manager :func:`switched_off`, or ``CNNKIT_CONV_OFF=winograd,direct``
in the environment (``CNNKIT_WINOGRAD=0`` and ``CNNKIT_DIRECT=0`` still mean the same). ``CNNKIT_JIT=0`` switches off
every compiled algorithm (and every other compiled kernel). The reference cannot be switched off.
"""
from __future__ import annotations

import contextlib
import os
import warnings

import numpy as np

from .... import jit
from . import tuning
from .algorithm import DIRECTIONS, FORWARD, INPUT_GRAD, WEIGHT_GRAD, Algorithm
from .depthwise import FORWARD_DEPTHWISE, INPUT_GRAD_DEPTHWISE, WEIGHT_GRAD_DEPTHWISE
from .depthwise_numpy import FORWARD_DEPTHWISE_NUMPY, INPUT_GRAD_DEPTHWISE_NUMPY, WEIGHT_GRAD_DEPTHWISE_NUMPY
from .direct import FORWARD_DIRECT, INPUT_GRAD_DIRECT, WEIGHT_GRAD_DIRECT
from .direct_stride2 import FORWARD_DIRECT_STRIDE2, INPUT_GRAD_DIRECT_STRIDE2, WEIGHT_GRAD_DIRECT_STRIDE2
from .geometry import Geometry
from .gemm import FORWARD_GEMM, INPUT_GRAD_GEMM, WEIGHT_GRAD_GEMM, exact_input_grad, exact_weight_grad
from .pointwise import FORWARD_POINTWISE, WEIGHT_GRAD_POINTWISE
from .row_shifted import FORWARD_ROW_SHIFTED
from .transposed import INPUT_GRAD_TRANSPOSED
from .winograd import FORWARD_WINOGRAD
from .winograd_images import FORWARD_WINOGRAD_IMAGES

__all__ = ["ORDER", "algorithms", "select", "run", "disable", "enable", "disabled", "switched_off", "reference"]

#: Each direction's algorithms in the default order; the last of each list is the reference and always applies.
ORDER = {
    FORWARD: (FORWARD_DEPTHWISE, FORWARD_DEPTHWISE_NUMPY, FORWARD_DIRECT, FORWARD_DIRECT_STRIDE2, FORWARD_WINOGRAD,
              FORWARD_WINOGRAD_IMAGES, FORWARD_ROW_SHIFTED, FORWARD_POINTWISE, FORWARD_GEMM),
    INPUT_GRAD: (INPUT_GRAD_DEPTHWISE, INPUT_GRAD_DEPTHWISE_NUMPY, INPUT_GRAD_DIRECT, INPUT_GRAD_DIRECT_STRIDE2,
                 INPUT_GRAD_TRANSPOSED, INPUT_GRAD_GEMM),
    WEIGHT_GRAD: (WEIGHT_GRAD_DEPTHWISE, WEIGHT_GRAD_DEPTHWISE_NUMPY, WEIGHT_GRAD_DIRECT, WEIGHT_GRAD_DIRECT_STRIDE2,
                  WEIGHT_GRAD_POINTWISE, WEIGHT_GRAD_GEMM),
}


def algorithms(direction: str) -> tuple:
    """``direction``'s algorithms (``"forward"``, ``"input_grad"``, ``"weight_grad"``) in the default order."""
    if direction not in ORDER:
        raise ValueError(f"conv algorithms: direction must be one of {DIRECTIONS}, got {direction!r}")
    return ORDER[direction]


def reference(direction: str) -> Algorithm:
    """The always-applicable im2col + GEMM algorithm of ``direction``."""
    return algorithms(direction)[-1]


def _known() -> set:
    return {a.name for algs in ORDER.values() for a in algs} | {a.family for algs in ORDER.values() for a in algs}


def _check_names(names, caller: str) -> set:
    names = {n.strip() for n in names if n.strip()}
    unknown = names - _known()
    if unknown:
        raise ValueError(f"{caller}: unknown convolution algorithm {', '.join(sorted(unknown))!r}; known: "
                         f"{', '.join(sorted(_known() - {'gemm'}))}")
    if "gemm" in names:
        raise ValueError(f"{caller}: 'gemm' is the reference algorithm and cannot be switched off")
    return names


def _from_environment() -> set:
    names = set((os.environ.get("CNNKIT_CONV_OFF") or "").replace(" ", ",").split(","))
    for family in ("direct", "winograd"):                   # the earlier switches, one per family
        if os.environ.get(f"CNNKIT_{family.upper()}", "1") in ("0", "false", "False", ""):
            names.add(family)
    try:
        return _check_names(names, "CNNKIT_CONV_OFF")
    except ValueError as exc:                               # a mistyped environment must not break every import
        warnings.warn(f"{exc} (ignored)", stacklevel=2)
        return {n for n in names if n in _known() and n != "gemm"}


_disabled: set = _from_environment()


def disable(*names: str) -> None:
    """Switch the algorithms (or families) ``names`` off in every direction, e.g. ``disable("winograd")``."""
    _disabled.update(_check_names(names, "disable"))


def enable(*names: str) -> None:
    """Switch the algorithms (or families) ``names`` back on (``enable()`` with no name: all of them)."""
    if not names:
        _disabled.clear()
    else:
        _disabled.difference_update(_check_names(names, "enable"))


def disabled() -> frozenset:
    """The names switched off now."""
    return frozenset(_disabled)


@contextlib.contextmanager
def switched_off(*names: str):
    """``with switched_off("winograd"): ...`` — the algorithms ``names`` off inside the block, as before after it."""
    before = set(_disabled)
    disable(*names)
    try:
        yield
    finally:
        _disabled.clear()
        _disabled.update(before)


def usable(alg: Algorithm, geom: Geometry, load: bool = True) -> bool:
    """Whether ``alg`` is switched on and can compute ``geom`` (a compiled one: Numba imports, checked last, as
    importing it costs about 150 MB; ``load=False``: Numba is installed)."""
    return (alg.name not in _disabled and alg.family not in _disabled and alg.applies(geom)
            and (not alg.compiled or (jit.available() if load else jit.installed())))


def default(direction: str, geom: Geometry, skip=(), load: bool = True) -> Algorithm:
    """The default order's choice: the first algorithm that applies and whose ``preferred`` rule takes ``geom``
    (none of ``skip``). ``load=False``: a compiled one is taken if Numba is installed, without importing it."""
    compiled = jit.available if load else jit.installed
    for alg in algorithms(direction)[:-1]:
        if (alg not in skip and alg.name not in _disabled and alg.family not in _disabled and alg.applies(geom)
                and alg.preferred(geom) and (not alg.compiled or compiled())):
            return alg
    return reference(direction)


def select(direction: str, geom: Geometry, arrays=None, measure_now: bool = True) -> Algorithm:
    """The algorithm that computes ``direction`` of ``geom``: the reference for an empty batch; with measurement on
    (:func:`.tuning.measure`) and a layer worth it (:data:`.tuning.MEASURE_MIN_MACS`), the fastest one that is
    switched on in the cache's ranking, measured now on ``arrays`` (or random arrays) if the cache has none — with
    ``measure_now=False`` the default order's choice then (a report that must not compute, nor load Numba); else the
    default order's choice (:func:`default`)."""
    if geom.n == 0:
        return reference(direction)
    first = default(direction, geom, load=measure_now)
    if not tuning.measure() or geom.macs < tuning.MEASURE_MIN_MACS:
        return first
    if not measure_now:
        ranking = tuning.cached(direction, geom) or ()
        by_name = {alg.name: alg for alg in algorithms(direction)}
        return next((by_name[n] for n in ranking if n in by_name and usable(by_name[n], geom, load=False)), first)
    candidates = [alg for alg in algorithms(direction) if usable(alg, geom)]
    if len(candidates) == 1:
        return first
    ranking = tuning.choose(direction, geom, candidates, first, arrays)
    by_name = {alg.name: alg for alg in candidates}
    return next((by_name[name] for name in ranking if name in by_name), first)


def run(direction: str, geom: Geometry, *arrays):
    """``direction`` of ``geom`` on ``arrays`` (see :mod:`.algorithm`) by the selected algorithm; where it refuses the
    data (``accepts``), by the default order's next choice that takes it. Gradients where infinities or NaN meet a
    stride-1 frame come from the exact reference (:func:`.gemm.exact_weight_grad`): a weight gradient that comes
    out non-finite is computed again so (it is small: the check costs nothing), and so is an input gradient of
    non-finite weights."""
    if direction == INPUT_GRAD and not np.isfinite(np.sum(arrays[1])):
        return exact_input_grad(geom, *arrays)
    alg = select(direction, geom, arrays)
    skip = []
    while alg.accepts is not None and not alg.accepts(*arrays):
        skip.append(alg)
        alg = default(direction, geom, skip)
    out = alg.run(geom, *arrays)
    if direction == WEIGHT_GRAD and not np.isfinite(out).all():
        return exact_weight_grad(geom, *arrays)
    return out
