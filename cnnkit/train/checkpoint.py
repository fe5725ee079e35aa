"""Checkpoints without pickle: arrays in safetensors, everything else in JSON.

Two kinds of file are written, both atomically:

* **weights** (``model.safetensors``): the model's ``state_dict``; the safetensors metadata holds
  the format name, the model's name and a SHA-256 digest of the arrays, so a lone file can tell
  whether it is whole.
* **checkpoint** (``checkpoint.safetensors``): everything needed to resume training bit for bit in
  one file, so it can never be half-updated: model arrays under ``model/``, optimiser and
  scheduler arrays under ``optimizer/`` and ``scheduler/``, and in the metadata a JSON document
  with the optimiser's and scheduler's scalars, the random-generator state and the trainer's own
  state (epoch, history, best epoch, early-stopping counter).

Nested state (``optimizer.state_dict()`` is a tree of dicts, lists, tuples, scalars and arrays)
is stored by :func:`encode_tree`: arrays go to safetensors under a generated key, the rest stays
JSON with markers for what JSON cannot say (tuples, NumPy scalars with their dtype, dicts with
non-string keys), so :func:`decode_tree` gives back exactly what was saved.
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_path
from ..tensor import Tensor, get_rng

__all__ = ["FORMAT_VERSION", "CheckpointError", "Checkpoint", "save_weights", "load_weights",
           "save_checkpoint", "load_checkpoint", "load_state_into", "encode_tree", "decode_tree",
           "arrays_digest", "model_config", "check_model_config", "rng_state", "set_rng_state"]

FORMAT_VERSION = 1
_WEIGHTS = "cnnkit-weights"
_CHECKPOINT = "cnnkit-checkpoint"


class CheckpointError(ValueError):
    """A checkpoint or weights file that cannot be used: damaged, truncated or for another model."""


# ----------------------------------------------------------------------------- nested state ↔ JSON + arrays
def encode_tree(obj, arrays: dict, prefix: str):
    """JSON-able description of ``obj``; its arrays are added to ``arrays`` under ``prefix/<n>``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, float)) and not isinstance(obj, np.generic):
        return obj
    if isinstance(obj, np.generic):
        return {"__scalar__": obj.dtype.str, "value": obj.item()}
    if isinstance(obj, (np.ndarray, Tensor)):
        key = f"{prefix}/{len(arrays)}"
        data = obj.data if isinstance(obj, Tensor) else obj
        arrays[key] = _contiguous(data)
        if isinstance(obj, Tensor):
            return {"__tensor__": key, "requires_grad": bool(obj.requires_grad)}
        return {"__array__": key}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode_tree(v, arrays, prefix) for v in obj]}
    if isinstance(obj, list):
        return [encode_tree(v, arrays, prefix) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode_tree(v, arrays, prefix) for k, v in obj.items()}
        return {"__items__": [[encode_tree(k, arrays, prefix), encode_tree(v, arrays, prefix)]
                              for k, v in obj.items()]}
    raise TypeError(f"cannot store a value of type {type(obj).__name__} in a checkpoint "
                    f"(only arrays, tensors, numbers, strings, lists, tuples and dicts; no pickle)")


