"""`cnnkit train / evaluate / predict` end to end on a short run (1 epoch of LeNet-5 on digits)."""
import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

import cnnkit
from cnnkit.cli import main

pytestmark = pytest.mark.slow


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "lenet5-digits"
    code, out, err = cli("train", "--epochs", 1, "--batch-size", 64, "--out", d, "--plots")
    assert code == 0, err
    return d, out, err


def test_train_writes_run_directory(run):
    d, out, err = run
    assert {p.name for p in d.iterdir()} == {"model.safetensors", "config.json", "log.jsonl", "metrics.json",
                                             "checkpoint.safetensors", "curves.png", "confusion.png"}
    lines = out.strip().splitlines()
    assert lines[0].startswith("lenet5") and "61,706" in out          # the summary first
    assert lines[-1].startswith("test accuracy: ")                    # the accuracy last
    assert "epoch   1  train loss" in err and "-> " + str(d) in err   # progress on stderr
    metrics = json.loads((d / "metrics.json").read_text())
    assert set(metrics) >= {"test_accuracy", "test_loss", "epochs", "best_epoch", "train_seconds"}
    assert metrics["epochs"] == 1 and metrics["best_epoch"] == 1 and metrics["test_size"] == 359
    assert f"{100 * metrics['test_accuracy']:.2f}%" in lines[-1]
    assert 0 < metrics["test_accuracy"] <= 1 and metrics["train_seconds"] > 0
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["model"]["name"] == "lenet5" and cfg["model"]["kwargs"] == {"num_classes": 10}
    assert cfg["classes"] == [str(i) for i in range(10)] and cfg["input_size"] == [1, 32, 32]
    assert cfg["data"]["name"] == "digits" and len(cfg["normalize"]["mean"]) == 1
    from cnnkit.train.config import DEFAULT_LR, OPTIMIZERS, TrainConfig
    assert cfg["optimizer"]["name"] == OPTIMIZERS[TrainConfig.optimizer]
    assert cfg["optimizer"]["hyperparameters"]["lr"] == DEFAULT_LR[TrainConfig.optimizer]
    assert cfg["training"]["batch_size"] == 64 and cfg["seed"] == 0 and cfg["format_version"] == 1
    log = [json.loads(s) for s in (d / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["epoch"] == 1
    for png in ("curves.png", "confusion.png"):
        with Image.open(d / png) as im:
            assert im.format == "PNG" and im.width > 300


def test_evaluate_reports_and_matches_sklearn(run):
    from sklearn.metrics import confusion_matrix, precision_score, recall_score
    d, _, _ = run
    code, out, _ = cli("evaluate", d, "--json")
    assert code == 0
    rep = json.loads(out)
    metrics = json.loads((d / "metrics.json").read_text())
    assert rep["n"] == 359 and rep["accuracy"] == pytest.approx(metrics["test_accuracy"])
    # independent check: predictions of the saved model on the test split, scored by scikit-learn
    from cnnkit.data import load
    from cnnkit.train.runs import load_run, predict_proba
    r = load_run(d)
    s = load("digits")
    x = ((s.test.images - np.float32(r.mean[0])) / np.float32(r.std[0])).astype(np.float32)
    pred = predict_proba(r.model, x).argmax(1)
    cm = np.asarray(rep["confusion_matrix"])
    np.testing.assert_array_equal(cm, confusion_matrix(s.test.labels, pred, labels=range(10)))
    np.testing.assert_allclose([c["precision"] for c in rep["per_class"]],
                               precision_score(s.test.labels, pred, average=None, zero_division=0))
    np.testing.assert_allclose([c["recall"] for c in rep["per_class"]], recall_score(s.test.labels, pred, average=None))
    code, text, _ = cli("evaluate", d)
    assert code == 0 and "precision" in text and "confusion matrix" in text and "accuracy" in text


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Digits from the test split as PNG files: 8×8 grey (as scikit-learn ships them), RGB, RGBA."""
    from cnnkit.data import load
    d = tmp_path_factory.mktemp("images")
    s = load("digits", size=8)
    paths = []
    for i, mode in zip(range(3), ("L", "RGB", "RGBA")):
        a = (s.test.images[i, 0] * 255).round().astype(np.uint8)
        Image.fromarray(a).convert(mode).save(d / f"digit{i}.png")
        paths.append(d / f"digit{i}.png")
    (d / "notes.txt").write_text("not an image")
    return d, paths, s.test.labels[:3]


def test_predict_json_and_text(run, images):
    d, _, _ = run
    _, paths, _ = images
    code, out, err = cli("predict", d, *paths, "--top", 4, "--json")
    assert code == 0, err
    res = json.loads(out)
    assert [r["image"] for r in res] == [str(p) for p in paths]
    for r in res:
        probs = [p["probability"] for p in r["predictions"]]
        assert len(probs) == 4 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
        assert all(p["class"] in [str(i) for i in range(10)] for p in r["predictions"])
    # grey, RGB and RGBA versions of the same picture are converted alike
    code, out, _ = cli("predict", d, paths[0], "--top", 1)
    assert code == 0 and out.startswith(f"{paths[0]}: ") and "%" in out


def test_predict_matches_model_on_dataset_images(run, images):
    """The file path (Pillow read, resize to 32×32, scale, normalise) agrees with the data set's own path."""
    from cnnkit.data import load
    from cnnkit.train.runs import load_run, predict_proba, prepare_image
    d, _, _ = run
    _, paths, _ = images
    r = load_run(d)
    s = load("digits")
    x_file = np.stack([prepare_image(p, r.input_size, r.mean, r.std) for p in paths])
    x_data = ((s.test.images[:3] - np.float32(r.mean[0])) / np.float32(r.std[0])).astype(np.float32)
    assert x_file.shape == (3, 1, 32, 32)
    np.testing.assert_allclose(x_file, x_data, atol=0.1 / r.std[0])  # 8-bit files vs float pixels
    np.testing.assert_allclose(predict_proba(r.model, x_file), predict_proba(r.model, x_data), atol=0.05)


def test_predict_refuses_unreadable(run, images):
    d, _, _ = run
    folder, _, _ = images
    code, _, err = cli("predict", d, folder / "notes.txt")
    assert code == 2 and "cannot read image" in err and "notes.txt" in err
    code, _, err = cli("predict", d, folder / "missing.png")
    assert code == 2 and "no such image" in err
    code, _, err = cli("predict", d, folder / "digit0.png", "--top", 0)
    assert code == 2 and "--top must be at least 1" in err


def test_refuses_damaged_and_foreign_weights(run, tmp_path):
    import shutil
    d, _, _ = run
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) - 100])
    code, _, err = cli("evaluate", bad)
    assert code == 2 and "damaged or truncated" in err
    # weights of another architecture in the run directory
    cnnkit.manual_seed(0)
    other = cnnkit.models.create("resnet20", num_classes=10, in_channels=1)
    cnnkit.train.save_weights(other, bad / "model.safetensors")
    code, _, err = cli("predict", bad, tmp_path / "x.png")
    assert code == 2 and "saved from model 'resnet20', not 'lenet5'" in err
    code, _, err = cli("evaluate", tmp_path)
    assert code == 2 and "holds no config.json" in err


