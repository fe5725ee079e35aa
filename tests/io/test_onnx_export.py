"""ONNX export: checked by onnx.checker and run in onnxruntime, outputs equal to cnnkit's."""
import numpy as np
import pytest

import cnnkit
from cnnkit import nn
from cnnkit.io import export_onnx

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _compare(model, input_size, tmp_path, batch=2, tol=1e-4):
    path = tmp_path / "model.onnx"
    proto = export_onnx(model, input_size, path)
    onnx.checker.check_model(onnx.load(str(path)))
    x = np.random.default_rng(0).standard_normal((batch,) + tuple(input_size)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    model.eval()
    with cnnkit.no_grad():
        want = model(cnnkit.tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    return proto


def test_every_supported_layer_exports(tmp_path):
    cnnkit.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4), nn.LocalResponseNorm(3, alpha=2.0, k=1.5), nn.LeakyReLU(0.1),
        nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.AvgPool2d(2, 1, 1, count_include_pad=False), nn.Sigmoid(),
        nn.Conv2d(8, 4, 1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(16, 6), nn.Softmax(dim=1))
    bn = model[1]
    bn.running_mean.data[:] = np.linspace(-1, 1, 8)
    bn.running_var.data[:] = np.linspace(0.5, 2, 8)
    proto = _compare(model, (3, 17, 16), tmp_path)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "BatchNormalization", "Relu", "LRN", "LeakyRelu", "MaxPool", "AveragePool", "Sigmoid",
            "Tanh", "Flatten", "Gemm", "Softmax"} <= ops


def test_residual_add_and_concat_glue(tmp_path):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 2, 1)
            self.pool = nn.GlobalAvgPool2d(flatten=True)

        def forward(self, x):
            y = self.a(x) + x
            return self.pool(cnnkit.cat([y, self.b(y), self.b(x[:, :, :, :])], 1))
    cnnkit.manual_seed(1)
    proto = _compare(Block(), (4, 6, 6), tmp_path, batch=3)
    assert {"Add", "Concat", "GlobalAveragePool"} <= {n.op_type for n in proto.graph.node}


@pytest.mark.parametrize("pad,value", [((0, 0, 0, 0, 1, 2), None), ((1, -1, 2, 0), -2.5), ((-1, -2), 3.0),
                                       ((0, 0), 1.0)])
def test_pad_exports_as_onnx_pad(pad, value, tmp_path):
    class Padded(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            kw = {} if value is None else {"value": value}
            return nn.functional.pad(self.conv(x)[:, :, ::2, :], pad, **kw)
    cnnkit.manual_seed(2)
    proto = _compare(Padded(), (3, 9, 8), tmp_path, batch=3)
    assert "Pad" in {n.op_type for n in proto.graph.node}


def test_zeros_made_for_the_batch_follow_the_batch_size_at_run_time(tmp_path):
    class ZeroChannels(nn.Module):                      # traced with one image, run with three
        def forward(self, x):
            return cnnkit.cat([cnnkit.zeros(x.shape[0], 2, *x.shape[2:]), x], 1)
    proto = _compare(ZeroChannels(), (3, 4, 4), tmp_path, batch=3)
    assert "ConstantOfShape" in {n.op_type for n in proto.graph.node}


def test_unsupported_op_is_refused_by_name(tmp_path):
    class Odd(nn.Module):
        def forward(self, x):
            return x.exp()
    with pytest.raises(ValueError, match=r"the op 'exp' .* has no ONNX translation"):
        export_onnx(Odd(), (1, 2, 2), tmp_path / "odd.onnx")
    assert not (tmp_path / "odd.onnx").exists()


def test_names_and_metadata_for_serving(tmp_path):
    """Input 'input', output 'logits', and classes / mean / std / input size read back by onnx and onnxruntime."""
    import json
    cnnkit.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    path = tmp_path / "m.onnx"
    export_onnx(model, (3, 6, 6), path, classes=["cat", "dog", "emu"], mean=[0.5, 0.4, 0.3], std=(0.2, 0.2, 0.25),
                metadata={"model": "tiny", "epochs": 3})
    proto = onnx.load(str(path))
    assert [v.name for v in proto.graph.input] == ["input"] and [v.name for v in proto.graph.output] == ["logits"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == ["cat", "dog", "emu"] and json.loads(meta["mean"]) == [0.5, 0.4, 0.3]
    assert json.loads(meta["std"]) == [0.2, 0.2, 0.25] and json.loads(meta["input_size"]) == [3, 6, 6]
    assert meta["model"] == "tiny" and meta["epochs"] == "3"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map == meta
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6)).astype(np.float32)
    with cnnkit.no_grad():
        want = model(cnnkit.tensor(x)).data
    np.testing.assert_allclose(session.run(["logits"], {"input": x})[0], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(classes=["a", "b"]), r"2 classes given, but the model's output is 3 per input"),
    (dict(mean=[0.5, 0.5]), r"mean must be 3 finite value\(s\), one per input channel, got \[0.5, 0.5\]"),
    (dict(std=[0.2, 0.0, 0.2]), r"std must be 3 finite value\(s\) > 0"),
    (dict(mean=[0.5, float("nan"), 0.5]), r"mean must be 3 finite"),
])
def test_metadata_is_checked_before_writing(tmp_path, kwargs, message):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    with pytest.raises(ValueError, match=message):
        export_onnx(model, (3, 6, 6), tmp_path / "m.onnx", **kwargs)
    assert list(tmp_path.iterdir()) == []
