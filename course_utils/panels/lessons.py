"""The notebooks' interactive panels, one function per panel (`<what>_panel`), built with `blocks.live_panel`
and `blocks.run_panel` from the lessons' `show_*` figures. Each panel turns its controls' values into one call of the course's functions
(named in its docstring), so a notebook cell shows the call, not the widget plumbing. Each function
displays its panel and returns nothing.
"""
from __future__ import annotations

import functools
import time

import ipywidgets as w
import matplotlib.pyplot as plt
import torch
from IPython.display import Image, display

from .. import adversarial, ascent, deepdream, digits, fast_style, filters, inversion
from ..backprop import attribution
from ..embeddings import embed, knn_accuracy, show_embedding
from ..images import PHOTOS, TEXTURES, as_batch, sample_images
from ..labels import class_index, class_name, imagenet_labels, predict
from ..layers import activations, get_layer
from ..optimize import objectives as O
from ..optimize import param as P
from ..patches import show_top_patches
from ..plots import show, show_maps, show_predictions
from ..style import loss_network, style_transfer, stylization_scores
from ..style_images import GENERATED
from .blocks import live_panel, run_panel


def _channels(model, layer):
    """How many channels `layer` has (one forward pass of a small grey image)."""
    return activations(model, torch.full((1, 3, 32, 32), 0.5), layer).shape[1]


def _class_menu(model, image):
    """A class dropdown's options and value for an image: its top-5 classes, the first selected."""
    top5 = [label for label, _ in predict(model, image, topk=5)]
    return {"options": top5, "value": top5[0]}


# ---------------------------------------------------------------- 00, 01, 02

def predictions_panel(model):
    """00: any bundled image, or the reader's own file: `plots.show_predictions`."""
    controls = {"image": w.Dropdown(options=list(sample_images()), value="astronaut", description="image"),
                "path": w.Text(placeholder="or a path to your own image, then Enter", continuous_update=False,
                               layout=w.Layout(width="60%"))}

    def update(image, path):
        src = path.strip() or image
        show_predictions(model, [src], titles=[str(src)[-30:]])

    live_panel(update, controls, columns=2, depends={"path": ("image", lambda _: {"value": ""})})


def filter_and_maps_panel(model, layers=("stem", "blocks.1.depthwise", "blocks.3.depthwise", "blocks.5.depthwise",
                                   "blocks.11.depthwise")):
    """01: a layer's filter for one channel (zero at grey) and what that channel computes on a photo."""
    controls = {"layer": w.Dropdown(options=list(layers), value=layers[0], description="layer"),
                "channel": w.IntSlider(value=0, min=0, max=31, description="channel", continuous_update=False),
                "image": w.Dropdown(options=list(PHOTOS), value="chelsea", description="image")}

    @functools.lru_cache(maxsize=8)
    def photo_acts(image):
        x = as_batch(image, 224)
        return x, activations(model, x, [f"{layer}.act" for layer in layers])

    def update(layer, channel, image):
        x, acts = photo_acts(image)
        filters.show_filter_and_map(get_layer(model, layer + ".conv").weight, channel, acts[layer + ".act"][0, channel],
                                    x, layer)

    depends = {"channel": ("layer", lambda layer: {"max": get_layer(model, layer + ".conv").weight.shape[0] - 1})}
    live_panel(update, controls, depends=depends)


def retrain_digits_panel(data):
    """01: train the digits CNN with the reader's learning rate and weight decay: `digits.train_digits_cnn`."""
    controls = {
        "lr": w.FloatLogSlider(value=0.03, base=10, min=-3, max=0, step=0.1, description="learning rate",
                               readout_format=".3f"),
        "weight_decay": w.FloatLogSlider(value=0.02, base=10, min=-4, max=-0.5, step=0.1, description="weight decay",
                                         readout_format=".4f"),
        "no_decay": w.Checkbox(value=False, description="no weight decay"),
        "epochs": w.IntSlider(value=6, min=1, max=20, description="epochs"),
    }

    def run(progress, lr, weight_decay, no_decay, epochs):
        wd = 0.0 if no_decay else weight_decay
        r = digits.train_digits_cnn(epochs=epochs, lr=lr, weight_decay=wd, seed=0, snapshot_epochs=(), data=data)
        digits.show_retrained(r, lr, wd)

    run_panel(run, controls, button="retrain", preview_width=None, columns=4)


