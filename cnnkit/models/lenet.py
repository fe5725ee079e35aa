"""LeNet-5 as in the lecture's table (LeCun et al. 1998), with the optional C3 connection table.

Layer names follow the paper: ``c1, s2, c3, s4, c5, f6, output`` (plus ``act1, act3, act5, act6``
and ``flatten``, which hold no parameters). State-dict keys: ``c1.weight``, ``c1.bias``, ``c3.weight``
… ``output.bias``; with ``c3_table=True`` C3's keys are ``c3.convs.0.weight`` … ``c3.convs.15.bias``.

==========  ==========  ========  =============  ==========  =======
layer       input       filters   kernel K×K×D/S output      params
==========  ==========  ========  =============  ==========  =======
C1 conv     32×32×1     6         5×5×1 /1       28×28×6     156
S2 pool     28×28×6               2×2 /2         14×14×6     0
C3 conv     14×14×6     16        5×5×6 /1       10×10×16    2,416 (1,516 with the table)
S4 pool     10×10×16              2×2 /2         5×5×16      0
C5 conv     5×5×16      120       5×5×16 /1      1×1×120     48,120
F6 FC       120                                  84          10,164
Output FC   84                                   10          850
==========  ==========  ========  =============  ==========  =======

Total 61,706 parameters (60,806 with the table). The 1998 output layer is Euclidean RBF units;
here, as in the lecture, it is a fully-connected layer whose logits feed a softmax (in the loss).
"""
from __future__ import annotations

from .. import nn
from ..tensor import cat
from .blocks import activation as _activation
from .registry import register_model

__all__ = ["LeNet5", "ConnectionTableConv2d", "LECUN_C3_TABLE", "lenet5"]

# LeCun et al. 1998, Table I: the S2 maps each C3 map reads. Maps 0-5 read 3 contiguous maps,
# 6-11 read 4 contiguous, 12-14 read 4 non-contiguous, 15 reads all 6.
LECUN_C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class ConnectionTableConv2d(nn.Module):
    """A convolution whose output map ``j`` reads only the input maps ``table[j]``.

    Built as one single-filter :class:`cnnkit.nn.Conv2d` per output map (``convs.j``), so the
    parameter count is exactly ``Σ_j (F·F·|table[j]| + 1)`` — 1,516 for LeNet-5's C3 — and the
    forward pass is the exact partially connected convolution.

    Args:
        in_channels (int): D1. table (sequence of sequences of int): input maps of each output map.
        kernel_size (int): F. stride, padding: as for ``Conv2d``.

    Shape:
        Input ``(N, D1, H, W)`` → ``(N, len(table), H2, W2)``, ``H2 = floor((H + 2P − F)/S) + 1``.

    Example::

        >>> c3 = ConnectionTableConv2d(6, LECUN_C3_TABLE, 5)   # 14×14×6 → 10×10×16, 1,516 parameters
    """

    def __init__(self, in_channels: int, table, kernel_size, stride=1, padding=0, bias: bool = True):
        super().__init__()
        table = tuple(tuple(int(i) for i in row) for row in table)
        for j, row in enumerate(table):
            if not row or any(i < 0 or i >= in_channels for i in row) or len(set(row)) != len(row):
                raise ValueError(f"ConnectionTableConv2d: table[{j}] = {row} must list distinct input maps "
                                 f"in 0..{in_channels - 1}")
        self.in_channels, self.out_channels, self.table = in_channels, len(table), table
        self.convs = nn.ModuleList(nn.Conv2d(len(row), 1, kernel_size, stride=stride, padding=padding, bias=bias)
                                   for row in table)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, table={len(self.table)} rows"

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ConnectionTableConv2d({self.in_channels}, {self.out_channels}): expected input "
                             f"(N, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        return cat([conv(x[:, list(row)]) for conv, row in zip(self.convs, self.table)], 1)  # (N, K, Ho, Wo)


class LeNet5(nn.Module):
    """LeNet-5: C1 → S2 → C3 → S4 → C5 → F6 → output, the lecture's 61,706-parameter network.

    Args:
        num_classes (int): outputs of the last layer (default 10).
        in_channels (int): input channels (default 1, grey-scale 32×32 digits).
        activation (str): ``'relu'`` (default, as commonly taught) or ``'tanh'`` (as in 1998), also
            ``'sigmoid'``; applied after C1, C3, C5 and F6.
        pooling (str): ``'max'`` (default) or ``'avg'`` (closest to 1998's subsampling, whose
            trainable coefficient and bias the lecture's table leaves out) for S2 and S4.
        c3_table (bool): ``True`` uses LeCun's partial connection table for C3 (1,516 parameters
            instead of 2,416).

    Shape:
        Input ``(N, in_channels, 32, 32)`` → ``(N, num_classes)``. F6 needs C5's output to be 1×1×120,
        which the floor formula gives for 32×32 up to 35×35; for larger images use
        :func:`fc_to_conv` to slide the network over them.

    Example::

        >>> model = cnnkit.models.lenet5(activation="tanh", pooling="avg", c3_table=True)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, activation: str = "relu",
                 pooling: str = "max", c3_table: bool = False):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"lenet5: pooling must be 'max' or 'avg', got pooling={pooling!r}")
        pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
        act = lambda: _activation(activation, owner="lenet5")  # noqa: E731
        self.c1 = nn.Conv2d(in_channels, 6, 5)               # 32×32×1 → 28×28×6
        self.act1 = act()
        self.s2 = pool(2, stride=2)                          # → 14×14×6
        self.c3 = ConnectionTableConv2d(6, LECUN_C3_TABLE, 5) if c3_table else nn.Conv2d(6, 16, 5)  # → 10×10×16
        self.act3 = act()
        self.s4 = pool(2, stride=2)                          # → 5×5×16
        self.c5 = nn.Conv2d(16, 120, 5)                      # → 1×1×120
        self.act5 = act()
        self.flatten = nn.Flatten()                          # → 120
        self.f6 = nn.Linear(120, 84)
        self.act6 = act()
        self.output = nn.Linear(84, num_classes)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


@register_model(input_size=(1, 32, 32))
def lenet5(num_classes: int = 10, in_channels: int = 1, activation: str = "relu", pooling: str = "max",
           c3_table: bool = False) -> LeNet5:
    """LeNet-5 as in the lecture's table (61,706 parameters); see :class:`LeNet5`."""
    return LeNet5(num_classes, in_channels, activation, pooling, c3_table)
