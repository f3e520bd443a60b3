"""Benchmarks of notebook 09: a shipped fast-style network at 256 px, against notebook 08's optimization.

Issue budget: at least 10 stylized images per second at 256x256 on 2 CPU cores, i.e. 20 images in 2 s.
"""
import time

import torch

from course_utils import fast_style as fs
from course_utils import style as st

N = 20
_measured = {}


def _stylize():
    net = fs.load_stylizer(next(iter(fs.pretrained_styles())))
    x = st.image_tensor("chelsea", 256)
    fs.stylize(net, x)  # warm-up
    t0 = time.perf_counter()
    for _ in range(N):
        fs.stylize(net, x)
    s = time.perf_counter() - t0
    _measured["fast"] = s / N
    return s, f"{N} images one at a time: {N / s:.1f} images/s ({fs.count_parameters(net) / 1e6:.2f}M parameters)"


def _speedup():
    st._resolve_network(None)
    t0 = time.perf_counter()
    st.style_transfer("chelsea", "strokes", size=256, progress=False)
    s = time.perf_counter() - t0
    fast = _measured.get("fast") or _stylize()[0] / N
    return s, f"08's optimization (100 L-BFGS steps) at 256 px: {s / fast:.0f}x the time of one forward pass"


def _train_step():
    net = fs.TransformerNet()
    hist = []
    t0 = time.perf_counter()
    fs.train("strokes", steps=10, size=128, batch=4, net=net, progress=False, history=hist)
    s = time.perf_counter() - t0
    return s, f"{s / 10:.2f} s/step at batch 4, 128 px: 1000 steps (a shipped style) ~{1000 * s / 10 / 60:.0f} min"


BENCHES = [
    ("09 stylize 20 images 256 px (>= 10 images/s)", 2.0, _stylize),
    ("09 speed-up over 08 optimization, 256 px", None, _speedup),
    ("09 train 10 steps (batch 4, 128 px)", None, _train_step),
]

if __name__ == "__main__":
    torch.set_num_threads(2)
    for what, budget, fn in BENCHES:
        print(what, fn())
