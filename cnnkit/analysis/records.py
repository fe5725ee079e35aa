"""The numbers of a report: one :class:`LayerRecord` per layer call and a :class:`Summary` holding them.

Printing lives in :mod:`cnnkit.analysis.views`; nothing here formats a table.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

__all__ = ["LayerRecord", "Summary", "COUNTS"]

#: Counting conventions for ``macs`` (see :func:`cnnkit.analysis.summary`).
COUNTS = {
    "default": "multiply-accumulates of convolutions and fully-connected layers, bias excluded "
               "(the convention of torchvision's published GFLOPS; fvcore's 'flops')",
    "lecture": "the lecture's No. MULs: (F·F·D1 + 1)·K·W2·H2 for a convolution and (N_in + 1)·N_out for a "
               "fully-connected layer, the +1 being the bias (none for a layer without bias)",
    "all": "default plus BatchNorm (one multiply-add per element), pooling (one operation per window "
           "element per output) and element-wise joins such as residual additions (one per element)",
}


@dataclass
class LayerRecord:
    """One call of one module. Counts are per image and counted *here*: a container's own row holds
    only what the container does itself (parameters it owns directly, additions it makes), so summing
    any column over all rows never counts a parameter twice; ``subtree_*`` hold the block totals.

    Shapes are per image in PyTorch order ``(C, H, W)``; :attr:`input_volume` and
    :attr:`output_volume` give the lecture's ``W×H×D``.
    """
    name: str
    type: str
    depth: int
    leaf: bool
    input: tuple | None = None
    output: tuple | None = None
    kernel_size: tuple | None = None       # F per axis (H, W)
    stride: tuple | None = None            # S per axis
    padding: tuple | None = None           # P per axis (before; see padding_after)
    padding_after: tuple | None = None
    dilation: tuple | None = None
    groups: int | None = None
    filters: int | None = None             # K (= D2 for a convolution)
    bias: bool | None = None               # the layer has a bias (convolutions, fully-connected layers)
    algorithm: str | None = None           # a convolution's forward algorithm at the batch size, on this machine
    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    activations: int = 0                   # elements of the new tensors this row makes
    receptive_field: tuple | None = None   # per axis, in input pixels
    jump: tuple | None = None              # effective stride, in input pixels
    start: tuple | None = None             # input index of the centre of the first output's field
    unprocessed: tuple | None = None       # input rows/columns per axis no window reaches
    repeat: bool = False                   # module already called: its parameters were counted then
    called: bool = True                    # False: the module has parameters but did not run (e.g. aux heads)
    subtree_params: int = 0
    subtree_macs: int = 0
    subtree_activations: int = 0
    joins: list = field(default_factory=list)  # tensors this row's own code combines: {op, inputs, output}
    notes: list = field(default_factory=list)

    @property
    def frozen_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def flops(self) -> int:
        """Floating-point operations = 2 × MACs (one multiply and one add each)."""
        return 2 * self.macs

    @property
    def input_volume(self) -> str:
        return volume(self.input)

    @property
    def output_volume(self) -> str:
        return volume(self.output)

    @property
    def kernel(self) -> str:
        """The lecture's filter column ``F×F×D/S`` (D = input channels per group; 1 for pooling)."""
        if self.kernel_size is None:
            return ""
        k = "×".join(str(v) for v in reversed(self.kernel_size))
        s = self.stride or ()
        s = str(s[0]) if len(set(s)) == 1 else "×".join(str(v) for v in reversed(s))
        depth = 1
        if self.filters is not None and self.input and self.groups:
            depth = self.input[0] // self.groups
        return f"{k}×{depth}/{s}"

    @property
    def flagged(self) -> bool:
        return bool(self.unprocessed and any(self.unprocessed))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(input_volume=self.input_volume, output_volume=self.output_volume, kernel=self.kernel,
                 frozen_params=self.frozen_params, flops=self.flops)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d


def volume(shape_chw) -> str:
    """``(C, H, W)`` → the lecture's ``W×H×D`` (``L×D`` in 1-D, ``N`` for a flat vector)."""
    if shape_chw is None:
        return ""
    if len(shape_chw) <= 1:
        return "×".join(str(s) for s in shape_chw)
    c, *sp = shape_chw
    return "×".join(str(s) for s in list(reversed(sp)) + [c])


class Summary:
    """The layer-by-layer report of a model: :attr:`layers` (records) and :attr:`total` (a dict).

    Views: ``str(summary)`` (a text table), ``rich`` rendering, HTML in a notebook (``_repr_html_``),
    :meth:`to_dict`, :meth:`to_json`, :meth:`to_csv`, :meth:`to_markdown`. ``summary["features.0"]`` looks a layer up by name.
    """

    def __init__(self, model_name: str, input_size: tuple, layers: list, total: dict, *, batch_size: int,
                 dtype: str, optimizer: str, count: str, depth: int | None = None, traced_batch: int = 0,
                 notes: list | None = None):
        self.model_name = model_name
        self.input_size = tuple(input_size)
        self.layers = layers
        self.total = total
        self.batch_size, self.dtype, self.optimizer, self.count = batch_size, dtype, optimizer, count
        self.depth = depth
        self.traced_batch = traced_batch
        self.notes = list(notes or [])

    # --- access
    def __getitem__(self, name: str) -> LayerRecord:
        for r in self.layers:
            if r.name == name:
                return r
        raise KeyError(f"no layer named {name!r} in the summary of {self.model_name}")

    def __iter__(self):
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def leaves(self) -> list:
        """The rows of layers without children (the lecture's table rows), in call order."""
        return [r for r in self.layers if r.leaf and r.called]

    # --- views
    def to_dict(self) -> dict:
        return {
            "model": self.model_name,
            "input": list(self.input_size),
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "count": self.count,
            "count_convention": COUNTS[self.count],
            "layers": [r.to_dict() for r in self.layers],
            "total": dict(self.total),
            "notes": list(self.notes),
        }

    def to_json(self, path=None, indent: int = 2) -> str:
        """The report as JSON (written atomically to ``path`` if given); returns the text."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False) + "\n"
        _maybe_write(path, text)
        return text

    def to_csv(self, path=None) -> str:
        from .views import to_csv
        text = to_csv(self)
        _maybe_write(path, text)
        return text

    def to_markdown(self, depth: int | None = None, path=None, wide: bool = False) -> str:
        from .views import to_markdown
        text = to_markdown(self, depth=self.depth if depth is None else depth, wide=wide)
        _maybe_write(path, text)
        return text

    def to_text(self, depth: int | None = None, wide: bool = False) -> str:
        """The table as text: the narrow view fits 100 columns; ``wide`` adds input volume, K, trainable and
        frozen counts, FLOPs, activations, jump and start (full layer names instead of the tree)."""
        from .views import to_text
        return to_text(self, depth=self.depth if depth is None else depth, wide=wide)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        t = self.total
        return (f"Summary({self.model_name}, input={self.input_size}, params={t['params']:,}, "
                f"macs={t['macs']:,}, layers={len(self.layers)})")

    def _repr_html_(self) -> str:
        """The table as HTML, for notebooks (Jupyter shows it instead of the repr)."""
        from .views import to_html
        return to_html(self, depth=self.depth)

    def __rich__(self):
        from .views import to_rich
        return to_rich(self, depth=self.depth)


def _maybe_write(path, text: str) -> None:
    if path is not None:
        from ..files import atomic_write
        atomic_write(path, text)
