"""ImageNet class names (they ship with torchvision, no download) and top-k prediction."""
from __future__ import annotations

import difflib
import functools

import torch


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


def _as_batch(image, size=224):
    from .images import load_image, to_tensor

    if torch.is_tensor(image):
        x = image if image.dim() == 4 else image.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an image tensor of shape (N, 3, H, W) or (3, H, W), got {tuple(image.shape)}")
        return x
    return to_tensor(load_image(image, size=size))


@torch.no_grad()
def predict(model, image, topk=5, size=224):
    """The model's top-k classes for one image: [(label, probability), ...], most likely first.

    image: a (1,3,H,W) or (3,H,W) tensor in [0, 1], or anything `load_image` accepts
    (then resized to `size`). For a batch, use `predict_batch`.
    """
    return predict_batch(model, _as_batch(image, size)[:1], topk)[0]


def top_k(logits, k=5):
    """(probabilities, indices) of the k most likely classes, from logits of shape (C,) or (N, C).

    Probabilities are the softmax of the logits: p_i = exp(s_i) / sum_j exp(s_j).
    """
    if k > logits.shape[-1]:
        raise ValueError(f"k={k} is larger than the number of classes ({logits.shape[-1]})")
    p, idx = torch.softmax(logits, dim=-1).topk(k, dim=-1)
    return p, idx


@torch.no_grad()
def predict_batch(model, x, topk=5):
    """Top-k [(label, probability), ...] for each image of a (N,3,H,W) batch."""
    param = next(model.parameters(), None)
    if param is not None:
        x = x.to(param.device, param.dtype)
    p, idx = top_k(model(x), topk)
    labels = imagenet_labels()
    return [[(labels[i], float(q)) for q, i in zip(pr.tolist(), ix.tolist())] for pr, ix in zip(p, idx)]