def decode_tree(obj, arrays: dict):
    """Inverse of :func:`encode_tree`."""
    if isinstance(obj, list):
        return [decode_tree(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__scalar__" in obj:
        return np.dtype(obj["__scalar__"]).type(obj["value"])
    if "__array__" in obj:
        return _array(arrays, obj["__array__"]).copy()
    if "__tensor__" in obj:
        return Tensor(_array(arrays, obj["__tensor__"]).copy(), requires_grad=obj["requires_grad"])
    if "__tuple__" in obj:
        return tuple(decode_tree(v, arrays) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_hashable(decode_tree(k, arrays)): decode_tree(v, arrays) for k, v in obj["__items__"]}
    return {k: decode_tree(v, arrays) for k, v in obj.items()}


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def _array(arrays: dict, key: str) -> np.ndarray:
    if key not in arrays:
        raise CheckpointError(f"checkpoint is damaged: array {key!r} named in its metadata is missing")
    return arrays[key]


def _contiguous(a) -> np.ndarray:
    """C-contiguous, keeping 0-d arrays 0-d (``np.ascontiguousarray`` would make them 1-d)."""
    a = np.asarray(a)
    return a if a.flags.c_contiguous else a.copy(order="C")


def arrays_digest(arrays: dict) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``arrays`` (in sorted key order)."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = _contiguous(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- random state
def rng_state() -> dict:
    """State of cnnkit's generator (:func:`cnnkit.get_rng`), JSON-able."""
    return get_rng().bit_generator.state


def set_rng_state(state: dict) -> None:
    """Put cnnkit's generator back into ``state`` (from :func:`rng_state`)."""
    gen = get_rng().bit_generator
    if state.get("bit_generator") != type(gen).__name__:
        raise CheckpointError(f"checkpoint's random generator is {state.get('bit_generator')!r}, "
                              f"cnnkit uses {type(gen).__name__}")
    gen.state = state


# ----------------------------------------------------------------------------- model identity
def model_config(model) -> dict:
    """``model.config`` (``{"name", "kwargs", ...}``, set by ``cnnkit.models``) plus the class name, as JSON."""
    cfg = dict(getattr(model, "config", None) or {})
    cfg.setdefault("name", None)
    cfg.setdefault("kwargs", {})
    cfg["class"] = type(model).__name__
    return _jsonable(cfg)


def check_model_config(saved: dict, model, source) -> None:
    """Refuse a checkpoint made for another architecture than ``model``, saying which."""
    have = model_config(model)
    want_name = saved.get("name") or saved.get("class")
    have_name = have["name"] or have["class"]
    if saved.get("name") and have["name"]:
        same = saved["name"] == have["name"]
    else:  # a model built by hand: compare classes
        same = saved.get("class") == have["class"]
    if not same:
        raise CheckpointError(f"{source} was saved from model {want_name!r}, not {have_name!r}: "
                              f"a checkpoint only loads into the architecture it was made for")
    if saved.get("name") and have["name"] and _jsonable(saved.get("kwargs", {})) != _jsonable(have["kwargs"]):
        raise CheckpointError(f"{source} was saved from {want_name}({_kw(saved.get('kwargs', {}))}), "
                              f"but the model is {have_name}({_kw(have['kwargs'])})")


def _kw(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def load_state_into(model, weights: dict, source) -> None:
    """``model.load_state_dict(weights)``, its errors reworded to name the file."""
    try:
        model.load_state_dict(weights)
    except ValueError as exc:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: {exc}") from None


# ----------------------------------------------------------------------------- files
def _save(path, arrays: dict, meta: dict) -> None:
    from safetensors.numpy import save_file
    arrays = {k: _contiguous(v) for k, v in arrays.items()}
    meta = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()}
    meta["digest"] = arrays_digest(arrays)
    with atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=meta)


def _load(path, kind: str):
    """(arrays, metadata) of a cnnkit safetensors file of ``kind``; damage becomes CheckpointError."""
    from safetensors import SafetensorError, safe_open
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
            arrays = OrderedDict((k, fh.get_tensor(k)) for k in fh.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is damaged or truncated and cannot be read "
                              f"(safetensors says: {exc})") from None
    if meta.get("format") != kind:
        found = meta.get("format")
        raise CheckpointError(f"{path} is not a {kind} file (its format is {found!r})" if found else
                              f"{path} is a safetensors file but not one cnnkit wrote as {kind}")
    if meta.get("digest") != arrays_digest(arrays):
        raise CheckpointError(f"{path} is damaged: its arrays do not match the SHA-256 digest stored in it")
    return arrays, meta


def save_weights(model, path, metadata: dict | None = None) -> str:
    """Write ``model.state_dict()`` (or a dict of arrays) to ``path`` as safetensors; returns the digest."""
    state = model if isinstance(model, dict) else model.state_dict()
    meta = {"format": _WEIGHTS, "version": str(FORMAT_VERSION)}
    if not isinstance(model, dict):
        meta["model"] = model_config(model)
    meta.update(metadata or {})
    _save(path, state, meta)
    return arrays_digest(state)


def load_weights(path, model=None) -> "OrderedDict[str, np.ndarray]":
    """Arrays of a weights file; with ``model``, also check the architecture and load them into it."""
    arrays, meta = _load(path, _WEIGHTS)
    if model is not None:
        if "model" in meta:
            check_model_config(json.loads(meta["model"]), model, path)
        load_state_into(model, arrays, path)
    return arrays


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read: weights, optimiser/scheduler state, RNG state, trainer state."""

    path: Path
    model: dict
    weights: "OrderedDict[str, np.ndarray]"
    optimizer: dict | None = None
    optimizer_type: str | None = None
    scheduler: dict | None = None
    scheduler_type: str | None = None
    rng: dict | None = None
    state: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def restore(self, model, optimizer=None, scheduler=None, rng: bool = True) -> None:
        """Load into ``model`` (checking it is the same architecture), optimiser, scheduler and RNG."""
        check_model_config(self.model, model, self.path)
        load_state_into(model, self.weights, self.path)
        if optimizer is not None:
            if self.optimizer is None:
                raise CheckpointError(f"{self.path} holds no optimiser state")
            if self.optimizer_type != type(optimizer).__name__:
                raise CheckpointError(f"{self.path} holds {self.optimizer_type} state, "
                                      f"the optimiser is {type(optimizer).__name__}")
            optimizer.load_state_dict(self.optimizer)
        if scheduler is not None and self.scheduler is not None:
            if self.scheduler_type != type(scheduler).__name__:
                raise CheckpointError(f"{self.path} holds {self.scheduler_type} state, "
                                      f"the scheduler is {type(scheduler).__name__}")
            scheduler.load_state_dict(self.scheduler)
        if rng and self.rng is not None:
            set_rng_state(self.rng)


def save_checkpoint(path, model, optimizer=None, scheduler=None, state: dict | None = None,
                    extra: dict | None = None) -> None:
    """Write everything needed to resume training into one safetensors file, atomically.

    Args:
        path: destination, conventionally ``DIR/checkpoint.safetensors``.
        model: the network; its ``state_dict`` is stored under ``model/<key>``.
        optimizer, scheduler: objects with ``state_dict()``; arrays go to safetensors, scalars to JSON.
        state: JSON-able trainer state (epoch, history, ...), returned as ``Checkpoint.state``.
        extra: more named arrays (e.g. the best weights so far), returned as ``Checkpoint.extra``.
    """
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"extra/{k}": v for k, v in (extra or {}).items()})
    doc = {"version": FORMAT_VERSION, "model": model_config(model), "rng": rng_state(),
           "state": state or {}}
    if optimizer is not None:
        doc["optimizer"] = {"type": type(optimizer).__name__,
                            "state": encode_tree(optimizer.state_dict(), arrays, "optimizer")}
    if scheduler is not None:
        doc["scheduler"] = {"type": type(scheduler).__name__,
                            "state": encode_tree(scheduler.state_dict(), arrays, "scheduler")}
    _save(path, arrays, {"format": _CHECKPOINT, "version": str(FORMAT_VERSION), "checkpoint": json.dumps(doc)})


def load_checkpoint(path) -> Checkpoint:
    """Read a file written by :func:`save_checkpoint`; damaged or foreign files raise :class:`CheckpointError`."""
    arrays, meta = _load(path, _CHECKPOINT)
    try:
        doc = json.loads(meta["checkpoint"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is damaged: its metadata is not valid JSON ({exc})") from None
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path} uses checkpoint format {meta.get('version')}, this cnnkit reads "
                              f"up to {FORMAT_VERSION}: upgrade cnnkit")
    weights = OrderedDict((k[len("model/"):], v) for k, v in arrays.items() if k.startswith("model/"))
    extra = OrderedDict((k[len("extra/"):], v) for k, v in arrays.items() if k.startswith("extra/"))
    opt, sched = doc.get("optimizer"), doc.get("scheduler")
    return Checkpoint(path=Path(path), model=doc.get("model", {}), weights=weights,
                      optimizer=decode_tree(opt["state"], arrays) if opt else None,
                      optimizer_type=opt["type"] if opt else None,
                      scheduler=decode_tree(sched["state"], arrays) if sched else None,
                      scheduler_type=sched["type"] if sched else None,
                      rng=doc.get("rng"), state=doc.get("state", {}), extra=extra)
