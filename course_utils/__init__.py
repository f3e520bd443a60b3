"""course_utils: the tested implementations behind the CNN visualization course.

The names a notebook uses most are importable from here; each technique lives in its
own module (see the README's course map).
"""
from .images import grid, load_image, sample_images, show, to_image, to_tensor
from .labels import class_index, class_name, imagenet_labels, predict, predict_batch
from .layers import capture, get_layer, list_layers
from .models import available_models, device, load_model

__all__ = [
    "available_models", "capture", "class_index", "class_name", "device", "get_layer", "grid",
    "imagenet_labels", "list_layers", "load_image", "load_model", "predict", "predict_batch",
    "sample_images", "show", "to_image", "to_tensor",
]
