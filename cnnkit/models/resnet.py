"""ResNets (He et al. 2015): ImageNet ResNet-18/34/50/101/152 and CIFAR-10 ResNet-20/32/44/56/110.

ImageNet models use torchvision's names (``conv1, bn1, relu, maxpool, layer1 … layer4, avgpool, fc``;
blocks ``conv1, bn1, conv2, bn2[, conv3, bn3], downsample.0, downsample.1``), so torchvision's state
dicts load by key. Parameters: 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808.
``variant="v1.5"`` (default, torchvision) puts a bottleneck's stride on its 3×3 conv; ``"v1"`` (the
paper) on its first 1×1 conv — same parameters, fewer MACs (ResNet-50: 3.86 G vs 4.09 G at 224).

CIFAR models follow the paper's §4.2: a 3×3 conv with 16 filters, then 3 stages of ``n`` basic
blocks with 16, 32, 64 filters on 32×32, 16×16, 8×8 maps (6n + 2 weight layers), global average
pool and a 10-way FC. Shortcuts where the shape changes are option A: subsample and zero-pad the
channels, no parameters (:class:`ShortcutA`); ``shortcut="B"`` uses 1×1 conv + BN projections.
Parameters (option A): 269,722 / 464,154 / 658,586 / 853,018 / 1,727,962 (paper: 0.27M, 0.46M,
0.66M, 0.85M, 1.7M).
"""
from __future__ import annotations

from .. import nn
from ..nn.fusion import run_in_order
from .blocks import BasicBlock, Bottleneck, ShortcutA
from .registry import register_model
from .weights import torchvision_weights

__all__ = ["ResNet", "CifarResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]


def _projection(inplanes, outplanes, stride):
    return nn.Sequential(nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False), nn.BatchNorm2d(outplanes))


