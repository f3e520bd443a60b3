"""Exercises of 07_deepdream: one DeepDream step, and the octave pyramid."""
import torch
from torch import nn

from ..deepdream import dream_step, octave_pyramid
from ..grading import Case, register


def _tiny_cnn(seed):
    """A small random CNN (seeded), so the cases run in milliseconds."""
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the global generator
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1, stride=2),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval().requires_grad_(False)


def _dream_step_cases(rng):
    cases = []
    for layer, lr in [("0", 0.02), ("1", 0.05), ("3", 0.01), ("2", 0.1)]:
        h, w = (int(v) for v in rng.integers(8, 24, 2))
        x = torch.from_numpy(rng.uniform(0.1, 0.9, (1, 3, h, w))).float()
        cases.append(Case(f"random {h}x{w} image, layer {layer!r}, lr={lr}",
                          (_tiny_cnn(int(rng.integers(1000))), x, layer, lr)))
    x = torch.from_numpy(rng.uniform(0, 1, (1, 3, 12, 12))).float()
    cases.append(Case("a big step (lr=1.0): the result must be clamped to [0, 1]", (_tiny_cnn(7), x, "2", 1.0)))
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
