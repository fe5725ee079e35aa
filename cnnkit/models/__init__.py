"""The model zoo: well-known CNNs as ``cnnkit.nn`` modules, with torchvision's attribute names.

``cnnkit.models.create(name, **kwargs)`` builds a model by name, ``names()`` lists them, every
builder is importable (``cnnkit.models.resnet18(num_classes=10)``), ``default_input_size(name)``
gives its ``(C, H, W)`` input. Each model carries ``model.config = {"name": ..., "kwargs": {...}}``
(the builder and the arguments it was called with) so a checkpoint can rebuild it with
``cnnkit.models.rebuild(config)`` before loading the weights by key.

Also: :func:`from_pattern` (the lecture's ``INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> …`` notation),
:func:`fc_to_conv` (FC layers to equivalent convolutions), and the blocks the models are made of
(:class:`InceptionBlock`, :class:`DepthwiseSeparableConv`, :class:`BasicBlock`, :class:`Bottleneck`).

Named pre-trained weights (:mod:`cnnkit.models.weights`, declared beside each model):
``create("resnet18", weights="DEFAULT")``, :func:`get_weights`, :func:`list_weights`.
"""
from .registry import canonical_name, create, default_input_size, names, rebuild, register_model
from .weights import Weights, get_weights, list_weights, register_weights
from .blocks import (BasicBlock, BasicConv2d, Bottleneck, DepthwiseSeparableConv, InceptionBlock,
                     ShortcutA)
from .lenet import ConnectionTableConv2d, LeNet5, lenet5
from .alexnet import AlexNet, alexnet
from .vgg import VGG, vgg11, vgg11_bn, vgg11_lrn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg16_c, vgg19, vgg19_bn
from .googlenet import GoogLeNet, InceptionAux, googlenet
from .mobilenet import MobileNetV1, Xception, XceptionBlock, mobilenet_v1, xception
from .resnet import (CifarResNet, ResNet, resnet18, resnet20, resnet32, resnet34, resnet44, resnet50,
                     resnet56, resnet101, resnet110, resnet152)
from .pattern import PatternNet, from_pattern
from .convert import fc_to_conv

__all__ = [
    "create", "names", "canonical_name", "default_input_size", "rebuild", "register_model", "from_pattern",
    "fc_to_conv", "Weights", "get_weights", "list_weights", "register_weights",
    "BasicBlock", "BasicConv2d", "Bottleneck", "DepthwiseSeparableConv", "InceptionBlock", "ShortcutA",
    "ConnectionTableConv2d", "InceptionAux", "XceptionBlock", "PatternNet",
    "LeNet5", "AlexNet", "VGG", "GoogLeNet", "MobileNetV1", "Xception", "ResNet", "CifarResNet",
    *names(),
]
