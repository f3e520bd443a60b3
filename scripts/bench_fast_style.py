"""Benchmarks of notebook 09: a shipped fast-style network at 256 px, against notebook 08's optimization.

Issue budget: at least 10 stylized images per second at 256x256 on 2 CPU cores, i.e. 20 images in 2 s.
Issue #18: on the held-out photos, at most 1% of pixels saturated by a shipped network (`fs.saturation`).
Each benchmark loads what it needs itself: none depends on another having run.
"""
import time

import torch

import course_utils as cu
from course_utils import fast_style as fs
from course_utils import style as st
from course_utils.models import count_parameters

N = 20


def _stylizer():
    return fs.load_stylizer(next(iter(fs.pretrained_styles())))


def _stylize():
    net, x = _stylizer(), cu.as_batch("chelsea", 256)
    fs.stylize(net, x)  # warm-up
    t0 = time.perf_counter()
    for _ in range(N):
        fs.stylize(net, x)
    s = time.perf_counter() - t0
    return s, f"{N} images one at a time: {N / s:.1f} images/s ({count_parameters(net) / 1e6:.2f}M parameters)"


def _speedup():
    net, lossnet, x = _stylizer(), st.loss_network(), cu.as_batch("chelsea", 256)
    one_pass = 1 / fs.images_per_second(net, x)
    t0 = time.perf_counter()
    st.style_transfer(lossnet, "chelsea", "strokes", size=256, progress=False)
    s = time.perf_counter() - t0
    return s, f"08's optimization (100 L-BFGS steps) at 256 px: {s / one_pass:.0f}x the time of one forward pass"


def _train_step():
    lossnet, hist = st.loss_network(), []
    t0 = time.perf_counter()
    fs.train(lossnet, "strokes", steps=10, size=128, batch=4, progress=False, history=hist)
    s = time.perf_counter() - t0
    return s, f"{s / 10:.2f} s/step at batch 4, 128 px: 1000 steps (a shipped style) ~{1000 * s / 10 / 60:.0f} min"


def _saturation(name, style=None):
    def measure():
        net = fs.load_stylizer(name)
        shares = []
        for photo in fs.HELD_OUT:
            x = cu.as_batch(photo, shorter_side=256)
            shares.append(100 * fs.saturation(x, fs.stylize(net, x, style=style)))
        return max(shares), "worst of " + ", ".join(f"{p} {v:.2f}%" for p, v in zip(fs.HELD_OUT, shares)), "%"

    return measure


SATURATION = [(f"09 saturated pixels, {name} (held-out, 256 px)", 1.0, _saturation(name)) for name in fs.pretrained_styles()]
SATURATION += [(f"09 saturated pixels, paintings: {s} (held-out, 256 px)", 1.0, _saturation("paintings", s))
               for s in fs.load_stylizer("paintings").styles]

BENCHES = SATURATION + [
    ("09 stylize 20 images 256 px (>= 10 images/s)", 2.0, _stylize),
    ("09 speed-up over 08 optimization, 256 px", None, _speedup),
    ("09 train 10 steps (batch 4, 128 px)", None, _train_step),
]

if __name__ == "__main__":
    torch.set_num_threads(2)
    for what, budget, fn in BENCHES:
        print(what, fn())
