"""The layer-by-layer report and the lecture's derivations.

* :func:`summary` — per-layer volumes, parameters, MACs, receptive field and memory, computed from
  shapes alone (a zero-size batch), returned as records with text/rich/JSON/CSV/Markdown views.
* :func:`explain` — the formulas of each layer with the numbers substituted, as the lecture writes them.
* :func:`compare` — the lecture's comparisons: a 7×7 conv vs stacked 3×3, the Inception bottleneck,
  regular vs depthwise-separable convolution (and zoo models side by side).
"""
from .records import COUNTS, LayerRecord, Summary
from .summary import summary
from .explain import explain  # noqa: E402  (the function shadows its module's name, as intended)

__all__ = ["summary", "Summary", "LayerRecord", "COUNTS", "explain", "compare", "Comparison"]


def __getattr__(name):
    if name in ("compare", "Comparison"):
        from .compare import Comparison, compare
        globals().update(compare=compare, Comparison=Comparison)
        return globals()[name]
    raise AttributeError(f"module 'cnnkit.analysis' has no attribute {name!r}")
