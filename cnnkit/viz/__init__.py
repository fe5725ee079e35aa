"""Pictures of what a network computes, for any model: :mod:`cnnkit.viz.maps` computes the arrays."""
from .maps import (TopPatches, activation_maps, leaf_layers, maximize_input, occlusion_map, receptive_box,
                   saliency_map, top_patches)

__all__ = ["activation_maps", "occlusion_map", "saliency_map", "top_patches", "TopPatches", "maximize_input",
           "receptive_box", "leaf_layers"]
