"""GoogLeNet (Inception v1, Szegedy et al. 2014) as in the paper's Table 1, and torchvision's version.

Attribute names follow torchvision (``conv1, maxpool1, conv2, conv3, maxpool2, inception3a …
inception5b, aux1, aux2, avgpool, dropout, fc``; inside a block ``branch1 … branch4``; a conv unit
is ``conv`` (+ ``bn``)). ``conv2`` is the 1×1 "3×3 reduce" (64) and ``conv3`` the 3×3 (192) of the
table's second convolution row.

* ``variant="paper"`` (default): convolutions with biases and ReLU, no BatchNorm, 5×5 convs in the
  third branch, LRN after ``maxpool1`` and after ``conv3`` (Figure 3; Caffe's size 5, α=1e-4,
  β=0.75), every max pool 3×3/2 with ``ceil_mode`` (224 → 112 → 56 → 28 → 14 → 7 as in the table),
  average pool (7×7/1 at 224; adaptive here so any input ≥ 15×15 runs), dropout 40 %, linear.
  Aux heads (``aux_logits=True``): 5×5/3 average pool → 1×1 conv 128 → FC 1024 → dropout 70 % → FC.
* ``variant="torchvision"``: BasicConv2d (conv without bias + BatchNorm eps 0.001 + ReLU), 3×3
  where the paper has 5×5 (torchvision keeps it for weight compatibility), no LRN, ``maxpool4`` 2×2/2,
  dropout 0.2, aux heads with adaptive 4×4 pooling: 6,624,904 parameters without aux heads.

In training mode with ``aux_logits=True`` the forward returns ``GoogLeNetOutputs(logits,
aux_logits2, aux_logits1)`` (torchvision's order); otherwise the logits alone.
"""
from __future__ import annotations

from collections import namedtuple

from .. import nn
from ..nn.fusion import run_in_order
from .blocks import BasicConv2d, InceptionBlock
from .registry import register_model
from .weights import torchvision_weights

__all__ = ["GoogLeNet", "InceptionAux", "GoogLeNetOutputs", "INCEPTION_TABLE", "googlenet"]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])

