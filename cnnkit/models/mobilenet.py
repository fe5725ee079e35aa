"""MobileNet v1 (Howard et al. 2017) and Xception (Chollet 2017): networks of depthwise-separable convs.

Neither is in torchvision; the names are chosen for reading:

* ``mobilenet_v1``: ``features.0`` (``conv``, ``bn``, ``relu``: 3×3/2 conv, 32 filters), ``features.1
  … features.13`` (:class:`DepthwiseSeparableConv`: ``depthwise``, ``bn1``, ``act1``, ``pointwise``,
  ``bn2``, ``act2``), ``avgpool``, ``flatten``, ``fc``. At α = 1 and 224×224: 4,231,976 parameters
  (BatchNorm γ/β included; "4.2M") and 568.7M mult-adds ("569M"). The paper's Table 1 lists the
  depthwise layer on 7×7×1024 as stride 2; it must be stride 1 (7×7 stays 7×7), as here.
* ``xception``: entry flow (``conv1, bn1, relu1, conv2, bn2, relu2``, ``block1 … block3``), middle
  flow (``block4 … block11``), exit flow (``block12``, ``conv3, bn3, relu3, conv4, bn4, relu4``),
  ``avgpool``, ``flatten``, ``fc``. Each block is ``rep`` (ReLU → separable conv → BatchNorm …, max
  pool 3×3/2 where it downsamples) plus ``skip``/``skipbn`` (1×1/2 conv + BN) or the identity.
  299×299 input; 22,855,952 parameters (BatchNorm γ/β included; "22.9M").
"""
from __future__ import annotations

from .. import nn
from ..nn.fusion import conv_bn, conv_bn_relu, run_in_order
from .blocks import DepthwiseSeparableConv
from .registry import register_model

__all__ = ["MobileNetV1", "Xception", "XceptionBlock", "MOBILENET_V1_BLOCKS", "mobilenet_v1", "xception"]

# (output channels, stride) of the 13 depthwise-separable blocks of Table 1 (last stride corrected to 1).
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class _ConvBNReLU(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        return conv_bn_relu(self.conv, self.bn, self.relu, x)


class MobileNetV1(nn.Module):
    """MobileNet v1: a 3×3/2 conv then 13 depthwise-separable blocks, global average pool, FC.

    Args:
        num_classes (int): outputs (default 1000).
        alpha (float): width multiplier: every layer has ``int(channels·alpha)`` channels
            (paper: 1.0, 0.75, 0.5, 0.25).
        in_channels (int): input channels (default 3).

    Shape:
        ``(N, 3, H, W)`` → ``(N, num_classes)``; 224×224 → 112 → … → 7×7×1024 → 1×1×1024. Any input
        ≥ 1×1 runs (global pooling).

    Example::

        >>> model = cnnkit.models.mobilenet_v1(alpha=0.5)
    """

    def __init__(self, num_classes: int = 1000, alpha: float = 1.0, in_channels: int = 3):
        super().__init__()
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or alpha <= 0:
            raise ValueError(f"mobilenet_v1: alpha must be a positive number, got alpha={alpha!r}")
        width = lambda c: max(1, int(c * alpha))  # noqa: E731
        layers = [_ConvBNReLU(in_channels, width(32), 3, stride=2, padding=1)]     # 224 → 112×112×32
        c = width(32)
        for out, stride in MOBILENET_V1_BLOCKS:
            layers.append(DepthwiseSeparableConv(c, width(out), stride=stride))
            c = width(out)
        self.features = nn.Sequential(*layers)                                     # → 7×7×1024
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return run_in_order(self._modules.values(), x)  # each conv + batch norm folded in inference


def _sep(in_channels, out_channels):
    # Xception's SeparableConv2d + BatchNorm: depthwise 3×3 → pointwise 1×1 → BN, no activation between.
    return DepthwiseSeparableConv(in_channels, out_channels, intermediate=False, activation=None)


class XceptionBlock(nn.Module):
    """An Xception block: ``reps`` × (ReLU → separable conv → BN), max pool 3×3/2 if ``stride`` 2, plus shortcut.

    Args:
        in_channels, out_channels (int). reps (int): separable convs in the block.
        stride (int): 1 (identity shortcut) or 2 (max pool, and a 1×1/2 conv + BN shortcut).
        start_with_relu (bool): ``False`` for the first block (it follows a ReLU already).
        grow_first (bool): change the channel count in the first separable conv (else in the last).

    Shape:
        ``(N, in_channels, H, W)`` → ``(N, out_channels, floor((H − 1)/S) + 1, …)``.
    """

    def __init__(self, in_channels: int, out_channels: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True):
        super().__init__()
        layers, c = [], in_channels
        for i in range(reps):
            out = out_channels if (grow_first and i == 0) or (not grow_first and i == reps - 1) else c
            if i > 0 or start_with_relu:
                layers.append(nn.ReLU())
            layers.append(_sep(c, out))
            c = out
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride=stride, padding=1))
        self.rep = nn.Sequential(*layers)
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        shortcut = conv_bn(self.skip, self.skipbn, x) if "skip" in self._modules else x
        return self.rep(x) + shortcut


class Xception(nn.Module):
    """Xception: entry flow, 8 middle-flow blocks, exit flow, global average pool, FC.

    Args:
        num_classes (int): outputs (default 1000). in_channels (int): default 3.

    Shape:
        ``(N, 3, 299, 299)`` → 149 → 147 → 74 → 37 → 19 → 10×10×2048 → ``(N, num_classes)``. Any input
        ≥ 5×5 runs (global pooling).

    Example::

        >>> model = cnnkit.models.xception(num_classes=10)
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, stride=2, bias=False)          # 299 → 149×149×32
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)                              # → 147×147×64
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU()
        self.block1 = XceptionBlock(64, 128, 2, 2, start_with_relu=False)          # → 74×74×128
        self.block2 = XceptionBlock(128, 256, 2, 2)                                # → 37×37×256
        self.block3 = XceptionBlock(256, 728, 2, 2)                                # → 19×19×728
        for i in range(4, 12):                                                     # middle flow ×8
            setattr(self, f"block{i}", XceptionBlock(728, 728, 3, 1))
        self.block12 = XceptionBlock(728, 1024, 2, 2, grow_first=False)            # → 10×10×1024
        self.conv3 = DepthwiseSeparableConv(1024, 1536, intermediate=False, batch_norm=False, activation=None)
        self.bn3 = nn.BatchNorm2d(1536)
        self.relu3 = nn.ReLU()
        self.conv4 = DepthwiseSeparableConv(1536, 2048, intermediate=False, batch_norm=False, activation=None)
        self.bn4 = nn.BatchNorm2d(2048)
        self.relu4 = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        return run_in_order(self._modules.values(), x)  # each conv + batch norm folded in inference


@register_model(input_size=(3, 224, 224))
def mobilenet_v1(num_classes: int = 1000, alpha: float = 1.0, in_channels: int = 3) -> MobileNetV1:
    """MobileNet v1 with width multiplier ``alpha`` (4,231,976 parameters at 1.0); see :class:`MobileNetV1`."""
    return MobileNetV1(num_classes, alpha, in_channels)


@register_model(input_size=(3, 299, 299))
def xception(num_classes: int = 1000, in_channels: int = 3) -> Xception:
    """Xception (22,855,952 parameters); see :class:`Xception`."""
    return Xception(num_classes, in_channels)
