"""Mechanism 1: optimize the image. One loop (`loop.optimize_image`) behind gradient ascent, inversion,
DeepDream, texture synthesis, style transfer and fooling images, split as Lucid and Lucent split it:

- `objectives`: what to maximize, a function of the network's response (they compose: `a + 0.1 * b`);
- `param`: what the steps move (pixels, or a Fourier spectrum);
- `transforms`: random jitter, scale and rotation before each forward pass, and image operations after
  each step (blur, clipping);
- `loop`: the loop itself, its optimizers (Adam, SGD, L-BFGS, DeepDream's normalized step), `Progress`,
  and the octave pyramid around it.

A technique (`ascent`, `inversion`, `deepdream`, `style`, `adversarial.fooling_image`) builds an objective
and picks defaults; a new one goes beside them, not in here.
"""
from . import objectives, param, transforms
from .loop import (OPTIMIZERS, NormalizedAscent, OptimizationError, Progress, Step, evaluate, octave_pyramid,
                   octave_sizes, optimize_image)

__all__ = ["objectives", "param", "transforms", "optimize_image", "evaluate", "Progress", "Step", "NormalizedAscent",
           "OptimizationError", "OPTIMIZERS", "octave_sizes", "octave_pyramid"]
