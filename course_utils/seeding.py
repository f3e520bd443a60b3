"""One rule for randomness: every random function takes `seed=` and leaves torch's global generator alone.

`seed` is an int, or a `torch.Generator` to go on drawing from a stream that another function started
(a noise start and the random transforms of one optimization share one stream, so that both come from
one seed). Code that can only draw from the global generator (a layer's default initialization,
torchvision's random transforms) runs inside `forked(seed)`: seeded, and the global state is given back.
"""
from __future__ import annotations

import contextlib

import torch


def generator(seed=0) -> torch.Generator:
    """A CPU generator: `seed` itself when it is one, else a new one seeded with the int `seed`."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def forked(seed=0):
    """Inside the block torch's global generator is seeded with `seed`; afterwards it is as it was."""
    if isinstance(seed, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
