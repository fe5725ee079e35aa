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
def test_export_a_trained_run_gives_its_logits_and_what_serving_needs(tmp_path):
    """A serving runtime can use the file alone: onnx reads back the names and metadata, onnxruntime runs
    an image prepared from them alone, and the class it picks is what `cnnkit predict` says."""
    import json

    from PIL import Image

    from tests.data.drawn import draw_digit
    result = cnnkit.train.run(cnnkit.train.TrainConfig(epochs=1, batch_size=128, out=str(tmp_path / "run"),
                                                       plots=False, progress=False), log=False)
    code, out, err = cli("export", result.run_dir, "--onnx", tmp_path / "m.onnx")
    assert code == 0, err
    assert out.strip() == (f"wrote {tmp_path / 'm.onnx'}: input 'input' N×1×32×32, output 'logits'; metadata: "
                           "input size, 10 classes, mean/std") and "note" not in err
    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["logits"]
    meta = {p.key: p.value for p in proto.metadata_props}
    config = json.loads((result.run_dir / "config.json").read_text())
    assert json.loads(meta["classes"]) == [str(c) for c in config["classes"]]
    assert json.loads(meta["mean"]) == config["normalize"]["mean"] and json.loads(meta["std"]) == config["normalize"]["std"]
    assert json.loads(meta["input_size"]) == [1, 32, 32] and meta["input_layout"] == "NCHW"
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    served = session.get_modelmeta().custom_metadata_map                   # what a runtime sees
    assert served["classes"] == meta["classes"] and [o.name for o in session.get_outputs()] == ["logits"]
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    got = session.run(["logits"], {"input": x})[0]
    model = cnnkit.train.load_run(result.run_dir).model
    with cnnkit.no_grad():
        want = model(cnnkit.tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # an image prepared from the metadata alone (grey, the model's size, /255, mean/std) is classed as predict does
    picture = Image.fromarray(draw_digit(7, paper=0, ink=255)).resize((32, 32), Image.BILINEAR)
    picture.save(tmp_path / "seven.png")
    mean, std = np.float32(json.loads(served["mean"])[0]), np.float32(json.loads(served["std"])[0])
    pixels = (np.asarray(picture, np.float32) / 255 - mean) / std
    scores = session.run(["logits"], {"input": pixels[None, None]})[0][0]
    top = cnnkit.train.predict_files(result.run_dir, [tmp_path / "seven.png"], top=1)[0]["predictions"][0]
    assert json.loads(served["classes"])[int(np.argmax(scores))] == str(top["class"])


def test_export_a_zoo_name_says_its_weights_are_fresh_and_refuses_unknown_names(tmp_path):
    code, out, err = cli("export", "ResNet-20", "--onnx", tmp_path / "r.onnx", "--input", "3,16,16")
    assert code == 0 and "freshly initialised weights" in err and "input 'input' N×3×16×16, output 'logits'" in out
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
