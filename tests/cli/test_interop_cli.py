"""`cnnkit export` (a run directory or a zoo name to ONNX) and `cnnkit convert` (.pth ↔ .safetensors), end to end."""
import contextlib
import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import cnnkit
from cnnkit.cli import main


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_export_a_trained_run_gives_its_logits(tmp_path):
    result = cnnkit.train.run(cnnkit.train.TrainConfig(epochs=1, batch_size=128, out=str(tmp_path / "run"),
                                                       plots=False, progress=False), log=False)
    code, out, err = cli("export", result.run_dir, "--onnx", tmp_path / "m.onnx")
    assert code == 0, err
    assert out.strip() == f"wrote {tmp_path / 'm.onnx'} (input N×1×32×32)" and "note" not in err
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"))
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    model = cnnkit.train.load_run(result.run_dir).model
    with cnnkit.no_grad():
        want = model(cnnkit.tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_export_a_zoo_name_says_its_weights_are_fresh_and_refuses_unknown_names(tmp_path):
    code, out, err = cli("export", "ResNet-20", "--onnx", tmp_path / "r.onnx", "--input", "3,16,16")
    assert code == 0 and "freshly initialised weights" in err and "(input N×3×16×16)" in out
    assert (tmp_path / "r.onnx").is_file()
    code, _, err = cli("export", "lenet7", "--onnx", tmp_path / "x.onnx")
    assert code == 2 and "'lenet7' is neither a run directory nor a model name" in err
    assert not (tmp_path / "x.onnx").exists()


def test_convert_pth_to_safetensors_and_back(tmp_path):
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(2)}
    torch.save(state, tmp_path / "a.pth")
    code, out, _ = cli("convert", tmp_path / "a.pth", tmp_path / "a.safetensors")
    assert code == 0 and out.strip() == f"wrote {tmp_path / 'a.safetensors'} (2 tensors)"
    code, _, _ = cli("convert", tmp_path / "a.safetensors", tmp_path / "b.pth")
    back = torch.load(tmp_path / "b.pth", weights_only=True)
    assert code == 0 and all(torch.equal(back[k], v) for k, v in state.items())
