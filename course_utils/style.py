"""Gram matrices, texture synthesis and neural style transfer: optimize an image to match statistics.

A layer's response F (C channels x H*W positions) is summarized by its Gram matrix
G = F F^T / (H W): entry (i, j) is how strongly channels i and j fire *together*, averaged over
positions, so where things are is thrown away and what remains is texture. Texture synthesis
matches the Grams of a style image at several layers, starting from noise; style transfer adds a
content loss (match the features of a photo at one middle layer) and total variation:

    loss(x) = a * content(x) + b * sum_l w_l ||G_l(x) - G_l(s)||^2 / ||G_l(s)||^2 + c * TV(x)

Both are one call of `optimize_image` (which maximizes, so the loss is negated). Every function takes the
loss network first (`loss_network()`: EfficientNet-Lite0 by default; VGG-19, random or trained, is one
argument away), then the images: anything `images.as_batch` takes, the generated paintings included.

Papers: Gatys, Ecker & Bethge, "Texture synthesis using convolutional neural networks", NeurIPS 2015;
Gatys, Ecker & Bethge, "Image style transfer using convolutional neural networks", CVPR 2016;
Mahendran & Vedaldi 2015 (total variation); Wang, Li & Vasconcelos, "Rethinking and improving the
robustness of image style transfer", CVPR 2021 (the softmax transformation, SWAG).
"""
from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from .images import as_batch, noise_image
from .layers import capture, get_layer
from .models import load_model
from .optimize.loop import Progress, optimize_image
from .optimize.objectives import Objective, relative_error, total_variation
from .seeding import generator

# Layers per loss network (measured in notebook 08 and scripts/bench_style.py).
# EfficientNet-Lite: the ReLU6 outputs of the expansion convolutions (the widest, VGG-like features)
# at 1/2, 1/4, 1/8 and 1/16 of the input size; content at the output of a 1/8-size block.
LOSS_LAYERS = {
    "efficientnet_lite0": dict(style=("stem.act", "blocks.1.expand.act", "blocks.3.expand.act",
                                      "blocks.5.expand.act", "blocks.8.expand.act"),
                               content="blocks.4"),
    "efficientnet_lite1": dict(style=("stem.act", "blocks.1.expand.act", "blocks.4.expand.act",
                                      "blocks.7.expand.act", "blocks.11.expand.act"),
                               content="blocks.6"),
    # VGG (Gatys et al.): relu1_1, relu2_1, relu3_1, relu4_1, relu5_1; content relu4_2
    "vgg19": dict(style=("features.1", "features.6", "features.11", "features.20", "features.29"),
                  content="features.22"),
    "vgg16": dict(style=("features.1", "features.6", "features.11", "features.18", "features.25"),
                  content="features.20"),
}
DEFAULT_NETWORK = "efficientnet_lite0"
# content / style / TV weights of style_transfer, chosen by looking at results and at the judge's scores
DEFAULT_WEIGHTS = dict(content=1.0, style=100.0, tv=100.0)
NETWORK_WEIGHTS = {"vgg19": dict(content=1.0, style=30.0, tv=3.0), "vgg16": dict(content=1.0, style=30.0, tv=3.0)}
DEFAULT_STEPS = {"lbfgs": 100, "adam": 200}
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


# ---------------------------------------------------------------- the statistics

def gram_matrix(features, normalize=True):
    """G = F F^T for features F of shape (C, H, W) or (N, C, H, W), reshaped to C x HW.

    normalize=True divides by the number of positions H*W, so G[i, j] is the *average* over positions
    of F_i * F_j and images of different sizes have comparable Grams. Returns (C, C) or (N, C, C).
    """
    if not torch.is_tensor(features) or features.dim() not in (3, 4):
        raise ValueError(f"features must be a tensor (C, H, W) or (N, C, H, W), got "
                         f"{tuple(features.shape) if torch.is_tensor(features) else type(features).__name__}")
    f = features.flatten(-2)  # (..., C, HW)
    g = f @ f.transpose(-1, -2)
    return g / f.shape[-1] if normalize else g


def softmax_features(features, temperature=1.0):
    """SWAG (Wang et al. 2021): a softmax over ALL C*H*W activations of each image, times C*H*W.

    The softmax (over channels and positions together, as in the authors' code) lifts the entropy of
    peaky feature maps: a few huge activations no longer dominate every Gram entry. We multiply by
    the number of entries so that a flat map becomes all ones (a constant factor; it keeps the losses
    on the scale of the untransformed ones). `temperature` T divides the activations first.
    """
    n = features[0].numel()
    p = torch.softmax(features.flatten(1) / temperature, dim=1)
    return (p * n).view_as(features)


