"""Weights and models to and from other frameworks: PyTorch state dicts by key, safetensors, ONNX.

* :mod:`cnnkit.io.torch_weights`: :func:`load_torch_state_dict` (a torchvision-style ``.pth`` or
  ``.safetensors`` into a cnnkit model, by key, with a report), :func:`save_torch_state_dict`,
  :func:`read_state_dict`, :func:`convert` (``.pth`` ↔ ``.safetensors``; a ``.pth`` is read only
  through ``torch.load(weights_only=True)``).
* :mod:`cnnkit.io.onnx_export`: :func:`export_onnx`.

Image files, atomic writes and downloads are a layer below, in :mod:`cnnkit.files`; its image
functions (``read_image``, ``write_image``, ``to_tensor``, ``to_image``) can also be reached from here.
Named pre-trained weights are declared beside the models (:mod:`cnnkit.models.weights`).
"""
from __future__ import annotations

from ..files import read_image, to_image, to_tensor, write_image
from .onnx_export import export_onnx
from .torch_weights import (LoadReport, convert, load_torch_state_dict, read_state_dict, save_torch_state_dict,
                            write_state_dict)

__all__ = ["load_torch_state_dict", "save_torch_state_dict", "read_state_dict", "write_state_dict", "convert",
           "LoadReport", "export_onnx", "read_image", "write_image", "to_tensor", "to_image"]
