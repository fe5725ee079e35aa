"""The training recipe behind ``cnnkit train``, as small steps a Python user can call one by one.

:func:`run` is ``prepare(config).run()``: :func:`prepare` checks the :class:`~cnnkit.train.TrainConfig`,
picks the run directory, loads the data (:func:`load_data`), seeds and builds the model
(:func:`build_model`, :func:`start_from` for pre-trained weights), the loaders (:func:`make_loaders`,
:func:`augmentation`), the optimiser and the schedule (:func:`make_optimizer`, :func:`make_scheduler`);
:meth:`Prepared.run` trains (the epoch loop is :class:`~cnnkit.train.Trainer`), tests the kept weights
and writes ``metrics.json`` and the plots. Each step is a plain function of the config or of what the
step before made.

Example::

    >>> result = cnnkit.train.run(cnnkit.train.TrainConfig(epochs=5))
    >>> result.run_dir, result.metrics["test_accuracy"], len(result.history)
    (PosixPath('runs/lenet5-digits'), 0.97..., 5)
    >>> prepared = cnnkit.train.prepare(cnnkit.train.TrainConfig(model="resnet20", data="cifar10"))
    >>> print(prepared.summary())                       # the model before any training
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import data, models, optim
from ..files import atomic_write
from ..tensor import manual_seed
from ..transfer import apply_mode
from . import plots
from .config import DATA_SGD_LR, DEFAULT_LR, OPTIMIZERS, PATTERN_SGD_LR, TrainConfig
from .metrics import evaluate
from .pretrained import load_backbone
from .runs import read_config
from .splits import SPLIT_SEED, VAL_FRACTION, load_data, make_loaders
from .trainer import CHECKPOINT_FILE, Trainer

__all__ = ["run", "prepare", "Prepared", "RunResult", "resume_config", "is_pattern", "build_model", "start_from",
           "make_optimizer", "make_scheduler", "default_run_dir", "next_free", "latest_run"]

# ----------------------------------------------------------------------------- the run directory
def is_pattern(model: str) -> bool:
    """Whether ``model`` is a layer pattern (``"INPUT -> CONV -> ... -> FC"``) rather than a zoo name."""
    return "->" in model or "→" in model


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/MODEL-DATA``: ``runs/lenet5-digits``, ``runs/pattern-cifar10``, ``runs/resnet20-myfolder``."""
    model = "pattern" if is_pattern(config.model) else config.model
    label = data.builtin_name(config.data) or Path(config.data).resolve().name or "data"
    return Path("runs") / f"{model}-{label}"


def next_free(base: Path) -> Path:
    """``base`` if it does not exist, else the first free ``base-2``, ``base-3``, ..."""
    if not base.exists():
        return base
    i = 2
    while Path(f"{base}-{i}").exists():
        i += 1
    return Path(f"{base}-{i}")


def latest_run(base: Path) -> Path | None:
    """The most recently checkpointed of ``base``, ``base-2``, ``base-3``, ... (``None`` if none holds a checkpoint)."""
    found = [p for p in base.parent.glob(base.name + "*")
             if p.name == base.name or p.name[len(base.name):].lstrip("-").isdigit()] if base.parent.exists() else []
    found = [p for p in found if (p / CHECKPOINT_FILE).exists()]
    return max(found, key=lambda p: (p / CHECKPOINT_FILE).stat().st_mtime) if found else None


