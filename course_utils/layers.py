"""Find layers by name and record what they compute.

Layers are named by the strings of `model.named_modules()` ("blocks.5.depthwise.act").
`capture` records activations with forward hooks and always removes them.
"""
from __future__ import annotations

import contextlib
import difflib
from collections import namedtuple

import torch
from torch import nn

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
def frozen(model: nn.Module):
    """Eval mode and no parameter gradients inside the block; each module's own training mode and each
    parameter's requires_grad are given back afterwards, even when the block raises. For work that
    backpropagates to the *input* of a fixed network (image optimization, attacks, loss networks).
    """
    flags = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    try:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        yield model
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode
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
    param = next(model.parameters(), None)
    x = torch.zeros(1, 3, input_size, input_size)
    if param is not None:
        x = x.to(param.device, param.dtype)
    was_training = model.training
    model.eval()
    try:
        with capture(model, names) as acts:
            model(x)
    finally:
        model.train(was_training)
    modules = dict(model.named_modules())
    return [
        LayerInfo(n, type(modules[n]).__name__, shape,
                  shape is not None and len(shape) == 4 and min(shape[2:]) >= 2 and type(modules[n]).__name__ != "Normalize")
        for n in names
        for shape in [tuple(acts[n].shape) if n in acts and torch.is_tensor(acts[n]) else None]
    ]
