"""Exercises of 07_deepdream: one DeepDream step, and the octave pyramid."""
import torch

from ...deepdream import dream_step
from ...optimize.loop import octave_pyramid
from ...testing import tiny_cnn
from ..registry import Case, register


def _dream_step_cases(rng):
    cases = []
    for layer, lr in [("conv1", 0.02), ("relu1", 0.05), ("relu2", 0.01), ("conv2", 0.1)]:
        h, w = (int(v) for v in rng.integers(8, 24, 2))
        x = torch.from_numpy(rng.uniform(0.1, 0.9, (1, 3, h, w))).float()
        cases.append(Case(f"random {h}x{w} image, layer {layer!r}, lr={lr}",
                          (tiny_cnn(int(rng.integers(1000)), classes=10), x, layer, lr)))
    x = torch.from_numpy(rng.uniform(0, 1, (1, 3, 12, 12))).float()
    cases.append(Case("a big step (lr=1.0): the result must be clamped to [0, 1]",
                      (tiny_cnn(7, classes=10), x, "conv2", 1.0)))
    return cases


class _Ripple:
    """A stand-in for dreaming: adds a fixed ripple whose wavelength is in pixels (so it depends on the size)."""

    def __init__(self, strength):
        self.strength = strength

    def __call__(self, x):
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
        return (x + self.strength * torch.sin(0.9 * xx + 0.5 * yy)).clamp(0, 1)

    def __repr__(self):
        return f"ripple({self.strength})"


def _octave_cases(rng):
    cases = []
    for octaves, scale in [(3, 1.4), (2, 2.0), (4, 1.3)]:
        h, w = (int(v) for v in rng.integers(20, 48, 2))
        x = torch.from_numpy(rng.uniform(0.2, 0.8, (1, 3, h, w))).float()
        cases.append(Case(f"{h}x{w} image, {octaves} octaves, scale {scale}", (x, _Ripple(0.1), octaves, scale)))
    x = torch.from_numpy(rng.uniform(0, 1, (1, 3, 16, 24))).float()
    cases.append(Case("one octave: just dream_fn(x)", (x, _Ripple(0.2), 1, 1.4)))
    cases.append(Case("a dream_fn that changes nothing: the image comes back", (x, lambda z: z, 3, 1.5)))
    return cases


register("07.dream_step", dream_step, _dream_step_cases)
register("07.octave_pyramid", octave_pyramid, _octave_cases)
