"""Parameterizations: what the image optimizer's steps move.

An image parameterization has `params()` (the tensors the optimizer changes), `image()` (the
(N, 3, H, W) batch in [0, 1] they make, differentiable; usually one image) and `after_step(ops, step)` (keep the image
valid after a step, then apply the image operations of `transforms`).

- `PixelImage`: the pixels themselves, clamped to [0, 1] after every step.
- `FourierImage`: a spectrum scaled by 1/frequency, in decorrelated colours, through a sigmoid (Olah,
  Mordvintsev & Schubert 2017, "Feature Visualization"). A step of the same size changes low frequencies
  as easily as high ones, which gives cleaner visualizations from noise than pixel steps do.

`pixels(image)`, `noise(size, seed)` and `fourier(size, seed)` make them; the last two are what the
technique functions take as `param=` (a function of (size, seed)).
"""
from __future__ import annotations

import numpy as np
import torch

from ..images import as_batch, noise_image
from ..seeding import generator

# The colour correlations of natural photos (the square root of their covariance, as in Lucid), scaled
# so that its columns have norm at most 1.
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

    def after_step(self, ops=(), step=None):
        with torch.no_grad():
            self.x.clamp_(0, 1)
            for op in ops:
                self.x.copy_(op(self.x, step))


class FourierImage:
    """The image is a spectrum scaled by 1/frequency, decorrelated colours and a sigmoid (Olah et al. 2017)."""

    def __init__(self, size, seed=0, sd=0.01, decay_power=1.0, batch=1):
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        freqs = (fx ** 2 + fy ** 2).sqrt()
        self.scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay_power
        self.h, self.w = h, w
        self.spectrum = (torch.randn(batch, 3, *freqs.shape, 2, generator=generator(seed)) * sd).requires_grad_(True)

    def params(self):
        return [self.spectrum]

    def image(self):
        s = torch.view_as_complex(self.spectrum) * self.scale
        x = torch.fft.irfftn(s, s=(self.h, self.w), norm="ortho") / 4.0
        x = torch.einsum("nchw,dc->ndhw", x, _COLOR)
        return torch.sigmoid(x)

    def after_step(self, ops=(), step=None):
        if ops:
            raise ValueError("clipping and periodic blur act on pixels: use a pixel parameterization with them")


def pixels(image, size=None) -> PixelImage:
    """Optimize the pixels of `image` (anything `images.as_batch` takes), starting from it."""
    return PixelImage(as_batch(image, size, channels=3))


def noise(size, seed=0, batch=1, channels=3) -> PixelImage:
    """Optimize pixels, starting from mid-grey plus faint noise (`images.noise_image`); a batch of
    `batch` images, of `channels` channels (1 for the digits)."""
    return PixelImage(noise_image(size, seed, batch=batch, channels=channels))


def fourier(size, seed=0, batch=1) -> FourierImage:
    """Optimize a decorrelated, 1/f-scaled spectrum (RGB), starting from a faint random one; a batch of
    `batch` images."""
    return FourierImage(size, seed, batch=batch)
