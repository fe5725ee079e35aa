"""`cnnkit train --data mnist-5k` records MNIST's preparation; `cnnkit predict` applies it to drawings."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.data.drawn import ten_digits
from tests.helpers import cli, mnist5k_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return mnist5k_run(tmp_path_factory.mktemp("runs") / "lenet5-mnist-5k", epochs=4)


@pytest.fixture(scope="module")
def drawings(tmp_path_factory):
    d = tmp_path_factory.mktemp("drawn")
    paths = []
    for i, sheet in enumerate(ten_digits(seed=0)):               # 0-9, bold, off-centre, dark on white
        paths.append(d / f"{i}.png")
        Image.fromarray(sheet).save(paths[-1])
    return paths


def _read(run_dir, paths, *flags):
    code, out, err = cli("predict", run_dir, *paths, "--top", 1, "--json", *flags)
    assert code == 0, err
    return [int(r["predictions"][0]["class"]) for r in json.loads(out)]


def test_the_run_records_the_preparation(run):
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["prepare"] == {"kind": "digit", "size": 32}
    assert cfg["data"]["name"] == "mnist-5k" and (cfg["data"]["train"], cfg["data"]["test"]) == (3600, 1000)
    assert json.loads((run / "metrics.json").read_text())["test_accuracy"] > 0.9


def test_predict_prepares_drawings_as_mnist_and_reads_them(run, drawings, tmp_path):
    prepared = _read(run, drawings)
    assert sum(p == d for d, p in enumerate(prepared)) >= 8
    # the same run as an older cnnkit wrote it (no "prepare"): the picture is only resized and inverted
    old = tmp_path / "old-run"
    old.mkdir()
    for f in run.iterdir():
        (old / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((old / "config.json").read_text())
    del cfg["prepare"]
    (old / "config.json").write_text(json.dumps(cfg))
    resized = _read(old, drawings, "--invert")
    assert sum(p == d for d, p in enumerate(resized)) < sum(p == d for d, p in enumerate(prepared))


def test_predict_names_a_picture_without_ink(run, tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((50, 50), 250, np.uint8)).save(blank)
    code, out, err = cli("predict", run, blank)
    assert code == 2 and err.startswith("cnnkit: error: prepare_digit: no ink found") and err.count("\n") == 1
