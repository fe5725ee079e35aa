"""Training classifiers: the recipe behind ``cnnkit train`` (:class:`TrainConfig`, :func:`run`, and its
steps in :mod:`cnnkit.train.recipe`), the loop (:func:`fit`, :class:`Trainer`), checkpoints without
pickle, metrics and plots, starting from pre-trained weights (:func:`load_backbone`, :func:`finetune`)
and using a finished run (:func:`load_run`, :func:`evaluate_run`, :func:`predict_files`,
:func:`prepare_image`). The ``cnnkit train / evaluate / predict`` commands only parse arguments into
these and print their results.

>>> result = cnnkit.train.run(cnnkit.train.TrainConfig(epochs=5))   # LeNet-5 on the built-in digits
>>> result.run_dir, result.metrics["test_accuracy"]
"""
from .checkpoint import (Checkpoint, CheckpointError, load_checkpoint, load_weights, save_checkpoint,
                         save_weights)
from .config import TrainConfig
from .metrics import Evaluation, confusion_matrix, evaluate, precision_recall
from .trainer import (CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE, WEIGHTS_FILE, DivergedError, History, Trainer,
                      fit)
from .pretrained import finetune, load_backbone, read_pretrained
from .runs import Run, evaluate_run, load_model, load_run, predict_files, predict_proba, prepare_image, read_config
from .recipe import Prepared, RunResult, prepare, resume_config, run

__all__ = ["TrainConfig", "run", "prepare", "resume_config", "Prepared", "RunResult",
           "fit", "Trainer", "History", "DivergedError", "evaluate", "Evaluation", "confusion_matrix",
           "precision_recall", "save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError",
           "save_weights", "load_weights", "WEIGHTS_FILE", "CONFIG_FILE", "LOG_FILE", "CHECKPOINT_FILE",
           "read_pretrained", "load_backbone", "finetune",
           "Run", "load_run", "read_config", "load_model", "evaluate_run", "predict_files", "predict_proba",
           "prepare_image"]
