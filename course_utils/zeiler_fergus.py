"""Zeiler & Fergus's deconvnet, done their way: one activation projected back to the pixels through switches.

The forward pass records, at every max-pooling layer, which input won in each window: the *switches*.
The projection keeps one activation (all others of the layer set to zero) and runs the network backwards:

    max pooling   unpool: each value goes back to the position its switch recorded, zeros elsewhere
    ReLU          rectify: keep the positive part, whatever the forward pass did
    convolution   filter with the *transposed* filters (each flipped, input and output channels swapped),
                  without the bias

"Deconvolution" is a misnomer: nothing is inverted. The transposed convolution is the adjoint of the
convolution, the very step the backward pass of backprop takes, and unpooling with switches is the
backward pass of max pooling. So the projection equals the activation's value times its gradient with the
deconvnet ReLU rule (`attribution.unit_gradient(..., rule="deconvnet")`): backprop with one rule changed
(Simonyan, Vedaldi & Zisserman 2014, Sec. 4). The tests check the two against each other.

Papers: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014 (Sec. 2.1, Fig. 2);
Zeiler, Taylor & Fergus, "Adaptive Deconvolutional Networks", ICCV 2011.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from .images import as_batch
from .layers import evaluating
from .patches import cut_patch, top_patches
from .receptive_fields import receptive_field

STEPS = (nn.Conv2d, nn.ReLU, nn.MaxPool2d)
GAP = (0.45, 0.62, 0.85)  # the blue between the tiles of a figure: neither a pixel value nor a projection's zero


def _children(model, layer):
    """The named layers of `model` up to and including `layer` (a Sequential of conv, ReLU and max pool)."""
    children = list(model.named_children())
    names = [name for name, _ in children]
    if layer not in names:
        raise ValueError(f"{type(model).__name__} has no layer {layer!r}; its layers are {', '.join(names)}")
    children = children[:names.index(layer) + 1]
    for name, module in children:
        if not isinstance(module, STEPS):
            raise ValueError(f"the deconvnet runs through convolutions, ReLUs and max pooling; layer {name!r} is a "
                             f"{type(module).__name__}: choose a layer before it ({', '.join(names[:names.index(name)])})")
    return children


def forward_with_switches(model, x, layer):
    """Run `model` (an nn.Sequential) on the batch x up to and including `layer`, without gradients.

    Returns (activations of `layer`, record): record has one entry per layer, (name, module, input shape,
    switches), switches being the flat index of each max-pooling window's winner (None for other layers).
    """
    record = []
    with torch.no_grad():
        for name, module in _children(model, layer):
            switches = None
            if isinstance(module, nn.MaxPool2d):
                out, switches = F.max_pool2d(x, module.kernel_size, module.stride, module.padding, module.dilation,
                                             module.ceil_mode, return_indices=True)
            else:
                out = module(x)
            record.append((name, module, tuple(x.shape), switches))
            x = out
    return x, record


def unpool(r, switches, shape):
    """Max-unpooling: each value of r goes back to the input position of its window's winner (summed where
    overlapping windows share a winner). shape: the pooling layer's input shape."""
    n, c, h, w = shape
    out = torch.zeros(n, c, h * w, dtype=r.dtype, device=r.device)
    return out.scatter_add_(2, switches.flatten(2), r.flatten(2)).view(shape)


def transposed_filter(r, conv, shape):
    """Filter r with the transposed filters of `conv` (no bias), back to the conv's input `shape`."""
    k = conv.weight.shape[-2:]
    extra = [shape[2 + d] - ((r.shape[2 + d] - 1) * conv.stride[d] - 2 * conv.padding[d]
                             + conv.dilation[d] * (k[d] - 1) + 1) for d in range(2)]
    return F.conv_transpose2d(r, conv.weight, None, conv.stride, conv.padding, tuple(extra), conv.groups,
                              conv.dilation)


def project(model, x, layer, channel, position=None):
    """Zeiler & Fergus's projection of one activation of `layer` to the pixels: (N, C, H, W) like x.

    For each image the activation of `channel` at `position` (row, col), or where the channel responds
    most (position=None), is kept at its value and every other activation of the layer set to zero;
    then back down: unpool with the switches, rectify, filter with the transposed filters.
    model: an nn.Sequential of Conv2d, ReLU and MaxPool2d layers up to `layer` (the digits CNN of notebook 01).
    """
    x = as_batch(x, device=model)
    with torch.no_grad(), evaluating(model):
        a, record = forward_with_switches(model, x, layer)
        if a.dim() != 4 or not 0 <= channel < a.shape[1]:
            raise ValueError(f"layer {layer!r} has {a.shape[1]} channels; channel {channel} does not exist")
        fmap = a[:, channel].flatten(1)
        if position is None:
            where = fmap.argmax(1)
        else:
            row, col = position
            if not (0 <= row < a.shape[2] and 0 <= col < a.shape[3]):
                raise ValueError(f"position {position} is outside the {tuple(a.shape[2:])} map of {layer!r}")
            where = torch.full((len(x),), row * a.shape[3] + col, device=x.device)
        keep = torch.zeros_like(fmap).scatter_(1, where[:, None], fmap.gather(1, where[:, None]))
        r = torch.zeros_like(a)
        r[:, channel] = keep.view(a[:, channel].shape)
        for _, module, shape, switches in reversed(record):
            if isinstance(module, nn.MaxPool2d):
                r = unpool(r, switches, shape)
            elif isinstance(module, nn.ReLU):
                r = r.clamp(min=0)
            else:
                r = transposed_filter(r, module, shape)
    return r


