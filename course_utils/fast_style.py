"""Fast neural style: a feed-forward network trained to stylize in one pass (Johnson et al. 2016).

Notebook 08 optimizes every image from scratch: hundreds of forward-backward passes per picture.
Here a *transformation network* f_W is trained once, on many photos, to minimize the same perceptual
loss (the loss network of notebook 08, `style.loss_network()`):

    L(W) = E_x [ a * content(f_W(x), x) + b * style(f_W(x), s) + c * TV(f_W(x)) ]

after which stylizing is one forward pass. The network: strided convolutions down, residual blocks,
upsampling back by resize-convolution (nearest upsample, then a convolution: no checkerboard
artifacts, Odena et al. 2016), with instance normalization (Ulyanov et al. 2016) after each convolution.

    python -m course_utils.fast_style train --style strokes --steps 1000 --size 128 --out my_style.pt

Papers: Johnson, Alahi & Fei-Fei, "Perceptual losses for real-time style transfer and
super-resolution", ECCV 2016; Ulyanov, Vedaldi & Lempitsky, "Instance normalization: the missing
ingredient for fast stylization", 2016; Odena, Dumoulin & Olah, "Deconvolution and checkerboard
artifacts", Distill 2016.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .images import ImageLoadError, as_batch, load_image, shorter_side
from .layers import capture, frozen
from .objectives import tv_penalty
from .seeding import forked, generator
from .style import content_loss, loss_network, style_loss

DATA = Path(__file__).resolve().parent / "data" / "fast_style"
# Bundled colour photos the shipped styles were trained on; HELD_OUT ones are never seen in training,
# so the notebook can show the networks on photos they did not learn from.
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "motorcycle", "hubble_deep_field", "immunohistochemistry",
                "retina", "grace_hopper")
HELD_OUT = ("chelsea", "china", "flower")
# Notebook 08's weights are content 1, style 100, TV 100. A network must serve every photo with the same
# weights, and at style 100 ours gave up the content (content distance above 1 after 300 steps, where an
# optimization of one photo stays near 0.8); at 20 it keeps the photo and still takes the style. `range`
# keeps colours inside the range the network reads photos in (see `range_penalty`): without it the first
# shipped networks painted saturated blobs (pure blue, pure white) on 10-25% of smooth photos.
DEFAULT_WEIGHTS = dict(content=1.0, style=20.0, tv=100.0, range=30.0)
# The network reads a photo as logit(x) with x clamped to [0.01, 0.99]: |logit| <= Z_MAX.
Z_MAX = math.log(0.99 / 0.01)


# ---------------------------------------------------------------- instance normalization

def instance_norm(x, eps=1e-5):
    """Normalize each channel of each image on its own: (x - mean_hw) / sqrt(var_hw + eps).

    x: (N, C, H, W). Batch norm would use statistics over the whole batch (N, H, W); instance norm
    uses only (H, W), so an image's contrast is removed no matter which other images share its batch.
    """
    if x.dim() != 4:
        raise ValueError(f"instance_norm expects (N, C, H, W), got shape {tuple(x.shape)}")
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)


class InstanceNorm(nn.Module):
    """instance_norm followed by a learned per-channel scale and shift (gamma, beta)."""

    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):  # torch's fused kernel computes exactly instance_norm(x) * weight + bias, faster
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def conditional_instance_norm(x, gammas, betas, mix, eps=1e-5):
    """instance_norm(x) scaled and shifted by a blend of per-style parameters (Dumoulin et al. 2017):
    gamma = mix @ gammas, beta = mix @ betas, y = gamma * instance_norm(x) + beta per channel.

    x: (N, C, H, W); gammas, betas: (S, C), one row per style; mix: (S,) style weights (one-hot: one style),
    or (N, S), one blend per image.
    """
    mix = torch.as_tensor(mix).to(x).expand(x.shape[0], -1)  # (N, S)
    gamma, beta = mix @ gammas, mix @ betas  # (N, C)
    return F.instance_norm(x, eps=eps) * gamma[..., None, None] + beta[..., None, None]


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with one scale and shift per style (Dumoulin, Shlens & Kudlur 2017):

        y = gamma_s * instance_norm(x) + beta_s,  gamma_s = sum_k w_k gamma_k,  beta_s = sum_k w_k beta_k

    where w are the style weights set by the network (`mix`, (S,) or one row per image (N, S)): a one-hot
    w picks style k; any other w blends the styles' parameters. Everything else in the network is shared.
    """

    def __init__(self, channels, styles, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.mix = None

    def forward(self, x):
        if self.mix is None:
            raise RuntimeError("a conditional network needs a style: call net(x, style=...)")
        return conditional_instance_norm(x, self.weight, self.bias, self.mix, self.eps)


def _norm(kind, channels, styles=1):
    if kind == "instance":
        return InstanceNorm(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "conditional":
        return ConditionalInstanceNorm(channels, styles)
    raise ValueError(f"norm must be 'instance', 'batch' or 'conditional', got {kind!r}")


# ---------------------------------------------------------------- the transformation network

class ConvLayer(nn.Sequential):
    """Reflection padding + convolution (+ normalization + ReLU): no zero borders in the output."""

    def __init__(self, cin, cout, kernel, stride=1, norm="instance", relu=True, upsample=1, styles=1):
        layers = [nn.Upsample(scale_factor=upsample, mode="nearest")] if upsample > 1 else []
        layers += [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            layers.append(_norm(norm, cout, styles))
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x) (He et al. 2016, as Johnson et al. use it)."""

    def __init__(self, channels, norm="instance", styles=1):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3, norm=norm, styles=styles),
                                  ConvLayer(channels, channels, 3, norm=norm, relu=False, styles=styles))

    def forward(self, x):
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network, from (N, 3, H, W) in [0, 1] to the same shape.

    width=32, blocks=5 is Johnson's (32-64-128 channels, 1.7M parameters, about 4 images/s at 256 px
    on 2 CPU cores); the shipped styles use width=16, blocks=3 (0.27M parameters, about 15 images/s).
    Any H, W works: the input is padded to a multiple of 4 (reflection) and the output cropped back.

    norm="conditional" with styles=("strokes", "embers", ...): one network for several styles, whose instance
    norms have a scale and shift per style (`ConditionalInstanceNorm`); call it as net(x, style=...).
    """

    def __init__(self, width=16, blocks=3, norm="instance", styles=None):
        super().__init__()
        styles = list(styles) if styles else []
        if (norm == "conditional") != bool(styles):
            raise ValueError("a conditional network needs its style names (styles=[...]), and only it takes them")
        self.config = dict(width=width, blocks=blocks, norm=norm, **({"styles": styles} if styles else {}))
        self.styles = styles
        w, n = width, max(1, len(styles))
        self.down = nn.Sequential(ConvLayer(3, w, 9, norm=norm, styles=n), ConvLayer(w, 2 * w, 3, 2, norm=norm, styles=n),
                                  ConvLayer(2 * w, 4 * w, 3, 2, norm=norm, styles=n))
        self.res = nn.Sequential(*[ResidualBlock(4 * w, norm, n) for _ in range(blocks)])
        self.up = nn.Sequential(ConvLayer(4 * w, 2 * w, 3, norm=norm, upsample=2, styles=n),
                                ConvLayer(2 * w, w, 3, norm=norm, upsample=2, styles=n),
                                ConvLayer(w, 3, 9, norm=None, relu=False))

    def style_weights(self, style):
        """The (S,) style weights of `style`: an index, a style name, a {name: weight} blend, or S numbers."""
        import difflib

        s = len(self.styles)
        if not s:
            raise ValueError("this network has one style: call it without style=")
        if isinstance(style, str):
            if style not in self.styles:
                close = difflib.get_close_matches(style, self.styles, n=2, cutoff=0.5)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(f"{style!r} is not one of this network's styles {self.styles}.{hint}")
            style = self.styles.index(style)
        if isinstance(style, int):
            if not 0 <= style < s:
                raise ValueError(f"style index {style} out of range: the network has {s} styles {self.styles}")
            return F.one_hot(torch.tensor(style), s).float()
        if isinstance(style, dict):
            return sum(w * self.style_weights(name) for name, w in style.items())
        w = torch.as_tensor(style, dtype=torch.float32)
        if w.shape[-1] != s:
            raise ValueError(f"style weights need {s} numbers (one per style {self.styles}), got shape {tuple(w.shape)}")
        return w

    def logits(self, x, style=None):
        """logit(x) + g(x): the output before the sigmoid (see `forward`)."""
        if self.styles:
            if style is None:
                raise ValueError(f"a conditional network needs style=: one of {self.styles}, an index or a blend")
            mix = self.style_weights(style)
            for m in self.modules():
                if isinstance(m, ConditionalInstanceNorm):
                    m.mix = mix
        elif style is not None:
            raise ValueError("this network has one style: call it without style=")
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        padded = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        return torch.logit(x.clamp(0.01, 0.99)) + self.up(self.res(self.down(padded)))[..., :h, :w]

    def forward(self, x, style=None):
        # the network learns a change of the photo in logit space, y = sigmoid(logit(x) + g(x)): training
        # starts from the photo (like notebook 08's optimization, init="content"), and the output stays in
        # (0, 1) smoothly. (Clamping instead left regions stuck black, or saturated blobs with a
        # straight-through gradient.)
        return torch.sigmoid(self.logits(x, style))


# ---------------------------------------------------------------- loading and using shipped styles

def pretrained_styles():
    """{name: description} of the styles the course trained and ships in course_utils/data/fast_style/."""
    out = {}
    for p in sorted(DATA.glob("*.pt")):
        try:
            out[p.stem] = torch.load(p, map_location="cpu", weights_only=True).get("meta", {}).get("description", "")
        except Exception:  # noqa: BLE001 - a broken file is reported by load_stylizer, not here
            out[p.stem] = "(unreadable)"
    return out


def load_stylizer(name_or_path):
    """An eval-mode TransformerNet from a shipped style name ("strokes"; "paintings", the network of the four
    paintings) or a .pt file made by `train`.

    The file is read with torch.load(weights_only=True): it holds tensors and plain values only.
    """
    path = Path(name_or_path)
    for folder in (DATA, DATA / "multi"):  # one-style networks, and the network of several styles
        if not path.suffix and (folder / f"{name_or_path}.pt").exists():
            path = folder / f"{name_or_path}.pt"
    if not path.exists():
        import difflib

        names = list(pretrained_styles())
        close = difflib.get_close_matches(str(name_or_path), names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise FileNotFoundError(f"no stylizer {str(name_or_path)!r}: not a shipped style and no such file.{hint} "
                                f"Shipped styles: {', '.join(names) or '(none)'}, and 'paintings' (four styles in "
                                f"one network); train your own with "
                                f"`python -m course_utils.fast_style train --style ... --out FILE.pt`.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        net = TransformerNet(**ckpt["config"])
        net.load_state_dict(ckpt["state_dict"])
    except Exception as e:  # truncated file, not a checkpoint, wrong architecture
        raise ValueError(f"cannot load stylizer weights from {path}: {type(e).__name__}: {str(e)[:200]}. "
                         f"Is it a file written by `python -m course_utils.fast_style train`?") from None
    net.meta = ckpt.get("meta", {})
    return net.eval()


def stylize(stylizer, image, size=None, strength=1.0, style=None):
    """Stylize an image (anything `as_batch` takes) in one forward pass; a (1, 3, H, W) tensor in [0, 1].

    size: shorter side in pixels, aspect kept (None keeps the image's size). strength in [0, 1] blends the
    original (0) and the stylized image (1). stylizer: a module or a name/path for `load_stylizer`.
    style: for a network of several styles, a style name, an index or a blend {name: weight}.
    """
    if not isinstance(stylizer, nn.Module):
        stylizer = load_stylizer(stylizer)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    x = as_batch(shorter_side(load_image(image), size) if size else image, channels=3)
    with torch.no_grad():
        y = stylizer(x, style) if style is not None else stylizer(x)
    return (strength * y + (1 - strength) * x).clamp(0, 1)


def images_per_second(net, x, repeat=5):
    """How many forward passes of `net` on the batch x run per second (after one warm-up pass)."""
    import time

    with torch.no_grad():
        net(x)
        t0 = time.perf_counter()
        for _ in range(repeat):
            net(x)
    return repeat / (time.perf_counter() - t0)


# ---------------------------------------------------------------- the content set

class ContentImages:
    """Endless batches of random crops of photos: random scale, flips and colour jitter.

    photos: bundled names, paths, or PIL images (default: TRAIN_PHOTOS); folder: also every image
    file in this folder (jpg, jpeg, png, bmp, webp).
    """

    def __init__(self, photos=None, folder=None, size=128, seed=0, scale=(0.08, 1.0), jitter=0.2):
        from torchvision.transforms import v2

        photos = list(TRAIN_PHOTOS if photos is None else photos)
        if folder is not None:
            folder = Path(folder)
            if not folder.is_dir():
                raise ValueError(f"content folder {str(folder)!r} is not a directory")
            found = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp"})
            if not found:
                raise ValueError(f"no images (jpg, png, bmp, webp) in {str(folder)!r}")
            photos += found
        if not photos:
            raise ValueError("no content photos given")
        # read each photo once, shorter side at most 2x the crop size (crops are then resized down)
        self.images = [as_batch(self._read(p, 2 * size))[0] for p in photos]
        self.size, self.generator = size, generator(seed)
        self.crop = v2.RandomResizedCrop(size, scale=scale, antialias=True)
        self.jitter = v2.ColorJitter(jitter, jitter, jitter, 0.05) if jitter else nn.Identity()
        self.seed = seed

    @staticmethod
    def _read(p, size):
        img = load_image(p)
        return shorter_side(img, size) if min(img.size) > size else img

    def batch(self, n=4):
        """(n, 3, size, size) in [0, 1]."""
        out = []
        with forked(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))):  # torchvision's draws
            for _ in range(n):
                i = int(torch.randint(len(self.images), (1,), generator=self.generator))
                x = self.crop(self.images[i])
                if torch.rand(1, generator=self.generator) < 0.5:
                    x = x.flip(-1)
                out.append(self.jitter(x).clamp(0, 1))
        return torch.stack(out)


# ---------------------------------------------------------------- the perceptual loss

def range_penalty(outputs):
    """mean over pixels of max(0, |logit(y)| - Z_MAX)^2: zero while every colour value stays within the
    1%..99% range the network reads photos in, growing as a pixel is pushed towards 0 or 1."""
    z = torch.logit(outputs.clamp(1e-6, 1 - 1e-6))
    return F.relu(z.abs() - Z_MAX).pow(2).mean()


def saturation(photo, output):
    """The share of pixels with a colour channel at 0 or 255 (8-bit) in `output` but not in `photo`:
    saturated patches that the network painted. Both (1, 3, H, W) tensors in [0, 1] (or anything `as_batch`
    takes)."""
    def saturated(x):
        q = (as_batch(x) * 255).round()
        return ((q <= 0) | (q >= 255)).any(1)

    return float((saturated(output) & ~saturated(photo)).float().mean())


def perceptual_terms(out_features, content_features, style_grams, outputs, content_layer, weights=None):
    """The loss of one batch from its features: {"content", "style", "tv", "range", "total"}, batch means.

    out_features: {layer: (N, C, H, W)} activations of the outputs f_W(x) at the style layers and the
    content layer; content_features: (N, C, H, W) activations of the photos x at the content layer;
    style_grams: {layer: (1, C, C)} of the style image; outputs: the (N, 3, H, W) images, for TV.
    Per image, the terms are notebook 08's: content ||F_c(y) - F_c(x)||^2 / ||F_c(x)||^2, style
    sum_l ||G_l(y) - G_l(s)||^2 / ||G_l(s)||^2 / |L|, TV(y) and `range_penalty(y)`; each is averaged
    over the batch.
    """
    w = dict(DEFAULT_WEIGHTS, **(weights or {}))
    f, n = out_features[content_layer], outputs.shape[0]
    # notebook 08's losses are for one image; here each image of the batch is scored on its own, then averaged
    content = sum(content_loss(f[i:i + 1], content_features[i:i + 1]) for i in range(n)) / n
    style = sum(style_loss({l: out_features[l][i:i + 1] for l in style_grams}, style_grams) for i in range(n)) / n
    tv = tv_penalty(outputs)
    in_range = range_penalty(outputs)
    total = w["content"] * content + w["style"] * style + w["tv"] * tv + w["range"] * in_range
    return {"content": content, "style": style, "tv": tv, "range": in_range, "total": total}


def perceptual_loss(net, outputs, contents, style_grams, weights=None):
    """Johnson et al.'s loss for a batch: {"content", "style", "tv", "range", "total"} (`perceptual_terms`).

    net: a LossNetwork (style.loss_network()); outputs: f_W(x), (N, 3, H, W); contents: the photos x;
    style_grams: net.grams(style_image); weights: {"content", "style", "tv", "range"} (DEFAULT_WEIGHTS).
    """
    layers = list(style_grams) + [net.content_layer]
    model = net.net(layers)
    with torch.no_grad(), capture(model, [net.content_layer]) as acts:
        model(contents)
    target = net.apply(acts[net.content_layer])
    with capture(model, layers, detach=False) as acts:  # keep the graph: the loss is backpropagated
        model(outputs)
    feats = {l: net.apply(acts[l]) for l in layers}
    return perceptual_terms(feats, target, style_grams, outputs, net.content_layer, weights)


# ---------------------------------------------------------------- training

def train(lossnet, style, steps=1000, size=128, batch=4, width=16, blocks=3, norm="instance", lr=2e-3, weights=None,
          style_size=None, photos=None, folder=None, seed=0, net=None, progress=True, callback=None,
          callback_every=50, history=None):
    """Train a TransformerNet for one style image, or one network for several; returns it in eval mode
    (with .meta: losses, settings).

    lossnet: the loss network (a LossNetwork or a model name, `style.loss_network`).
    style: anything `as_batch` takes (a bundled name, a generated painting such as "strokes", a path); a list
    of several: a conditional network (Dumoulin et al. 2017), each batch trained on the next style in turn.
    history: a list that receives one {"step", "content", "style", "tv", "range", "total"} (and "style_index")
    per step. callback(step, net, losses) runs every `callback_every` steps (and after the last), e.g. previews.
    net: continue training this network instead of a new one.
    """
    from tqdm.auto import tqdm

    lossnet = loss_network(lossnet)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    names = [s if isinstance(s, str) else f"image {k}" for k, s in enumerate(styles)]
    if len(set(names)) != len(names):
        raise ValueError(f"the styles must differ, got {names}")
    conditional = len(styles) > 1
    with forked(seed):  # the layers' default initialization draws from torch's global generator
        stylizer = net if net is not None else TransformerNet(width, blocks, "conditional" if conditional else norm,
                                                              names if conditional else None)
    style_grams = [lossnet.grams(as_batch(s, style_size or size)) for s in styles]
    data = ContentImages(photos, folder, size, seed)
    opt = torch.optim.Adam(stylizer.parameters(), lr=lr)
    history = [] if history is None else history
    stylizer.train()
    t0 = time.perf_counter()
    with frozen(lossnet.net(list(lossnet.style_layers) + [lossnet.content_layer])):
        bar = tqdm(range(1, steps + 1), desc=f"training ({stylizer.config['norm']} norm)", disable=not progress,
                   leave=False)
        for step in bar:
            x = data.batch(batch)
            which = (step - 1) % len(styles)
            y = stylizer(x, which) if conditional else stylizer(x)
            losses = perceptual_loss(lossnet, y, x, style_grams[which], weights)
            opt.zero_grad()
            losses["total"].backward()
            opt.step()
            if not math.isfinite(losses["total"].item()):
                raise RuntimeError(f"the loss became {losses['total'].item()} at step {step}: lower the learning "
                                   f"rate (lr={lr})")
            row = {"step": step, **{k: round(float(v.detach()), 5) for k, v in losses.items()}}
            if conditional:
                row["style_index"] = which
            history.append(row)
            bar.set_postfix(loss=f"{row['total']:.3f}")
            if callback is not None and (step % callback_every == 0 or step == steps):
                stylizer.eval()
                callback(step, stylizer, row)
                stylizer.train()
    stylizer.eval()
    stylizer.meta = dict(style=names if conditional else names[0], steps=steps, size=size, batch=batch,
                         lr=lr, weights=dict(DEFAULT_WEIGHTS, **(weights or {})), seed=seed,
                         loss_network=lossnet.name, seconds=round(time.perf_counter() - t0, 1),
                         photos=[str(p) for p in (TRAIN_PHOTOS if photos is None else photos)],
                         folder=str(folder) if folder else None)
    return stylizer


def save_stylizer(net, path, history=None, description="", command=None):
    """Write a checkpoint that `load_stylizer` reads (weights_only-safe: tensors and plain values)."""
    meta = dict(getattr(net, "meta", {}))
    meta.update(description=description, command=command or "")
    if history is not None:
        meta["history"] = history
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": dict(net.config), "state_dict": net.state_dict(), "meta": meta}, path)
    return path


def show_losses(history, ax=None, title=None):
    """The total, content, style and TV terms of a training history (a list of dicts); returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    steps = [h["step"] for h in history]
    for key in ("total", "content", "style", "tv", "range"):
        if key not in history[0]:  # networks trained before the range term
            continue
        v = np.array([h[key] for h in history]) + (1e-6 if key == "range" else 0)  # range is often 0: log scale
        k = max(1, len(v) // 40)  # running mean: single batches are noisy
        smooth = np.convolve(v, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], smooth, label=key, lw=1.5 if key == "total" else 1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (running mean)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax.figure


def show_blends(net, image, styles=None, n=5, size=128):
    """Dumoulin et al.'s figure: `image` through a network of several styles, on an n x n grid whose corners
    are four styles (top-left, top-right, bottom-left, bottom-right) and whose other cells blend them
    bilinearly. Returns the Figure."""
    from .plots import grid

    styles = list(styles or net.styles[:4])
    if len(styles) != 4:
        raise ValueError(f"the grid's corners are 4 styles, got {styles}")
    x = as_batch(image, size)  # a square, as the grid's cells
    images = []
    for v in torch.linspace(0, 1, n).tolist():
        for u in torch.linspace(0, 1, n).tolist():
            mix = {styles[0]: (1 - u) * (1 - v), styles[1]: u * (1 - v), styles[2]: (1 - u) * v, styles[3]: u * v}
            images.append(stylize(net, x, style=mix))
    corners = {0: styles[0], n - 1: styles[1], n * (n - 1): styles[2], n * n - 1: styles[3]}
    return grid(images, ncols=n, titles=[corners.get(k, "") for k in range(n * n)], size=1.6)


# ---------------------------------------------------------------- the command line

def _preview(net, out, step, size):
    from .plots import grid

    xs = [as_batch(p, size) for p in HELD_OUT]
    styles = net.styles or [None]
    with torch.no_grad():
        ys = [net(x, s) if s else net(x) for s in styles for x in xs]
    fig = grid(xs + ys, ncols=len(xs), titles=list(HELD_OUT) + [f"{s or 'step'} {step}" for s in styles for _ in xs])
    fig.savefig(out, dpi=72, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course_utils.fast_style",
                                     description="Train a fast style network (Johnson et al. 2016).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a stylizer for one style image, or one network for several")
    t.add_argument("--style", required=True, action="append", help="style image: a generated painting (strokes, "
                   "embers, kandinsky, mondrian), a bundled name or a path; repeat it for one network of several "
                   "styles (conditional instance norm)")
    t.add_argument("--out", required=True, help="where to write the weights (.pt)")
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--size", type=int, default=128, help="training crop size in pixels")
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--width", type=int, default=16, help="16: half of Johnson's width (0.27M parameters); 32: full")
    t.add_argument("--blocks", type=int, default=3, help="residual blocks (Johnson: 5)")
    t.add_argument("--norm", choices=("instance", "batch"), default="instance")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--content-weight", type=float, default=DEFAULT_WEIGHTS["content"])
    t.add_argument("--style-weight", type=float, default=DEFAULT_WEIGHTS["style"])
    t.add_argument("--tv-weight", type=float, default=DEFAULT_WEIGHTS["tv"])
    t.add_argument("--range-weight", type=float, default=DEFAULT_WEIGHTS["range"],
                   help="keeps colours away from 0 and 1 (saturated blobs); 0: off")
    t.add_argument("--style-size", type=int, default=None, help="size the style image is read at (default --size)")
    t.add_argument("--images", default=None, help="a folder of your own content photos, added to the bundled ones")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--preview-every", type=int, default=100, help="write a preview PNG every N steps (0: never)")
    t.add_argument("--description", default="")
    a = parser.parse_args(argv)

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)  # the previews are written there from the first ones on
    stem = out.with_suffix("")
    history = []

    def cb(step, net, row):
        if a.preview_every:
            _preview(net, f"{stem}_preview.png", step, 160)

    try:
        style = a.style if len(a.style) > 1 else a.style[0]
        net = train(loss_network(), style, steps=a.steps, size=a.size, batch=a.batch, width=a.width, blocks=a.blocks, norm=a.norm, lr=a.lr,
                    weights=dict(content=a.content_weight, style=a.style_weight, tv=a.tv_weight, range=a.range_weight),
                    style_size=a.style_size, folder=a.images, seed=a.seed, history=history, callback=cb,
                    callback_every=a.preview_every or a.steps)
    except (ImageLoadError, ValueError) as e:
        parser.error(str(e))
    command = "python -m course_utils.fast_style " + " ".join(shlex.quote(s) for s in (argv or sys.argv[1:]))
    save_stylizer(net, out, history, a.description, command)
    import matplotlib.pyplot as plt

    fig = show_losses(history, title=f"{' + '.join(a.style)}: {a.steps} steps, {net.meta['seconds']:.0f} s")
    fig.savefig(f"{stem}_loss.png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), {stem}_loss.png and {stem}_preview.png "
          f"in {net.meta['seconds']:.0f} s")


__all__ = ["instance_norm", "InstanceNorm", "conditional_instance_norm", "ConditionalInstanceNorm", "TransformerNet", "ContentImages",
           "perceptual_terms", "perceptual_loss", "range_penalty", "saturation", "train", "save_stylizer", "load_stylizer", "stylize", "pretrained_styles",
           "images_per_second", "show_losses", "show_blends", "TRAIN_PHOTOS", "HELD_OUT", "DEFAULT_WEIGHTS", "Z_MAX"]


if __name__ == "__main__":
    main()
