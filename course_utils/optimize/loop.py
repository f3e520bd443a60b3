"""Optimize an image: the one loop behind gradient ascent, inversion, DeepDream, texture synthesis,
style transfer and fooling images.

    x* = argmax_x  objective(network(transform(x)), x)      with x in [0, 1]

Each step: draw random transforms (`transforms`), run the network on the transformed image and record
the layers the objective reads, backpropagate the objective to the image's parameters (`param`), take a
step (Adam, SGD, L-BFGS, or DeepDream's normalized gradient step), keep the image valid and apply the
image operations after the step (blur, clipping: also in `transforms`). `stop` ends it early;
`Progress` reports it (a bar, a live preview, a record of the objective). Octaves, the DeepDream
pyramid, are a loop around it: `octave_pyramid`.

Papers: Erhan et al. 2009; Simonyan et al. 2014; Yosinski et al. 2015; Mahendran & Vedaldi 2015;
Mordvintsev et al. 2015; Olah et al. 2017 ("Feature Visualization", Distill), whose library Lucid
(and its PyTorch port Lucent) splits the loop the same way: objectives, parameterizations, transforms.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..images import as_batch
from ..layers import capture, frozen
from ..seeding import generator
from .objectives import Context, Objective, on_image
from .param import PixelImage


class OptimizationError(RuntimeError):
    """The objective became NaN or exploded; the message suggests what to change."""


@dataclass
class Step:
    """What an image operation after a step may use: the step's index (from 0), the gradient of the
    objective with respect to the image's parameters, and the objective's value."""

    index: int
    grad: torch.Tensor | None
    value: float


class Progress:
    """How an optimization reports itself: a progress bar, a live preview and a record of the objective.

    callback: callback(step, image, value) every `every` steps and after the last (e.g. a preview widget);
    history:  a list that receives the objective's value at each step;
    total:    the number of steps of the whole run, when it is several optimizations (octaves, frames).
    `optimize_image(..., progress=...)` takes True (a bar), False (silent), a callback, or a Progress.
    """

    def __init__(self, description=None, callback=None, every=10, history=None, show=True, total=None):
        self.description, self.callback, self.every = description, callback, every
        self.history, self.show, self.total = history, show, total
        self.count, self._bar = 0, None

    @classmethod
    def of(cls, progress, description=None, total=None) -> "Progress":
        """A Progress from what a function was given (True, False, a callback or a Progress)."""
        if not isinstance(progress, Progress):
            progress = (cls(callback=progress) if callable(progress) else cls(show=bool(progress)))
        progress.description = progress.description or description
        progress.total = progress.total or total
        return progress

    @contextlib.contextmanager
    def running(self, steps=None):
        """Open the bar for `total` (or `steps`) steps, unless a caller already opened it; close it after."""
        if self._bar is not None:
            yield self
            return
        self._bar = tqdm(total=self.total or steps, desc=self.description or "optimizing", disable=not self.show,
                         leave=False)
        try:
            yield self
        finally:
            self._bar.close()
            self._bar = None

    def update(self, value, image, **postfix):
        """One step done: record `value`; call the callback with image() when it is due."""
        self.count += 1
        if self.history is not None:
            self.history.append(value)
        self._bar.update(1)
        self._bar.set_postfix(objective=f"{value:.4g}", **postfix)
        if self.callback is not None and (self.count % self.every == 0 or self.count == self._bar.total):
            self.callback(self.count, image(), value)


class NormalizedAscent(torch.optim.Optimizer):
    """DeepDream's step: x <- x + lr * g / mean|g|, with g the gradient of the objective (the loop
    backpropagates -objective, so g = -grad): `lr` is the mean change of a pixel per step."""

    def __init__(self, params, lr):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    g = -p.grad
                    p += group["lr"] * g / g.abs().mean().clamp_min(1e-12)
        return loss


OPTIMIZERS = ("adam", "sgd", "lbfgs", "normalized")


def _optimizer(name, params, lr):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=20)  # one evaluation a step
    if name == "normalized":
        return NormalizedAscent(params, lr)
    raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(map(repr, OPTIMIZERS))}")


class _Stopped(Exception):
    def __init__(self, image):
        self.image = image


def optimize_image(model, objective: Objective, image, steps=100, lr=0.05, optimizer="adam", transforms=(),
                   post=(), stop=None, seed=0, progress=True):
    """Maximize `objective` over an image; return it as a (1, 3, H, W) tensor in [0, 1].

    image:      the start: anything `images.as_batch` takes (its pixels are optimized), or a
                parameterization from `param` (`param.noise(224)`, `param.fourier(224)`).
    steps, lr:  the number of steps and the step size; optimizer: "adam", "sgd", "lbfgs" or "normalized".
    transforms: random transforms applied before each forward pass (`transforms.jitter(8)`, ...).
    post:       image operations after each step (`transforms.blur_every(4, 1.0)`, `clip_pixels(10)`, ...).
    stop:       stop(ctx) -> bool, asked after each forward pass; when true, the image of that pass is
                returned before another step is taken.
    seed:       an int or a torch.Generator: the random transforms' draws.
    progress:   True (a bar), False, a callback(step, image, value), or a `Progress`.
    """
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be an Objective (see course_utils.optimize.objectives), got {type(objective).__name__}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    img = image if hasattr(image, "params") else PixelImage(as_batch(image, device=model, channels=3))
    if post and not isinstance(img, PixelImage):
        raise ValueError("clipping and periodic blur act on pixels: use a pixel parameterization with them")
    g, layers, progress = generator(seed), sorted(objective.layers), Progress.of(progress)
    opt = _optimizer(optimizer, img.params(), lr)
    with torch.no_grad():
        h, w = img.image().shape[-2:]
    with frozen(model), progress.running(steps):
        for k in range(int(steps)):
            state = {}

            def closure():
                opt.zero_grad()
                x = img.image()
                xt = x
                for t in transforms:
                    xt = t(xt, g)
                with capture(model, layers, detach=False) as acts:
                    logits = model(xt)
                ctx = Context(x, acts, logits)
                if stop is not None and stop(ctx):
                    raise _Stopped(x.detach().clone().clamp(0, 1))
                value = objective(ctx)
                if not torch.isfinite(value) or value.abs() > 1e12:
                    raise OptimizationError(f"the objective became {float(value):.3g} at step {k}: lower the step "
                                            f"size (lr={lr}) or raise the regularization weights")
                (-value).backward()
                state["value"] = float(value.detach())
                return -value

            try:
                opt.step(closure)
            except _Stopped as stopped:
                return stopped.image
            grad = img.params()[0].grad
            img.after_step(post, Step(k, None if grad is None else -grad, state["value"]))
            progress.update(state["value"], lambda: img.image().detach().clamp(0, 1), size=f"{h}x{w}")
        with torch.no_grad():
            return img.image().detach().clamp(0, 1)


def evaluate(model, objective: Objective, image, each=False):
    """The objective's value for a fixed image (no transforms, no gradient); each=True: a list, the value
    of each image of the batch alone (`objectives.on_image`)."""
    x = as_batch(image, device=model)
    with torch.no_grad(), capture(model, sorted(objective.layers)) as acts:
        logits = model(x)
        ctx = Context(x, acts, logits)
        if each:
            return [float(on_image(objective, k)(ctx)) for k in range(len(x))]
        return float(objective(ctx))


# ---------------------------------------------------------------- octaves

def _octave_resize(x, hw):
    """x (N, C, H, W) resized to hw = (H', W') (bilinear); x itself when it has that size already.
    Not `images.resize`: the detail it also carries is signed (no clamp), and plain bilinear is the octave
    recipe of the DeepDream code and of notebook 07's exercise."""
    return x if tuple(x.shape[-2:]) == tuple(hw) else F.interpolate(x, size=tuple(hw), mode="bilinear",
                                                                    align_corners=False)


