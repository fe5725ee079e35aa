"""What a convolution algorithm is: one direction's implementation that says itself whether it applies.

As in oneDNN's implementation lists and cuDNN's algorithm enums, each direction of a convolution has its own
algorithms:

- ``forward``: ``run(geom, x, w, b) → y`` — input ``(N, C, *in)``, weight ``(K, C/g, *k)``, bias ``(K,)`` or None;
- ``input_grad``: ``run(geom, g, w) → dX`` — the output gradient ``(N, K, *out)``;
- ``weight_grad``: ``run(geom, g, x) → dW`` — ``(K, C/g, *k)``.

All arrays are NumPy arrays of ``geom.dtype`` (the op converts them); ``run`` never keeps a reference to a work
buffer in what it returns. ``applies(geom)`` says whether the algorithm can compute this geometry at all (the
candidates that measurement times, :mod:`.tuning`); ``preferred(geom)`` is the rule by which the default order
(:mod:`.registry`, no measurement) takes it — limits measured on one machine, each documented beside its constant;
``accepts(*arrays)``, if given, looks at the data at call time (Winograd refuses infinities and NaN: its transforms
would spread them over a tile), and a call it refuses takes the next algorithm in the default order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .geometry import Geometry

__all__ = ["Algorithm", "FORWARD", "INPUT_GRAD", "WEIGHT_GRAD", "DIRECTIONS"]

FORWARD, INPUT_GRAD, WEIGHT_GRAD = "forward", "input_grad", "weight_grad"
DIRECTIONS = (FORWARD, INPUT_GRAD, WEIGHT_GRAD)


def _always(geom: Geometry) -> bool:
    return True


@dataclass(frozen=True, eq=False)
class Algorithm:
    """One implementation of one direction (see the module docstring).

    ``name`` is unique within its direction; ``family`` names the algorithms switched off together
    (``disable("winograd")`` switches off both of Winograd's layouts); ``compiled`` marks the ones that need Numba.
    """
    name: str
    direction: str
    run: Callable = field(repr=False)
    applies: Callable[[Geometry], bool] = field(default=_always, repr=False)
    preferred: Callable[[Geometry], bool] = field(default=_always, repr=False)
    accepts: Callable | None = field(default=None, repr=False)
    family: str = ""
    compiled: bool = False

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"Algorithm {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if not self.family:
            object.__setattr__(self, "family", self.name)
