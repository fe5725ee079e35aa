"""A finished run directory as something to use: rebuild its model, prepare images the way its
training data was prepared, and predict.

``config.json`` (written by the trainer) says how: the model's name and constructor arguments, the
class names, the input size ``(C, H, W)`` and the normalisation mean/std of the training data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tensor import Tensor, no_grad
from .checkpoint import CheckpointError, load_weights
from .trainer import CONFIG_FILE, WEIGHTS_FILE

__all__ = ["Run", "load_run", "read_config", "prepare_image", "predict_proba"]



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
    from .checkpoint import arrays_digest
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
