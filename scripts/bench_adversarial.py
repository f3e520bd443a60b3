"""Benchmarks of notebook 10: the attacks at 224 px (issue 10 asks for PGD with 10 steps)."""
import torch

from bench import timed

import course_utils as cu
from course_utils import adversarial as adv
from course_utils.optimize import Progress


def _setup(n=1):
    model = cu.load_model()
    x = torch.cat([cu.as_batch(p, 224) for p in cu.images.PHOTOS[:n]])
    return model, x, adv.top1(model, x)


def _pgd10():
    model, x, y = _setup()
    adv.fgsm(model, x, y, 1 / 255)  # warm-up
    s = timed(lambda: adv.pgd(model, x, y, 4 / 255, 1 / 255, 10, seed=0), repeat=2)
    return s, f"{s / 10 * 1000:.0f} ms a step"


def _pgd10_batch8():
    model, x, y = _setup(8)
    s = timed(lambda: adv.pgd(model, x, y, 4 / 255, 1 / 255, 10, seed=0))
    return s, f"{80 / s:.1f} image-steps/s"


def _fgsm():
    model, x, y = _setup()
    adv.fgsm(model, x, y, 1 / 255)
    return timed(lambda: adv.fgsm(model, x, y, 1 / 255), repeat=3)


def _fooling():
    model, x, _ = _setup()
    history = []
    s = timed(lambda: adv.fooling_image(model, x, "ostrich", lr=0.5 / 255, confidence=0.9,
                                        progress=Progress(history=history, show=False)))
    return s, f"{len(history)} steps to 'ostrich' at 90%"


BENCHES = [
    ("10 PGD, 10 steps, 1 image 224 px", None, _pgd10),
    ("10 PGD, 10 steps, 8 photos 224 px", None, _pgd10_batch8),
    ("10 FGSM, 1 image 224 px", None, _fgsm),
    ("10 fooling_image chelsea -> ostrich, 224 px", None, _fooling),
]
