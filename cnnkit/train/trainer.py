"""The training loop: epochs of SGD-style updates, validation, best-weights tracking, early
stopping, per-epoch files in a run directory, Ctrl-C handling and bit-exact resume.

A run directory (``out_dir``) holds:

* ``model.safetensors`` + ``config.json``: the best weights so far (by validation accuracy, ties
  broken by lower validation loss; or the last epoch's with ``keep="last"``) and how to rebuild
  the model and feed it data;
* ``log.jsonl``: one JSON object per finished epoch;
* ``checkpoint.safetensors``: the state after the last finished epoch (weights, optimiser,
  scheduler, random generator, trainer counters, best weights), from which ``resume=True``
  continues exactly as if the run had never stopped.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..tensor import Tensor, manual_seed
from . import checkpoint as ckpt
from .metrics import default_loss, evaluate
from .progress import TrainingProgress

__all__ = ["History", "Trainer", "fit", "DivergedError", "WEIGHTS_FILE", "CONFIG_FILE", "LOG_FILE",
           "CHECKPOINT_FILE"]

WEIGHTS_FILE, CONFIG_FILE, LOG_FILE, CHECKPOINT_FILE = ("model.safetensors", "config.json", "log.jsonl",
                                                        "checkpoint.safetensors")
RUN_FORMAT_VERSION = 1


class DivergedError(ArithmeticError):
    """The training loss became NaN or infinite."""


@dataclass
class History:
    """Per-epoch records (``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
    ``val_accuracy``, ``lr``, ``seconds``) and how the run ended. ``history["val_accuracy"]`` is
    the list of one metric over epochs."""

    records: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False

    def __getitem__(self, key: str) -> list:
        return [r.get(key) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def train_seconds(self) -> float:
        return float(sum(r["seconds"] for r in self.records))


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


def _hyperparameters(obj) -> dict:
    """An optimiser's or scheduler's settings as JSON (``defaults`` or first param group)."""
    if obj is None:
        return {}
    src = getattr(obj, "defaults", None)
    if src is None and getattr(obj, "param_groups", None):
        src = obj.param_groups[0]
    if src is None:
        src = {k: v for k, v in vars(obj).items() if not k.startswith("_") and k != "optimizer"}
    return _jsonable({k: v for k, v in dict(src).items() if k != "params" and isinstance(
        v, (int, float, str, bool, tuple, list, type(None), np.generic))})


class Trainer:
    """Trains a classifier; see :func:`fit` for the arguments.

    Example::

        >>> trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-3), out_dir="runs/x")
        >>> history = trainer.fit(train_loader, val_loader, epochs=20, seed=0)
    """

    def __init__(self, model, optimizer=None, scheduler=None, loss=None, *, early_stopping: int | None = None,
                 out_dir=None, progress: bool | None = None, log=True, callbacks=(), run_config: dict | None = None,
                 keep: str = "best"):
        if optimizer is None:
            from ..optim import Adam
            optimizer = Adam(model.parameters(), lr=1e-3)
        if early_stopping is not None and (isinstance(early_stopping, bool) or not isinstance(early_stopping, int)
                                           or early_stopping < 1):
            raise ValueError(f"early_stopping: patience must be a positive number of epochs, got {early_stopping!r}")
        if keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
        self.keep = keep
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.loss = loss if loss is not None else default_loss()
        self.early_stopping = early_stopping
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress, self.log = progress, log
        self.callbacks = list(callbacks)
        self.run_config = dict(run_config or {})
        self.history = History()
        self.epoch = 0              # last finished epoch
        self.epochs = 0
        self.seed = None
        self.stop = False           # a callback may set this to end training after the current epoch
        self.best_weights = None
        self._best = None           # (accuracy, -loss) of the best epoch
        self._bad_epochs = 0
        self._best_digest = None
        self._saved_epoch = 0
        self._dirty = False         # weights changed since the last finished epoch

    # ------------------------------------------------------------------ public
    def fit(self, train_loader, val_loader=None, epochs: int = 10, seed: int | None = None,
            resume=False) -> History:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        self.epochs = epochs
        if resume:
            self._resume(resume)
        elif seed is not None:
            manual_seed(seed)
            self.seed = int(seed)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        with TrainingProgress(self.progress, self.log) as prog:
            try:
                for epoch in range(self.epoch + 1, epochs + 1):
                    record = self._run_epoch(epoch, train_loader, val_loader, prog)
                    self._finish_epoch(record)
                    prog.line(self._describe(record))
                    for callback in self.callbacks:
                        callback(self, record)
                    if self.stop:
                        break
            except KeyboardInterrupt:
                self.history.interrupted = True
                if self.out_dir is not None and not self._dirty and self._saved_epoch < self.epoch:
                    self._save_files()
                where = f"; state after epoch {self._saved_epoch} is saved in {self.out_dir}" \
                    if self.out_dir is not None and self._saved_epoch else ""
                prog.line(f"interrupted after {self.epoch} finished epoch(s){where}")
        return self.history

    # ------------------------------------------------------------------ one epoch
    def _run_epoch(self, epoch, train_loader, val_loader, prog) -> dict:
        start = time.perf_counter()
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch - 1)
        self.model.train()
        lr = float(self.optimizer.param_groups[0]["lr"]) if getattr(self.optimizer, "param_groups", None) else None
        try:
            batches = len(train_loader)
        except TypeError:
            batches = None
        prog.start_epoch(epoch, self.epochs, batches)
        total, correct, n = 0.0, 0, 0
        self._dirty = True
        for i, (x, y) in enumerate(train_loader, 1):
            out = self.model(x)                                       # (B, K) logits
            loss = self.loss(out, y)
            value = float(loss.item())
            if not np.isfinite(value):
                raise DivergedError(f"training diverged at epoch {epoch}, batch {i}: the loss is {value}; "
                                    f"lower the learning rate (now {lr})")
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            y_arr = y.data if isinstance(y, Tensor) else np.asarray(y)
            total += value * len(y_arr)
            correct += int((out.data.argmax(axis=1) == y_arr).sum())
            n += len(y_arr)
            prog.batch(total / n)
        if n == 0:
            raise ValueError("the training loader yielded no batches (is the data set smaller than the "
                             "batch size with drop_last=True?)")
        if self.scheduler is not None:
            self.scheduler.step()
        record = {"epoch": epoch, "train_loss": total / n, "train_accuracy": correct / n}
        if val_loader is not None:
            val = evaluate(self.model, val_loader, self.loss)
            record.update(val_loss=val.loss, val_accuracy=val.accuracy)
        record.update(lr=lr, seconds=time.perf_counter() - start)
        self._dirty = False
        self.epoch = epoch
        return record

    def _finish_epoch(self, record: dict) -> None:
        prefix = "val" if "val_accuracy" in record else "train"
        score = (record[f"{prefix}_accuracy"], -record[f"{prefix}_loss"])
        improved = self._best is None or score > self._best
        record["best"] = improved
        self.history.records.append(record)
        if improved:
            self._best = score
            self._bad_epochs = 0
            self.history.best_epoch = record["epoch"]
            self.best_weights = self.model.state_dict()
        else:
            self._bad_epochs += 1
            if self.early_stopping is not None and self._bad_epochs >= self.early_stopping:
                self.history.stopped_early = True
                self.stop = True
        if self.out_dir is not None:
            self._save_files(weights_changed=improved or self.keep == "last")

    @staticmethod
    def _describe(r: dict) -> str:
        text = (f"epoch {r['epoch']:>3}  train loss {r['train_loss']:.4f} acc {100 * r['train_accuracy']:6.2f}%")
        if "val_loss" in r:
            text += f"  val loss {r['val_loss']:.4f} acc {100 * r['val_accuracy']:6.2f}%"
        if r.get("lr") is not None:
            text += f"  lr {r['lr']:.3g}"
        return text + f"  {r['seconds']:.1f}s" + ("  *" if r.get("best") else "")

    # ------------------------------------------------------------------ files
    def config(self) -> dict:
        """What ``config.json`` says: how to rebuild the model, feed it data, and how it was trained."""
        cfg = {"format": "cnnkit-run", "format_version": RUN_FORMAT_VERSION,
               "model": ckpt.model_config(self.model), "weights": WEIGHTS_FILE,
               "weights_digest": self._best_digest,
               "epoch": self.history.best_epoch if self.keep == "best" else self.epoch, "kept": self.keep,
               "best_epoch": self.history.best_epoch,
               "epochs_completed": self.epoch, "epochs": self.epochs, "seed": self.seed,
               "optimizer": {"name": type(self.optimizer).__name__,
                             "hyperparameters": _hyperparameters(self.optimizer)},
               "scheduler": None if self.scheduler is None else {
                   "name": type(self.scheduler).__name__, "hyperparameters": _hyperparameters(self.scheduler)},
               "early_stopping": self.early_stopping}
        cfg.update(_jsonable(self.run_config))
        return cfg

    def _save_files(self, weights_changed: bool = True) -> None:
        d = self.out_dir
        if weights_changed or not (d / WEIGHTS_FILE).exists():
            weights = self.best_weights if self.keep == "best" else self.model.state_dict()
            self._best_digest = ckpt.save_weights(weights, d / WEIGHTS_FILE, {"model": ckpt.model_config(self.model)})
        atomic_write(d / CONFIG_FILE, json.dumps(self.config(), indent=2) + "\n")
        atomic_write(d / LOG_FILE, "".join(json.dumps(r) + "\n" for r in self.history.records))
        state = {"epoch": self.epoch, "epochs": self.epochs, "seed": self.seed, "history": self.history.records,
                 "best_epoch": self.history.best_epoch, "best": list(self._best) if self._best else None,
                 "bad_epochs": self._bad_epochs, "best_digest": self._best_digest}
        ckpt.save_checkpoint(d / CHECKPOINT_FILE, self.model, self.optimizer, self.scheduler, state=state,
                             extra=self.best_weights)
        self._saved_epoch = self.epoch

    def _resume(self, resume) -> None:
        path = Path(resume) if not isinstance(resume, bool) else (
            self.out_dir / CHECKPOINT_FILE if self.out_dir is not None else None)
        if path is None:
            raise ValueError("resume=True needs out_dir (the run directory holding checkpoint.safetensors)")
        if path.is_dir():
            path = path / CHECKPOINT_FILE
        if not path.exists():
            raise FileNotFoundError(f"cannot resume: no checkpoint at {str(path)!r}")
        c = ckpt.load_checkpoint(path)
        c.restore(self.model, self.optimizer, self.scheduler)
        s = c.state
        self.epoch = self._saved_epoch = int(s.get("epoch", 0))
        self.seed = s.get("seed")
        self.history.records = list(s.get("history", []))
        self.history.best_epoch = s.get("best_epoch")
        self._best = tuple(s["best"]) if s.get("best") else None
        self._bad_epochs = int(s.get("bad_epochs", 0))
        self._best_digest = s.get("best_digest")
        self.best_weights = dict(c.extra) if c.extra else self.model.state_dict()


def fit(model, train_loader, val_loader=None, *, epochs: int = 10, optimizer=None, scheduler=None, loss=None,
        early_stopping: int | None = None, out_dir=None, seed: int | None = None, resume=False,
        progress: bool | None = None, log=True, callbacks=(), run_config: dict | None = None,
        keep: str = "best", restore_best: bool = False) -> History:
    """Train ``model`` on ``train_loader`` for ``epochs`` epochs; returns the :class:`History`.

    Args:
        model: a ``Module`` returning logits ``(B, K)``.
        train_loader, val_loader: iterables of ``(x, y)`` batches (``cnnkit.data.DataLoader``); a
            loader's ``set_epoch(e)`` is called before each epoch so its shuffle is reproducible.
        epochs: total number of epochs (a resumed run continues up to this number).
        optimizer: a ``cnnkit.optim`` optimiser (default ``Adam(lr=1e-3)``).
        scheduler: a learning-rate scheduler, stepped once per epoch.
        loss: ``loss(logits, labels) -> Tensor`` (default ``F.cross_entropy``).
        early_stopping: patience: stop after this many epochs without a better validation score.
        out_dir: run directory for ``model.safetensors``, ``config.json``, ``log.jsonl`` and
            ``checkpoint.safetensors``, rewritten (atomically) after every epoch.
        seed: passed to :func:`cnnkit.manual_seed` at the start (ignored when resuming: the saved
            generator state is restored instead). Seed the model's initialisation and the loaders yourself.
        resume: ``True`` (continue from ``out_dir``) or a checkpoint path.
        progress: progress bar on stderr: ``None`` = only on a terminal.
        log: epoch lines: ``True`` = stderr, ``False`` = silent, or a callable taking each line.
        callbacks: ``callback(trainer, record)`` after each epoch (after its files are saved); set
            ``trainer.stop = True`` to end training; a ``KeyboardInterrupt`` raised there acts like Ctrl-C.
        run_config: extra JSON-able entries for ``config.json`` (class names, input size, normalisation, data set).
        keep: which weights ``out_dir/model.safetensors`` holds: ``"best"`` (highest validation
            accuracy, ties to the lower validation loss) or ``"last"`` (the final epoch; with an
            annealed learning rate and a small validation split often the better choice).
        restore_best: load the best weights into ``model`` before returning.

    Ctrl-C stops training cleanly: the state after the last finished epoch is on disk and
    ``history.interrupted`` is set.
    """
    trainer = Trainer(model, optimizer, scheduler, loss, early_stopping=early_stopping, out_dir=out_dir,
                      progress=progress, log=log, callbacks=callbacks, run_config=run_config, keep=keep)
    history = trainer.fit(train_loader, val_loader, epochs=epochs, seed=seed, resume=resume)
    if restore_best and trainer.best_weights is not None:
        model.load_state_dict(trainer.best_weights)
    return history
