"""Optimize an image: the one loop behind gradient ascent, inversion, DeepDream, texture synthesis,
style transfer and fooling images.

    x* = argmax_x  objective(network(transform(x)), x)      with x in [0, 1]

Each step: draw random transforms (jitter, scale, rotate, blur), run the network on the
transformed image, record the layers the objective needs, backpropagate the objective to the
image, take a step (Adam, SGD, L-BFGS, or a DeepDream-style normalized gradient step), clamp to
[0, 1] and apply the image operations of Yosinski et al. 2015 (periodic blur, clipping pixels of
small norm or small contribution). With octaves, the image is optimized at growing sizes and the
detail added at each size is carried up to the next (the DeepDream pyramid).

Papers: Erhan et al. 2009; Simonyan et al. 2014; Yosinski et al. 2015 ("Understanding Neural
Networks Through Deep Visualization"); Mahendran & Vedaldi 2015; Mordvintsev et al. 2015;
Olah et al. 2017 ("Feature Visualization", Distill) for the decorrelated Fourier parameterization.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .layers import capture, frozen
from .objectives import Context, Objective
from .transforms import gaussian_blur


class OptimizationError(RuntimeError):
    """The objective became NaN or exploded; the message suggests what to change."""


# ---------------------------------------------------------------- image operations (Yosinski et al.)

def clip_small_pixels(x, percentile):
    """Set to mid-grey the pixels whose colour norm ||x - 1/2|| is below the given percentile."""
    norm = (x - 0.5).norm(dim=1, keepdim=True)
    thr = torch.quantile(norm.flatten(), percentile / 100.0)
    return torch.where(norm < thr, torch.full_like(x, 0.5), x)


def clip_small_contributions(x, grad, percentile):
    """Set to mid-grey the pixels whose contribution |(x - 1/2) * grad|, summed over colours, is below
    the percentile: a first-order estimate of how much the objective would drop if the pixel were grey."""
    contrib = ((x - 0.5) * grad).abs().sum(dim=1, keepdim=True)
    thr = torch.quantile(contrib.flatten(), percentile / 100.0)
    return torch.where(contrib < thr, torch.full_like(x, 0.5), x)


# ---------------------------------------------------------------- parameterizations

_COLOR_SVD_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)
_COLOR = torch.from_numpy(_COLOR_SVD_SQRT / np.max(np.linalg.norm(_COLOR_SVD_SQRT, axis=0)))


class PixelImage:
    """The image is its pixels, clamped to [0, 1] after every step."""

    def __init__(self, x):
        self.x = x.detach().clone().requires_grad_(True)

    def params(self):
        return [self.x]

    def image(self):
        return self.x

    def after_step(self, fn=None):
        with torch.no_grad():
            self.x.clamp_(0, 1)
            if fn is not None:
                self.x.copy_(fn(self.x))


class FourierImage:
    """The image is a spectrum scaled by 1/frequency, decorrelated colours and a sigmoid (Olah et al. 2017).

    Steps on this parameterization change low frequencies as easily as high ones, which gives
    cleaner visualizations from noise than pixel steps do.
    """

    def __init__(self, h, w, generator, sd=0.01, decay_power=1.0):
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = (fx ** 2 + fy ** 2).sqrt()
        self.scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power
        self.h, self.w = h, w
        self.spectrum = (torch.randn(1, 3, *freqs.shape, 2, generator=generator) * sd).requires_grad_(True)

    def params(self):
        return [self.spectrum]

    def image(self):
        s = torch.view_as_complex(self.spectrum) * self.scale
        x = torch.fft.irfftn(s, s=(self.h, self.w), norm="ortho") / 4.0
        x = torch.einsum("nchw,dc->ndhw", x, _COLOR)
        return torch.sigmoid(x)

    def after_step(self, fn=None):
        if fn is not None:
            raise ValueError("clipping and periodic blur act on pixels: use param='pixel' with them")


# ---------------------------------------------------------------- the loop

def _initial_image(image, size, generator):
    from .images import load_image, to_tensor

    if image is None or (isinstance(image, str) and image == "noise"):
        h, w = (size, size) if isinstance(size, int) else size
        return (0.5 + 0.1 * torch.randn(1, 3, h, w, generator=generator)).clamp(0, 1)
    if torch.is_tensor(image):
        x = image.detach().float()
        x = x.unsqueeze(0) if x.dim() == 3 else x
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"the initial image must be (1, 3, H, W), got {tuple(image.shape)}")
        if size is not None and tuple(x.shape[-2:]) != ((size, size) if isinstance(size, int) else tuple(size)):
            x = F.interpolate(x, size=(size, size) if isinstance(size, int) else size, mode="bilinear",
                              align_corners=False)
        return x.clamp(0, 1)
    return to_tensor(load_image(image, size=size))


def _resize(x, hw):
    return x if tuple(x.shape[-2:]) == tuple(hw) else F.interpolate(x, size=hw, mode="bilinear", align_corners=False)


def _make_optimizer(name, params, lr):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=20)  # one evaluation a step
    if name == "normalized":
        return None  # x += lr * g / mean|g|, below
    raise ValueError(f"unknown optimizer {name!r}: choose 'adam', 'sgd', 'lbfgs' or 'normalized'")


def optimize_image(model, objective: Objective, image=None, size=224, steps=100, lr=0.05, optimizer="adam",
                   param="pixel", transforms=(), octaves=1, octave_scale=1.4, blur_every=0, blur_sigma=0.5,
                   clip_pixels=0.0, clip_contributions=0.0, seed=0, progress=True, callback=None,
                   callback_every=10, history=None, description="optimizing"):
    """Maximize `objective` over an image; return it as a (1, 3, H, W) tensor in [0, 1].

    image:       the start: None or "noise" (grey plus faint noise), a tensor, or anything load_image takes.
    size:        the output size (int or (H, W)); an image start is resized to it.
    steps, lr:   steps per octave and the step size; optimizer: "adam", "sgd", "lbfgs" or "normalized"
                 (gradient divided by its mean absolute value, as in DeepDream).
    param:       "pixel", or "fourier" (decorrelated colour, 1/f-scaled spectrum; start from noise only).
    transforms:  list of random transforms applied before each forward pass (course_utils.transforms).
    octaves:     optimize at `octaves` sizes growing by `octave_scale`, carrying the added detail up.
    blur_every, blur_sigma, clip_pixels, clip_contributions: Yosinski et al.'s image operations,
                 every `blur_every` steps a Gaussian blur; each step, pixels below the given percentile
                 of norm (or of contribution to the objective) are set to grey.
    seed:        seeds the start noise and every random transform.
    callback:    callback(step, image, value) every `callback_every` steps (for live previews).
    history:     a list; the objective's value at the start of each step is appended to it.
    """
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be an Objective (see course_utils.objectives), got {type(objective).__name__}")
    if param not in ("pixel", "fourier"):
        raise ValueError(f"param must be 'pixel' or 'fourier', got {param!r}")
    if param == "fourier" and (octaves > 1 or (image is not None and not isinstance(image, str))):
        raise ValueError("param='fourier' starts from noise at one size: use param='pixel' for octaves or a start image")
    if steps < 0 or octaves < 1:
        raise ValueError("steps must be >= 0 and octaves >= 1")
    g = torch.Generator().manual_seed(seed)
    base = _initial_image(image, size, g)
    full = tuple(base.shape[-2:])
    sizes = [tuple(max(1, round(s / octave_scale ** (octaves - 1 - k))) for s in full) for k in range(octaves)]
    layers = sorted(objective.layers)
    detail = torch.zeros_like(base)
    bar = tqdm(total=steps * octaves, desc=description, disable=not progress, leave=False)
    step_count = 0
    try:
        with frozen(model):  # eval mode, no weight gradients; each module's own mode restored after
            for hw in sizes:
                base_k = _resize(base, hw)
                start = (base_k + _resize(detail, hw)).clamp(0, 1)
                img = FourierImage(*hw, g) if param == "fourier" else PixelImage(start)
                opt = _make_optimizer(optimizer, img.params(), lr)
                for _ in range(steps):
                    state = {}

                    def closure():
                        if opt is not None:
                            opt.zero_grad()
                        x = img.image()
                        xt = x
                        for t in transforms:
                            xt = t(xt, g)
                        with capture(model, layers, detach=False) as acts:
                            logits = model(xt)
                        value = objective(Context(x, acts, logits))
                        if not torch.isfinite(value) or value.abs() > 1e12:
                            raise OptimizationError(
                                f"the objective became {float(value):.3g} at step {step_count}: lower the step size "
                                f"(lr={lr}) or raise the regularization weights")
                        (-value).backward()
                        state["value"] = float(value.detach())
                        return -value

                    if opt is None:  # normalized gradient ascent: x <- x + lr * g / mean|g|, g = d objective / dx
                        closure()
                        with torch.no_grad():
                            g_obj = -img.x.grad  # the backward pass was of -objective
                            img.x += lr * g_obj / g_obj.abs().mean().clamp_min(1e-12)
                            img.x.grad = None
                    else:
                        opt.step(closure)
                        grad = img.params()[0].grad
                        g_obj = None if grad is None else -grad
                    ops = []
                    if clip_pixels > 0:
                        ops.append(lambda x: clip_small_pixels(x, clip_pixels))
                    if clip_contributions > 0 and g_obj is not None and param == "pixel":
                        ops.append(lambda x, gc=g_obj: clip_small_contributions(x, gc, clip_contributions))
                    if blur_every and (step_count + 1) % blur_every == 0 and blur_sigma > 0:
                        ops.append(lambda x: gaussian_blur(x, blur_sigma))
                    img.after_step((lambda x: _compose(ops, x)) if ops else None)
                    step_count += 1
                    if history is not None:
                        history.append(state["value"])
                    bar.update(1)
                    bar.set_postfix(objective=f"{state['value']:.4g}", size=f"{hw[0]}x{hw[1]}")
                    if callback is not None and (step_count % callback_every == 0 or step_count == steps * octaves):
                        callback(step_count, img.image().detach().clamp(0, 1), state["value"])
                with torch.no_grad():
                    result = img.image().detach().clamp(0, 1)
                detail = result - base_k
            return result
    finally:
        bar.close()


def _compose(ops, x):
    for op in ops:
        x = op(x)
    return x


def evaluate(model, objective: Objective, image):
    """The objective's value for a fixed image (no transforms, no gradient)."""
    from .images import to_tensor

    x = to_tensor(image)
    with torch.no_grad(), capture(model, sorted(objective.layers)) as acts:
        logits = model(x)
        return float(objective(Context(x, acts, logits)))


__all__ = ["optimize_image", "evaluate", "OptimizationError", "clip_small_pixels", "clip_small_contributions",
           "PixelImage", "FourierImage"]