class ResNet(nn.Module):
    """ImageNet ResNet: 7×7/2 conv, 3×3/2 max pool, four stages of residual blocks, average pool, FC.

    Args:
        block (type): :class:`BasicBlock` or :class:`Bottleneck`.
        layers (sequence of 4 ints): blocks per stage (ResNet-50: ``(3, 4, 6, 3)``).
        num_classes (int): outputs (default 1000). in_channels (int): default 3.
        variant (str): ``'v1.5'`` (default) or ``'v1'`` (stride on the bottleneck's first 1×1 conv).

    Shape:
        ``(N, 3, H, W)`` → ``(N, num_classes)``; 224 → 112 → 56 → 56, 28, 14, 7 (stages) → 1×1. Any
        input ≥ 1×1 runs (global pooling).

    Example::

        >>> model = cnnkit.models.resnet50(variant="v1")
    """

    def __init__(self, block, layers, num_classes: int = 1000, in_channels: int = 3, variant: str = "v1.5"):
        super().__init__()
        if variant not in ("v1", "v1.5"):
            raise ValueError(f"resnet: variant must be 'v1' or 'v1.5', got variant={variant!r}")
        self.variant = variant
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)  # 224 → 112×112×64
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)                          # → 56×56×64
        self.layer1 = self._make_layer(block, 64, layers[0])                        # → 56×56×(64·e)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)             # → 28×28×(128·e)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)             # → 14×14×(256·e)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)             # → 7×7×(512·e)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        out = planes * block.expansion
        downsample = _projection(self.inplanes, out, stride) if stride != 1 or self.inplanes != out else None
        extra = {"stride_in_1x1": self.variant == "v1"} if block is Bottleneck else {}
        layers = [block(self.inplanes, planes, stride, downsample, **extra)]
        self.inplanes = out
        layers += [block(out, planes, **extra) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        return run_in_order(self._modules.values(), x)  # each conv + batch norm folded in inference


class CifarResNet(nn.Module):
    """CIFAR-10 ResNet of depth ``6n + 2`` (paper §4.2): 16-32-64 filters, option-A shortcuts.

    Args:
        depth (int): 20, 32, 44, 56, 110 (any ``6n + 2``).
        num_classes (int): default 10. in_channels (int): default 3.
        shortcut (str): ``'A'`` (default; zero-padding, parameter-free) or ``'B'`` (1×1 conv + BN
            projection where the shape changes).

    Shape:
        ``(N, 3, 32, 32)`` → 32×32×16 → 16×16×32 → 8×8×64 → ``(N, num_classes)``. Any input ≥ 1×1 runs.

    Example::

        >>> model = cnnkit.models.resnet20()   # 269,722 parameters
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 3, shortcut: str = "A"):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CifarResNet: depth must be 6n + 2 (20, 32, 44, 56, 110 …), got depth={depth!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be 'A' or 'B', got shortcut={shortcut!r}")
        n = (depth - 2) // 6
        self.shortcut = shortcut
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)            # → 32×32×16
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = 16
        self.layer1 = self._make_layer(16, n)                                       # → 32×32×16
        self.layer2 = self._make_layer(32, n, stride=2)                             # → 16×16×32
        self.layer3 = self._make_layer(64, n, stride=2)                             # → 8×8×64
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = (ShortcutA(self.inplanes, planes, stride) if self.shortcut == "A"
                          else _projection(self.inplanes, planes, stride))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        return run_in_order(self._modules.values(), x)  # each conv + batch norm folded in inference


def _imagenet(name, block, layers):
    def build(num_classes: int = 1000, variant: str = "v1.5", in_channels: int = 3) -> ResNet:
        return ResNet(block, layers, num_classes, in_channels, variant)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = (f"ResNet-{name[6:]} ({block.__name__}, blocks {tuple(layers)}), torchvision's keys; "
                     "see :class:`ResNet`.")
    return register_model(name)(build)


def _cifar(name, depth):
    def build(num_classes: int = 10, shortcut: str = "A", in_channels: int = 3) -> CifarResNet:
        return CifarResNet(depth, num_classes, in_channels, shortcut)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"CIFAR-10 ResNet-{depth} (paper §4.2, option-A shortcuts); see :class:`CifarResNet`."
    return register_model(name, input_size=(3, 32, 32))(build)


resnet18 = _imagenet("resnet18", BasicBlock, (2, 2, 2, 2))
resnet34 = _imagenet("resnet34", BasicBlock, (3, 4, 6, 3))
resnet50 = _imagenet("resnet50", Bottleneck, (3, 4, 6, 3))
resnet101 = _imagenet("resnet101", Bottleneck, (3, 4, 23, 3))
resnet152 = _imagenet("resnet152", Bottleneck, (3, 8, 36, 3))
resnet20 = _cifar("resnet20", 20)
resnet32 = _cifar("resnet32", 32)
resnet44 = _cifar("resnet44", 44)
resnet56 = _cifar("resnet56", 56)
resnet110 = _cifar("resnet110", 110)

# torchvision's ImageNet-1k weights (cnnkit.models.weights) as torchvision publishes them: per depth the
# parameters, the MACs in G ("GFLOPS"), and each file's hash (in its name) with (acc@1, acc@5); V2 (a later
# recipe, evaluated at resize 232) is the default where there is one. tests/models/test_weights.py checks them.
for _depth, _params, _gmacs, _v1, _v2 in (
        (18, 11_689_512, 1.814, ("f37072fd", 69.758, 89.078), None),
        (34, 21_797_672, 3.664, ("b627a593", 73.314, 91.42), None),
        (50, 25_557_032, 4.089, ("0676ba61", 76.13, 92.862), ("11ad3fa6", 80.858, 95.434)),
        (101, 44_549_160, 7.801, ("63fe2227", 77.374, 93.546), ("cd907fc2", 81.886, 95.78)),
        (152, 60_192_808, 11.514, ("394f9c45", 78.312, 94.046), ("f82ba261", 82.284, 96.002))):
    torchvision_weights(f"resnet{_depth}", f"ResNet{_depth}_Weights.IMAGENET1K_V1", f"resnet{_depth}-{_v1[0]}.pth",
                        _params, _gmacs, _v1[1:])
    if _v2:
        torchvision_weights(f"resnet{_depth}", f"ResNet{_depth}_Weights.IMAGENET1K_V2",
                            f"resnet{_depth}-{_v2[0]}.pth", _params, _gmacs, _v2[1:], resize_size=232, default=True)