def top_projections(model, images, layer, channel, k=9):
    """The k images of `images` where `channel` of `layer` responds most (`patches.top_patches`), each as
    (patch, projection): the image cut at the unit's receptive field, and the unit's projection cut there."""
    out = []
    for p in top_patches(model, images, layer, channel, k=k):
        r = project(model, images[p.image_index:p.image_index + 1], layer, channel, position=p.position)[0]
        out.append((p, cut_patch(r, p.box, fill=0.0)))
    return out


def _grey(t):
    """A (C, H, W) map as a (3, H, W) picture: the patch as it is, a projection centred at grey."""
    return t.expand(3, -1, -1) if t.shape[0] == 1 else t


def signed_picture(r):
    """A projection (C, H, W) as a picture in [0, 1]: zero is mid-grey, the largest |value| black or white."""
    return (0.5 + 0.5 * r / r.abs().max().clamp_min(1e-12)).clamp(0, 1)


def mosaic(tiles, ncols=3, gap=1, fill=1.0):
    """Tiles (3, h, w) of one size laid out in a grid with `gap` pixels of `fill` (a grey level or an RGB
    triple) between them: (3, H, W)."""
    h, w = tiles[0].shape[-2:]
    nrows = -(-len(tiles) // ncols)
    colour = torch.as_tensor(fill, dtype=torch.float32).reshape(-1, 1, 1).expand(3, 1, 1)
    out = colour.expand(3, nrows * (h + gap) - gap, ncols * (w + gap) - gap).clone()
    for n, t in enumerate(tiles):
        r, c = divmod(n, ncols)
        out[:, r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = _grey(t)
    return out


def strongest(model, images, layer, channel):
    """(image index, (row, col)): where in the whole pool `channel` of `layer` responds most."""
    a, _ = forward_with_switches(model, as_batch(images, device=model), layer)
    flat = a[:, channel].flatten()
    n, rest = divmod(int(flat.argmax()), a.shape[2] * a.shape[3])
    return n, divmod(rest, a.shape[3])


def show_evolution(models, images, layers, size=1.1):
    """Zeiler & Fergus's Fig. 4: for each chosen unit (a row) and each epoch (a column), the projection of its
    strongest activation over `images`, cut at its receptive field.

    models: {epoch: network} (`digits.train_digits_cnn(model_epochs=...)`); layers: {layer: [channels]}.
    Returns the Figure.
    """
    epochs = sorted(models)
    rows = [(layer, c) for layer, chs in layers.items() for c in chs]
    # the field depends on the architecture only, the same at every epoch
    fields = {layer: receptive_field(models[epochs[0]], layer, tuple(images.shape[-2:])) for layer in layers}
    fig, axes = plt.subplots(len(rows), len(epochs), figsize=(size * len(epochs) + 1.0, size * len(rows)),
                             squeeze=False)
    for r, (layer, c) in enumerate(rows):
        for k, e in enumerate(epochs):
            net = models[e]
            n, pos = strongest(net, images, layer, c)
            box = fields[layer].box(*pos)
            proj = project(net, images[n:n + 1], layer, c, position=pos)[0]
            ax = axes[r, k]
            ax.imshow(_grey(signed_picture(cut_patch(proj, box, fill=0.0))).permute(1, 2, 0).numpy(),
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"epoch {e}", fontsize=8)
            if k == 0:
                ax.set_ylabel(f"{layer}:{c}", fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return fig


def show_projections(model, images, layers, k=9, size=1.6):
    """Zeiler & Fergus's Fig. 2 for a small network: for each layer (a row) and each of its channels, the
    top-k projections (left, grey = 0) beside the image patches that caused them (right).

    layers: {layer name: [channels]}. Returns the Figure.
    """
    ncols = max(len(chs) for chs in layers.values())
    fig, axes = plt.subplots(len(layers), 2 * ncols, figsize=(2 * size * ncols, 1.15 * size * len(layers)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (layer, channels) in enumerate(layers.items()):
        for c, channel in enumerate(channels):
            pairs = top_projections(model, images, layer, channel, k)
            proj = mosaic([signed_picture(r) for _, r in pairs], fill=GAP)
            patch = mosaic([p.pixels for p, _ in pairs], fill=GAP)
            for ax, im, what in ((axes[row, 2 * c], proj, "projections"), (axes[row, 2 * c + 1], patch, "patches")):
                ax.imshow(im.permute(1, 2, 0).numpy(), interpolation="nearest")
                ax.set_title(f"{layer} ch {channel}\n{what}", fontsize=8)
    fig.tight_layout(pad=0.4)
    return fig
