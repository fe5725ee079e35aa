"""Reusable blocks of the model zoo, each a ``Module`` made only of ``cnnkit.nn`` layers.

* :class:`BasicConv2d` — conv → (BatchNorm) → ReLU, torchvision's GoogLeNet unit.
* :class:`InceptionBlock` — GoogLeNet's four-branch module (1×1 | 1×1→3×3 | 1×1→5×5 | pool→1×1).
* :class:`DepthwiseSeparableConv` — depthwise F×F conv then pointwise 1×1 (MobileNet, Xception).
* :class:`BasicBlock` / :class:`Bottleneck` — ResNet's residual blocks (torchvision's names).
* :class:`ShortcutA` — ResNet's parameter-free shortcut for CIFAR (subsample, zero-pad channels).
"""
from __future__ import annotations

from .. import nn
from ..nn import functional as F
from ..nn.fusion import conv_bn, conv_bn_relu, foldable, residual_relu, run_in_order
from ..tensor import cat

__all__ = ["activation", "BasicConv2d", "InceptionBlock", "DepthwiseSeparableConv", "BasicBlock",
           "Bottleneck", "ShortcutA"]

_ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")


def activation(name: str, owner: str = "model"):
    """The activation module for ``name``: ``'relu'``, ``'tanh'``, ``'sigmoid'`` or ``'leaky_relu'``."""
    if not isinstance(name, str) or name.lower() not in _ACTIVATIONS:
        raise ValueError(f"{owner}: activation must be one of {', '.join(map(repr, _ACTIVATIONS))}, "
                         f"got activation={name!r}")
    name = name.lower()
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    return nn.LeakyReLU()


class BasicConv2d(nn.Module):
    """Convolution → BatchNorm → ReLU (torchvision's GoogLeNet unit), or convolution (with bias) → ReLU.

    Args:
        in_channels (int): input channels D1.
        out_channels (int): filters K.
        batch_norm (bool): ``True`` (default): bias-free conv, ``bn = BatchNorm2d(K, eps=0.001)`` as
            torchvision; ``False``: conv with bias, as in the GoogLeNet paper.
        **kwargs: ``kernel_size``, ``stride``, ``padding`` … passed to :class:`cnnkit.nn.Conv2d`.

    Shape:
        Input ``(N, D1, H, W)`` → output ``(N, K, H2, W2)`` with the convolution's floor formula.

    Example::

        >>> block = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)   # keys conv.*, bn.*
    """

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=not batch_norm, **kwargs)
        if batch_norm:
            self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        if "bn" in self._modules:
            return conv_bn_relu(self.conv, self.bn, self.relu, x)
        return self.relu(self.conv(x))


class InceptionBlock(nn.Module):
    """The Inception module of GoogLeNet: four parallel branches concatenated along channels.

    ``branch1`` 1×1 conv; ``branch2`` 1×1 reduce → 3×3; ``branch3`` 1×1 reduce → 5×5 (3×3 in
    torchvision's version, kept for weight compatibility); ``branch4`` 3×3/1 max pool → 1×1 "pool
    projection". The 1×1 reductions are the bottlenecks that cut the 5×5 branch on 28×28×192 from
    153,600 to 15,872 weights.

    Args:
        in_channels (int): input channels D1.
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj (int): the columns of the paper's Table 1.
        batch_norm (bool): use :class:`BasicConv2d` with BatchNorm (torchvision) or conv+bias+ReLU (paper).
        branch3_kernel (int): 5 (paper) or 3 (torchvision).

    Shape:
        Input ``(N, D1, H, W)`` → output ``(N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.

    Example::

        >>> block = InceptionBlock(192, 64, 96, 128, 16, 32, 32)   # inception (3a): 28×28×192 → 28×28×256
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, batch_norm: bool = False, branch3_kernel: int = 5):
        super().__init__()
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        bn = batch_norm
        self.branch1 = BasicConv2d(in_channels, ch1x1, bn, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, bn, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, bn, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, bn, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, bn, kernel_size=branch3_kernel,
                                                 padding=branch3_kernel // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, bn, kernel_size=1))

    def forward(self, x):
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)  # (N, C, H, W)


class DepthwiseSeparableConv(nn.Module):
    """Depthwise convolution (one F×F filter per channel, ``groups = D1``) then a pointwise 1×1.

    Parameters ``F·F·D1 + D1·K`` instead of ``F·F·D1·K`` (the lecture's 26 vs 72 for 3×3, 2 → 4).

    Args:
        in_channels (int): D1. out_channels (int): K.
        kernel_size (int): F of the depthwise filter (default 3). stride (int): on the depthwise conv.
        padding (int, optional): default ``dilation·(F−1)//2`` ("same" at stride 1).
        dilation (int): of the depthwise conv. bias (bool): conv biases (default ``False``).
        batch_norm (bool): BatchNorm after the pointwise conv (``bn2``) and, with ``intermediate``,
            after the depthwise conv (``bn1``).
        activation (str or None): activation after the pointwise conv (``act2``) and, with
            ``intermediate``, after the depthwise conv (``act1``); ``None`` for none.
        intermediate (bool): ``True`` (MobileNet): depthwise → BN → act → pointwise → BN → act.
            ``False`` (Xception's SeparableConv2d): depthwise → pointwise → BN (→ act).

    Shape:
        Input ``(N, D1, H, W)`` → ``(N, K, H2, W2)``, ``H2 = floor((H + 2P − d·(F−1) − 1)/S) + 1``.

    Example::

        >>> block = DepthwiseSeparableConv(32, 64)   # MobileNet's first block
        >>> list(block.state_dict())[:2]
        ['depthwise.weight', 'bn1.weight']
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, dilation: int = 1, bias: bool = False, batch_norm: bool = True,
                 activation: str | None = "relu", intermediate: bool = True):
        super().__init__()
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                                   dilation=dilation, groups=in_channels, bias=bias)
        if intermediate:
            if batch_norm:
                self.bn1 = nn.BatchNorm2d(in_channels)
            if activation is not None:
                self.act1 = _act(activation)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
        if batch_norm:
            self.bn2 = nn.BatchNorm2d(out_channels)
        if activation is not None:
            self.act2 = _act(activation)

    def forward(self, x):
        return run_in_order(self._modules.values(), x)  # each conv + batch norm folded in inference


