"""The training recipe as a library (cnnkit.train.TrainConfig, run, prepare, resume_config and its steps): what a
Python user gets back, the same files as `cnnkit train`, resuming bit for bit, and refusals naming the setting."""
import dataclasses
import json

import numpy as np
import pytest

import cnnkit
from cnnkit import train
from cnnkit.train import recipe, splits

pytestmark = pytest.mark.slow

QUICK = dict(epochs=2, batch_size=128, scheduler="step", plots=False, progress=False)


def test_run_returns_the_run_directory_history_and_test_metrics(tmp_path):
    lines = []
    result = train.run(train.TrainConfig(**QUICK, out=str(tmp_path / "r")), log=lines.append)
    assert result.run_dir == tmp_path / "r" and not result.interrupted
    assert len(result.history) == 2 and result.history.records[-1]["epoch"] == 2
    assert json.loads((result.run_dir / "metrics.json").read_text()) == result.metrics
    ev = result.evaluation
    assert result.metrics["test_accuracy"] == ev.accuracy == float(np.mean(ev.labels == ev.predictions))
    assert result.metrics["test_size"] == 359 and result.metrics["model"] == "lenet5"
    assert lines[0].startswith("training lenet5 on digits (1258 train / 180 val / 359 test images)")
    assert any(line.startswith("epoch   2  train loss") for line in lines) and lines[-1].startswith("saved ")
    cfg = train.read_config(result.run_dir)
    saved = cfg["training"]
    assert set(saved) == set(train.TrainConfig().settings())
    assert saved["lr"] == 0.05 and saved["epochs"] == 2 and "out" not in saved and "plots" not in saved
    # the saved model is the returned one
    run = train.load_run(result.run_dir)
    for k, v in run.model.state_dict().items():
        assert np.array_equal(v, result.model.state_dict()[k]), k


def test_interrupted_run_resumed_with_resume_config_ends_bit_for_bit(tmp_path):
    full = train.run(train.TrainConfig(**QUICK, out=str(tmp_path / "full")), log=False)

    def stop(trainer, record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    cut = train.run(train.TrainConfig(**QUICK, out=str(tmp_path / "cut")), log=False, callbacks=[stop])
    assert cut.interrupted and cut.metrics is None and not (tmp_path / "cut" / "metrics.json").exists()
    config = train.resume_config(tmp_path / "cut", progress=False)
    assert config.resume and config.epochs == 2 and config.scheduler == "step" and config.lr == 0.05
    resumed = train.run(config, log=False)
    assert resumed.metrics["test_accuracy"] == full.metrics["test_accuracy"]
    assert resumed.metrics["test_loss"] == full.metrics["test_loss"]
    for k, v in full.model.state_dict().items():
        assert np.array_equal(v, resumed.model.state_dict()[k]), k
    # a resume config that is not the run's is refused, naming the setting and the way to build the right one
    with pytest.raises(ValueError, match=r"remove --batch-size 64 \(the run used 128\)"):
        train.resume_config(tmp_path / "cut", batch_size=64)
    with pytest.raises(ValueError, match=r"not batch_size=32 \(the run used 128\).*cnnkit.train.resume_config"):
        train.run(train.TrainConfig(epochs=2, scheduler="step", out=str(tmp_path / "cut"), resume=True), log=False)
    with pytest.raises(ValueError, match=r"step learning-rate schedule .* planned for 2 epochs"):
        train.resume_config(tmp_path / "cut", epochs=5)
    with pytest.raises(TypeError, match="resume_config: unknown setting lr_decay"):
        train.resume_config(tmp_path / "cut", lr_decay=0.1)


@pytest.mark.parametrize("changes,message", [
    (dict(epochs=0), r"--epochs must be at least 1, got 0"),
    (dict(lr=0.0), r"--lr must be positive, got 0.0"),
    (dict(optimizer="lbfgs"), r"--optimizer must be one of sgd, adam, rmsprop, adagrad, got 'lbfgs'"),
    (dict(optimizer="adam", momentum=0.9), r"--momentum applies to sgd and rmsprop, not adam"),
    (dict(freeze="head"), r"--freeze needs --from"),
    (dict(model="resnet2O"), r"unknown model 'resnet2O'"),
])
def test_prepare_refuses_a_bad_setting_before_reading_data_or_writing(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        train.prepare(train.TrainConfig(out=str(tmp_path / "x"), **changes), log=False)
    assert not (tmp_path / "x").exists()


def test_the_steps_one_by_one():
    config = train.TrainConfig(data="faces", batch_size=16)
    s = splits.load_data(config.data, input_size=(1, 32, 32))
    assert s.name == "faces" and s.input_size == (1, 32, 32) and len(s.classes) == 2
    crop, flip = splits.augmentation("faces", s.input_size)
    assert isinstance(crop, cnnkit.data.RandomCrop) and isinstance(flip, cnnkit.data.RandomHorizontalFlip)
    assert splits.augmentation("my-folder", s.input_size) == []
    cnnkit.manual_seed(0)
    model = recipe.build_model("resnet20", s.input_size, len(s.classes))
    assert model.config == {"name": "resnet20", "kwargs": {"num_classes": 2, "in_channels": 1}}
    pattern = recipe.build_model("INPUT -> CONV(4) -> RELU -> POOL -> FC", s.input_size, 2)
    assert pattern.config["name"] == "from_pattern"
    with pytest.raises(ValueError, match="model alexnet takes 3-channel images and cannot be built for 1-channel"):
        recipe.build_model("alexnet", (1, 227, 227), 10)
    train_loader, val, test = splits.make_loaders(s, config.batch_size, seed=0)
    x, y = next(iter(train_loader))
    assert x.shape == (16, 1, 32, 32) and val is not None and len(test.dataset) == len(s.test)
    opt = recipe.make_optimizer(config, model)
    assert type(opt).__name__ == "SGD" and opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["momentum"] == 0.9
    sched = recipe.make_scheduler(config, opt)
    assert type(sched).__name__ == "CosineAnnealingLR" and sched.T_max == config.epochs
    assert recipe.make_scheduler(dataclasses.replace(config, scheduler="none"), opt) is None
    assert recipe.default_run_dir(config) == recipe.default_run_dir(dataclasses.replace(config, data="FACES"))
    assert str(recipe.default_run_dir(train.TrainConfig(model="INPUT -> FC", data="cifar-10"))) == "runs/pattern-cifar10"
