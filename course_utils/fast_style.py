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
# optimization of one photo stays near 0.8); at 20 it keeps the photo and still takes the style.
DEFAULT_WEIGHTS = dict(content=1.0, style=20.0, tv=100.0)


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


def _norm(kind, channels):
    if kind == "instance":
        return InstanceNorm(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'instance' or 'batch', got {kind!r}")


# ---------------------------------------------------------------- the transformation network

class ConvLayer(nn.Sequential):
    """Reflection padding + convolution (+ normalization + ReLU): no zero borders in the output."""

    def __init__(self, cin, cout, kernel, stride=1, norm="instance", relu=True, upsample=1):
        layers = [nn.Upsample(scale_factor=upsample, mode="nearest")] if upsample > 1 else []
        layers += [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            layers.append(_norm(norm, cout))
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x) (He et al. 2016, as Johnson et al. use it)."""

    def __init__(self, channels, norm="instance"):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3, norm=norm),
                                  ConvLayer(channels, channels, 3, norm=norm, relu=False))

    def forward(self, x):
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network, from (N, 3, H, W) in [0, 1] to the same shape.

    width=32, blocks=5 is Johnson's (32-64-128 channels, 1.7M parameters, about 4 images/s at 256 px
    on 2 CPU cores); the shipped styles use width=16, blocks=3 (0.27M parameters, about 15 images/s).
    Any H, W works: the input is padded to a multiple of 4 (reflection) and the output cropped back.
    """

    def __init__(self, width=16, blocks=3, norm="instance"):
        super().__init__()
        self.config = dict(width=width, blocks=blocks, norm=norm)
        w = width
        self.down = nn.Sequential(ConvLayer(3, w, 9, norm=norm), ConvLayer(w, 2 * w, 3, 2, norm=norm),
                                  ConvLayer(2 * w, 4 * w, 3, 2, norm=norm))
        self.res = nn.Sequential(*[ResidualBlock(4 * w, norm) for _ in range(blocks)])
        self.up = nn.Sequential(ConvLayer(4 * w, 2 * w, 3, norm=norm, upsample=2),
                                ConvLayer(2 * w, w, 3, norm=norm, upsample=2),
                                ConvLayer(w, 3, 9, norm=None, relu=False))

    def forward(self, x):
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        # the network learns a change of the photo in logit space, y = sigmoid(logit(x) + g(x)): training
        # starts from the photo (like notebook 08's optimization, init="content"), and the output stays in
        # (0, 1) smoothly. (Clamping instead left regions stuck black, or saturated blobs with a
        # straight-through gradient.)
        logit = torch.logit(x.clamp(0.01, 0.99))
        return torch.sigmoid(logit + self.up(self.res(self.down(x))))[..., :h, :w]


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
    """An eval-mode TransformerNet from a shipped style name ("strokes") or a .pt file made by `train`.

    The file is read with torch.load(weights_only=True): it holds tensors and plain values only.
    """
    path = Path(name_or_path)
    if not path.suffix and (DATA / f"{name_or_path}.pt").exists():
        path = DATA / f"{name_or_path}.pt"
    if not path.exists():
        import difflib

        names = list(pretrained_styles())
        close = difflib.get_close_matches(str(name_or_path), names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise FileNotFoundError(f"no stylizer {str(name_or_path)!r}: not a shipped style and no such file.{hint} "
                                f"Shipped styles: {', '.join(names) or '(none)'}; train your own with "
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


def stylize(stylizer, image, size=None, strength=1.0):
    """Stylize an image (anything `as_batch` takes) in one forward pass; a (1, 3, H, W) tensor in [0, 1].

    size: shorter side in pixels, aspect kept (None keeps the image's size). strength in [0, 1] blends the
    original (0) and the stylized image (1). stylizer: a module or a name/path for `load_stylizer`.
    """
    if not isinstance(stylizer, nn.Module):
        stylizer = load_stylizer(stylizer)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    x = as_batch(shorter_side(load_image(image), size) if size else image, channels=3)
    with torch.no_grad():
        y = stylizer(x)
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

def perceptual_terms(out_features, content_features, style_grams, outputs, content_layer, weights=None):
    """The loss of one batch from its features: {"content", "style", "tv", "total"}, batch means.

    out_features: {layer: (N, C, H, W)} activations of the outputs f_W(x) at the style layers and the
    content layer; content_features: (N, C, H, W) activations of the photos x at the content layer;
    style_grams: {layer: (1, C, C)} of the style image; outputs: the (N, 3, H, W) images, for TV.
    Per image, the terms are notebook 08's: content ||F_c(y) - F_c(x)||^2 / ||F_c(x)||^2, style
    sum_l ||G_l(y) - G_l(s)||^2 / ||G_l(s)||^2 / |L|, and TV(y); each is averaged over the batch.
    """
    w = dict(DEFAULT_WEIGHTS, **(weights or {}))
    f, n = out_features[content_layer], outputs.shape[0]
    # notebook 08's losses are for one image; here each image of the batch is scored on its own, then averaged
    content = sum(content_loss(f[i:i + 1], content_features[i:i + 1]) for i in range(n)) / n
    style = sum(style_loss({l: out_features[l][i:i + 1] for l in style_grams}, style_grams) for i in range(n)) / n
    tv = tv_penalty(outputs)
    total = w["content"] * content + w["style"] * style + w["tv"] * tv
    return {"content": content, "style": style, "tv": tv, "total": total}


def perceptual_loss(net, outputs, contents, style_grams, weights=None):
    """Johnson et al.'s loss for a batch: {"content", "style", "tv", "total"} (see `perceptual_terms`).

    net: a LossNetwork (style.loss_network()); outputs: f_W(x), (N, 3, H, W); contents: the photos x;
    style_grams: net.grams(style_image); weights: {"content", "style", "tv"} (DEFAULT_WEIGHTS).
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
    """Train a TransformerNet for one style image; returns it in eval mode (with .meta: losses, settings).

    lossnet: the loss network (a LossNetwork or a model name, `style.loss_network`).
    style: anything `as_batch` takes (a bundled name, a generated painting such as "strokes", a path).
    history: a list that receives one {"step", "content", "style", "tv", "total"} per step.
    callback(step, net, losses) runs every `callback_every` steps (and after the last), e.g. previews.
    net: continue training this network instead of a new one.
    """
    from tqdm.auto import tqdm

    lossnet = loss_network(lossnet)
    with forked(seed):  # the layers' default initialization draws from torch's global generator
        stylizer = net if net is not None else TransformerNet(width, blocks, norm)
    style_grams = lossnet.grams(as_batch(style, style_size or size))
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
            losses = perceptual_loss(lossnet, stylizer(x), x, style_grams, weights)
            opt.zero_grad()
            losses["total"].backward()
            opt.step()
            if not math.isfinite(losses["total"].item()):
                raise RuntimeError(f"the loss became {losses['total'].item()} at step {step}: lower the learning "
                                   f"rate (lr={lr})")
            row = {"step": step, **{k: round(float(v.detach()), 5) for k, v in losses.items()}}
            history.append(row)
            bar.set_postfix(loss=f"{row['total']:.3f}")
            if callback is not None and (step % callback_every == 0 or step == steps):
                stylizer.eval()
                callback(step, stylizer, row)
                stylizer.train()
    stylizer.eval()
    stylizer.meta = dict(style=style if isinstance(style, str) else "(image)", steps=steps, size=size, batch=batch,
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
    for key in ("total", "content", "style", "tv"):
        v = np.array([h[key] for h in history])
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


# ---------------------------------------------------------------- the command line

def _preview(net, out, step, size):
    from .plots import grid

    xs = [as_batch(p, size) for p in HELD_OUT]
    with torch.no_grad():
        ys = [net(x) for x in xs]
    fig = grid(xs + ys, ncols=len(xs), titles=list(HELD_OUT) + [f"step {step}"] * len(xs))
    fig.savefig(out, dpi=72, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course_utils.fast_style",
                                     description="Train a fast style network (Johnson et al. 2016).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a stylizer for one style image")
    t.add_argument("--style", required=True, help="style image: a generated painting (strokes, embers, kandinsky, "
                   "mondrian), a bundled name or a path")
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
    t.add_argument("--style-size", type=int, default=None, help="size the style image is read at (default --size)")
    t.add_argument("--images", default=None, help="a folder of your own content photos, added to the bundled ones")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--preview-every", type=int, default=100, help="write a preview PNG every N steps (0: never)")
    t.add_argument("--description", default="")
    a = parser.parse_args(argv)

    out = Path(a.out)
    stem = out.with_suffix("")
    history = []

    def cb(step, net, row):
        if a.preview_every:
            _preview(net, f"{stem}_preview.png", step, 160)

    try:
        net = train(loss_network(), a.style, steps=a.steps, size=a.size, batch=a.batch, width=a.width, blocks=a.blocks, norm=a.norm, lr=a.lr,
                    weights=dict(content=a.content_weight, style=a.style_weight, tv=a.tv_weight),
                    style_size=a.style_size, folder=a.images, seed=a.seed, history=history, callback=cb,
                    callback_every=a.preview_every or a.steps)
    except (ImageLoadError, ValueError) as e:
        parser.error(str(e))
    command = "python -m course_utils.fast_style " + " ".join(shlex.quote(s) for s in (argv or sys.argv[1:]))
    save_stylizer(net, out, history, a.description, command)
    import matplotlib.pyplot as plt

    fig = show_losses(history, title=f"{a.style}: {a.steps} steps, {net.meta['seconds']:.0f} s")
    fig.savefig(f"{stem}_loss.png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), {stem}_loss.png and {stem}_preview.png "
          f"in {net.meta['seconds']:.0f} s")


__all__ = ["instance_norm", "InstanceNorm", "TransformerNet", "ContentImages", "perceptual_terms",
           "perceptual_loss", "train", "save_stylizer", "load_stylizer", "stylize", "pretrained_styles",
           "images_per_second", "show_losses", "TRAIN_PHOTOS", "HELD_OUT", "DEFAULT_WEIGHTS"]


if __name__ == "__main__":
    main()
