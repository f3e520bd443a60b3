"""Find layers by name, record what they compute, and run a model without changing it.

Layers are named by the strings of `model.named_modules()` ("blocks.5.depthwise.act").
`capture` records activations with forward hooks and always removes them; `activations` runs a batch
through and returns what the named layers computed. `evaluating` and `frozen` put a model in eval mode
(and `frozen` also stops its weight gradients) for the length of a block, and give every module its own
mode back afterwards, even after an error: every function of the course leaves a model as it found it.
"""
from __future__ import annotations

import contextlib
import difflib
from collections import namedtuple

import torch
from torch import nn

from .images import as_batch

LayerInfo = namedtuple("LayerInfo", "name type shape grad_cam", defaults=(False,))
LayerInfo.__doc__ = """A layer: its name, module type, output shape, and whether Grad-CAM can be computed there
(an (N, K, h, w) output with a spatial grid of at least 2 x 2, after the input's normalization: Grad-CAM
weighs the K maps of such a layer)."""


class LayerNotFoundError(KeyError):
    """A layer name that the model does not have; the message lists the valid ones."""

    def __str__(self):  # KeyError would print the message with quotes around it
        return str(self.args[0])


def layer_names(model: nn.Module) -> list[str]:
    """Every named layer of the model, in definition order (the model itself excluded)."""
    return [name for name, _ in model.named_modules() if name]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called `name`; a wrong name is answered with close and valid names."""
    modules = dict(model.named_modules())
    if isinstance(name, str) and name and name in modules:
        return modules[name]
    names = layer_names(model)
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
    hint = f" Close names: {', '.join(close)}." if close else ""
    listing = ", ".join(names) if len(names) <= 400 else ", ".join(names[:400]) + ", ..."
    raise LayerNotFoundError(
        f"{type(model).__name__} has no layer {name!r}.{hint} Valid layer names: {listing}"
    )


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Eval mode inside the block; each module's own training mode is given back afterwards (even when
    the block raises). For work that only reads a network (activations, accuracy, receptive fields)."""
    modes = [m.training for m in model.modules()]
    try:
        yield model.eval()
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode


@contextlib.contextmanager
def frozen(model: nn.Module):
    """Eval mode and no parameter gradients inside the block; each module's own training mode and each
    parameter's requires_grad are given back afterwards, even when the block raises. For work that
    backpropagates to the *input* of a fixed network (image optimization, attacks, loss networks).
    """
    flags = [p.requires_grad for p in model.parameters()]
    try:
        with evaluating(model):
            for p in model.parameters():
                p.requires_grad_(False)
            yield model
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


@contextlib.contextmanager
def capture(model: nn.Module, layer_names, detach=True):
    """Record the outputs of the named layers during forward passes.

        with capture(model, ["stem.act", "blocks.5"]) as acts:
            model(x)
        acts["blocks.5"]  # the tensor that layer produced (the last call, if several)

    detach=False keeps the activations in the autograd graph (needed for Grad-CAM).
    What is recorded is the layer's output as it left the layer, even when a later in-place
    operation (torchvision's `ReLU(inplace=True)`) overwrites that tensor: with detach=True a copy is
    kept; with detach=False the rest of the network is handed a copy, so that the recorded tensor
    stays intact and gradients still reach it. The hooks are removed on exit, even when the block raises.
    """
    if isinstance(layer_names, str):
        layer_names = [layer_names]
    modules = [(n, get_layer(model, n)) for n in layer_names]  # validate all before hooking any
    acts: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(n):
        def hook(module, inputs, output):
            if not torch.is_tensor(output):
                acts[n] = output
            elif detach:
                acts[n] = output.detach().clone()
            else:
                acts[n] = output
                return output.clone()  # what follows may work in place on its input

        return hook

    try:
        for n, m in modules:
            handles.append(m.register_forward_hook(make_hook(n)))
        yield acts
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def list_layers(model: nn.Module, input_size=224, leaves_only=False) -> list[LayerInfo]:
    """(name, module type, output shape, grad_cam) for every layer, measured with one forward pass.

    Shapes are for a (1, 3, input_size, input_size) input; a layer that is not run in the
    forward pass (or returns no tensor) has shape None.
    """
    names = [n for n, m in model.named_modules() if n and (not leaves_only or not list(m.children()))]
    x = as_batch(torch.zeros(1, 3, input_size, input_size), device=model)
    with evaluating(model), capture(model, names) as acts:
        model(x)
    modules = dict(model.named_modules())
    return [
        LayerInfo(n, type(modules[n]).__name__, shape,
                  shape is not None and len(shape) == 4 and min(shape[2:]) >= 2 and type(modules[n]).__name__ != "Normalize")
        for n in names
        for shape in [tuple(acts[n].shape) if n in acts and torch.is_tensor(acts[n]) else None]
    ]


def activations(model: nn.Module, x, layers, batch_size=32, progress=False):
    """What `layers` compute for the images x, batch by batch, without gradients, in eval mode.

    x: anything `images.as_batch` takes (a batch (N, C, H, W), one image, a bundled name, ...).
    layers: one name (returns its tensor) or a list of names (returns {name: tensor}); all are recorded
    in the same forward passes. The tensors are on the CPU.
    """
    from tqdm.auto import tqdm

    names = [layers] if isinstance(layers, str) else list(layers)
    for name in names:
        get_layer(model, name)  # a wrong name fails before any work
    x = as_batch(x, device=model)
    outs = {name: [] for name in names}
    with evaluating(model), torch.no_grad(), capture(model, names) as acts:
        for i in tqdm(range(0, len(x), batch_size), desc="activations", disable=not progress, leave=False):
            model(x[i:i + batch_size])
            for name in names:
                outs[name].append(acts[name].cpu())
    result = {name: torch.cat(v) for name, v in outs.items()}
    return result[layers] if isinstance(layers, str) else result


def feature_vectors(model: nn.Module, x, layer, batch_size=64, progress=False) -> torch.Tensor:
    """(N, D) features of `layer`: spatial maps are averaged over positions, then flattened."""
    a = activations(model, x, layer, batch_size, progress)
    return (a.mean((2, 3)) if a.dim() == 4 else a.flatten(1)).float()
