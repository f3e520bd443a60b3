"""What the image optimizer does to the image besides its gradient step.

Transforms, before each forward pass: an image that only excites the network from one exact position and
scale is mostly high-frequency noise; asking it to work under small random shifts, scalings and rotations
("transformation robustness", Mordvintsev et al. 2015; Olah et al. 2017) removes much of that noise.
A transform is a function (image, generator) -> image, differentiable in the image.

Image operations, after each step (Yosinski et al. 2015, "Understanding Neural Networks Through Deep
Visualization"): blur every few steps, set to grey the pixels of small norm or of small contribution
to the objective. An operation is a function (image, step) -> image, where `step.index` counts the
steps (from 0) and `step.grad` is the gradient of the objective with respect to the image.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(sigma, truncate=4.0):
    """A normalized 1-D Gaussian of radius int(truncate * sigma + 0.5), as scipy.ndimage uses."""
    radius = max(int(truncate * sigma + 0.5), 1)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x, sigma):
    """Blur each channel of (N, C, H, W) with a Gaussian of std `sigma` pixels (mirror padding)."""
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma).to(x)
    r = (len(k) - 1) // 2
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _randint(g, lo, hi):
    return int(torch.randint(lo, hi + 1, (1,), generator=g))


def jitter(pixels):
    """Shift the image by up to `pixels` in x and y (wrapping around, as DeepDream does)."""

    def t(x, g):
        dy, dx = _randint(g, -pixels, pixels), _randint(g, -pixels, pixels)
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))

    return t


def random_scale(scales=(0.95, 1.0, 1.05)):
    """Resize the image by a factor drawn from `scales` (bilinear)."""

    def t(x, g):
        s = scales[_randint(g, 0, len(scales) - 1)]
        if s == 1:
            return x
        h, w = x.shape[-2:]
        return F.interpolate(x, size=(max(8, round(h * s)), max(8, round(w * s))), mode="bilinear", align_corners=False)

    return t


def random_rotate(degrees=5):
    """Rotate the image by an angle drawn uniformly from [-degrees, degrees] (reflection at the borders)."""

    def t(x, g):
        a = math.radians((float(torch.rand(1, generator=g)) * 2 - 1) * degrees)
        theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], dtype=x.dtype)
        grid = F.affine_grid(theta.unsqueeze(0).expand(x.shape[0], 2, 3).to(x.device), list(x.shape),
                             align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    return t


def blur(sigma):
    """Blur the network's input each step (a low-pass filter on what the objective can use)."""
    return lambda x, g: gaussian_blur(x, sigma)


def standard(jitter_px=8, scales=(0.95, 1.0, 1.05), degrees=5):
    """The usual robustness set: jitter, random scale, random rotation."""
    return [jitter(jitter_px), random_scale(scales), random_rotate(degrees)]


# ---------------------------------------------------------------- image operations after a step

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


def clip_pixels(percentile):
    """After every step, `clip_small_pixels` at this percentile."""
    return lambda x, step: clip_small_pixels(x, percentile)


def clip_contributions(percentile):
    """After every step, `clip_small_contributions` at this percentile (with the step's gradient)."""
    return lambda x, step: clip_small_contributions(x, step.grad, percentile)


def blur_every(n, sigma):
    """After every n-th step, a Gaussian blur of std `sigma` pixels."""
    return lambda x, step: gaussian_blur(x, sigma) if (step.index + 1) % n == 0 else x
