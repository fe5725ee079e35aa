"""`cnnkit viz KIND RUN_OR_MODEL [IMAGE] -o OUT.png` end to end on a short mnist-5k run."""
import numpy as np
import pytest
from PIL import Image

from tests.data.drawn import draw_digit
from tests.helpers import cli, mnist5k_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return mnist5k_run(tmp_path_factory.mktemp("runs") / "lenet5-mnist-5k", epochs=1)


@pytest.fixture(scope="module")
def drawing(tmp_path_factory):
    p = tmp_path_factory.mktemp("drawn") / "seven.png"
    Image.fromarray(draw_digit(7)).save(p)
    return p


def _png(path):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= 400 and im.height >= 200
        return np.asarray(im.convert("L"))


@pytest.mark.parametrize("kind, extra", [
    ("filters", []), ("filters", ["--layer", "c3"]), ("activations", ["IMAGE"]), ("occlusion", ["IMAGE"]),
    ("saliency", ["IMAGE", "--target", "7"]), ("receptive-field", ["IMAGE", "--layer", "c3", "--index", "2,3"]),
    ("top-patches", ["--layer", "c1", "--limit", "200"]), ("maximize", ["--layer", "c1", "--steps", "8"]),
    ("maximize", ["--target", "3", "--steps", "8"]), ("activations", ["--sample", "5"])])
def test_every_kind_writes_a_png(run, drawing, tmp_path, kind, extra):
    out = tmp_path / f"{kind}.png"
    code, stdout, err = cli("viz", kind, run, *[drawing if a == "IMAGE" else a for a in extra], "-o", out)
    assert code == 0, err
    assert stdout.startswith(f"wrote {out} (") and _png(out).std() > 10


def test_responses_takes_only_an_image(drawing, tmp_path):
    out = tmp_path / "bank.png"
    assert cli("viz", "responses", drawing, "--filters", "sobel_x,sobel_y", "-o", out)[0] == 0
    _png(out)
    code, _, err = cli("viz", "responses", "lenet5", drawing, "-o", out)
    assert code == 2 and "give only IMAGE" in err


def test_a_zoo_model_says_it_is_untrained(drawing, tmp_path):
    out = tmp_path / "zoo.png"
    code, _, err = cli("viz", "activations", "lenet5", drawing, "-o", out)
    assert code == 0, err
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    foot = rgb[-30:, :400]
    assert np.any((foot[..., 0] > 150) & (foot[..., 1] < 90))     # the red "untrained" signature


@pytest.mark.parametrize("argv, message", [
    (["activations", "RUN", "-o", "OUT.jpg"], "-o must name a .png file"),
    (["activations", "RUN", "IMAGE", "-o", "missing/OUT.png"], "the directory '.*missing' does not exist"),
    (["activations", "RUN", "-o", "OUT.png"], "activations needs an IMAGE"),
    (["filters", "RUN", "--layer", "conv9", "-o", "OUT.png"], "--layer: no layer named 'conv9' in lenet5; layers: c1"),
    (["filters", "nonet", "-o", "OUT.png"], "'nonet' is neither a run directory nor a zoo model"),
    (["occlusion", "RUN", "IMAGE", "--target", "seven", "-o", "OUT.png"], "--target must be a class name or index"),
    (["occlusion", "RUN", "nothere.png", "-o", "OUT.png"], "image 'nothere.png' does not exist"),
    (["receptive-field", "RUN", "IMAGE", "-o", "OUT.png"], "receptive-field needs --layer NAME"),
    (["receptive-field", "RUN", "--layer", "c1", "--index", "2", "-o", "OUT.png"], "--index must be 2 non-negative"),
    (["saliency", "RUN", "IMAGE", "--target", "12", "-o", "OUT.png"], "target must be a class index in 0..9"),
    (["top-patches", "lenet5", "--layer", "c1", "-o", "OUT.png"], "a zoo model has no data set of its own"),
])
def test_bad_input_is_one_line_and_writes_nothing(run, drawing, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "OUT.png").write_bytes(b"keep me")
    argv = [{"RUN": run, "IMAGE": drawing}.get(a, a) for a in argv]
    code, out, err = cli("viz", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    import re
    assert re.search(message, err), err
    assert (tmp_path / "OUT.png").read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OUT.png"]
