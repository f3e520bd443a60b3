"""Exercises of 00_start_here."""
import torch

from ...labels import top_k
from ..registry import Case, register


def _top_k_cases(rng):
    cases = []
    for n, k in [(10, 3), (1000, 5), (7, 7), (50, 1)]:
        logits = torch.from_numpy(rng.normal(0, 3, n)).float()
        cases.append(Case(f"{n} logits, k={k}", (logits, k)))
    cases.append(Case("large logits (softmax must not overflow)", (torch.tensor([1000.0, 999.0, 10.0]), 2)))
    cases.append(Case("k larger than the number of classes", (torch.zeros(3), 4)))
    return cases


register("00.top_k", top_k, _top_k_cases)
