"""ONNX export of the zoo: each model (random weights, BatchNorm with non-trivial statistics) is
exported, passes ``onnx.checker``, runs in onnxruntime on a batch of two (the exported batch
dimension is dynamic) and agrees with cnnkit within 1e-4.

Small inputs keep it fast. Models made only of layers a listed sibling already exports (VGG-11 …
VGG-19 and torchvision's AlexNet like AlexNet: Conv/ReLU/LRN/MaxPool/Gemm/Dropout, adaptive pooling
as in tests/io/test_onnx_export.py; ResNet-34/101/152 and v1 like ResNet-18/50; CIFAR ResNet-44/56/110
like ResNet-20/32) are exported too when
``CNNKIT_TEST_ALL_ZOO=1`` (each VGG file is ~0.5 GB).
"""
import os

import numpy as np
import pytest

import cnnkit
import cnnkit.models as M
from cnnkit import nn
from cnnkit.io import export_onnx

from tests.models.conftest import fast_init  # noqa: F401  (fixture)

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

# id: (zoo name, kwargs, input (C, H, W), slow)
CASES = {
    "lenet5": ("lenet5", {}, (1, 32, 32), False),
    "lenet5-tanh-avg-c3table": ("lenet5", dict(activation="tanh", pooling="avg", c3_table=True), (1, 32, 32), False),
    "alexnet": ("alexnet", dict(num_classes=10), (3, 227, 227), True),
    "googlenet": ("googlenet", dict(num_classes=10), (3, 64, 64), False),
    "googlenet-torchvision": ("googlenet", dict(variant="torchvision", aux_logits=True, num_classes=10),
                              (3, 64, 64), False),
    "mobilenet_v1": ("mobilenet_v1", dict(num_classes=10), (3, 32, 32), False),
    "xception": ("xception", dict(num_classes=10), (3, 32, 32), True),
    "resnet18": ("resnet18", dict(num_classes=10), (3, 16, 16), False),
    "resnet50": ("resnet50", dict(num_classes=10), (3, 16, 16), True),
    "resnet20": ("resnet20", {}, (3, 16, 16), False),
    "resnet20-B": ("resnet20", dict(shortcut="B"), (3, 16, 16), False),
    "resnet32": ("resnet32", {}, (3, 8, 8), False),
}
SIBLINGS = {
    "alexnet-torchvision": ("alexnet", dict(variant="torchvision", num_classes=10), (3, 64, 64), True),
    "resnet50-v1": ("resnet50", dict(variant="v1", num_classes=10), (3, 16, 16), True),
    "resnet34": ("resnet34", dict(num_classes=10), (3, 16, 16), True),
    "resnet101": ("resnet101", dict(num_classes=10), (3, 16, 16), True),
    "resnet152": ("resnet152", dict(num_classes=10), (3, 16, 16), True),
    "resnet44": ("resnet44", {}, (3, 8, 8), True),
    "resnet56": ("resnet56", {}, (3, 8, 8), True),
    "resnet110": ("resnet110", {}, (3, 8, 8), True),
    **{name: (name, dict(num_classes=10), (3, 32, 32), True)
       for name in ("vgg11", "vgg11_bn", "vgg11_lrn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg16_c",
                    "vgg19", "vgg19_bn")},
}
ALL = os.environ.get("CNNKIT_TEST_ALL_ZOO") == "1"


def test_every_zoo_model_is_listed():
    assert {c[0] for c in {**CASES, **SIBLINGS}.values()} == set(M.names())


def _randomize_batchnorm(model, seed=0):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data[:] = rng.uniform(0.5, 1.5, c)
            m.bias.data[:] = rng.normal(0, 0.1, c)
            m.running_mean.data[:] = rng.normal(0, 0.1, c)
            m.running_var.data[:] = rng.uniform(0.5, 1.5, c)
    return model


def _check(case, table, tmp_path):
    name, kwargs, size, _ = table[case]
    cnnkit.manual_seed(0)
    model = _randomize_batchnorm(M.create(name, **kwargs))
    path = tmp_path / f"{case}.onnx"
    export_onnx(model, size, path)
    onnx.checker.check_model(str(path))          # by path: files over 2 GB are checked too
    x = np.random.default_rng(1).standard_normal((2, *size)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    model.eval()
    with cnnkit.no_grad():
        want = model(cnnkit.tensor(x)).data
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    assert np.abs(want).max() > 1e-3                            # the comparison is not of zeros


@pytest.mark.parametrize("case", [c for c, v in CASES.items() if not v[3]])
def test_zoo_model_exports_and_agrees_with_onnxruntime(case, tmp_path, fast_init):  # noqa: F811
    _check(case, CASES, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c, v in CASES.items() if v[3]])
def test_big_zoo_model_exports_and_agrees_with_onnxruntime(case, tmp_path, fast_init):  # noqa: F811
    _check(case, CASES, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not ALL, reason="same layers as a sibling above; set CNNKIT_TEST_ALL_ZOO=1")
@pytest.mark.parametrize("case", list(SIBLINGS))
def test_sibling_zoo_model_exports(case, tmp_path, fast_init):  # noqa: F811
    _check(case, SIBLINGS, tmp_path)