def top_patches_panel(model, crops, acts, sources, regions=None):
    """02: the 9 strongest crops of a pool for any channel, cut at the receptive field, one per place:
    `patches.show_top_patches`. acts: {layer: activations of the crops} (the layers offered); sources and
    regions as `patches.photo_crops` returns them."""
    layers = list(acts)
    controls = {"layer": w.Dropdown(options=layers, value=layers[min(1, len(layers) - 1)], description="layer"),
                "channel": w.IntSlider(value=0, min=0, max=acts[layers[0]].shape[1] - 1, description="channel",
                                       continuous_update=False)}

    def update(layer, channel):
        show_top_patches(model, crops, layer, [channel], acts=acts[layer], sources=sources, size=1.4, regions=regions)

    live_panel(update, controls, depends={"channel": ("layer", lambda layer: {"max": acts[layer].shape[1] - 1})})


def tsne_panel(datasets):
    """02: a 2-D map of a dataset, by t-SNE at the reader's perplexity or by PCA: `embeddings.embed`.
    datasets: {name: (points (N, D), labels (N,), class names)}: pixels, or the features of a layer."""
    controls = {"data": w.Dropdown(options=list(datasets), description="data"),
                "method": w.ToggleButtons(options=["t-SNE", "PCA"], description="map"),
                "perplexity": w.FloatLogSlider(value=30, base=10, min=0.5, max=2, step=0.1, description="perplexity",
                                               readout_format=".0f")}

    def run(progress, data, method, perplexity):
        x, y, names = datasets[data]
        pts = embed(x, "tsne" if method == "t-SNE" else "pca", perplexity=perplexity)
        how = f"t-SNE, perplexity {perplexity:.0f}" if method == "t-SNE" else "PCA"
        show_embedding(pts, y, names=names, title=f"{data}, {how}: 5-NN accuracy {knn_accuracy(pts, y):.0%}",
                       size=(6, 5), legend=True)

    run_panel(run, controls, button="draw the map", preview_width=None)


# ---------------------------------------------------------------- 03, 04

def saliency_panel(model, images, occlusions=None):
    """03: gradient and SmoothGrad maps of a class (live; SmoothGrad's noise level and sample count on sliders),
    and its occlusion map (on a button, cached).

    images: {name: (1, 3, 224, 224) tensor}; occlusions: {(image, square, stride, baseline, score): drops}
    already computed (`attribution.occlusion_drops`), shown without running again.
    """
    cache = dict(occlusions or {})
    controls = {
        "image": w.Dropdown(options=list(images), description="image"),
        "cls": w.Dropdown(description="class"),
        "name": w.Text(placeholder="or type a class name, then Enter", continuous_update=False),
        "noise": w.FloatSlider(value=0.15, min=0.0, max=0.5, step=0.05, description="SG noise",
                               continuous_update=False),
        "samples": w.IntSlider(value=8, min=1, max=32, description="SG samples", continuous_update=False),
        "square": w.IntSlider(value=48, min=16, max=112, step=8, description="square"),
        "stride": w.IntSlider(value=16, min=4, max=56, step=4, description="stride"),
        "baseline": w.Dropdown(options=["grey", "black", "mean", "blur"], description="baseline"),
        "score": w.ToggleButtons(options=["probability", "logit"], description="score"),
    }

    @functools.lru_cache(maxsize=16)
    def gradient_maps(image, c, noise, samples):
        x = images[image]
        return attribution.saliency(model, x, c), attribution.smoothgrad(model, x, c, samples=samples, stdev=noise,
                                                                         batch_size=8)

    def key(image, square, stride, baseline, score):
        return (image, square, stride, baseline, score)

    def occlude(image, cls, name, noise, samples, square, stride, baseline, score):
        base = {"grey": 0.5, "black": 0.0}.get(baseline, baseline)
        cache[key(image, square, stride, baseline, score)] = attribution.occlusion_drops(
            model, images[image], square, stride, base, score, progress=True)

    def update(image, cls, name, noise, samples, square, stride, baseline, score):
        c = name.strip() or cls
        x = images[image]
        show_maps(x, list(gradient_maps(image, class_name(class_index(c)), noise, samples)),
                  titles=[f"gradient: {c}", f"SmoothGrad ({samples} samples, noise {noise:.2f})"], kinds="gray", size=2.8)
        plt.show()
        k = key(image, square, stride, baseline, score)
        side = len(attribution.occlusion_positions(x.shape[-1], square, stride))
        print(f"occlusion: {1 + side * side} forward passes" + ("" if k in cache else "; press 'run occlusion'"))
        if k in cache:
            m = attribution.spread_windows(cache[k][:, [class_index(c)]], tuple(x.shape[-2:]), square, stride)
            show_maps(x, [m], titles=[f"occlusion ({score} drop): {c}"], kinds="signed", size=3.2)

    depends = {"cls": ("image", lambda image: _class_menu(model, images[image])),
               "name": ("image", lambda image: {"value": ""})}
    live_panel(update, controls, depends=depends, actions={"run occlusion": occlude})


