"""Benchmarks of the image optimizer and its two first uses (notebooks 05 and 06).

Time per optimizer step on the default model at 224 px (pixel Adam, with and without the full set of
regularizers), one class visualization and one inversion at the notebooks' settings.
"""
from bench import timed

import course_utils as cu
from course_utils import ascent, inversion
from course_utils.optimize import param
from course_utils.optimize import objectives as O
from course_utils.optimize import optimize_image

STEPS = 20


def _step(**kwargs):
    def fn():
        model = cu.load_model()
        objective = O.class_logit("ostrich") - 30 * O.l2()
        optimize_image(model, objective, param.noise(224), steps=2, progress=False, **kwargs)  # warm-up
        s = timed(lambda: optimize_image(model, objective, param.noise(224), steps=STEPS, progress=False, **kwargs)) / STEPS
        return s, f"{1 / s:.1f} steps/s"

    return fn


def _full_step():
    model = cu.load_model()
    ascent.class_visualization(model, "ostrich", size=224, steps=2, progress=False)
    s = timed(lambda: ascent.class_visualization(model, "ostrich", size=224, steps=STEPS, progress=False)) / STEPS
    return s, f"{1 / s:.1f} steps/s, jitter + scale + rotate + blur + both clippings"


def _class_visualization():  # notebook 05: 160 px, 60 steps, all regularizers
    model = cu.load_model()
    return timed(lambda: ascent.class_visualization(model, "flamingo", size=160, steps=60, progress=False))


def _inversion():  # notebook 06: 128 px, 100 steps, one layer
    model = cu.load_model()
    photo = cu.as_batch("coffee", 128)
    return timed(lambda: inversion.invert(model, photo, "blocks.8", steps=100, progress=False))


BENCHES = [
    ("optimizer step, pixel Adam, 224 px, no transforms", None, _step()),
    ("optimizer step, 224 px, all regularizers of 05", None, _full_step),
    ("05 class visualization, 160 px, 60 steps", None, _class_visualization),
    ("06 inversion from blocks.8, 128 px, 100 steps", None, _inversion),
]
