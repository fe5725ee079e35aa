"""The settings of a training run (``cnnkit train``, :func:`cnnkit.train.run`) as one dataclass.

Each field is the ``cnnkit train`` option of the same name (``batch_size`` is ``--batch-size``;
``pretrained`` is ``--from``), and error messages name them as the command does. The defaults are
those of a plain ``cnnkit train``: LeNet-5 on the built-in digits, about 99 % test accuracy (README,
"Training", for seeds 0, 1, 2). ``keep="last"``: the epoch chosen on the 180 validation digits (too
few to choose by) tested no better than the last epoch's weights.

Example::

    >>> config = cnnkit.train.TrainConfig(model="resnet20", data="cifar10", download=True, epochs=60)
    >>> result = cnnkit.train.run(config)              # → result.run_dir, .history, .metrics
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["TrainConfig", "DEFAULT_LR", "DATA_SGD_LR", "PATTERN_SGD_LR", "OPTIMIZERS", "SCHEDULERS"]

DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-2}       # lr=None means these
# A data set's own SGD rate where the default does not suit it, chosen on its validation split (mnist-5k: 400
# digits, seeds 0-2, 40 epochs; the figures are in benchmarks/RESULTS.md, "mnist-5k's SGD learning rate").
DATA_SGD_LR = {"mnist-5k": 0.02}
# Layer patterns (`cnnkit train "INPUT -> ... -> FC"`): plain networks without batch norm, often deeper than LeNet-5.
# The README's [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU]*2 -> FC on 3 × 40 generated shapes, seeds 0-2, 40
# epochs: at 0.05 one seed diverged (He initialisation alone) or collapsed to chance (with small logits); at 0.02
# all three reached 100 % training accuracy (VGG, plain as these, trained at 0.01).
PATTERN_SGD_LR = 0.02
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad"}   # name → cnnkit.optim
SCHEDULERS = ("none", "step", "cosine")


@dataclass
class TrainConfig:
    """What to train on what, and how (see the module docstring). ``None`` means "the recipe decides"."""

    # --- what: the model and the data
    model: str = "lenet5"            # a zoo name (cnnkit.models.names()) or a layer pattern "INPUT -> ... -> FC"
    data: str = "digits"             # digits, faces, mnist-5k (built-in), mnist, fashion-mnist, cifar10, or a folder
    root: str | None = None          # folder of the downloadable sets (None: $CNNKIT_HOME/datasets or ~/.cache/...)
    download: bool = False           # fetch a missing downloadable set (SHA-256 verified)
    # --- how: optimisation
    epochs: int = 40
    batch_size: int = 32
    optimizer: str = "sgd"           # sgd (momentum 0.9), adam, rmsprop, adagrad
    lr: float | None = None          # None: DEFAULT_LR of the optimiser (sgd: PATTERN_SGD_LR, DATA_SGD_LR)
    momentum: float | None = None    # sgd and rmsprop only (None: 0.9 for sgd, 0 for rmsprop)
    weight_decay: float = 5e-4       # L2
    scheduler: str = "cosine"        # none, step (×0.1 after each third of the epochs), cosine
    early_stopping: int | None = None    # stop after this many epochs without a better validation accuracy
    augment: bool = True             # random shifts (and flips for faces, cifar10) of the named sets' training images
    keep: str = "last"               # the weights saved and tested: the last epoch's, or the best on validation
    seed: int = 0                    # initialisation, shuffling and augmentation
    # --- from pre-trained weights (transfer learning)
    pretrained: str | None = None    # a run directory, a .safetensors/.pth file or registered weights (`--from`)
    freeze: str | None = None        # with pretrained: train only the new head, the later half, or all
    # --- the run directory and what is shown
    out: str | None = None           # None: runs/MODEL-DATA, numbered -2, -3, ... if it exists
    resume: bool = False             # continue the interrupted run in `out` (see cnnkit.train.resume_config)
    plots: bool | None = None        # curves.png and confusion.png (None: when matplotlib is installed)
    progress: bool | None = None     # progress bar on stderr (None: only when stderr is a terminal)

    # fields that say how this invocation runs, not how the model was trained: not saved in config.json
    RUN_ONLY = ("download", "out", "resume", "plots", "progress")

    def settings(self) -> dict:
        """The fields saved as ``config.json["training"]`` (and compared when a run is resumed)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self.RUN_ONLY}

    def check(self) -> "TrainConfig":
        """Refuse a setting no run could use, naming it (before any data is read or file written)."""
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ValueError(f"--early-stopping must be at least 1, got {self.early_stopping}")
        for key, allowed in (("optimizer", tuple(OPTIMIZERS)), ("scheduler", SCHEDULERS), ("keep", ("last", "best")),
                             ("freeze", (None, "head", "later", "all"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"--{key} must be one of {', '.join(str(a) for a in allowed if a)}, "
                                 f"got {getattr(self, key)!r}")
        if self.momentum is not None and self.optimizer not in ("sgd", "rmsprop"):
            raise ValueError(f"--momentum applies to sgd and rmsprop, not {self.optimizer}")
        if self.freeze and not self.pretrained:
            raise ValueError("--freeze needs --from (the pre-trained weights to keep)")
        return self
