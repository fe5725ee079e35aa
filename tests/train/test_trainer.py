import json

import numpy as np
import pytest

import cnnkit
from cnnkit.train import CheckpointError, DivergedError, Trainer, fit, load_checkpoint

from cnnkit import optim
from cnnkit.data import ArrayDataset, DataLoader
from cnnkit.nn.functional import cross_entropy
from cnnkit.optim.lr_scheduler import CosineAnnealingLR, StepLR

from .standins import TinyNet, blobs, loaders

OPTIMISERS = {
    "sgd+step": lambda p: (lambda o: (o, StepLR(o, step_size=2, gamma=0.5)))(optim.SGD(p, lr=0.05, momentum=0.9)),
    "adam+cosine": lambda p: (lambda o: (o, CosineAnnealingLR(o, T_max=5)))(optim.Adam(p, lr=0.01)),
    "rmsprop": lambda p: (optim.RMSprop(p, lr=0.003, momentum=0.5), None),
    "adagrad": lambda p: (optim.Adagrad(p, lr=0.05), None),
}


def make(seed=0, kind="sgd+step"):
    cnnkit.manual_seed(seed)
    model = TinyNet()
    opt, sched = OPTIMISERS[kind](model.parameters())
    return model, opt, sched


def run(tmp_path, epochs=4, callbacks=(), resume=False, model_seed=0, kind="sgd+step", **kw):
    model, opt, sched = make(model_seed, kind)
    train, val = loaders()
    h = fit(model, train, val, epochs=epochs, optimizer=opt, scheduler=sched, loss=cross_entropy,
            out_dir=tmp_path, seed=7, log=False, callbacks=callbacks, resume=resume, **kw)
    return model, opt, sched, h


def test_fit_learns_and_writes_run_directory(tmp_path):
    model, opt, sched, h = run(tmp_path, epochs=5)
    assert h["epoch"] == [1, 2, 3, 4, 5]
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["val_accuracy"][-1] >= 0.9
    assert {p.name for p in tmp_path.iterdir()} == {"model.safetensors", "config.json", "log.jsonl",
                                                    "checkpoint.safetensors"}
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5]
    assert set(lines[0]) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds", "best"}
    assert [r["lr"] for r in lines] == [0.05, 0.05, 0.025, 0.025, 0.0125]  # StepLR(2, 0.5) stepped per epoch
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model"] == {"name": "tiny_net", "kwargs": {"num_classes": 3, "width": 4}, "class": "TinyNet"}
    assert cfg["optimizer"]["name"] == "SGD"
    assert cfg["optimizer"]["hyperparameters"]["lr"] == 0.05
    assert cfg["optimizer"]["hyperparameters"]["momentum"] == 0.9
    assert cfg["seed"] == 7 and cfg["epochs_completed"] == 5 and cfg["epoch"] == h.best_epoch


def test_best_weights_are_those_of_best_epoch(tmp_path):
    model, opt, sched, h = run(tmp_path, epochs=4)
    best = cnnkit.train.load_weights(tmp_path / "model.safetensors")
    val = h["val_accuracy"]
    assert h.best_epoch in [i + 1 for i, v in enumerate(val) if v == max(val)]
    # a fresh model trained for exactly best_epoch epochs has these weights
    m2, *_ = run(tmp_path / "again", epochs=h.best_epoch)
    for k, v in m2.state_dict().items():
        np.testing.assert_array_equal(best[k], v)


def test_same_seed_same_weights(tmp_path):
    a, *_ = run(tmp_path / "a")
    b, *_ = run(tmp_path / "b")
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert np.array_equal(v, w), k


class StopAfter:
    def __init__(self, epoch):
        self.epoch = epoch

    def __call__(self, trainer, record):
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("kind", list(OPTIMISERS))
def test_resume_after_interrupt_is_bit_exact(tmp_path, kind):
    full, full_opt, full_sched, _ = run(tmp_path / "full", epochs=5, kind=kind)
    part, _, _, h = run(tmp_path / "part", epochs=5, callbacks=[StopAfter(2)], kind=kind)
    assert h.interrupted and len(h) == 2
    assert load_checkpoint(tmp_path / "part" / "checkpoint.safetensors").state["epoch"] == 2
    # a new process: a differently initialised model, fresh optimiser/scheduler, RNG elsewhere
    cnnkit.manual_seed(12345)
    resumed, opt, sched, h2 = run(tmp_path / "part", epochs=5, resume=True, model_seed=99, kind=kind)
    assert h2["epoch"] == [1, 2, 3, 4, 5] and not h2.interrupted
    assert h2["train_loss"][2:] == [r["train_loss"] for r in h2.records[2:]]
    for (k, v), w in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert np.array_equal(v, w), k  # weights and BatchNorm running statistics
    for i, s in full_opt.state.items():
        for name, value in s.items():
            assert np.array_equal(value, opt.state[i][name]), (i, name)
            assert type(value) is type(opt.state[i][name])
    assert opt.param_groups[0]["lr"] == full_opt.param_groups[0]["lr"]
    if sched is not None:
        assert sched.last_epoch == full_sched.last_epoch == 5
    assert [json.loads(s)["epoch"] for s in (tmp_path / "part" / "log.jsonl").read_text().splitlines()] == \
        [1, 2, 3, 4, 5]
    best_full = cnnkit.train.load_weights(tmp_path / "full" / "model.safetensors")
    best_part = cnnkit.train.load_weights(tmp_path / "part" / "model.safetensors")
    assert all(np.array_equal(best_full[k], best_part[k]) for k in best_full)


