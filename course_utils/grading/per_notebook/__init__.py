"""The graded exercises, one module per notebook; each registers its cases with `registry.register`."""
from . import (nb00_start_here, nb01_filters, nb02_features_tsne, nb03_occlusion_saliency,  # noqa: F401
               nb04_guided_backprop, nb05_gradient_ascent, nb06_inversion, nb07_deepdream, nb08_texture_neural_style,
               nb09_fast_style, nb10_adversarial)

__all__ = ["nb00_start_here", "nb01_filters", "nb02_features_tsne", "nb03_occlusion_saliency", "nb04_guided_backprop",
           "nb05_gradient_ascent", "nb06_inversion", "nb07_deepdream", "nb08_texture_neural_style", "nb09_fast_style",
           "nb10_adversarial"]
