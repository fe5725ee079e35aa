"""Small networks built twice — from cnnkit.nn and from torch.nn — for the analysis tests.

The torch twin is the independent reference: real forward shapes, parameter counts
(``sum(p.numel())``) and receptive fields measured from input gradients.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

import cnnkit
from cnnkit import nn


def lenet5_lecture():
    """The lecture's LeNet-5 table: C1 … Output, C3 fully connected, FC + softmax head (61,706 params)."""
    return nn.Sequential(OrderedDict(
        C1=nn.Conv2d(1, 6, 5), a1=nn.Tanh(), S2=nn.AvgPool2d(2),
        C3=nn.Conv2d(6, 16, 5), a3=nn.Tanh(), S4=nn.AvgPool2d(2),
        C5=nn.Conv2d(16, 120, 5), a5=nn.Tanh(), flat=nn.Flatten(),
        F6=nn.Linear(120, 84), a6=nn.Tanh(), Output=nn.Linear(84, 10)))


# --- a layer list both frameworks can build: ("conv", cin, cout, k, s, p, d, groups) / ("avg", k, s, p)
def build_chain(spec, framework):
    tnn = torch.nn
    layers = []
    for item in spec:
        kind, *a = item
        if kind == "conv":
            cin, cout, k, s, p, d, g = a
            layers.append((nn if framework == "cnnkit" else tnn).Conv2d(cin, cout, k, stride=s, padding=p,
                                                                         dilation=d, groups=g))
        elif kind == "avg":
            k, s, p = a
            layers.append((nn if framework == "cnnkit" else tnn).AvgPool2d(k, stride=s, padding=p))
        elif kind == "max":
            k, s, p = a
            layers.append((nn if framework == "cnnkit" else tnn).MaxPool2d(k, stride=s, padding=p))
        elif kind == "bn":
            layers.append((nn if framework == "cnnkit" else tnn).BatchNorm2d(a[0]))
        elif kind == "relu":
            layers.append((nn if framework == "cnnkit" else tnn).ReLU())
        else:
            raise ValueError(kind)
    return (nn.Sequential if framework == "cnnkit" else tnn.Sequential)(*layers)


def positive_weights_(torch_model):
    """Weights 1/fan-in and zero biases: every input pixel in a field reaches the output."""
    with torch.no_grad():
        for m in torch_model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
    return torch_model


def measured_field(torch_model, input_size, out_index=None):
    """(rf, centre) per axis (H, W) of output position ``out_index`` (default: the middle one),
    from the non-zero extent of the input gradient."""
    torch_model = positive_weights_(torch_model).double().eval()
    x = torch.ones((1,) + tuple(input_size), dtype=torch.float64, requires_grad=True)
    y = torch_model(x)
    h, w = y.shape[-2:]
    i, j = out_index if out_index is not None else (h // 2, w // 2)
    y[0, :, i, j].sum().backward()
    g = x.grad[0].abs().sum(0).numpy()
    rows, cols = np.nonzero(g.sum(1))[0], np.nonzero(g.sum(0))[0]
    return ((rows.max() - rows.min() + 1, cols.max() - cols.min() + 1),
            ((rows.max() + rows.min()) / 2, (cols.max() + cols.min()) / 2), (i, j))


class InceptionLike(nn.Module):
    """Four branches concatenated: 1×1 | 1×1→3×3 | 1×1→5×5 | 3×3 max pool→1×1 (Inception v1 shape)."""

    def __init__(self, cin, c1, r3, c3, r5, c5, cp):
        super().__init__()
        self.branch1 = nn.Conv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(nn.Conv2d(cin, r3, 1), nn.Conv2d(r3, c3, 3, padding=1))
        self.branch3 = nn.Sequential(nn.Conv2d(cin, r5, 1), nn.Conv2d(r5, c5, 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(cin, cp, 1))

    def forward(self, x):
        return cnnkit.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TorchInceptionLike(torch.nn.Module):
    def __init__(self, cin, c1, r3, c3, r5, c5, cp, pool="max"):
        super().__init__()
        t = torch.nn
        self.branch1 = t.Conv2d(cin, c1, 1)
        self.branch2 = t.Sequential(t.Conv2d(cin, r3, 1), t.Conv2d(r3, c3, 3, padding=1))
        self.branch3 = t.Sequential(t.Conv2d(cin, r5, 1), t.Conv2d(r5, c5, 5, padding=2))
        pool_layer = t.MaxPool2d(3, stride=1, padding=1) if pool == "max" else t.AvgPool2d(3, stride=1, padding=1)
        self.branch4 = t.Sequential(pool_layer, t.Conv2d(cin, cp, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class Residual(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` — a ResNet basic block."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class TorchResidual(torch.nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        t = torch.nn
        self.conv1 = t.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = t.BatchNorm2d(cout)
        self.relu = t.ReLU()
        self.conv2 = t.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = t.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = t.Sequential(t.Conv2d(cin, cout, 1, stride=stride, bias=False), t.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def real_output_shapes(model, input_size, batch=2):
    """Per-image output shape of every module call of a real cnnkit forward pass (dotted name → shapes)."""
    names = {id(m): n for n, m in model.named_modules()}
    seen = {}
    handles = [m.register_forward_hook(
        lambda mod, args, out: seen.setdefault(names[id(mod)], []).append(tuple(out.shape[1:])))
        for m in model.modules() if isinstance(m, nn.Module)]
    was = model.training
    model.eval()
    try:
        with cnnkit.no_grad():
            model(cnnkit.randn(batch, *input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return seen