def resume_config(out=None, **changes) -> TrainConfig:
    """The config that continues the interrupted run in ``out`` with its saved settings.

    ``out=None`` takes the latest ``runs/MODEL-DATA*`` of ``changes``' model and data. ``changes`` may
    set how this invocation runs (``download``, ``plots``, ``progress``, ``root``) and ``epochs``
    (a larger total only with ``scheduler="none"``: a cosine or step schedule was planned for the saved
    number); any other setting that differs from the run's is refused, naming it.
    """
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(TrainConfig)} | ({"out", "resume"} & set(changes)))
    if unknown:
        raise TypeError(f"resume_config: unknown setting{'s' * (len(unknown) > 1)} {', '.join(unknown)}")
    if out is None:
        base = default_run_dir(TrainConfig(**changes))
        out = latest_run(base)
        if out is None:
            raise ValueError(f"--resume: no run to resume in {base}*; pass --out DIR")
    out = Path(out)
    if not (out / CHECKPOINT_FILE).exists():
        raise ValueError(f"--resume: {out} holds no {CHECKPOINT_FILE} to resume from")
    saved = read_config(out).get("training", {})
    free = set(TrainConfig.RUN_ONLY) - {"out", "resume"} | {"root", "epochs"}
    conflicts = [f"--{k.replace('_', '-')} {v} (the run used {saved.get(k)})" for k, v in changes.items()
                 if k not in free and v is not None and k in saved and v != saved[k]]
    if conflicts:
        raise ValueError(f"--resume continues {out} with its own settings; remove " + ", ".join(conflicts))
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - set(TrainConfig.RUN_ONLY)
    settings = {k: v for k, v in saved.items() if k in fields}
    settings.update({k: v for k, v in changes.items() if k in free and v is not None})
    epochs = settings.get("epochs", TrainConfig.epochs)
    if epochs != saved.get("epochs", epochs) and settings.get("scheduler", TrainConfig.scheduler) != "none":
        raise ValueError(f"--resume: the {settings['scheduler']} learning-rate schedule of {out} was planned for "
                         f"{saved['epochs']} epochs; resume with --epochs {saved['epochs']} (only runs with "
                         f"--scheduler none can be extended)")
    return TrainConfig(**settings, out=str(out), resume=True)


# ----------------------------------------------------------------------------- model and optimiser
def build_model(model: str, input_size, num_classes: int):
    """A fresh zoo model (``in_channels`` set when the data's channels differ from the model's) or, for a
    layer pattern, :func:`cnnkit.models.from_pattern`. Seed first (:func:`cnnkit.manual_seed`)."""
    if is_pattern(model):
        return models.from_pattern(model, input_size=tuple(input_size), num_classes=num_classes)
    channels = int(input_size[0])
    kwargs = {"num_classes": num_classes}
    if channels != models.default_input_size(model)[0]:
        kwargs["in_channels"] = channels
    try:
        return models.create(model, **kwargs)
    except TypeError as exc:
        if "in_channels" in kwargs and "in_channels" in str(exc):
            raise ValueError(f"model {model} takes {models.default_input_size(model)[0]}-channel images and "
                             f"cannot be built for {channels}-channel data") from None
        raise


def start_from(model, pretrained: str | None, freeze: str | None = None, *, load: bool = True):
    """Load ``pretrained`` into ``model`` but a head of another size (:func:`cnnkit.train.load_backbone`;
    skipped with ``load=False``, as when a resumed run restores its own weights), then freeze as
    :func:`cnnkit.transfer.apply_mode` says. Returns the load report (``None`` when nothing was loaded)."""
    report = load_backbone(model, pretrained) if pretrained and load else None
    if freeze:
        apply_mode(model, freeze)
    return report


def make_optimizer(config: TrainConfig, model):
    """The optimiser ``config.optimizer`` over ``model``'s parameters (lr ``None``: :data:`DEFAULT_LR`;
    SGD's momentum 0.9 unless set)."""
    name = config.optimizer
    kw = {"lr": config.lr if config.lr is not None else DEFAULT_LR[name], "weight_decay": config.weight_decay}
    if name == "sgd":
        kw["momentum"] = 0.9 if config.momentum is None else config.momentum
    elif config.momentum is not None:
        kw["momentum"] = config.momentum
    return getattr(optim, OPTIMIZERS[name])(model.parameters(), **kw)