# Table 1: in_channels, #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
INCEPTION_TABLE = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class InceptionAux(nn.Module):
    """An auxiliary classifier on (4a) or (4d): pool to 4×4 → 1×1 conv 128 → FC 1024 → dropout → FC.

    Args:
        in_channels (int): 512 (on 4a) or 528 (on 4d). num_classes (int).
        batch_norm (bool): BatchNorm in the 1×1 conv unit (torchvision).
        adaptive (bool): ``AdaptiveAvgPool2d(4)`` (torchvision) or the paper's ``AvgPool2d(5, stride=3)``.
        dropout (float): 0.7 in both.

    Shape:
        ``(N, in_channels, 14, 14)`` → ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int, num_classes: int, batch_norm: bool = False, adaptive: bool = False,
                 dropout: float = 0.7):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4)) if adaptive else nn.AvgPool2d(5, stride=3)  # → 4×4
        self.conv = BasicConv2d(in_channels, 128, batch_norm, kernel_size=1)
        self.flatten = nn.Flatten()                                                       # → 2048
        self.fc1 = nn.Linear(2048, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        return run_in_order(self._modules.values(), x)  # each conv + batch norm folded in inference


class GoogLeNet(nn.Module):
    """GoogLeNet; see the module docstring for the two variants.

    Args:
        num_classes (int): outputs (default 1000).
        aux_logits (bool): build the two auxiliary heads (default ``False``).
        variant (str): ``'paper'`` (default) or ``'torchvision'``.
        dropout (float, optional): before ``fc``; default 0.4 (paper) or 0.2 (torchvision).
        dropout_aux (float): in the aux heads (default 0.7).

    Shape:
        ``(N, 3, H, W)`` → ``(N, num_classes)``; 224×224 gives the table's sizes (112, 56, 28, 14, 7).

    Example::

        >>> model = cnnkit.models.googlenet(aux_logits=True)
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False, variant: str = "paper",
                 dropout: float | None = None, dropout_aux: float = 0.7):
        super().__init__()
        if variant not in ("paper", "torchvision"):
            raise ValueError(f"googlenet: variant must be 'paper' or 'torchvision', got variant={variant!r}")
        tv = variant == "torchvision"
        if dropout is None:
            dropout = 0.2 if tv else 0.4
        self.variant, self.aux_logits = variant, aux_logits
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # noqa: E731
        pool = lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True)  # noqa: E731

        def inception(key):
            return InceptionBlock(*INCEPTION_TABLE[key], batch_norm=tv, branch3_kernel=3 if tv else 5)

        self.conv1 = BasicConv2d(3, 64, tv, kernel_size=7, stride=2, padding=3)   # 224 → 112×112×64
        self.maxpool1 = pool()                                                     # → 56×56×64
        if not tv:
            self.lrn1 = lrn()
        self.conv2 = BasicConv2d(64, 64, tv, kernel_size=1)                        # → 56×56×64
        self.conv3 = BasicConv2d(64, 192, tv, kernel_size=3, padding=1)            # → 56×56×192
        if not tv:
            self.lrn2 = lrn()
        self.maxpool2 = pool()                                                     # → 28×28×192
        self.inception3a = inception("3a")                                         # → 28×28×256
        self.inception3b = inception("3b")                                         # → 28×28×480
        self.maxpool3 = pool()                                                     # → 14×14×480
        self.inception4a = inception("4a")                                         # → 14×14×512
        self.inception4b = inception("4b")
        self.inception4c = inception("4c")
        self.inception4d = inception("4d")                                         # → 14×14×528
        self.inception4e = inception("4e")                                         # → 14×14×832
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True) if tv else pool()  # → 7×7×832
        self.inception5a = inception("5a")
        self.inception5b = inception("5b")                                         # → 7×7×1024
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, tv, adaptive=tv, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, tv, adaptive=tv, dropout=dropout_aux)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))                                # → 1×1×1024
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        m = self._modules
        for name in ("conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2", "inception3a",
                     "inception3b", "maxpool3", "inception4a"):
            if name in m:
                x = m[name](x)
        aux = self.aux_logits and self.training
        aux1 = self.aux1(x) if aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if aux else None
        for name in ("inception4e", "maxpool4", "inception5a", "inception5b", "avgpool", "flatten", "dropout", "fc"):
            x = m[name](x)
        return GoogLeNetOutputs(x, aux2, aux1) if aux else x


@register_model(input_size=(3, 224, 224))
def googlenet(num_classes: int = 1000, aux_logits: bool = False, variant: str = "paper",
              dropout: float | None = None, dropout_aux: float = 0.7) -> GoogLeNet:
    """GoogLeNet (Inception v1) as in the paper, or ``variant="torchvision"``; see :class:`GoogLeNet`."""
    return GoogLeNet(num_classes, aux_logits, variant, dropout, dropout_aux)

# torchvision's ImageNet-1k weights (cnnkit.models.weights): file, parameters, MACs in G ("GFLOPS") and
# (acc@1, acc@5) as torchvision publishes them; tests/models/test_weights.py checks them against this model.
# torchvision builds the pre-trained GoogLeNet with transform_input=True, which turns an ImageNet-normalised
# input into (x - 0.5)/0.5: the weights expect mean = std = 0.5. The file's aux1/aux2 heads are dropped unless
# the model has aux_logits=True.
torchvision_weights("googlenet", "GoogLeNet_Weights.IMAGENET1K_V1", "googlenet-1378be20.pth", 6_624_904, 1.498,
                    (69.778, 89.53), model_kwargs={"variant": "torchvision"}, mean=(0.5, 0.5, 0.5),
                    std=(0.5, 0.5, 0.5), ignore_prefixes=("aux1.", "aux2."),
                    note="torchvision's transform_input: normalise with mean = std = 0.5; the file's aux1/aux2 "
                         "heads are dropped unless the model has aux_logits=True")
