"""Benchmarks of the foundation: loading the model, one forward pass."""
import torch

from bench import timed

import course_utils as cu


def _load():
    return timed(lambda: cu.load_model(), repeat=3)


def _forward():
    model = cu.load_model()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        model(x)
        s = timed(lambda: model(x), repeat=5)
    return s, f"{1 / s:.0f} images/s at 224 px"


def _forward_backward():
    model = cu.load_model()
    x = torch.rand(1, 3, 224, 224, requires_grad=True)
    return timed(lambda: model(x)[0, 0].backward(), repeat=5)


BENCHES = [
    ("load_model() efficientnet_lite0", None, _load),
    ("forward, 1 image 224 px", None, _forward),
    ("forward + backward to the image, 224 px", None, _forward_backward),
]