def test_train_refuses_existing_run_and_conflicting_resume(run):
    d, _, _ = run
    code, _, err = cli("train", "--epochs", 1, "--out", d)
    assert code == 2 and "already holds a run: pass --resume" in err
    from cnnkit.train.config import DEFAULT_LR, TrainConfig
    code, _, err = cli("train", "--out", d, "--resume", "--lr", 0.5)
    assert code == 2 and f"remove --lr 0.5 (the run used {DEFAULT_LR[TrainConfig.optimizer]})" in err
    code, _, err = cli("train", "--out", d, "--resume", "--epochs", 3)
    assert code == 2 and "cosine learning-rate schedule" in err and "--epochs 1" in err
    code, _, err = cli("train", "resnet2O", "--out", d.parent / "x")
    assert code == 2 and "unknown model 'resnet2O'" in err


def test_interrupted_cli_run_resumes_bit_exact(tmp_path, monkeypatch):
    import cnnkit.train.recipe as recipe

    common = ["--epochs", 2, "--batch-size", 128, "--scheduler", "step", "--no-plots"]
    code, _, _ = cli("train", *common, "--out", tmp_path / "full")
    assert code == 0

    class StopAfterOne(recipe.Trainer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)

            def stop(trainer, record):
                if record["epoch"] == 1:
                    raise KeyboardInterrupt
            self.callbacks.append(stop)

    with monkeypatch.context() as m:
        m.setattr(recipe, "Trainer", StopAfterOne)
        code, out, err = cli("train", *common, "--out", tmp_path / "cut")
    assert code == 130 and "continue with: cnnkit train --out" in err
    assert not (tmp_path / "cut" / "metrics.json").exists()
    code, out, err = cli("train", "--out", tmp_path / "cut", "--resume")
    assert code == 0, err
    a = cnnkit.train.load_checkpoint(tmp_path / "full" / "checkpoint.safetensors")
    b = cnnkit.train.load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors")
    assert a.state["epoch"] == b.state["epoch"] == 2
    for k in a.weights:
        assert np.array_equal(a.weights[k], b.weights[k]), k
    ma = json.loads((tmp_path / "full" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert ma["test_accuracy"] == mb["test_accuracy"] and ma["test_loss"] == mb["test_loss"]


def test_train_on_image_folder_then_predict(tmp_path):
    r = np.random.default_rng(0)
    for name, level in (("dark", 40), ("light", 210)):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(15):
            a = np.clip(r.normal(level, 20, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(tmp_path / "pics" / name / f"{i}.png")
    out = tmp_path / "run"
    code, stdout, err = cli("train", "INPUT -> CONV(4) -> RELU -> POOL -> FC", "--data", tmp_path / "pics",
                            "--epochs", 3, "--batch-size", 8, "--lr", 0.01, "--out", out, "--no-plots")
    assert code == 0, err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["classes"] == ["dark", "light"] and cfg["input_size"] == [3, 12, 12]
    assert cfg["model"]["name"] == "from_pattern"
    code, stdout, err = cli("evaluate", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["accuracy"] == 1.0
    Image.fromarray(np.full((30, 40), 230, np.uint8)).save(tmp_path / "grey-big.png")  # grey, other size
    code, stdout, err = cli("predict", out, tmp_path / "grey-big.png", "--top", 1, "--json")
    assert code == 0, err
    assert json.loads(stdout)[0]["predictions"][0]["class"] == "light"


def test_refuses_damaged_config_and_swapped_weights(run, tmp_path):
    import shutil
    d, _, _ = run
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    text = (bad / "config.json").read_text()
    (bad / "config.json").write_text(text[: len(text) // 2])
    code, _, err = cli("evaluate", bad)
    assert code == 2 and "config.json is damaged: not valid JSON" in err
    (bad / "config.json").write_text(text)
    # same architecture, other weights: the digest in config.json no longer matches
    cnnkit.manual_seed(123)
    cnnkit.train.save_weights(cnnkit.models.create("lenet5", num_classes=10), bad / "model.safetensors")
    code, _, err = cli("evaluate", bad)
    assert code == 2 and "is not the file config.json describes (their SHA-256 digests differ)" in err


def test_train_from_a_run_with_frozen_layers_transfers_to_faces(run, tmp_path):
    src = run[0]
    code, out, err = cli("train", "--data", "faces", "--epochs", 1, "--from", src, "--freeze", "head",
                         "--out", tmp_path / "faces", "--no-plots")
    assert code == 0, err
    assert "loaded 8 pre-trained tensors" in err          # all but LeNet's 10-class output layer
    src_w = cnnkit.train.load_weights(src / "model.safetensors")
    dst_w = cnnkit.train.load_weights(tmp_path / "faces" / "model.safetensors")
    for key in ("c1.weight", "c3.weight", "c5.bias", "f6.weight"):   # frozen: bit-for-bit the source's
        np.testing.assert_array_equal(dst_w[key], src_w[key])
    assert dst_w["output.weight"].shape == (2, 84)
    assert "frozen 60,856" in out
    code, _, err = cli("train", "--epochs", 1, "--freeze", "head", "--out", tmp_path / "x")
    assert code == 2 and "--freeze needs --from" in err
