"""Benchmarks of notebooks 03 and 04: occlusion (batched), gradient maps, Grad-CAM, curves."""

import torch
from bench import timed

import course_utils as cu
from course_utils.backprop import attribution as A
from course_utils.backprop import map_quality as Q


def _cat():
    return cu.load_model(), cu.as_batch("chelsea", 224)


def _occlusion():
    model, x = _cat()
    with A.count_forwards(model) as n:
        s = timed(lambda: A.occlusion(model, x, "tabby", window=32, stride=8, baseline=0.5))
    return s, f"{n.images} images through the model ({n.images / s:.0f}/s)"


def _occlusion_vs_captum():
    """The issue's setting (#30): Lite0 at 224 px, window 32, stride 16; Captum with 16 perturbations per pass."""
    from captum.attr import Occlusion

    model, x = _cat()
    c = cu.class_index("tabby")
    forward = lambda t: torch.softmax(model(t), 1)  # noqa: E731 - as A.occlusion scores it
    ours = timed(lambda: A.occlusion(model, x, c, window=32, stride=16, baseline=0.5), repeat=3)
    theirs = timed(lambda: Occlusion(forward).attribute(x, sliding_window_shapes=(3, 32, 32), strides=(3, 16, 16),
                                                        baselines=0.5, target=c, perturbations_per_eval=16), repeat=3)
    return ours / theirs, f"ours {ours:.2f} s, Captum {theirs:.2f} s (169 occluded copies each)", "x"


def _guided():
    model, x = _cat()
    return timed(lambda: A.guided_backprop(model, x, "tabby"), repeat=3)


def _grad_cam():
    model, x = _cat()
    return timed(lambda: A.grad_cam(model, x, "tabby", "head.act"), repeat=3)


def _smoothgrad():
    model, x = _cat()
    return timed(lambda: A.smoothgrad(model, x, "tabby", samples=16, batch_size=8)), "16 noisy copies"


def _curves():
    model, x = _cat()
    m = A.saliency(model, x, "tabby")
    s = timed(lambda: (Q.deletion_curve(model, x, "tabby", m, steps=16), Q.insertion_curve(model, x, "tabby", m, steps=16)))
    return s, "2 x 17 images"


BENCHES = [
    ("03 occlusion 224 px, window 32, stride 8 (batched)", None, _occlusion),
    ("03 occlusion time / Captum's (224 px, window 32, stride 16)", 0.9, _occlusion_vs_captum),
    ("03 smoothgrad 224 px, 16 samples", None, _smoothgrad),
    ("03 deletion + insertion curves 224 px, 16 steps", None, _curves),
    ("04 guided backprop 224 px", None, _guided),
    ("04 grad-cam head.act 224 px", None, _grad_cam),
]