class InterruptingLoader(DataLoader):
    """Raises KeyboardInterrupt in the middle of epoch ``at`` (as Ctrl-C would)."""

    def __init__(self, *a, at=3, **kw):
        super().__init__(*a, **kw)
        self.at = at

    def __iter__(self):
        epoch = self.epoch
        for i, batch in enumerate(super().__iter__()):
            if epoch + 1 == self.at and i == 2:
                raise KeyboardInterrupt
            yield batch


def test_ctrl_c_mid_epoch_keeps_last_finished_epoch_and_resumes_exactly(tmp_path):
    full, *_ = run(tmp_path / "full", epochs=4)
    model, opt, sched = make()
    x, y = blobs(seed=1)
    train = InterruptingLoader(ArrayDataset(x[:90], y[:90], ["a", "b", "c"]), batch_size=16, shuffle=True, seed=0,
                               at=3)
    val = loaders()[1]
    h = fit(model, train, val, epochs=4, optimizer=opt, scheduler=sched, loss=cross_entropy,
            out_dir=tmp_path / "cut", seed=7, log=False)
    assert h.interrupted and len(h) == 2
    resumed, *_ = run(tmp_path / "cut", epochs=4, resume=True, model_seed=5)
    for v, w in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert np.array_equal(v, w)


def test_resume_refuses_other_architecture(tmp_path):
    run(tmp_path, epochs=1)
    cnnkit.manual_seed(0)
    other = TinyNet(num_classes=4)
    train, val = loaders()
    with pytest.raises(CheckpointError, match=r"saved from tiny_net\(num_classes=3, width=4\), but the model "
                                              r"is tiny_net\(num_classes=4, width=4\)"):
        fit(other, train, val, epochs=2, optimizer=optim.SGD(other.parameters(), lr=0.1), out_dir=tmp_path,
            resume=True, log=False)
    other.config = {"name": "lenet5", "kwargs": {}}
    with pytest.raises(CheckpointError, match="saved from model 'tiny_net', not 'lenet5'"):
        fit(other, train, val, epochs=2, optimizer=optim.SGD(other.parameters(), lr=0.1), out_dir=tmp_path,
            resume=True, log=False)


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(tmp_path, resume=True)


def test_early_stopping(tmp_path):
    model, opt, _ = make()
    opt.param_groups[0]["lr"] = 0.0  # nothing improves after epoch 1
    model.drop.p = 0.0
    train, val = loaders()
    h = fit(model, train, val, epochs=10, optimizer=opt, loss=cross_entropy, early_stopping=2, log=False)
    assert h.stopped_early and len(h) == 3 and h.best_epoch == 1


def test_divergence_is_reported():
    model, opt, _ = make()
    train, _ = loaders()
    with pytest.raises(DivergedError, match="diverged at epoch 1, batch 1: the loss is nan"):
        fit(model, train, epochs=1, optimizer=opt, loss=lambda out, y: out.sum() * float("nan"), log=False)


def test_bad_arguments():
    model, opt, _ = make()
    train, _ = loaders()
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        fit(model, train, epochs=0, optimizer=opt, log=False)
    with pytest.raises(ValueError, match="patience must be a positive number of epochs, got 0"):
        Trainer(model, opt, early_stopping=0)


def test_epoch_lines_and_callback_stop():
    model, opt, _ = make()
    train, val = loaders()
    lines = []

    def stop(trainer, record):
        trainer.stop = record["epoch"] == 2
    h = fit(model, train, val, epochs=5, optimizer=opt, loss=cross_entropy, log=lines.append, callbacks=[stop],
            progress=False)
    assert len(h) == 2 and len(lines) == 2
    assert lines[0].startswith("epoch   1  train loss") and "val loss" in lines[0] and "acc" in lines[0]


def test_progress_bar_runs_when_forced(capsys):
    model, opt, _ = make()
    train, _ = loaders()
    fit(model, train, epochs=1, optimizer=opt, loss=cross_entropy, progress=True)
    err = capsys.readouterr().err
    assert "epoch   1" in err


def test_no_bar_when_stderr_is_not_a_terminal(capsys):
    model, opt, _ = make()
    train, _ = loaders()
    fit(model, train, epochs=2, optimizer=opt)  # progress=None: decided by stderr.isatty(), False under pytest
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2 and all(line.startswith("epoch") for line in lines) and "\x1b" not in captured.err


def test_keep_last_saves_final_weights(tmp_path):
    model, *_ = run(tmp_path, epochs=3, keep="last")
    saved = cnnkit.train.load_weights(tmp_path / "model.safetensors")
    assert all(np.array_equal(saved[k], v) for k, v in model.state_dict().items())
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["kept"] == "last" and cfg["epoch"] == 3
    with pytest.raises(ValueError, match="keep must be 'best' or 'last', got 'worst'"):
        Trainer(model, keep="worst")
