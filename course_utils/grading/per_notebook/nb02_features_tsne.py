"""Exercises of 02_features_tsne: receptive field of a layer stack; nearest neighbours by cosine."""
import torch

from ...embeddings import cosine_neighbours
from ...receptive_fields import rf_size_stride
from ..registry import Case, register


def _rf_cases(rng):
    cases = [
        Case("one 3x3 convolution", ([(3, 1)],)),
        Case("two 3x3 convolutions (a 5x5 field)", ([(3, 1), (3, 1)],)),
        Case("AlexNet up to conv5: 11/4, pool 3/2, 5/1, pool 3/2, 3/1, 3/1, 3/1",
             ([(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1)],)),
        Case("no layers at all (a pixel sees itself)", ([],)),
    ]
    for _ in range(3):
        n = int(rng.integers(2, 8))
        layers = [(int(rng.choice([1, 3, 5, 7])), int(rng.choice([1, 1, 2]))) for _ in range(n)]
        cases.append(Case(f"a random stack of {n} layers", (layers,)))
    return cases


def _cosine_cases(rng):
    cases = []
    for n, d, k in [(50, 8, 5), (200, 64, 1), (10, 3, 10)]:
        bank = torch.from_numpy(rng.normal(0, 1, (n, d))).float()
        query = torch.from_numpy(rng.normal(0, 1, d)).float()
        cases.append(Case(f"a bank of {n} vectors of dimension {d}, k={k}", (query, bank, k)))
    bank = torch.from_numpy(rng.normal(0, 1, (30, 16))).float()
    query = torch.from_numpy(rng.normal(0, 1, 16)).float()
    bank[3] = query * 50.0  # a long vector pointing the same way as the query
    bank[17] = query + 0.3 * bank[17]  # close, and the nearest by Euclidean distance
    cases.append(Case("cosine ignores length: a 50x longer copy of the query is its best match",
                      (query, bank, 3)))
    cases.append(Case("k larger than the bank (expect a ValueError)", (bank[0], bank[:4], 5)))
    return cases


register("02.rf_size_stride", rf_size_stride, _rf_cases)
register("02.cosine_neighbours", cosine_neighbours, _cosine_cases, atol=1e-5)