RULE_METHODS = {"gradient": "gradient", "deconvnet": "deconvnet", "guided backprop": "guided_backprop",
                "Grad-CAM": "grad_cam", "guided Grad-CAM": "guided_grad_cam"}


def backprop_rules_panel(model, images, layers):
    """04: one method, image and class (or one unit) at a time: `attribution.attribute`, `unit_gradient`.
    images: {name: (1, 3, H, W) tensor}; layers: the layers offered for Grad-CAM and units."""
    controls = {
        "image": w.Dropdown(options=list(images), description="image"),
        "method": w.Dropdown(options=list(RULE_METHODS), value="guided backprop", description="method"),
        "explain": w.ToggleButtons(options=["class", "unit"], description="explain"),
        "cls": w.Dropdown(description="class"),
        "name": w.Text(placeholder="or any class name, then Enter", continuous_update=False, description="name"),
        "layer": w.Dropdown(options=list(layers), value=layers[-1], description="layer"),
        "channel": w.IntSlider(value=0, min=0, max=1279, description="channel"),
    }

    def update(image, method, explain, cls, name, layer, channel):
        x, c, key = images[image], name.strip() or cls, RULE_METHODS[method]
        if explain == "unit":
            if "grad_cam" in key:
                raise ValueError("Grad-CAM explains a class: choose 'class', or another method")
            rule = {"gradient": "gradient", "deconvnet": "deconvnet"}.get(key, "guided")
            m = attribution.unit_gradient(model, x, layer, channel, rule=rule)
            show_maps(x, [m], titles=[f"{method}: {layer}, channel {channel}"], kinds="rgb", size=3.6)
            return
        at_layer = {"layer": layer} if "grad_cam" in key else {}
        m = attribution.attribute(model, x, c, key, **at_layer)
        show_maps(x, [m], titles=[f"{method} at {layer}: {c}" if at_layer else f"{method}: {c}"],
                  kinds="heat" if key == "grad_cam" else "rgb", size=3.6)

    depends = {"cls": ("image", lambda image: _class_menu(model, images[image])),
               "channel": ("layer", lambda layer: {"max": _channels(model, layer) - 1})}
    live_panel(update, controls, columns=2, depends=depends)


# ---------------------------------------------------------------- 05 to 08: the image optimizer

