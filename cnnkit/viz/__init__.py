"""Pictures of what a network computes, for any model: its filters, activation maps, receptive fields,
the classic filter bank's responses, occlusion, saliency, Zeiler & Fergus' top patches and activation
maximisation.

``cnnkit.viz.maps`` computes the arrays (NumPy only, no matplotlib: the explorer serves them too);
the ``plot_*`` functions draw them with matplotlib on its Agg canvas and return a Figure, which a
notebook shows inline and :func:`save` writes as a PNG atomically::

    >>> fig = cnnkit.viz.plot_activations(model, x)       # x: one model input (C, H, W)
    >>> cnnkit.viz.save(fig, "activations.png")

matplotlib is imported on the first ``plot_*`` call, not by ``import cnnkit.viz``.
"""
import importlib

from .maps import (TopPatches, activation_maps, leaf_layers, maximize_input, occlusion_map, receptive_box,
                   saliency_map, top_patches)

_FIGURES = {"plot_filters": "layers", "plot_activations": "layers", "plot_receptive_field": "layers",
            "plot_responses": "layers", "plot_occlusion": "attribution", "plot_saliency": "attribution",
            "plot_top_patches": "attribution", "plot_maximize": "attribution", "save": "draw"}

__all__ = ["activation_maps", "occlusion_map", "saliency_map", "top_patches", "TopPatches", "maximize_input",
           "receptive_box", "leaf_layers", *_FIGURES]


def __getattr__(name):
    if name in _FIGURES:
        return getattr(importlib.import_module(f"cnnkit.viz.{_FIGURES[name]}"), name)
    raise AttributeError(f"module 'cnnkit.viz' has no attribute {name!r}")
