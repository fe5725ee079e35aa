"""Every zoo model against an equivalent PyTorch model built here from torch.nn (torchvision's key
names where torchvision has the model): the torch state dict (random weights, BatchNorm with
non-trivial running statistics) loads through ``load_torch_state_dict``, both give the same logits
within 1e-4 in eval mode, and the round trip back to PyTorch is exact.

The twins of torchvision's models (AlexNet, VGG A/B/D/E, ResNet, GoogLeNet) and of LeNet-5 and
the CIFAR ResNet come from ``tests/models/torch_ref.py``; the others (original AlexNet with LRN and
grouped convs, VGG A-LRN and C, the paper's GoogLeNet, MobileNet v1, Xception, ResNet v1, CIFAR
shortcut B) are written below from the papers. Variants whose code a sibling's values already exercise
compare state-dict keys and shapes only (see CASES).
"""
import numpy as np
import pytest
import torch
from torch import nn

import cnnkit
import cnnkit.models as M
from cnnkit.io.torch_weights import load_torch_state_dict, save_torch_state_dict

from tests.models import torch_ref as T
from tests.models.conftest import no_init  # noqa: F401  (fixture)


# ----------------------------------------------------------------------------- twins not in torch_ref
class AlexNetOriginal(nn.Module):
    """Krizhevsky et al. 2012: 96-256-384-384-256 filters, LRN (k=2, n=5, α=1e-4, β=0.75), two towers."""

    def __init__(self, num_classes=1000):
        super().__init__()
        lrn = lambda: nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)  # noqa: E731  (PyTorch: α/n)
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


# Simonyan & Zisserman, Table 1: A-LRN (LRN after the first layer) and C (1×1 convs closing blocks 3-5).
VGG_EXTRA = {
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (1, 256), "M", 512, 512, (1, 512), "M", 512, 512, (1, 512), "M"],
}