def feature_visualization_panel(model):
    """05: what a class, a channel or a neuron wants to see, with the reader's regularizers, in pixels or in
    Fourier space, one image or a diverse batch: `ascent.visualize` of an `objectives` objective."""
    r = ascent.REGULARIZERS
    controls = {
        "what": w.ToggleButtons(options=["class", "channel", "neuron"], value="class", description="visualize"),
        "target": w.Combobox(value="flamingo", options=imagenet_labels(), description="class",
                             placeholder="type a class name", ensure_option=False),
        "layer": w.Dropdown(options=[f"blocks.{i}" for i in range(16)] + ["head.act"], value="blocks.6",
                            description="layer"),
        "channel": w.BoundedIntText(value=0, min=0, max=1279, description="channel"),
        "param": w.ToggleButtons(options=["pixels", "Fourier"], value="pixels", description="optimize"),
        "batch": w.IntSlider(value=1, min=1, max=4, description="images"),
        "diversity": w.FloatSlider(value=0, min=0, max=20, step=0.5, description="diversity"),
        "l2": w.FloatSlider(value=r["l2"], min=0, max=100, step=1, description="L2 weight"),
        "blur_sigma": w.FloatSlider(value=r["blur_sigma"], min=0, max=3, step=0.1, description="blur sigma"),
        "blur_every": w.IntSlider(value=r["blur_every"], min=0, max=10, description="blur every"),
        "clip_pixels": w.FloatSlider(value=r["clip_pixels"], min=0, max=60, step=5, description="clip pixels %"),
        "clip_contributions": w.FloatSlider(value=r["clip_contributions"], min=0, max=60, step=5,
                                            description="clip contrib. %"),
        "jitter": w.IntSlider(value=r["jitter"], min=0, max=32, description="jitter px"),
        "lr": w.FloatLogSlider(value=ascent.LR, base=10, min=-3, max=-0.5, description="step size"),
        "steps": w.IntSlider(value=30, min=10, max=400, step=10, description="steps"),
        "size": w.IntSlider(value=128, min=64, max=320, step=32, description="size px"),
    }

    def run(progress, what, target, layer, channel, param, batch, diversity, size, steps, lr, jitter, **regs):
        regs.update(jitter=jitter, scale=0.1 if jitter else 0, rotate=10 if jitter else 0)
        if param == "Fourier":
            regs["l2"] = 0.0  # the sigmoid keeps the pixels in range; blur and clipping are off
        if what == "class":
            objective, name = O.class_logit(class_index(target)), class_name(class_index(target))
        else:
            objective, name = ascent.unit(model, layer, channel, what), f"{layer}, {what} {channel}"
        if diversity and batch > 1:  # at the unit's layer; for a class, at a late layer
            objective = objective - diversity * O.diversity("blocks.10" if what == "class" else layer)
        x = ascent.visualize(model, objective, size, steps, lr, param=P.fourier if param == "Fourier" else P.noise,
                             batch=batch, progress=progress, **regs)
        titles = [name + (f": {predict(model, x[k:k + 1], topk=1)[0][1]:.0%} (Lite0)" if what == "class" else "")
                  for k in range(batch)]
        show(list(x), titles, ncols=batch, size=3.5 if batch == 1 else 2.6)

    # a unit starts from its defaults (no L2 penalty, no clipping), a class from the class defaults
    defaults = {k: (lambda what, k=k: {"value": r[k] if what == "class" else ascent.UNIT[k]}) for k in ascent.UNIT}
    run_panel(run, controls, depends={k: ("what", fn) for k, fn in defaults.items()})


def inversion_panel(model, size=128):
    """06: reconstruct a photo from any layer's code with the reader's priors: `inversion.invert`."""
    controls = {
        "image": w.Dropdown(options=list(PHOTOS), value="coffee", description="image"),
        "layer": w.Dropdown(options=["stem.act"] + [f"blocks.{i}" for i in range(16)] + ["head.act"],
                            value="blocks.5", description="layer"),
        "tv": w.FloatLogSlider(value=inversion.TV, base=10, min=-2, max=3, description="TV weight"),
        "alpha_weight": w.FloatLogSlider(value=inversion.ALPHA_WEIGHT, base=10, min=-1, max=4,
                                         description="alpha weight"),
        "use_tv": w.Checkbox(value=True, description="total variation"),
        "use_alpha": w.Checkbox(value=True, description="alpha-norm"),
        "steps": w.IntSlider(value=40, min=10, max=500, step=10, description="steps"),
    }

    def run(progress, image, layer, tv, alpha_weight, use_tv, use_alpha, steps):
        x0 = as_batch(image, size)
        x = inversion.invert(model, x0, layer, steps=steps, tv=tv if use_tv else 0,
                       alpha_weight=alpha_weight if use_alpha else 0, progress=progress)
        show([x0, x], ["photo", f"from {layer} (loss {inversion.reconstruction_error(model, x, x0, layer):.2f})"], size=3)

    # a new layer sets the TV weight to that layer's default
    run_panel(run, controls, depends={"tv": ("layer", lambda layer: {"value": inversion.tv_weight(model, layer, size)})})


