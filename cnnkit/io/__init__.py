"""Files in and out: images, weights (safetensors, PyTorch state dicts), ONNX; all writes atomic.

Submodules are imported on first use so that ``import cnnkit`` stays light.
"""
from __future__ import annotations

import importlib

from .atomic import atomic_path, atomic_write

# public name → submodule that defines it
_LAZY = {
    # images (cnnkit.io.images)
    "read_image": "images", "write_image": "images", "to_tensor": "images", "to_image": "images",
    # PyTorch weights (cnnkit.io.torch_weights)
    "load_torch_state_dict": "torch_weights", "save_torch_state_dict": "torch_weights",
    # ONNX (cnnkit.io.onnx_export)
    "export_onnx": "onnx_export",
    # named pre-trained weights (cnnkit.io.weights)
    "get_weights": "weights", "list_weights": "weights",
}
_SUBMODULES = {"images", "torch_weights", "onnx_export", "weights", "atomic"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"cnnkit.io.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(f"cnnkit.io.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'cnnkit.io' has no attribute {name!r}")