class VGGExtra(T.VGG):
    def __init__(self, cfg, num_classes=1000):
        super().__init__("A", num_classes=num_classes)
        layers, c = [], 3
        for v in VGG_EXTRA[cfg]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            elif v == "LRN":
                layers.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
            else:
                k, out = v if isinstance(v, tuple) else (3, v)
                layers += [nn.Conv2d(c, out, k, padding=k // 2), nn.ReLU(True)]
                c = out
        self.features = nn.Sequential(*layers)


class ConvReLU(nn.Module):
    """The GoogLeNet paper's unit: convolution with bias, ReLU (keys ``conv.*``)."""

    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, **kw)

    def forward(self, x):
        return torch.relu(self.conv(x))


class InceptionPaper(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.branch1 = ConvReLU(cin, c1, kernel_size=1)
        self.branch2 = nn.Sequential(ConvReLU(cin, c3r, kernel_size=1), ConvReLU(c3r, c3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(ConvReLU(cin, c5r, kernel_size=1), ConvReLU(c5r, c5, kernel_size=5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), ConvReLU(cin, pp, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNetPaper(nn.Module):
    """Szegedy et al. 2014, Table 1 and Figure 3: biases, LRN, 5×5 branches, 3×3/2 ceil pools, dropout 0.4."""

    TABLE = [("3a", 192, 64, 96, 128, 16, 32, 32), ("3b", 256, 128, 128, 192, 32, 96, 64),
             ("4a", 480, 192, 96, 208, 16, 48, 64), ("4b", 512, 160, 112, 224, 24, 64, 64),
             ("4c", 512, 128, 128, 256, 24, 64, 64), ("4d", 512, 112, 144, 288, 32, 64, 64),
             ("4e", 528, 256, 160, 320, 32, 128, 128), ("5a", 832, 256, 160, 320, 32, 128, 128),
             ("5b", 832, 384, 192, 384, 48, 128, 128)]

    def __init__(self, num_classes=1000):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.conv1 = ConvReLU(3, 64, kernel_size=7, stride=2, padding=3)
        self.pool1, self.lrn1 = pool(), nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
        self.conv2 = ConvReLU(64, 64, kernel_size=1)
        self.conv3 = ConvReLU(64, 192, kernel_size=3, padding=1)
        self.lrn2, self.pool2 = nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0), pool()
        for key, *args in self.TABLE:
            setattr(self, f"inception{key}", InceptionPaper(*args))
        self.pool3, self.pool4 = pool(), pool()
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.lrn1(self.pool1(self.conv1(x)))
        x = self.pool2(self.lrn2(self.conv3(self.conv2(x))))
        x = self.pool3(self.inception3b(self.inception3a(x)))
        for k in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(self, f"inception{k}")(x)
        x = self.inception5b(self.inception5a(self.pool4(x)))
        return self.fc(self.dropout(torch.flatten(x.mean((2, 3)), 1)))


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()


class DWSeparable(nn.Module):
    """depthwise 3×3 (groups = C) → BN → ReLU → pointwise 1×1 → BN → ReLU (MobileNet v1)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn2(self.pointwise(torch.relu(self.bn1(self.depthwise(x))))))


class MobileNetV1(nn.Module):
    """Howard et al. 2017, Table 1 (the last depthwise layer at stride 1)."""

    BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        layers, c = [ConvBNReLU(3, 32, 2)], 32
        for out, s in self.BLOCKS:
            layers.append(DWSeparable(c, out, s))
            c = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


class SepConv(nn.Module):
    """Xception's SeparableConv2d: depthwise 3×3 → pointwise 1×1 (no activation between), then BN."""

    def __init__(self, cin, cout, bn=True):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout) if bn else None

    def forward(self, x):
        x = self.pointwise(self.depthwise(x))
        return self.bn2(x) if self.bn2 is not None else x


class XceptionBlock(nn.Module):
    def __init__(self, cin, cout, reps, stride=1, start_with_relu=True, grow_first=True):
        super().__init__()
        rep, c = [], cin
        for i in range(reps):
            out = cout if (grow_first and i == 0) or (not grow_first and i == reps - 1) else c
            rep += [nn.ReLU(), SepConv(c, out)]
            c = out
        if not start_with_relu:
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)
        self.skip = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None
        self.skipbn = nn.BatchNorm2d(cout) if self.skip is not None else None

    def forward(self, x):
        return self.rep(x) + (self.skipbn(self.skip(x)) if self.skip is not None else x)


class Xception(nn.Module):
    """Chollet 2017, Figure 5: entry flow, 8 middle-flow blocks, exit flow."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 32, 3, 2, bias=False), nn.BatchNorm2d(32)
        self.conv2, self.bn2 = nn.Conv2d(32, 64, 3, bias=False), nn.BatchNorm2d(64)
        self.block1 = XceptionBlock(64, 128, 2, 2, start_with_relu=False)
        self.block2 = XceptionBlock(128, 256, 2, 2)
        self.block3 = XceptionBlock(256, 728, 2, 2)
        for i in range(4, 12):
            setattr(self, f"block{i}", XceptionBlock(728, 728, 3, 1))
        self.block12 = XceptionBlock(728, 1024, 2, 2, grow_first=False)
        self.conv3, self.bn3 = SepConv(1024, 1536, bn=False), nn.BatchNorm2d(1536)
        self.conv4, self.bn4 = SepConv(1536, 2048, bn=False), nn.BatchNorm2d(2048)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        for i in range(1, 13):
            x = getattr(self, f"block{i}")(x)
        x = torch.relu(self.bn4(self.conv4(torch.relu(self.bn3(self.conv3(x))))))
        return self.fc(x.mean((2, 3)))


class BottleneckV1(T.Bottleneck):
    """ResNet v1 (the paper): the stride on the first 1×1 conv instead of the 3×3."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__(inplanes, planes, stride, downsample)
        self.conv1 = T.conv1x1(inplanes, planes, stride)
        self.conv2 = T.conv3x3(planes, planes)


class CifarResNetB(T.CifarResNet):
    """CIFAR ResNet with option-B shortcuts (1×1 conv + BN projection where the shape changes)."""

    def _make_layer(self, planes, n, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [T.BasicBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        layers += [T.BasicBlock(planes, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)


def _resnet(block, layers):
    return lambda: T.ResNet(block, layers, num_classes=10)


# ----------------------------------------------------------------------------- the cases
# id: (zoo name, zoo kwargs, torch twin, input (C, H, W) or None for keys-and-shapes only, batch, slow)
# Values where a model has code of its own; keys and shapes where a sibling's values cover the code
# (tests/models/test_torch_compat.py also compares the logits of torchvision's AlexNet, VGG-16,
# ResNet-50 and GoogLeNet).
CASES = {
    "lenet5": ("lenet5", {}, lambda: T.LeNet5(), (1, 32, 32), 4, False),
    "lenet5-tanh-avg": ("lenet5", dict(activation="tanh", pooling="avg"),
                        lambda: T.LeNet5(act=nn.Tanh, pool=nn.AvgPool2d), (1, 32, 32), 4, False),
    "alexnet": ("alexnet", dict(num_classes=10), lambda: AlexNetOriginal(10), (3, 227, 227), 1, True),
    "alexnet-torchvision": ("alexnet", dict(variant="torchvision"), lambda: T.AlexNet(), None, 1, False),
    "googlenet": ("googlenet", dict(num_classes=10), lambda: GoogLeNetPaper(10), (3, 64, 64), 1, False),
    "googlenet-torchvision-aux": ("googlenet", dict(variant="torchvision", aux_logits=True),
                                  lambda: T.GoogLeNet(aux_logits=True), None, 1, False),
    "mobilenet_v1": ("mobilenet_v1", dict(num_classes=10), lambda: MobileNetV1(10), (3, 32, 32), 2, False),
    "xception": ("xception", dict(num_classes=10), lambda: Xception(10), (3, 32, 32), 1, False),
    "resnet18": ("resnet18", dict(num_classes=10), _resnet(T.BasicBlock, [2, 2, 2, 2]), (3, 16, 16), 2, False),
    "resnet34": ("resnet34", {}, lambda: T.ResNet(T.BasicBlock, [3, 4, 6, 3]), None, 1, False),
    "resnet50": ("resnet50", {}, lambda: T.ResNet(T.Bottleneck, [3, 4, 6, 3]), None, 1, False),
    "resnet50-v1": ("resnet50", dict(variant="v1", num_classes=10), _resnet(BottleneckV1, [3, 4, 6, 3]),
                    (3, 32, 32), 1, False),
    "resnet101": ("resnet101", {}, lambda: T.ResNet(T.Bottleneck, [3, 4, 23, 3]), None, 1, False),
    "resnet152": ("resnet152", {}, lambda: T.ResNet(T.Bottleneck, [3, 8, 36, 3]), None, 1, False),
    "resnet20": ("resnet20", {}, lambda: T.CifarResNet(20), (3, 16, 16), 2, False),
    "resnet20-B": ("resnet20", dict(shortcut="B"), lambda: CifarResNetB(20), (3, 16, 16), 2, False),
    "resnet32": ("resnet32", {}, lambda: T.CifarResNet(32), None, 1, False),
    "resnet44": ("resnet44", {}, lambda: T.CifarResNet(44), None, 1, False),
    "resnet56": ("resnet56", {}, lambda: T.CifarResNet(56), None, 1, False),
    "resnet110": ("resnet110", {}, lambda: T.CifarResNet(110), None, 1, False),
    "vgg11": ("vgg11", {}, lambda: T.VGG("A"), None, 1, False),
    "vgg11_bn": ("vgg11_bn", {}, lambda: T.VGG("A", batch_norm=True), None, 1, False),
    "vgg11_lrn": ("vgg11_lrn", dict(num_classes=10), lambda: VGGExtra("A-LRN", 10), (3, 32, 32), 1, True),
    "vgg13": ("vgg13", {}, lambda: T.VGG("B"), None, 1, False),
    "vgg13_bn": ("vgg13_bn", {}, lambda: T.VGG("B", batch_norm=True), None, 1, False),
    "vgg16": ("vgg16", {}, lambda: T.VGG("D"), None, 1, False),
    "vgg16_bn": ("vgg16_bn", {}, lambda: T.VGG("D", batch_norm=True), None, 1, False),
    "vgg16_c": ("vgg16_c", dict(num_classes=10), lambda: VGGExtra("C", 10), (3, 32, 32), 1, True),
    "vgg19": ("vgg19", {}, lambda: T.VGG("E"), None, 1, False),
    "vgg19_bn": ("vgg19_bn", {}, lambda: T.VGG("E", batch_norm=True), None, 1, False),
}

VALUE_CASES = [k for k, c in CASES.items() if c[3] is not None]
KEY_CASES = [k for k, c in CASES.items() if c[3] is None]


def test_every_zoo_model_is_covered():
    assert {c[0] for c in CASES.values()} == set(M.names())


def _torch_state(tmodel):
    return {k: v for k, v in tmodel.state_dict().items() if not k.endswith(".mask")}


def _random_torch_model(build):
    """The twin with random weights, made without PyTorch's (slow for 100M parameters) initialisation:
    normal values scaled by 1/sqrt(fan-in), cycled from a block of a prime length for the big tensors;
    then non-trivial BatchNorm statistics."""
    with torch.device("meta"):
        tmodel = build()
    tmodel = tmodel.to_empty(device="cpu")
    block = torch.randn(65_537, generator=torch.Generator().manual_seed(0))   # a prime length
    start = 0
    with torch.no_grad():
        for p in tmodel.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 100
            n = p.numel()
            values = block.repeat(n // block.numel() + 2)[start:start + n] if n > block.numel() - start \
                else block[start:start + n]
            p.copy_((values / fan_in ** 0.5).view_as(p))
            start = (start + 7_919) % block.numel()
        for name, b in tmodel.named_buffers():
            if name.endswith("num_batches_tracked"):
                b.fill_(7)
    return T.randomize_batchnorm(tmodel, seed=1).eval()


def _check_values(case, tmp_path):
    name, kwargs, build_torch, size, batch, _ = CASES[case]
    tmodel = _random_torch_model(build_torch)
    state = _torch_state(tmodel)
    model = M.create(name, **kwargs)                      # its own initialisation is skipped (no_init)
    big = sum(v.numel() for v in state.values()) > 30_000_000
    if big:
        report = load_torch_state_dict(model, state)                          # a dict of torch tensors
    else:
        torch.save(state, tmp_path / "torch.pth")
        report = load_torch_state_dict(model, tmp_path / "torch.pth")          # a .pth file (weights_only)
    assert report.ok and len(report.loaded) == len(state)
    model.eval()
    x = np.random.default_rng(2).standard_normal((batch, *size)).astype(np.float32)
    with torch.no_grad():
        want = tmodel(torch.from_numpy(x)).numpy()
    with cnnkit.no_grad():
        got = model(cnnkit.tensor(x)).data
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    # Round trip back to PyTorch: exact, same dtypes, strict load.
    if big:
        back = {k: torch.from_numpy(np.asarray(v)) for k, v in model.state_dict().items()}
    else:
        save_torch_state_dict(model, tmp_path / "back.pth")
        back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert list(back) == list(state)
    for k, v in state.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    build_torch().load_state_dict(back, strict=True)


@pytest.mark.parametrize("case", [c for c in VALUE_CASES if not CASES[c][5]])
def test_logits_and_round_trip(case, tmp_path, no_init):  # noqa: F811
    _check_values(case, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in VALUE_CASES if CASES[c][5]])
def test_logits_and_round_trip_big_models(case, tmp_path, no_init):  # noqa: F811
    _check_values(case, tmp_path)


@pytest.mark.parametrize("case", KEY_CASES)
def test_deep_variants_keys_and_shapes(case, no_init):  # noqa: F811
    name, kwargs, build_torch, *_ = CASES[case]
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in _torch_state(build_torch()).items()}
    got = {k: tuple(v.shape) for k, v in M.create(name, **kwargs).state_dict().items()}
    assert list(got) == list(expected)
    assert got == expected