def deepdream_panel(model):
    """07: DeepDream on any photo, layer and settings, guided by another image or not, one dream or a zoom loop
    ("we must go deeper", shown as an animated GIF): `deepdream.deepdream`, `deepdream.zoom_sequence`."""
    layers = [n for n, _ in model.named_modules()
              if n.startswith("blocks.") and (n.count(".") == 1 or n.endswith("expand.act"))]
    controls = {
        "image": w.Dropdown(options=list(PHOTOS) + list(TEXTURES), value="flower", description="image"),
        "path": w.Text(placeholder="or a path/URL of your own image", description="your file"),
        "guide": w.Dropdown(options=["none"] + list(PHOTOS) + list(TEXTURES), value="none", description="guide"),
        "layer": w.Dropdown(options=layers, value=deepdream.DEFAULT_LAYER, description="layer"),
        "octaves": w.IntSlider(value=3, min=1, max=5, description="octaves"),
        "octave_scale": w.FloatSlider(value=1.4, min=1.1, max=2.0, step=0.1, description="octave scale"),
        "steps": w.IntSlider(value=10, min=1, max=40, description="steps/octave"),
        "lr": w.FloatLogSlider(value=0.02, base=10, min=-3, max=-1, step=0.1, description="step size"),
        "jitter": w.IntSlider(value=16, min=0, max=64, description="jitter (px)"),
        "size": w.IntSlider(value=224, min=128, max=512, step=32, description="size (px)"),
        "frames": w.IntSlider(value=1, min=1, max=16, description="zoom frames"),
        "zoom_factor": w.FloatSlider(value=1.08, min=1.01, max=1.3, step=0.01, description="zoom / frame"),
    }

    def run(progress, image, path, guide, size, frames, zoom_factor, **settings):
        src = path.strip() or image
        x = as_batch(src, size)
        guide = None if guide == "none" else guide
        if frames == 1:
            show([x, deepdream.deepdream(model, x, guide=guide, progress=progress, **settings)],
                 [str(src)[-30:], f"dream at {settings['layer']}" + (f", guided by {guide}" if guide else "")], size=4)
            return
        movie = deepdream.zoom_sequence(model, x, frames=frames, zoom_factor=zoom_factor, size=size, guide=guide,
                                 progress=False, **settings)
        print(f"{frames} frames: dream, zoom {zoom_factor:.2f}x into the centre, dream again")
        display(Image(data=deepdream.gif_bytes(movie, duration=200), format="gif", width=min(2 * size, 512)))

    run_panel(run, controls, button="Dream", every=2)


