"""A finished run directory as something to use: rebuild its model, evaluate it, prepare images the way
its training data was prepared, and predict (``cnnkit evaluate``, ``cnnkit predict``, ``cnnkit export``).

``config.json`` (written by the trainer) says how: the model's name and constructor arguments, the
class names, the input size ``(C, H, W)`` and the normalisation mean/std of the training data.
:func:`prepare_image` is where ``cnnkit predict`` turns an image file into a model input.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tensor import Tensor, no_grad
from .checkpoint import CheckpointError, arrays_digest, load_weights
from .metrics import evaluate, precision_recall
from .splits import EVAL_BATCH, load_data
from .trainer import CONFIG_FILE, WEIGHTS_FILE

__all__ = ["Run", "load_run", "read_config", "load_model", "evaluate_run", "prepare_image", "predict_proba",
           "predict_files"]


@dataclass
class Run:
    """A trained model with what it needs to see images as it saw them in training."""

    path: Path
    config: dict
    model: object
    classes: list
    input_size: tuple
    mean: tuple
    std: tuple


def read_config(run_dir) -> dict:
    """``run_dir/config.json`` as a dict, or a clear error if the folder is not a run directory."""
    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"run directory {str(d)!r} does not exist")
    f = d / CONFIG_FILE
    if not f.is_file():
        raise FileNotFoundError(f"{d} holds no {CONFIG_FILE}: not a run directory written by `cnnkit train`")
    try:
        cfg = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{f} is damaged: not valid JSON ({exc})") from None
    missing = [k for k in ("model", "classes", "input_size", "normalize") if k not in cfg]
    if cfg.get("format") != "cnnkit-run" or missing:
        raise CheckpointError(f"{f} is not a cnnkit run configuration"
                              + (f" (it lacks {', '.join(missing)})" if missing else ""))
    return cfg


def load_run(run_dir) -> Run:
    """Rebuild the model of a run directory and load its best weights (checked against config.json)."""
    from ..models import rebuild

    d = Path(run_dir)
    cfg = read_config(d)
    model_cfg = {k: v for k, v in cfg["model"].items() if k != "class"}
    model = rebuild(model_cfg)
    weights = d / cfg.get("weights", WEIGHTS_FILE)
    if not weights.is_file():
        raise FileNotFoundError(f"{d} holds no {weights.name}: the run saved no weights")
    arrays = load_weights(weights, model)
    if cfg.get("weights_digest") and arrays_digest(arrays) != cfg["weights_digest"]:
        raise CheckpointError(f"{weights} is not the file {CONFIG_FILE} describes (their SHA-256 digests differ); "
                              f"was it replaced, or was saving interrupted?")
    model.eval()
    norm = cfg["normalize"]
    return Run(d, cfg, model, list(cfg["classes"]), tuple(cfg["input_size"]), tuple(norm["mean"]),
               tuple(norm["std"]))


def prepare_image(path, input_size, mean, std, invert: bool = False, prepare: dict | None = None) -> np.ndarray:
    """Read an image file and make it a model input ``(C, H, W)`` float32, as training images were made.

    :func:`cnnkit.data.load_image` (the conversion :func:`cnnkit.data.imagefolder` applies to training
    images: 16-bit greys scaled to 8 bits, palettes expanded, grey ↔ RGB as the model needs, bilinear
    resize to ``(H, W)``, [0, 1]), then ``invert`` (``1 - x``, for dark-on-light drawings given to a model
    trained on light-on-dark digits) and the training mean/std. A run trained on MNIST-like digits
    records ``prepare = {"kind": "digit", "size": S}`` (its ``Splits.prepare``): the picture then goes
    through :func:`cnnkit.data.prepare_digit` (inverted when its paper is light, or always with
    ``invert``), a bilinear resize to ``(H, W)`` if ``S`` differs, and the mean/std.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an image Pillow can read, or a model input that is neither 1 nor 3 channels.
    """
    from ..data import load_image

    c = int(tuple(input_size)[0])
    if c not in (1, 3):
        raise ValueError(f"cannot convert an image for a model with {c}-channel input (only 1 = grey, 3 = RGB)")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image: {str(path)!r}")
    if prepare:
        x = _prepare(path, input_size, prepare, invert)                   # (C, H, W) in [0, 1]
    else:
        x = load_image(path, input_size)                                # (C, H, W) in [0, 1]
        if invert:
            x = 1.0 - x
    m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return ((x - m) / s).astype(np.float32)


def _prepare(path, input_size, prepare: dict, invert: bool) -> np.ndarray:
    from ..data import prepare_digit, resize_images

    if prepare.get("kind") != "digit" or int(tuple(input_size)[0]) != 1:
        raise ValueError(f"the run asks for the image preparation {prepare!r}, which this version of cnnkit "
                         f"does not know for a {tuple(input_size)} input")
    x = prepare_digit(path, invert=True if invert else "auto", size=int(prepare.get("size", 28)))[None]
    if x.shape[1:] != tuple(input_size)[1:]:
        x = np.clip(resize_images(x[None], tuple(input_size)[1:])[0], 0.0, 1.0)
    return x


def predict_proba(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities ``(N, K)`` of ``model`` (eval mode, no gradients) for inputs ``(N, C, H, W)``."""
    from ..nn import functional as F

    model.eval()
    out = []
    with no_grad():
        for i in range(0, len(x), batch_size):
            out.append(F.softmax(model(Tensor(x[i:i + batch_size])), dim=1).data)
    return np.concatenate(out).astype(np.float64)


