"""Filtering image files (``cnnkit filter``): read an image, filter it, write the picture and/or the raw
response. Everything is computed and checked before anything is written, and the files appear whole
or not at all (:mod:`cnnkit.files`): with both outputs, the ``.npy`` appears only if the image was written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import atomic_path, read_image, to_image, write_image
from .apply import filter2d
from .sheet import contact_sheet

__all__ = ["IMAGE_SUFFIXES", "Filtered", "filter_file", "contact_sheet_file"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class Filtered:
    """What :func:`filter_file` read, computed and wrote."""

    image: np.ndarray       # the input, uint8 (H, W, C)
    response: np.ndarray    # the filter's response, float (Ho, Wo, C)
    picture: np.ndarray     # the response as the uint8 image written to ``output``
    written: list           # the paths written, in order


def _check_outputs(output, raw, need_one: bool = True) -> None:
    if need_one and output is None and raw is None:
        raise ValueError("nothing to write: give an output image path and/or a raw .npy path")
    if output is not None and Path(output).suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{str(output)!r}: an output image must end in one of {', '.join(IMAGE_SUFFIXES)}")
    if raw is not None and Path(raw).suffix.lower() != ".npy":
        raise ValueError(f"{str(raw)!r}: the raw response is written as .npy; name it OUT.npy")
    for out in filter(None, (output, raw)):
        parent = Path(out).parent
        if not parent.is_dir():
            raise ValueError(f"output directory {str(parent)!r} does not exist")


def filter_file(path, kernel, output=None, raw=None, *, border: str = "reflect_101", mode: str = "same",
                correlate: bool = True, gray: bool = False, alpha: str = "error", scaling: str = "clip") -> Filtered:
    """Filter the image file ``path`` with ``kernel`` (:func:`filter2d`) and write the response.

    Args:
        output: image file for the response as 8 bits (``scaling="clip"``: clipped to 0–255;
            ``"minmax"``: its ``[min, max]`` stretched to 0–255).
        raw: ``.npy`` file for the float32 response ``(Ho, Wo, C)``.
        gray: convert the image to greyscale first; alpha: transparent images (:func:`cnnkit.files.read_image`).
    """
    if scaling not in ("clip", "minmax"):
        raise ValueError(f"scaling must be 'clip' or 'minmax', got {scaling!r}")
    _check_outputs(output, raw)
    image = read_image(path, mode="gray" if gray else "auto", alpha=alpha)
    response = filter2d(image, kernel, border=border, mode=mode, correlate=correlate)        # (Ho, Wo, C)
    picture = to_image(response, scale="raw", normalize="minmax" if scaling == "minmax" else None, clip=True)
    if raw is not None:
        with atomic_path(raw) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, response.astype(np.float32), allow_pickle=False)
            if output is not None:
                write_image(output, picture)  # inside: the .npy appears only if the image was written
    else:
        write_image(output, picture)
    return Filtered(image, response, picture, [p for p in (output, raw) if p is not None])


def contact_sheet_file(path, output, *, border: str = "reflect_101", scaling: str = "auto", gray: bool = False,
                       alpha: str = "error"):
    """The :func:`contact_sheet` of the image file ``path`` (every bank filter, labelled), written to ``output``.
    Returns ``(image, sheet)``, both uint8 HWC."""
    _check_outputs(output, None)
    image = read_image(path, mode="gray" if gray else "auto", alpha=alpha)
    sheet = contact_sheet(image, border=border, scaling=scaling)
    write_image(output, sheet)
    return image, sheet