def style_transfer_panel(net, judge):
    """08: Gatys style transfer with the reader's images, loss network (Lite0, or a random VGG-19 with max or
    average pooling), weights per style layer, start (photo or noise) and optimizer: `style.style_transfer`,
    scored by `style.stylization_scores`."""
    layout = w.Layout(width="320px")
    networks = {"EfficientNet-Lite0": lambda pooling: net,
                "VGG-19, random": functools.lru_cache(maxsize=2)(
                    lambda pooling: loss_network("vgg19", pretrained=False, pooling=pooling))}
    content_layers = {"EfficientNet-Lite0": ["blocks.1", "blocks.2", "blocks.4", "blocks.6", "blocks.8"],
                      "VGG-19, random": ["features.13", "features.22", "features.31"]}
    controls = {
        "content": w.Dropdown(options=list(PHOTOS), value="chelsea", description="content", layout=layout),
        "content_path": w.Text(placeholder="or a path / URL", description="own content", layout=layout),
        "style": w.Dropdown(options=list(GENERATED) + list(TEXTURES), value="embers", description="style",
                            layout=layout),
        "style_path": w.Text(placeholder="or a path / URL", description="own style", layout=layout),
        "network": w.Dropdown(options=list(networks), description="loss network", layout=layout),
        "pooling": w.ToggleButtons(options=["max", "avg"], description="pooling (VGG)"),
        "ratio": w.FloatLogSlider(value=100, base=10, min=0, max=4, step=0.25, description="style/content"),
        "tv_weight": w.FloatLogSlider(value=100, base=10, min=-1, max=3, step=0.5, description="TV weight"),
        "content_layer": w.Dropdown(options=content_layers["EfficientNet-Lite0"], value=net.content_layer,
                                    description="content layer"),
        **{f"w{k}": w.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.1, description=f"style layer {k + 1}")
           for k in range(len(net.style_layers))},
        "init": w.ToggleButtons(options=["content", "noise"], description="start from"),
        "size": w.IntSlider(value=128, min=64, max=384, step=32, description="size"),
        "steps": w.IntSlider(value=40, min=10, max=300, step=10, description="steps"),
        "optimizer": w.Dropdown(options=["lbfgs", "adam"], value="lbfgs", description="optimizer"),
    }

    def defaults(network):
        loss_net = networks[network]("max")
        return loss_net, {"ratio": loss_net.weights["style"] / loss_net.weights["content"], "tv": loss_net.weights["tv"]}

    depends = {"ratio": ("network", lambda n: {"value": defaults(n)[1]["ratio"]}),
               "tv_weight": ("network", lambda n: {"value": defaults(n)[1]["tv"]}),
               "content_layer": ("network", lambda n: {"options": content_layers[n],
                                                       "value": defaults(n)[0].content_layer})}

    def run(progress, content, content_path, style, style_path, network, pooling, ratio, size, **settings):
        c, s_img = content_path.strip() or content, style_path.strip() or style
        loss_net = networks[network](pooling)
        raw = [settings.pop(f"w{k}") for k in range(len(net.style_layers))]
        if not any(raw):
            print("give at least one style layer a weight above 0")
            return
        layer_weights = {layer: v / sum(raw) for layer, v in zip(loss_net.style_layers, raw)}
        # each picture decoded once per run: the transfer, the scores and the figure take the tensors
        content, style_image = as_batch(c, size, channels=3), as_batch(s_img, size, channels=3)
        x = style_transfer(loss_net, content, style_image, size=size, style_weight=ratio, layer_weights=layer_weights,
                           progress=progress, **settings)
        s = stylization_scores(judge, x, content, style_image)
        show([style_image, x], ["style", f"{loss_net.name}: style dist {s['style']:.3f} (photo "
                                                   f"{s['style_of_content']:.3f}), content {s['content']:.2f}\n"
                                                   f"stylized: {s['stylized']}"], size=3.4)

    run_panel(run, controls, columns=2, every=5, depends=depends)


def fast_style_panel(stylizers):
    """09: one forward pass of a shipped style network on any photo, size and strength: `fast_style.stylize`."""
    controls = {
        "style": w.Dropdown(options=list(stylizers), description="style"),
        "photo": w.Dropdown(options=list(PHOTOS), value="china", description="photo"),
        "size": w.IntSlider(value=256, min=96, max=512, step=32, description="size"),
        "strength": w.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="strength"),
        "upload": w.FileUpload(accept="image/*", multiple=False, description="your photo"),
    }

    def update(style, photo, size, strength, upload):
        src = bytes(upload[0]["content"]) if upload else photo
        x = as_batch(src, shorter_side=size)
        t0 = time.perf_counter()
        y = fast_style.stylize(stylizers[style], x, strength=strength)
        took = (time.perf_counter() - t0) * 1000
        show([x, y], [f"{'your photo' if upload else photo}, {x.shape[-1]}x{x.shape[-2]}",
                      f"{style}, strength {strength:.2f} ({took:.0f} ms)"], size=4.2)

    live_panel(update, controls)