def octave_sizes(hw, octaves=3, octave_scale=1.4):
    """The sizes (H, W) of the octaves, smallest first, the last one `hw` itself."""
    if octaves < 1 or octave_scale < 1:
        raise ValueError(f"need octaves >= 1 and octave_scale >= 1 (each octave larger than the last), "
                         f"got {octaves} and {octave_scale}")
    return [tuple(max(1, round(s / octave_scale ** (octaves - 1 - k))) for s in hw) for k in range(octaves)]


def octave_pyramid(x, dream_fn, octaves=3, octave_scale=1.4):
    """Optimize at growing sizes (DeepDream's octaves): for each size, smallest first, shrink the photo,
    add the detail made so far (upscaled), optimize with dream_fn, and keep what it added as the new detail.

    x: (1, 3, H, W) in [0, 1]; dream_fn: image -> optimized image of the same size.
    Only the detail passes through the small sizes, so the photo stays sharp while the patterns grow large.
    """
    detail = torch.zeros_like(x)
    for hw in octave_sizes(x.shape[-2:], octaves, octave_scale):
        base = _octave_resize(x, hw)
        dreamed = dream_fn((base + _octave_resize(detail, hw)).clamp(0, 1))
        detail = dreamed - base
    return dreamed


__all__ = ["optimize_image", "evaluate", "Progress", "Step", "NormalizedAscent", "OptimizationError", "OPTIMIZERS",
           "octave_sizes", "octave_pyramid"]
