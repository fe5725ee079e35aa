"""Training classifiers: the loop (:func:`fit`, :class:`Trainer`), checkpoints without pickle,
metrics and plots; starting from pre-trained weights (:func:`load_backbone`, :func:`finetune`).
The ``cnnkit train / evaluate / predict`` commands are built on these."""
from .checkpoint import (Checkpoint, CheckpointError, load_checkpoint, load_weights, save_checkpoint,
                         save_weights)
from .metrics import Evaluation, confusion_matrix, evaluate, precision_recall
from .trainer import (CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE, WEIGHTS_FILE, DivergedError, History, Trainer,
                      fit)
from .pretrained import finetune, load_backbone, read_pretrained

__all__ = ["fit", "Trainer", "History", "DivergedError", "evaluate", "Evaluation", "confusion_matrix",
           "precision_recall", "save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError",
           "save_weights", "load_weights", "WEIGHTS_FILE", "CONFIG_FILE", "LOG_FILE", "CHECKPOINT_FILE",
           "read_pretrained", "load_backbone", "finetune"]
