"""PyTorch weights in and out, by state-dict key.

cnnkit's zoo uses torchvision's attribute names, so a torchvision-style state dict loads by key.
A ``.pth``/``.pt`` file is a zip of pickles: cnnkit never unpickles it itself. It is read only through
PyTorch's ``torch.load(..., weights_only=True)`` when PyTorch is installed; without PyTorch the
file is refused with the command that converts it to safetensors (``cnnkit convert``).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_path

__all__ = ["LoadReport", "read_state_dict", "write_state_dict", "load_torch_state_dict",
           "save_torch_state_dict", "convert"]

_TORCH_SUFFIXES = {".pth", ".pt", ".bin", ".ckpt"}


@dataclass
class LoadReport:
    """What :func:`load_torch_state_dict` matched: keys missing from the file, keys the model does not
    have, and keys whose shapes differ (``"key: file (a, b) vs model (c, d)"``)."""

    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("mis-shaped", self.mismatched)):
            if keys:
                lines.append(f"{label} ({len(keys)}): " + ", ".join(keys))
        return "\n".join(lines)


def _import_torch():
    try:
        import torch  # noqa: F401  (optional: only to read/write PyTorch's own format)
    except ImportError:
        return None
    return torch


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        return value.detach().cpu().numpy().copy()
    if hasattr(value, "data") and isinstance(getattr(value, "data"), np.ndarray):  # a cnnkit tensor
        return np.array(value.data, copy=True)
    return np.asarray(value)


def read_state_dict(path) -> "OrderedDict[str, np.ndarray]":
    """Read a state dict from ``.safetensors`` (always) or ``.pth``/``.pt`` (PyTorch, ``weights_only=True``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
        try:
            return OrderedDict(load_file(str(path)))
        except (SafetensorError, ValueError, OSError) as exc:
            raise ValueError(f"{str(path)!r} is not a readable safetensors file ({exc})") from None
    if suffix in _TORCH_SUFFIXES:
        torch = _import_torch()
        if torch is None:
            raise ValueError(
                f"{str(path)!r} is a PyTorch pickle archive; cnnkit never unpickles files itself and PyTorch is not "
                f"installed. Convert it where PyTorch is available: `cnnkit convert {path.name} "
                f"{path.with_suffix('.safetensors').name}`, then load the .safetensors file")
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for damaged or unsafe archives
            raise ValueError(f"PyTorch refused to load {str(path)!r} with weights_only=True: {exc}") from None
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict):
            raise ValueError(f"{str(path)!r} holds a {type(obj).__name__}, not a state dict of tensors")
        return OrderedDict((k, _to_numpy(v)) for k, v in obj.items() if hasattr(v, "shape"))
    raise ValueError(f"unknown weights format {suffix!r} for {str(path)!r}: expected .safetensors or .pth/.pt")


def write_state_dict(state: dict, path) -> Path:
    """Write ``{key: array}`` atomically as ``.safetensors`` or, with PyTorch installed, ``.pth``."""
    path = Path(path)
    arrays = OrderedDict((k, np.array(_to_numpy(v), order="C")) for k, v in state.items())  # keeps 0-d
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.numpy import save_file
        with atomic_path(path) as tmp:
            save_file(arrays, str(tmp))
        return path
    if suffix in _TORCH_SUFFIXES:
        torch = _import_torch()
        if torch is None:
            raise ValueError(f"writing {str(path)!r} in PyTorch's format needs PyTorch; write .safetensors instead")
        with atomic_path(path) as tmp:
            torch.save(OrderedDict((k, torch.from_numpy(v.copy())) for k, v in arrays.items()), str(tmp))
        return path
    raise ValueError(f"unknown weights format {suffix!r} for {str(path)!r}: expected .safetensors or .pth/.pt")


def load_torch_state_dict(model, path_or_dict, strict: bool = True) -> LoadReport:
    """Load a PyTorch/torchvision-style state dict into a cnnkit model by key.

    Args:
        model: a cnnkit ``Module`` (e.g. ``cnnkit.models.create("resnet18")``).
        path_or_dict: a ``.pth``/``.pt``/``.safetensors`` path, or a dict of torch tensors / arrays.
        strict: raise ``ValueError`` (listing every key) when keys are missing, unexpected or mis-shaped;
            with ``strict=False`` only the matching keys are loaded and the report says what was skipped.

    Returns:
        a :class:`LoadReport`. Values are cast to each parameter's dtype.
    """
    state = read_state_dict(path_or_dict) if isinstance(path_or_dict, (str, Path)) else OrderedDict(
        (k, _to_numpy(v)) for k, v in dict(path_or_dict).items())
    own = model.state_dict()
    report = LoadReport()
    report.missing = [k for k in own if k not in state]
    report.unexpected = [k for k in state if k not in own]
    report.mismatched = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                         for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if strict and not report.ok:
        raise ValueError(f"cannot load state dict into {type(model).__name__}:\n{report}")
    bad = {m.split(":")[0] for m in report.mismatched}
    usable = OrderedDict((k, v) for k, v in state.items() if k in own and k not in bad)
    model.load_state_dict(usable, strict=False)
    report.loaded = list(usable)
    return report


def save_torch_state_dict(model, path) -> Path:
    """Write ``model.state_dict()`` so PyTorch loads it (``.pth`` via ``torch.save``; or ``.safetensors``)."""
    return write_state_dict(model.state_dict(), path)


def convert(src, dst) -> Path:
    """Convert weights between PyTorch's ``.pth`` and ``.safetensors`` (either direction)."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"convert: source and destination are the same file ({str(src)!r})")
    return write_state_dict(read_state_dict(src), dst)
