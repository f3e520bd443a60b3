"""course_utils: the tested implementations behind the CNN visualization course.

The names a notebook uses most are importable from here; each technique lives in its own module
(see the README's course map and DESIGN.md for the conventions every module follows).
"""
from .claims import claim, say
from .images import as_batch, load_image, noise_image, sample_images, to_image
from .labels import class_index, class_name, imagenet_labels, predict, predict_batch
from .layers import activations, capture, get_layer, list_layers
from .models import available_models, count_parameters, device, load_model
from .plots import grid, show

__all__ = [
    "activations", "as_batch", "available_models", "capture", "claim", "class_index", "class_name", "count_parameters",
    "device", "get_layer", "grid", "imagenet_labels", "list_layers", "load_image", "load_model", "noise_image",
    "predict", "predict_batch", "sample_images", "say", "show", "to_image",
]