def _act(name):
    return activation(name, owner="DepthwiseSeparableConv")


def _conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 convs with BatchNorm, plus the shortcut, then ReLU.

    ``out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``, ``shortcut`` being ``downsample``
    when given (a 1×1 conv + BN, or :class:`ShortcutA`) and the identity otherwise. Keys follow
    torchvision: ``conv1, bn1, conv2, bn2, downsample.0, downsample.1``.

    Args:
        inplanes (int): input channels. planes (int): output channels (``expansion = 1``).
        stride (int): of ``conv1`` (2 where the block halves the size).
        downsample (Module, optional): the shortcut when the shape changes.

    Shape:
        Input ``(N, inplanes, H, W)`` → ``(N, planes, floor((H − 1)/S) + 1, …)``.

    Example::

        >>> block = BasicBlock(64, 64)
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        if downsample is not None:
            self.downsample = downsample
        self.relu2 = nn.ReLU(inplace=True)
        self.stride = stride

    def forward(self, x):
        out = conv_bn_relu(self.conv1, self.bn1, self.relu1, x)
        own = foldable(self.conv2, self.bn2, out)          # then the next output is this block's alone
        out = conv_bn(self.conv2, self.bn2, out)
        identity = self.downsample(x) if "downsample" in self._modules else x
        return residual_relu(out, identity, self.relu2, own)


class Bottleneck(nn.Module):
    """ResNet's bottleneck block: 1×1 reduce → 3×3 → 1×1 expand (×4), with BatchNorm, plus shortcut.

    Keys follow torchvision: ``conv1, bn1, conv2, bn2, conv3, bn3, downsample.0, downsample.1``.

    Args:
        inplanes (int): input channels. planes (int): width of the 3×3 conv; output is ``4·planes``.
        stride (int): 2 where the block halves the size.
        downsample (Module, optional): the shortcut when the shape changes.
        stride_in_1x1 (bool): ``False`` (ResNet v1.5, torchvision): the stride is on the 3×3 conv;
            ``True`` (the paper's v1): on the first 1×1 conv. Same parameters, fewer MACs for v1.

    Shape:
        Input ``(N, inplanes, H, W)`` → ``(N, 4·planes, floor((H − 1)/S) + 1, …)``.

    Example::

        >>> block = Bottleneck(256, 64)
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None, stride_in_1x1: bool = False):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, s3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        if downsample is not None:
            self.downsample = downsample
        self.relu3 = nn.ReLU(inplace=True)
        self.stride = stride

    def forward(self, x):
        out = conv_bn_relu(self.conv1, self.bn1, self.relu1, x)
        out = conv_bn_relu(self.conv2, self.bn2, self.relu2, out)
        own = foldable(self.conv3, self.bn3, out)
        out = conv_bn(self.conv3, self.bn3, out)
        identity = self.downsample(x) if "downsample" in self._modules else x
        return residual_relu(out, identity, self.relu3, own)


class ShortcutA(nn.Module):
    """ResNet's option-A shortcut (paper §4.2, CIFAR): subsample by ``stride``, zero-pad the channels.

    No parameters: ``x[:, :, ::S, ::S]`` with ``(out − in)`` zero channels split before and after,
    as in the widely used CIFAR reimplementation.

    Shape:
        Input ``(N, in_channels, H, W)`` → ``(N, out_channels, floor((H − 1)/S) + 1, floor((W − 1)/S) + 1)``.

    Example::

        >>> shortcut = ShortcutA(16, 32, stride=2)
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"ShortcutA: out_channels ({out_channels}) must be >= in_channels ({in_channels})")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"

    def forward(self, x):
        s = self.stride
        x = x[:, :, ::s, ::s]                                            # (N, Cin, Ho, Wo)
        extra = self.out_channels - self.in_channels
        if extra == 0:
            return x
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))    # (N, Cout, Ho, Wo)
