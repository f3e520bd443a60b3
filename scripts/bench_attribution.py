"""Benchmarks of notebooks 03 and 04: occlusion (batched), gradient maps, Grad-CAM, curves."""

from bench import timed

import course_utils as cu
from course_utils import attribution as A
from course_utils import map_quality as Q


def _cat():
    return cu.load_model(), cu.as_batch("chelsea", 224)


def _occlusion():
    model, x = _cat()
    with A.count_forwards(model) as n:
        s = timed(lambda: A.occlusion(model, x, "tabby", window=32, stride=8, baseline=0.5))
    return s, f"{n.images} images through the model ({n.images / s:.0f}/s)"


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
    ("03 smoothgrad 224 px, 16 samples", None, _smoothgrad),
    ("03 deletion + insertion curves 224 px, 16 steps", None, _curves),
    ("04 guided backprop 224 px", None, _guided),
    ("04 grad-cam head.act 224 px", None, _grad_cam),
]
