"""Exercises of 01_filters: normalize a filter bank for display; the dead-unit fraction of a layer."""
import torch

from ...filters import dead_fraction, normalize_filters
from ..registry import Case, register


def _normalize_cases(rng):
    cases = []
    for o, i, k in [(32, 3, 3), (16, 1, 5), (8, 3, 11), (4, 16, 3)]:
        w = torch.from_numpy(rng.normal(0, rng.uniform(0.01, 2), (o, i, k, k))).float()
        cases.append(Case(f"a bank of {o} filters of shape ({i}, {k}, {k})", (w,)))
    w = torch.from_numpy(rng.normal(0, 1, (3, 3, 3, 3))).float()
    w[1] = 0.7  # a constant filter
    cases.append(Case("a bank with one constant filter (it must become 0.5, not NaN)", (w,)))
    w = torch.from_numpy(rng.normal(0, 1, (5, 3, 3, 3))).float()
    w[2] *= 1000.0
    cases.append(Case("one filter 1000x larger than the others (each filter is scaled on its own)", (w,)))
    return cases


def _dead_cases(rng):
    cases = []
    for shape in [(20, 8, 5, 5), (50, 64), (3, 16, 7, 7)]:
        a = torch.from_numpy(rng.normal(0, 1, shape)).float().clamp_min(0)
        dead = rng.choice(shape[1], size=shape[1] // 4, replace=False)
        a[:, torch.from_numpy(dead)] = 0.0
        cases.append(Case(f"ReLU outputs of shape {shape}, a quarter of the units dead", (a,)))
    a = torch.zeros(10, 4, 3, 3)
    a[7, 2, 1, 1] = 0.01  # unit 2 fires once, for one input at one position
    cases.append(Case("units that fire only once still count as alive", (a,)))
    cases.append(Case("every unit dead", (torch.zeros(6, 5, 2, 2),)))
    return cases


register("01.normalize_filters", normalize_filters, _normalize_cases, atol=1e-5)
register("01.dead_fraction", dead_fraction, _dead_cases, atol=1e-9)