def load_model(source):
    """``(model, input_size, trained)``: a run directory's trained model (:func:`load_run`), or a fresh zoo
    model by name (``trained`` is then ``False``). ``cnnkit export`` takes either."""
    from .. import models
    if Path(source).is_dir():
        run = load_run(source)
        return run.model, tuple(run.input_size), True
    try:
        name = models.canonical_name(str(source))
    except ValueError:
        raise ValueError(f"{str(source)!r} is neither a run directory nor a model name (see `cnnkit models`)") from None
    return models.create(name), tuple(models.default_input_size(name)), False


def evaluate_run(run_dir, data=None, *, root=None, split: str = "test") -> dict:
    """Accuracy, loss, per-class precision / recall / support and the confusion matrix of a run's model
    on ``split`` of its own data set (or of ``data``, which must have the same classes), as a JSON-able dict."""
    from ..data import DataLoader, Normalize
    if split not in ("test", "val", "train"):
        raise ValueError(f"split must be 'test', 'val' or 'train', got {split!r}")
    run = load_run(run_dir)
    data_cfg = run.config.get("data", {})
    source = data or data_cfg.get("source") or data_cfg.get("name")
    if source is None:
        raise ValueError(f"{run_dir}/config.json names no data set: pass --data")
    root = root if root is not None else run.config.get("training", {}).get("root")
    splits = load_data(source, root=root, input_size=run.input_size, channels=run.input_size[0])
    if list(splits.classes) != list(run.classes):
        raise ValueError(f"data {source!r} has classes {splits.classes}, the model was trained on {run.classes}")
    ds = getattr(splits, split)
    if ds is None:
        raise ValueError(f"data {source!r} has no {split} split")
    result = evaluate(run.model, DataLoader(ds, batch_size=EVAL_BATCH, transform=Normalize(run.mean, run.std)))
    cm = result.confusion_matrix(len(run.classes))
    precision, recall, support = precision_recall(cm)
    return {"run": str(run.path), "model": run.config["model"]["name"], "data": splits.name, "split": split,
            "n": int(len(result.labels)), "accuracy": result.accuracy, "loss": result.loss,
            "per_class": [{"class": c, "precision": float(p), "recall": float(r), "support": int(n)}
                          for c, p, r, n in zip(run.classes, precision, recall, support)],
            "classes": run.classes, "confusion_matrix": cm.tolist()}


def predict_files(run_dir, images, top: int = 3, invert: bool = False) -> list:
    """The ``top`` most probable classes of each image file: ``[{"image", "predictions": [{"class",
    "probability"}, ...]}, ...]``, images prepared as the run's training images (:func:`prepare_image`)."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    run = load_run(run_dir)
    x = np.stack([prepare_image(p, run.input_size, run.mean, run.std, invert=invert, prepare=run.config.get("prepare"))
                  for p in images])                                           # (N, C, H, W)
    probs = predict_proba(run.model, x)                                                                # (N, K)
    k = min(top, len(run.classes))
    out = []
    for path, p in zip(images, probs):
        order = np.argsort(-p, kind="stable")[:k]
        out.append({"image": str(path), "predictions": [{"class": run.classes[i], "probability": float(p[i])}
                                                        for i in order]})
    return out
