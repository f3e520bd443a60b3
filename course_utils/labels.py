"""ImageNet class names (they ship with torchvision, no download), targets, scores and top-k prediction.

`targets(target, n)` is the one way a class is given everywhere: an index, an ImageNet name, or one
of them per image. `class_scores` runs a model over a batch, chunk by chunk, without gradients.
"""
from __future__ import annotations

import difflib
import functools

import torch

from .images import as_batch


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names, index i is logit i."""
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def class_index(name_or_index) -> int:
    """The index of an ImageNet class given by name ("ostrich", case-insensitive) or index.

    A name that is not a class is answered with the closest class names. Two names occur
    twice in ImageNet ("crane", "maillot"); the first index is returned for them.
    """
    labels = imagenet_labels()
    if isinstance(name_or_index, bool):
        raise TypeError("a class is a name or an index, not a bool")
    if isinstance(name_or_index, int) or (torch.is_tensor(name_or_index) and name_or_index.numel() == 1):
        i = int(name_or_index)
        if not 0 <= i < len(labels):
            raise ValueError(f"class index {i} is out of range: ImageNet has classes 0..{len(labels) - 1}")
        return i
    if not isinstance(name_or_index, str):
        raise TypeError(f"a class is a name or an index, got {type(name_or_index).__name__}")
    query = name_or_index.strip().lower()
    lowered = [label.lower() for label in labels]
    if query in lowered:
        return lowered.index(query)
    contains = [labels[i] for i, label in enumerate(lowered) if query and query in label]
    close = difflib.get_close_matches(query, lowered, n=5, cutoff=0.6)
    suggestions = list(dict.fromkeys(contains[:5] + [labels[lowered.index(c)] for c in close]))[:8]
    hint = f" Close ImageNet classes: {', '.join(map(repr, suggestions))}." if suggestions else (
        " See course_utils.imagenet_labels() for all 1000 names."
    )
    raise ValueError(f"{name_or_index!r} is not an ImageNet class.{hint}")


def class_name(index: int) -> str:
    """The name of ImageNet class `index`."""
    return imagenet_labels()[class_index(index)]


def targets(target, n, device=None) -> torch.Tensor:
    """The class of each of n images as a long tensor (n,): `target` is a class index, an ImageNet class
    name, or a list / tensor with one of them per image. Indices are checked against the model's outputs
    where they are used (a 10-class model takes 0..9)."""
    def one(t):
        if isinstance(t, str):
            return class_index(t)
        if isinstance(t, bool) or not (isinstance(t, int) or hasattr(t, "__index__")):
            raise TypeError(f"a target is a class index or an ImageNet class name, got {t!r}")
        if int(t) < 0:
            raise ValueError(f"a class index is >= 0, got {int(t)}")
        return int(t)

    if torch.is_tensor(target) and target.numel() == 1:
        target = int(target)
    if isinstance(target, (list, tuple)) or torch.is_tensor(target):
        ts = [one(t) for t in (target.flatten().tolist() if torch.is_tensor(target) else target)]
        if len(ts) != n:
            raise ValueError(f"got {len(ts)} targets for {n} images: give one class for all, or one per image")
    else:
        ts = [one(target)] * n
    return torch.tensor(ts, dtype=torch.long, device=device)


SCORES = ("logit", "probability")


@torch.no_grad()
def class_scores(model, x, score="logit", batch_size=32) -> torch.Tensor:
    """The model's (N, classes) logits, or probabilities (the softmax), for a batch, `batch_size` images
    at a time, without gradients. x: anything `images.as_batch` takes."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    x = as_batch(x, device=model)
    out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return torch.softmax(out, dim=1) if score == "probability" else out


@torch.no_grad()
def predict(model, image, topk=5, size=224):
    """The model's top-k classes for one image: [(label, probability), ...], most likely first.

    image: a (1,3,H,W) or (3,H,W) tensor in [0, 1] (for a model that declared nothing, a (1,3,H,W) tensor as
    the model takes it), or anything `load_image` accepts (then resized to `size`). For a batch, use
    `predict_batch`.
    """
    x = as_batch(image, None if torch.is_tensor(image) else size, device=model, channels=3)
    return predict_batch(model, x[:1], topk)[0]


def top_k(logits, k=5):
    """(probabilities, indices) of the k most likely classes, from logits of shape (C,) or (N, C).

    Probabilities are the softmax of the logits: p_i = exp(s_i) / sum_j exp(s_j).
    """
    if k > logits.shape[-1]:
        raise ValueError(f"k={k} is larger than the number of classes ({logits.shape[-1]})")
    p, idx = torch.softmax(logits, dim=-1).topk(k, dim=-1)
    return p, idx


def predict_batch(model, x, topk=5):
    """Top-k [(label, probability), ...] for each image of a (N,3,H,W) batch."""
    p, idx = top_k(class_scores(model, x), topk)
    labels = imagenet_labels()
    return [[(labels[i], float(q)) for q, i in zip(pr.tolist(), ix.tolist())] for pr, ix in zip(p, idx)]
