"""Exercises of 03_occlusion_saliency: a gradient saliency map, an occlusion map."""
import torch
from torch import nn

from ...backprop.attribution import heatmap, occlusion_drops, saliency
from ...labels import class_index
from ...testing import tiny_cnn
from ..registry import Case, register


def tiny_classifier(seed, classes=10, act=nn.ReLU):
    """A small random CNN with large weights (clear gradients) for the exercise cases."""
    return tiny_cnn(int(seed), classes, width=8, act=act, scale=0.5)


def saliency_map(model, x, target):
    """Simonyan et al.'s map for one image x (1, 3, H, W): max over channels of |d score / d x|, (H, W)."""
    return heatmap(saliency(model, x, target))[0]


def occlusion_map(model, x, target, window, stride, baseline=0.5):
    """For one image: the fall of the target's probability for each window position, (rows, cols)."""
    return occlusion_drops(model, x, window, stride, baseline)[0, class_index(target)]


def _image(rng, size):
    return torch.from_numpy(rng.random((1, 3, size, size))).float()


def _saliency_cases(rng):
    cases = []
    for size, classes in [(8, 5), (12, 10), (16, 3)]:
        seed = int(rng.integers(1000))
        t = int(rng.integers(classes))
        cases.append(Case(f"a small random CNN, a {size}x{size} image, class {t}",
                          (tiny_classifier(seed, classes), _image(rng, size), t)))
    cases.append(Case("ReLU6 units, like the course's network", (tiny_classifier(7, 4, nn.ReLU6), _image(rng, 10), 2)))
    cases.append(Case("the class given by its ImageNet name ('goldfish' is class 1)",
                      (tiny_classifier(3, 10), _image(rng, 8), "goldfish")))
    return cases


def _occlusion_cases(rng):
    cases = []
    for size, window, stride in [(8, 4, 2), (12, 4, 4), (12, 6, 3), (9, 3, 3)]:  # (size - window) % stride == 0
        seed = int(rng.integers(1000))
        t = int(rng.integers(5))
        cases.append(Case(f"{size}x{size} image, window {window}, stride {stride}, class {t}",
                          (tiny_classifier(seed, 5), _image(rng, size), t, window, stride)))
    cases.append(Case("a black baseline", (tiny_classifier(11, 5), _image(rng, 8), 1, 4, 2), {"baseline": 0.0}))
    cases.append(Case("the window is the whole image", (tiny_classifier(12, 5), _image(rng, 6), 0, 6, 2)))
    return cases


register("03.saliency_map", saliency_map, _saliency_cases, atol=1e-6, rtol=1e-4, source=(saliency, heatmap))
register("03.occlusion_map", occlusion_map, _occlusion_cases, atol=1e-6, rtol=1e-4, source=(occlusion_drops,))