def style_blend_panel(net):
    """09: a network of several styles, two of them blended live by interpolating their instance-norm scales
    and shifts (Dumoulin et al. 2017): `fast_style.stylize(net, x, style={a: 1 - t, b: t})`."""
    controls = {
        "a": w.Dropdown(options=net.styles, value=net.styles[0], description="style A"),
        "b": w.Dropdown(options=net.styles, value=net.styles[1], description="style B"),
        "t": w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="A -> B"),
        "photo": w.Dropdown(options=list(PHOTOS), value="china", description="photo"),
        "size": w.IntSlider(value=224, min=96, max=448, step=32, description="size"),
    }

    def update(a, b, t, photo, size):
        x = as_batch(photo, shorter_side=size)
        y = fast_style.stylize(net, x, style={a: 1.0} if a == b else {a: 1 - t, b: t})
        show([x, y], [photo, f"{1 - t:.2f} x {a} + {t:.2f} x {b}" if a != b else a], size=4.2)

    live_panel(update, controls)


# ---------------------------------------------------------------- 10

def attack_panel(model):
    """10: any attack, budget, step size, step count and target on a photo: `adversarial.attack`."""
    methods = {"fgsm": "FGSM", "iterative_fgsm": "iterative FGSM", "pgd": "PGD"}
    controls = {
        "name": w.Dropdown(options=PHOTOS, value="chelsea", description="photo"),
        "method": w.Dropdown(options=[("FGSM", "fgsm"), ("iterative FGSM", "iterative_fgsm"),
                                      ("PGD (random start)", "pgd")], value="pgd", description="method"),
        "target": w.Text(value="ostrich", placeholder="empty = untargeted", description="target"),
        "eps": w.FloatSlider(value=4, min=0.25, max=16, step=0.25, description="eps (/255)"),
        "step": w.FloatSlider(value=0, min=0, max=4, step=0.25, description="step (/255)"),
        "steps": w.IntSlider(value=10, min=1, max=40, description="steps"),
    }

    def run(progress, name, method, target, eps, step, steps):
        x = as_batch(name, 224)
        targeted = bool(target.strip())
        goal = target.strip() if targeted else adversarial.top1(model, x)
        x_adv = adversarial.attack(model, x, goal, method, eps / 255, alpha=step / 255 if step else None, steps=steps,
                                   targeted=targeted, seed=0)
        adversarial.show_attack(model, x, x_adv, titles=(name, f"{methods[method]}, eps {eps:g}/255"
                                                         + (f" -> {target}" if targeted else "")))

    run_panel(run, controls, button="Attack", preview_width=None)


def robust_digits_panel(models, x, y):
    """10: attack a test digit on the standard or the robust network, L2 or L-infinity, towards any digit or
    away from its own: `adversarial.attack`, drawn by `adversarial.show_digit_change`.
    models: {name: digits network}; x, y: test digits and their labels."""
    controls = {
        "model": w.Dropdown(options=list(models), description="network"),
        "index": w.IntSlider(value=0, min=0, max=len(x) - 1, description="test digit"),
        "target": w.Dropdown(options=[("away from its own", None)] + [(f"towards {d}", d) for d in range(10)],
                             value=8, description="attack"),
        "norm": w.ToggleButtons(options=[("L2", "l2"), ("L-inf", "linf")], description="ball"),
        "eps": w.FloatSlider(value=3.0, min=0.1, max=8.0, step=0.1, description="eps"),
        "steps": w.IntSlider(value=40, min=1, max=100, description="steps"),
    }

    def run(progress, model, index, target, norm, eps, steps):
        m, xi = models[model], x[index:index + 1]
        eps = min(eps, 1.0) if norm == "linf" else eps
        goal = int(y[index]) if target is None else target
        x_adv = adversarial.attack(m, xi, goal, "pgd", eps, alpha=eps / 10, steps=steps, targeted=target is not None,
                                   norm=norm)
        adversarial.show_digit_change(m, xi, x_adv, f"{model} network, PGD in the {norm} ball of radius {eps:g}")

    run_panel(run, controls, button="Attack", preview_width=None)