def make_scheduler(config: TrainConfig, optimizer):
    """``step``: ×0.1 after each third of the epochs; ``cosine``: annealed to 0 over them; ``none``: ``None``."""
    if config.scheduler == "step":
        return optim.lr_scheduler.StepLR(optimizer, step_size=max(1, config.epochs // 3), gamma=0.1)
    if config.scheduler == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return None


# ----------------------------------------------------------------------------- the whole recipe
def _logger(log):
    if log is True:
        return lambda msg: print(msg, file=sys.stderr, flush=True)
    return log if callable(log) else (lambda msg: None)


def _want_plots(flag) -> bool:
    if flag is True and not plots.available():
        raise ValueError("--plots needs matplotlib: pip install matplotlib")
    return flag is not False and plots.available()


@dataclass
class RunResult:
    """What :func:`run` did: ``run_dir`` (its files), ``history`` (per-epoch records), ``metrics`` (what
    ``metrics.json`` holds; ``None`` when interrupted), the test :class:`~cnnkit.train.Evaluation` and
    the trained ``model`` (holding the kept weights)."""

    run_dir: Path
    history: object
    metrics: dict | None
    evaluation: object
    model: object

    @property
    def interrupted(self) -> bool:
        return bool(self.history.interrupted)


@dataclass
class Prepared:
    """A run with everything built and nothing trained: :func:`prepare`'s result; :meth:`run` trains it."""

    config: TrainConfig       # as resolved: lr set, data folder and root absolute
    run_dir: Path
    splits: data.Splits
    model: object
    loaders: tuple            # (train, val or None, test)
    optimizer: object
    scheduler: object
    pretrained: object = None  # the load report of config.pretrained (None: nothing loaded)
    log: object = True

    @property
    def name(self) -> str:
        """The model's recorded name (``"from_pattern"`` for a layer pattern)."""
        return self.model.config["name"]

    def summary(self) -> str:
        """The model's layer table (:func:`cnnkit.summary`), or one line when the report cannot be made."""
        from ..analysis import summary
        try:
            return str(summary(self.model, tuple(self.splits.input_size)))
        except Exception:  # the report is a courtesy; training does not depend on it
            n = sum(p.numel() for p in self.model.parameters())
            return f"{self.name}: {n:,} parameters, input {tuple(self.splits.input_size)}"

    def run_config(self) -> dict:
        """What ``config.json`` adds to the trainer's own entries: classes, input, normalisation, data, settings."""
        s = self.splits
        return {"classes": list(s.classes), "input_size": list(s.input_size),
                "normalize": {"mean": list(s.mean), "std": list(s.std)},
                "data": {"name": s.name, "source": self.config.data, "split_seed": SPLIT_SEED,
                         "val_fraction": VAL_FRACTION, "train": len(s.train),
                         "val": len(s.val) if s.val is not None else 0, "test": len(s.test)},
                "training": self.config.settings(), "prepare": s.prepare}

    def run(self, *, callbacks=()) -> RunResult:
        """Train (resuming when ``config.resume``), test the kept weights, write ``metrics.json`` and the plots."""
        cfg, out, say = self.config, self.run_dir, _logger(self.log)
        want_plots = _want_plots(cfg.plots)
        train, val, test = self.loaders
        out.mkdir(parents=True, exist_ok=True)
        sizes = self.run_config()["data"]
        say(f"{'resuming' if cfg.resume else 'training'} {self.name} on {self.splits.name} ({sizes['train']} train / "
            f"{sizes['val']} val / {sizes['test']} test images) -> {out}")
        trainer = Trainer(self.model, self.optimizer, self.scheduler, early_stopping=cfg.early_stopping, out_dir=out,
                          progress=cfg.progress, log=self.log, callbacks=callbacks, run_config=self.run_config(),
                          keep=cfg.keep)
        history = trainer.fit(train, val, epochs=cfg.epochs, seed=cfg.seed, resume=cfg.resume)
        if history.interrupted:
            return RunResult(out, history, None, None, self.model)
        if cfg.keep == "best":
            self.model.load_state_dict(trainer.best_weights)
        kept_epoch = history.best_epoch if cfg.keep == "best" else trainer.epoch
        result = evaluate(self.model, test)
        metrics = {"test_accuracy": result.accuracy, "test_loss": result.loss, "test_size": int(len(result.labels)),
                   "epochs": len(history), "best_epoch": history.best_epoch, "kept": cfg.keep,
                   "kept_epoch": kept_epoch,
                   "best_val_accuracy": max((r["val_accuracy"] for r in history.records if "val_accuracy" in r),
                                            default=None),
                   "train_seconds": round(history.train_seconds, 3), "stopped_early": history.stopped_early,
                   "model": self.name, "data": self.splits.name, "seed": trainer.seed}
        atomic_write(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        if want_plots:
            title = f"{self.name} on {self.splits.name}"
            plots.plot_curves(history.records, out / "curves.png", title=title)
            plots.plot_confusion(result.confusion_matrix(len(self.splits.classes)), self.splits.classes,
                                 out / "confusion.png", title=f"{title} (test, epoch {kept_epoch})")
        say(f"saved {out}/model.safetensors (epoch {kept_epoch}, {cfg.keep}), {CHECKPOINT_FILE}, config.json, "
            f"log.jsonl, metrics.json"
            f"{', curves.png, confusion.png' if want_plots else ''} in {history.train_seconds:.1f}s of training")
        return RunResult(out, history, metrics, result, self.model)


def _resolved(config: TrainConfig) -> TrainConfig:
    """``config`` with what a saved run must not leave open: the learning rate, absolute folder paths."""
    changes = {}
    if config.lr is None:
        changes["lr"] = DEFAULT_LR[config.optimizer]
        if config.optimizer == "sgd":
            changes["lr"] = DATA_SGD_LR.get(data.builtin_name(config.data), changes["lr"])
            if is_pattern(config.model):
                changes["lr"] = PATTERN_SGD_LR
    if data.builtin_name(config.data) is None and Path(config.data).is_dir():
        changes["data"] = str(Path(config.data).resolve())    # so evaluate and resume work from elsewhere
    if config.root is not None:
        changes["root"] = str(Path(config.root).resolve())
    return dataclasses.replace(config, **changes)


def _run_dir(config: TrainConfig) -> Path:
    if config.resume:
        if config.out is None:
            raise ValueError("resume=True needs out (the run directory); cnnkit.train.resume_config() finds the latest")
        out = Path(config.out)
        if not (out / CHECKPOINT_FILE).exists():
            raise ValueError(f"--resume: {out} holds no {CHECKPOINT_FILE} to resume from")
        saved = read_config(out).get("training", {})
        differ = [f"{k}={getattr(config, k)!r} (the run used {saved[k]!r})" for k in config.settings()
                  if k not in ("epochs", "root") and k in saved and getattr(config, k) != saved[k]]
        if differ:
            raise ValueError(f"resume continues {out} with its own settings, not {', '.join(differ)}; build the "
                             f"config with cnnkit.train.resume_config({str(out)!r})")
        return out
    if config.out is not None:
        out = Path(config.out)
        if (out / CHECKPOINT_FILE).exists():
            raise ValueError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
        return out
    return next_free(default_run_dir(config))


def prepare(config: TrainConfig, *, log=True) -> Prepared:
    """Check ``config``, pick the run directory, load the data, seed, build the model (from pre-trained
    weights when ``config.pretrained``), the loaders, the optimiser and the schedule. Nothing is written.

    ``log``: status lines (``True``: stderr, ``False``: none, or a callable taking each line); the
    trainer's epoch lines follow it too.
    """
    config = config.check()
    if not is_pattern(config.model):
        models.default_input_size(config.model)       # an unknown model name fails here, before any data is read
    config = _resolved(config)
    out = _run_dir(config)
    _want_plots(config.plots)
    splits = load_data(config.data, root=config.root, download=config.download,
                       input_size=None if is_pattern(config.model) else models.default_input_size(config.model))
    manual_seed(config.seed)
    model = build_model(config.model, splits.input_size, len(splits.classes))
    report = start_from(model, config.pretrained, config.freeze, load=not config.resume)
    if report is not None:
        _logger(log)(f"loaded {len(report.loaded)} pre-trained tensors from {config.pretrained}")
    loaders = make_loaders(splits, config.batch_size, config.seed, config.augment)
    optimizer = make_optimizer(config, model)
    return Prepared(config, out, splits, model, loaders, optimizer, make_scheduler(config, optimizer), report, log)


def run(config: TrainConfig, *, log=True, callbacks=()) -> RunResult:
    """Train as ``cnnkit train`` does: ``prepare(config, log=log).run(callbacks=callbacks)``.

    Returns a :class:`RunResult`: the run directory (``model.safetensors``, ``config.json``, ``log.jsonl``,
    ``checkpoint.safetensors``, ``metrics.json``, the plots), the history, the test metrics and the model.
    Ctrl-C stops after the last finished epoch (``result.interrupted``); resume with
    ``run(resume_config(result.run_dir))``, which ends bit for bit where an uninterrupted run ends.
    ``callbacks``: ``callback(trainer, record)`` after each epoch (see :func:`cnnkit.train.fit`).
    """
    return prepare(config, log=log).run(callbacks=callbacks)
