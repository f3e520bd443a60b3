"""Receptive fields: where in the image a unit of a layer looks.

Size, stride and offset compose layer by layer (Dumoulin & Visin, *A guide to convolution arithmetic
for deep learning*, 2016), including TensorFlow's 'SAME' padding, whose amount depends on the input size;
`gradient_footprint` checks the result against the network itself (a pixel is in the field exactly when
its gradient on the unit can be nonzero).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import nn

from .efficientnet_lite import SameConv2d
from .images import as_batch
from .layers import capture, evaluating, get_layer
from .plots import draw_image


def rf_size_stride(layers):
    """Receptive field size and stride (in input pixels) of a unit after a stack of layers.

    layers: [(kernel_size, stride), ...] from the input up; each layer grows the field by
    (kernel - 1) times the product of the strides before it:
        r_l = r_{l-1} + (k_l - 1) * j_{l-1},   j_l = j_{l-1} * s_l,   r_0 = j_0 = 1.
    """
    size, jump = 1, 1
    for layer in layers:
        k, s = layer
        if int(k) != k or int(s) != s or k < 1 or s < 1:
            raise ValueError(f"kernel size and stride must be positive integers, got {(k, s)}")
        size, jump = size + (int(k) - 1) * jump, jump * int(s)
    return size, jump


@dataclass(frozen=True)
class ReceptiveField:
    """Where a unit of a layer looks in the input, per axis (rows, columns).

    Unit (i, j) sees input rows offset[0] + i*stride[0] ... offset[0] + i*stride[0] + size[0] - 1
    (the same for columns); offsets can be negative and fields can run past the image edge:
    those parts are padding.
    """

    size: tuple
    stride: tuple
    offset: tuple

    def box(self, i, j):
        """(top, left, bottom, right) of unit (i, j)'s field, bottom/right exclusive, not clipped."""
        top = self.offset[0] + i * self.stride[0]
        left = self.offset[1] + j * self.stride[1]
        return top, left, top + self.size[0], left + self.size[1]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _geometry(module, in_hw):
    """(kernel, stride, dilation, left/top padding) per axis of a layer, or None if it keeps geometry."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _pair(module.kernel_size), _pair(module.stride if module.stride is not None else module.kernel_size)
        d = _pair(getattr(module, "dilation", 1))
        if isinstance(module, SameConv2d):  # TensorFlow 'SAME': the smaller half of the padding on top/left
            pad = tuple(max((math.ceil(n / st) - 1) * st + kk - n, 0) // 2 for n, kk, st in zip(in_hw, k, s))
        elif module.padding == "same":
            pad = tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d))
        elif module.padding == "valid":
            pad = (0, 0)
        else:
            pad = _pair(module.padding)
        return k, s, d, pad
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = _pair(module.output_size)
        if any(o not in (1, None) for o in out):
            raise ValueError(f"receptive fields through {module} are only supported for output size 1")
        return tuple(in_hw), tuple(in_hw), (1, 1), (0, 0)
    if isinstance(module, (nn.ConvTranspose2d, nn.Upsample, nn.Unfold, nn.Fold, nn.PixelShuffle)):
        raise ValueError(f"receptive_field does not handle {type(module).__name__} layers")
    return None


class _Stop(Exception):
    pass


def layer_geometry(model, layer, input_size=224):
    """[(name, kernel, stride, dilation, padding)] of the layers that change geometry on the way to `layer`.

    Found by running the model once on a zero image of `input_size` and recording, in call
    order, every leaf module that runs before `layer` finishes (so TensorFlow SAME padding
    is known at that size). Assumes a chain of layers, possibly with residual skips (which
    never widen the field); branching networks (Inception) are not handled.
    """
    target = get_layer(model, layer)
    h, w = _pair(input_size)
    in_ch = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 3)
    names = {m: n for n, m in model.named_modules()}
    leaves = [m for m in model.modules() if not list(m.children())]
    recorded = []

    def pre_hook(module, inputs):
        if inputs and torch.is_tensor(inputs[0]) and inputs[0].dim() == 4:
            g = _geometry(module, inputs[0].shape[-2:])
            if g is not None:
                recorded.append((names[module],) + g)

    def stop(module, inputs, output):
        raise _Stop

    handles = [m.register_forward_pre_hook(pre_hook) for m in leaves]
    x = as_batch(torch.zeros(1, in_ch, h, w), device=model)
    try:
        handles.append(target.register_forward_hook(stop))
        with evaluating(model), torch.no_grad():
            model(x)
    except _Stop:
        pass
    finally:
        for hd in handles:
            hd.remove()
    return recorded


def receptive_field(model, layer, input_size=224):
    """The ReceptiveField of a unit in `layer` (size, stride, offset per axis), at this input size."""
    size, jump, offset = [1, 1], [1, 1], [0, 0]
    for _, k, s, d, pad in layer_geometry(model, layer, input_size):
        for a in range(2):
            offset[a] -= pad[a] * jump[a]
            size[a] += (k[a] - 1) * d[a] * jump[a]
            jump[a] *= s[a]
    return ReceptiveField(tuple(size), tuple(jump), tuple(offset))


def gradient_footprint(model, x, layer, i, j, channel=None):
    """(H, W) bool mask of the input pixels whose gradient on unit (i, j) of `layer` is nonzero.

    x: one image (anything `as_batch` takes). The unit is one channel, or the sum over all channels
    (channel=None), so that a pixel counts when any path from it reaches the position.
    """
    x = as_batch(x, device=model)[:1].requires_grad_(True)
    with evaluating(model), capture(model, [layer], detach=False) as acts:
        model(x)
        a = acts[layer][0]
        unit = a[:, i, j].sum() if channel is None else a[channel, i, j]
        (grad,) = torch.autograd.grad(unit, x)
    return grad[0].abs().sum(0) > 0


def mask_box(mask):
    """(top, left, bottom, right) of the True pixels of a 2-D mask, bottom/right exclusive."""
    rows, cols = torch.nonzero(torch.as_tensor(mask), as_tuple=True)
    if len(rows) == 0:
        raise ValueError("the mask is empty")
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def inside_positions(rf, out_hw, in_hw):
    """(h, w) bool mask of the units whose receptive field lies entirely inside an in_hw image."""
    rows = torch.tensor([rf.offset[0] + i * rf.stride[0] >= 0 and rf.offset[0] + i * rf.stride[0] + rf.size[0]
                         <= in_hw[0] for i in range(out_hw[0])])
    cols = torch.tensor([rf.offset[1] + j * rf.stride[1] >= 0 and rf.offset[1] + j * rf.stride[1] + rf.size[1]
                         <= in_hw[1] for j in range(out_hw[1])])
    return rows[:, None] & cols[None, :]


def show_footprints(model, x, units):
    """The image, then for each unit (layer, (i, j)) the pixels with a nonzero gradient (orange) and the
    computed receptive field (white box), titled with whether the two agree. Returns the Figure."""
    import numpy as np

    x = as_batch(x, device=model)[:1]
    h, w = x.shape[-2:]
    fig, axes = plt.subplots(1, 1 + len(units), figsize=(11 / 3 * (1 + len(units)), 3.8))
    draw_image(axes[0], x, "input", fontsize=10)
    for ax, (layer, (i, j)) in zip(axes[1:], units):
        rf = receptive_field(model, layer, (h, w))
        foot = gradient_footprint(model, x, layer, i, j)
        t, l, b, r = rf.box(i, j)
        same = mask_box(foot) == (max(t, 0), max(l, 0), min(b, h), min(r, w))
        draw_image(ax, x, f"{layer} unit ({i}, {j}): field {rf.size[0]} px\nbox = gradient footprint: {same}",
                   fontsize=10)
        ax.imshow(np.ma.masked_where(~foot.numpy(), foot.numpy()), cmap="autumn", alpha=0.45)
        ax.add_patch(plt.Rectangle((l - 0.5, t - 0.5), r - l, b - t, fill=False, color="white", lw=2))
    for ax in axes:
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
    return fig
