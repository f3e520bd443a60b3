"""Benchmarks of notebook 08: texture synthesis and style transfer at 256 px with the default settings."""
import time

import torch

from course_utils import style as st
from course_utils.optimize import Progress
from course_utils.style_images import painting


def _texture():
    net = st.loss_network()  # loaded outside the timing
    t0 = time.perf_counter()
    st.texture_synthesis(net, "gravel", size=256, progress=False)
    s = time.perf_counter() - t0
    return s, f"{st.DEFAULT_STEPS['lbfgs']} L-BFGS steps, {s / st.DEFAULT_STEPS['lbfgs'] * 1000:.0f} ms/step"


def _transfer():
    net, judge = st.loss_network(), st.loss_network("efficientnet_lite1")
    style = painting("strokes", size=256)
    history = []
    t0 = time.perf_counter()
    x = st.style_transfer(net, "chelsea", style, size=256, progress=Progress(history=history, show=False))
    s = time.perf_counter() - t0
    scores = st.stylization_scores(judge, x, "chelsea", style)
    return s, (f"{len(history)} L-BFGS steps, {s / len(history) * 1000:.0f} ms/step; judged by Lite1: style "
               f"{scores['style']:.3f} vs content image {scores['style_of_content']:.3f}, content {scores['content']:.3f}")


BENCHES = [
    ("08 texture_synthesis 256 px (default)", None, _texture),
    ("08 style_transfer 256 px (default)", 60, _transfer),
]

if __name__ == "__main__":
    torch.set_num_threads(2)
    for what, budget, fn in BENCHES:
        print(what, fn())