def style_loss(features, target_grams, weights=None):
    """sum_l w_l ||G(F_l) - A_l||_F^2 / ||A_l||_F^2 over the layers l of `target_grams`.

    features: {layer: (1, C, H, W) activations of the image}; target_grams: {layer: (1, C, C) Gram of
    the style image}; weights: {layer: w_l}, equal weights 1/L by default. Each layer's error is
    relative to the style's own Gram, so layers with large activations do not drown the others
    (Gatys et al. divide by 4 C^2 (HW)^2 and tune w_l per network instead).
    """
    layers = list(target_grams)
    if not layers:
        raise ValueError("target_grams is empty: give at least one style layer")
    missing = [l for l in layers if l not in features]
    if missing:
        raise ValueError(f"no features for style layers {missing}")
    weights = {l: 1.0 / len(layers) for l in layers} if weights is None else weights
    return sum(weights[l] * relative_error(gram_matrix(features[l]), target_grams[l]) for l in layers)


def content_loss(features, target):
    """||F - P||^2 / ||P||^2: how far the image's features are from the content image's, at one layer."""
    return relative_error(features, target)


def shuffle_tiles(x, tiles=4, seed=0):
    """The image cut into tiles x tiles squares put back in a random order (drawn from `seed`): a different
    picture with nearly the same Gram matrices. x: (N, C, H, W) with H and W multiples of `tiles`."""
    n, c, h, w = x.shape
    t = x.view(n, c, tiles, h // tiles, tiles, w // tiles).permute(0, 2, 4, 1, 3, 5)
    t = t.reshape(n, tiles * tiles, c, h // tiles, w // tiles)[:, torch.randperm(tiles * tiles, generator=generator(seed))]
    return t.view(n, tiles, tiles, c, h // tiles, w // tiles).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


# ---------------------------------------------------------------- loss networks

class _Prefix(nn.Module):
    """Runs the given (shared) modules one after the other, under their original names."""

    def __init__(self, named):
        super().__init__()
        for name, module in named:
            self.add_module(name, module)

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x


def truncate(model, layers):
    """A model that computes only up to the deepest of `layers`, with the same layer names.

    Works for models that apply their top-level children in order (EfficientNet-Lite, VGG, AlexNet):
    the child holding the deepest layer is cut after it when it is an nn.Sequential. The modules are
    shared, not copied. The result is checked on a small input against the full model; a model
    that computes differently is returned unchanged.
    """
    order = {name: k for k, (name, _) in enumerate(model.named_modules())}
    for name in layers:
        get_layer(model, name)  # a clear error for a wrong name
    deepest = max(layers, key=order.__getitem__)
    children = list(model.named_children())
    children.sort(key=lambda nm: nm[0] != "normalize")  # the input normalization always comes first
    kept = []
    for name, module in children:
        if deepest == name or not deepest.startswith(name + "."):
            kept.append((name, module))
            if deepest == name:
                break
            continue
        part = deepest[len(name) + 1:].split(".")[0]
        if isinstance(module, nn.Sequential):
            subs = list(module.named_children())
            k = [n for n, _ in subs].index(part)
            module = nn.Sequential(OrderedDict(subs[:k + 1]))
        kept.append((name, module))
        break
    short = _Prefix(kept).train(model.training)  # a new module starts in training mode: match the model's
    x = torch.rand(1, 3, 64, 64, generator=generator(0))
    try:
        with torch.no_grad(), capture(model, layers) as full:
            model(x)
        with torch.no_grad(), capture(short, layers) as part_acts:
            short(x)
        same = all(torch.allclose(full[l], part_acts[l], atol=1e-5) for l in layers)
    except Exception:  # noqa: BLE001 - a model that cannot be cut this way is used whole
        same = False
    return short if same else model


def with_avg_pool(model):
    """A copy of `model` with every MaxPool2d replaced by an AvgPool2d of the same window.

    Gatys et al. 2016: "replacing the max-pooling operation by average pooling improves the gradient
    flow and one obtains slightly more appealing results". The original model is not changed.
    """
    pools = [n for n, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    if not pools:
        raise ValueError(f"{type(model).__name__} has no max-pooling layers to replace "
                         "(EfficientNet downsamples with strided convolutions)")
    model = copy.deepcopy(model)
    for name in pools:
        parent_name, _, child = name.rpartition(".")
        parent = get_layer(model, parent_name) if parent_name else model
        m = getattr(parent, child)
        setattr(parent, child, nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode))
    return model


class LossNetwork:
    """A network with the layers whose Grams define style and the layer that defines content.

    transform: applied to every activation before the Gram or the content comparison (None, or
    `softmax_features` for SWAG). The network is cut after its deepest used layer (see `truncate`).
    """

    def __init__(self, model, style_layers, content_layer, transform=None, name="network", weights=None):
        self.model, self.transform, self.name = model, transform, name
        self.style_layers, self.content_layer = tuple(style_layers), content_layer
        self.weights = dict(DEFAULT_WEIGHTS, **(weights or {}))  # style_transfer's defaults for this network
        self._cut = {}

    def __repr__(self):
        return f"LossNetwork({self.name}, style={list(self.style_layers)}, content={self.content_layer!r})"

    def net(self, layers):
        """The model cut after the deepest of `layers` (cached)."""
        key = frozenset(layers)
        if key not in self._cut:
            self._cut[key] = truncate(self.model, sorted(layers))
        return self._cut[key]

    def features(self, image, layers, size=None):
        """{layer: transformed activations} of an image (anything load_image takes), without gradients."""
        x = as_batch(image, size, channels=3)
        net = self.net(layers)
        with torch.no_grad(), capture(net, layers) as acts:
            net(x)
        return {l: self.apply(acts[l]) for l in layers}

    def apply(self, a):
        return a if self.transform is None else self.transform(a)

    def grams(self, image, layers=None, size=None):
        """{layer: Gram matrix} of an image at the style layers (or the given ones)."""
        layers = list(layers or self.style_layers)
        return {l: gram_matrix(f) for l, f in self.features(image, layers, size).items()}


def loss_network(name=DEFAULT_NETWORK, pretrained=True, pooling="max", softmax=False, temperature=1.0,
                 seed=0, style_layers=None, content_layer=None):
    """A LossNetwork from a model name ("efficientnet_lite0", "efficientnet_lite1", "vgg19", "vgg16");
    a LossNetwork given as `name` is returned as it is.

    pretrained=False: random weights drawn from `seed` (a random VGG-19 needs no download);
    pooling="avg": max pooling replaced by average pooling (VGG only);
    softmax=True: the SWAG transformation of Wang et al. 2021, with `temperature`.
    """
    if isinstance(name, LossNetwork):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a loss network is a model name or a LossNetwork (see loss_network()), "
                        f"got {type(name).__name__}")
    if name not in LOSS_LAYERS and (style_layers is None or content_layer is None):
        raise ValueError(f"no default layers for {name!r}: give style_layers and content_layer, "
                         f"or use one of {', '.join(LOSS_LAYERS)}")
    if pooling not in ("max", "avg"):
        raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
    model = load_model(name, pretrained=pretrained, seed=seed)
    if pooling == "avg":
        model = with_avg_pool(model)
    layers = LOSS_LAYERS.get(name, {})
    label = name + ("" if pretrained else " (random)") + (", avg pool" if pooling == "avg" else "") + \
        (f", softmax T={temperature:g}" if softmax else "")
    transform = (lambda a: softmax_features(a, temperature)) if softmax else None
    return LossNetwork(model, style_layers or layers["style"], content_layer or layers["content"], transform, label,
                       NETWORK_WEIGHTS.get(name))


# ---------------------------------------------------------------- objectives for optimize_image

def style_objective(net: LossNetwork, target_grams, weights=None):
    """The style loss as an Objective (a positive number: subtract it)."""
    def fn(ctx):
        return style_loss({l: net.apply(ctx.acts[l]) for l in target_grams}, target_grams, weights)

    return Objective(fn, set(target_grams), "style")


def content_objective(net: LossNetwork, layer, target):
    """The content loss at one layer as an Objective (a positive number: subtract it)."""
    return Objective(lambda ctx: content_loss(net.apply(ctx.acts[layer]), target), {layer}, f"content({layer})")


def _run(net, objective, start, steps, optimizer, lr, seed, progress, description):
    if optimizer not in DEFAULT_STEPS:
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    return optimize_image(net.net(objective.layers), objective, start, steps or DEFAULT_STEPS[optimizer],
                          DEFAULT_LR[optimizer] if lr is None else lr, optimizer, seed=seed,
                          progress=Progress.of(progress, description))


def texture_synthesis(net, style_image, size=256, steps=None, seed=0, layers=None, weights=None, tv_weight=0.0,
                      optimizer="lbfgs", lr=None, progress=True):
    """Gatys et al. 2015: an image whose Gram matrices match those of `style_image`, grown from noise.

    net: a LossNetwork or a model name (`loss_network`). layers: the style layers (default: the
    network's); the lecture's row of textures uses the first one, then the first two, and so on.
    weights: {layer: w_l} (default equal). Starts from `images.noise_image(size, seed)`; L-BFGS,
    100 steps by default. Returns a (1, 3, size, size) tensor in [0, 1].
    """
    net = loss_network(net)
    layers = list(layers or net.style_layers)
    targets = net.grams(as_batch(style_image, size, channels=3), layers)
    objective = -style_objective(net, targets, weights)
    if tv_weight:
        objective = objective - tv_weight * total_variation()
    return _run(net, objective, noise_image(size, seed), steps, optimizer, lr, seed, progress, "texture")


def style_transfer(net, content_image, style_image, size=256, steps=None, content_weight=None, style_weight=None,
                   tv_weight=None, optimizer="lbfgs", seed=0, init="content", style_layers=None, content_layer=None,
                   style_size=None, lr=None, layer_weights=None, progress=True):
    """Gatys et al. 2016: the content of one image painted with the style (Gram matrices) of another.

    Minimizes content_weight * content + style_weight * style + tv_weight * TV, starting from the
    content image (init="content") or from noise (init="noise", drawn from `seed`). Weights left at None
    take the loss network's defaults (`net.weights`: 1, 100, 100 for EfficientNet-Lite0).
    net: a LossNetwork or a model name (`loss_network`). optimizer: "lbfgs" (default, 100 steps) or
    "adam" (200 steps). style_size: the size the style image is read at (default `size`): smaller makes
    larger strokes. layer_weights: {style layer: w_l} instead of equal weights 1/|L| (a layer of weight 0 is
    left out). Returns a (1, 3, size, size) tensor in [0, 1].
    """
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    net = loss_network(net)
    w = net.weights
    content_weight = w["content"] if content_weight is None else content_weight
    style_weight = w["style"] if style_weight is None else style_weight
    tv_weight = w["tv"] if tv_weight is None else tv_weight
    if layer_weights is not None:
        unknown = [l for l in layer_weights if l not in net.style_layers and l not in (style_layers or ())]
        if unknown:
            raise ValueError(f"layer_weights names {unknown}, not style layers of {net.name}: "
                             f"{', '.join(net.style_layers)}")
        style_layers = [l for l, v in layer_weights.items() if v > 0]
        if not style_layers:
            raise ValueError("every style layer has weight 0: give at least one a positive weight")
    style_layers = list(style_layers or net.style_layers)
    content_layer = content_layer or net.content_layer
    content = as_batch(content_image, size, channels=3)
    targets = net.grams(as_batch(style_image, style_size or size), style_layers)
    content_target = net.features(content, [content_layer])[content_layer]
    weights = None if layer_weights is None else {l: float(layer_weights[l]) for l in style_layers}
    objective = -(content_weight * content_objective(net, content_layer, content_target)
                  + style_weight * style_objective(net, targets, weights) + tv_weight * total_variation())
    start = content if init == "content" else noise_image(size, seed)
    return _run(net, objective, start, steps, optimizer, lr, seed, progress, "style transfer")


# ---------------------------------------------------------------- measuring stylization

def stylization_scores(judge, result, content_image, style_image, size=None):
    """How stylized a result is, measured by a network that did not make it (a LossNetwork or a model
    name: notebook 08 uses EfficientNet-Lite1, `loss_network("efficientnet_lite1")`).

    Returns {"style": style distance result -> style image, "content": content distance result ->
    content image, "style_of_content": the content image's own style distance, "stylized": bool}.
    Style distance: the (equal-weight) relative Gram error over the judge's style layers; content
    distance: the relative feature error at its content layer. A result counts as stylized when its
    style distance is at most half of the content image's own.
    """
    net = loss_network(judge)
    x = as_batch(result, size, channels=3)
    size = size or x.shape[-1]
    style_grams = net.grams(as_batch(style_image, size))
    content = as_batch(content_image, size)
    layers = list(net.style_layers) + [net.content_layer]
    fx, fc = net.features(x, layers), net.features(content, layers)
    style = float(style_loss({l: fx[l] for l in net.style_layers}, style_grams))
    own = float(style_loss({l: fc[l] for l in net.style_layers}, style_grams))
    cont = float(content_loss(fx[net.content_layer], fc[net.content_layer]))
    return {"style": style, "content": cont, "style_of_content": own, "stylized": style <= 0.5 * own}


__all__ = ["gram_matrix", "softmax_features", "style_loss", "content_loss", "shuffle_tiles", "truncate", "with_avg_pool",
           "LossNetwork", "loss_network", "style_objective", "content_objective", "texture_synthesis",
           "style_transfer", "stylization_scores", "LOSS_LAYERS", "DEFAULT_NETWORK", "DEFAULT_WEIGHTS"]
