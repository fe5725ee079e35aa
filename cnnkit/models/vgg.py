"""VGG configurations A, A-LRN, B, C, D, E (Simonyan & Zisserman 2014, Table 1).

Keys follow torchvision (``features.N``, ``avgpool``, ``classifier.N``), so ``vgg11/13/16/19`` with
either ``batch_norm`` load torchvision's state dicts. torchvision has no A-LRN (``vgg11_lrn``:
LRN after the first conv's ReLU) and no C (``vgg16_c``: the last conv of blocks 3–5 is 1×1).

Parameters (``batch_norm=False``): A 132,863,336; A-LRN the same; B 133,047,848; C 133,638,952;
D 138,357,544; E 143,667,240 (the paper's 133, 133, 133, 134, 138, 144 million).
Every conv is 3×3/1 "same" (padding 1; the C 1×1s padding 0); every max pool 2×2/2.
``avgpool = AdaptiveAvgPool2d(7)`` (identity at 224×224) lets any input ≥ 32×32 through.
"""
from __future__ import annotations

from .. import nn
from ..nn.fusion import run_in_order
from .registry import register_model
from .weights import torchvision_weights

__all__ = ["VGG", "CONFIGS", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19",
           "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

# An int is a 3×3 conv with that many filters, "1:N" a 1×1 conv with N, "M" a 2×2/2 max pool,
# "LRN" a local response normalisation.
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, "1:256", "M", 512, 512, "1:512", "M", 512, 512, "1:512", "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_layers(config, batch_norm: bool = False, in_channels: int = 3) -> "nn.Sequential":
    """torchvision's ``make_layers``: conv (→ BatchNorm) → ReLU per entry, max pools between blocks."""
    layers = []
    c = in_channels
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
        elif v == "LRN":
            # As in AlexNet (which the VGG paper cites): k=2, n=5, α=1e-4 (×5 in PyTorch's convention).
            layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
        else:
            k, out = (1, int(v[2:])) if isinstance(v, str) else (3, v)
            layers.append(nn.Conv2d(c, out, k, padding=k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            c = out
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG network: ``features`` (conv blocks) → ``avgpool`` (7×7) → ``classifier`` (FC 4096-4096-K).

    Args:
        config (str): ``'A'``, ``'A-LRN'``, ``'B'``, ``'C'``, ``'D'`` or ``'E'``.
        num_classes (int): outputs (default 1000).
        batch_norm (bool): BatchNorm after every conv (torchvision's ``vgg*_bn``).
        dropout (float): dropout before FC7 and FC8 (default 0.5).

    Shape:
        ``(N, 3, H, W)`` with ``H, W >= 32`` → ``(N, num_classes)``; at 224×224 the blocks give
        224×224×64, 112×112×128, 56×56×256, 28×28×512, 14×14×512 and 7×7×512 after the last pool.

    Example::

        >>> model = cnnkit.models.vgg16()   # 138,357,544 parameters
    """

    def __init__(self, config: str = "D", num_classes: int = 1000, batch_norm: bool = False, dropout: float = 0.5):
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"VGG: config must be one of {', '.join(CONFIGS)}, got config={config!r}")
        self.features = make_layers(CONFIGS[config], batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return run_in_order(self._modules.values(), x)  # each conv + batch norm folded in inference


def _builder(name, config, doc, bn_default=False):
    def build(num_classes: int = 1000, batch_norm: bool = bn_default, dropout: float = 0.5) -> VGG:
        return VGG(config, num_classes, batch_norm, dropout)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"VGG configuration {config} ({doc}), batch_norm={bn_default} by default. "
                     "See :class:`VGG`.")
    return register_model(name)(build)


vgg11 = _builder("vgg11", "A", "11 weight layers")
vgg11_lrn = _builder("vgg11_lrn", "A-LRN", "11 weight layers with LRN after the first")
vgg13 = _builder("vgg13", "B", "13 weight layers")
vgg16_c = _builder("vgg16_c", "C", "16 weight layers, 1×1 convs at the end of blocks 3–5")
vgg16 = _builder("vgg16", "D", "16 weight layers")
vgg19 = _builder("vgg19", "E", "19 weight layers")
# torchvision's names for the BatchNorm versions.
vgg11_bn = _builder("vgg11_bn", "A", "11 weight layers", True)
vgg13_bn = _builder("vgg13_bn", "B", "13 weight layers", True)
vgg16_bn = _builder("vgg16_bn", "D", "16 weight layers", True)
vgg19_bn = _builder("vgg19_bn", "E", "19 weight layers", True)

# torchvision's ImageNet-1k weights (cnnkit.models.weights) as torchvision publishes them: per configuration
# the MACs in G ("GFLOPS", the same with batch norm), and for the plain and the batch-norm network the file's
# hash (in its name), the parameters and (acc@1, acc@5). tests/models/test_weights.py checks them.
for _depth, _gmacs, _plain, _bn in (
        (11, 7.609, ("8a719046", 132_863_336, 69.02, 88.628), ("6002323d", 132_868_840, 70.37, 89.81)),
        (13, 11.308, ("19584684", 133_047_848, 69.928, 89.246), ("abd245e5", 133_053_736, 71.586, 90.374)),
        (16, 15.47, ("397923af", 138_357_544, 71.592, 90.382), ("6c64b313", 138_365_992, 73.36, 91.516)),
        (19, 19.632, ("dcbb9e9d", 143_667_240, 72.376, 90.876), ("c79401a0", 143_678_248, 74.218, 91.842))):
    for _suffix, (_hash, _params, *_accuracy) in (("", _plain), ("_bn", _bn)):
        torchvision_weights(f"vgg{_depth}{_suffix}", f"VGG{_depth}{_suffix.upper()}_Weights.IMAGENET1K_V1",
                            f"vgg{_depth}{_suffix}-{_hash}.pth", _params, _gmacs, tuple(_accuracy))
