"""Training a fast style network: the content photos, the perceptual loss, the loop, saving, and the
command line (`python -m course_utils.fast_style train ...`)."""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from ..images import ImageLoadError, as_batch, load_image
from ..layers import capture, frozen
from ..optimize.objectives import tv_penalty
from ..optimize.transforms import gaussian_blur
from ..plots import grid
from ..seeding import forked, generator
from ..style import content_loss, loss_network, style_loss
from .network import DEFAULT_WEIGHTS, HELD_OUT, TRAIN_PHOTOS, Z_MAX, TransformerNet

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
        return load_image(img, shorter_side=size) if min(img.size) > size else img

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


def lattice(image, min_shift=4, max_shift=32, sigma=3.0):
    """How strongly a picture repeats itself on a regular grid: the autocorrelation of its high-passed
    luminance (minus a Gaussian blur of std `sigma`), at its largest for a shift of `min_shift`..`max_shift`
    pixels in any direction, relative to no shift. About 1 for a stripe or dot pattern of that period, near 0
    for noise; photos score 0.05-0.25 (windows and tiles repeat too), so compare an output with its photo.
    A network that stamps the same stroke at every step of its stride-4 grid raises it."""
    x = as_batch(image)
    y = (x[:, :3] * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    detail = (y - gaussian_blur(y, sigma))[0, 0]
    detail = detail - detail.mean()
    h, w = detail.shape
    power = torch.fft.rfft2(detail, s=(2 * h, 2 * w)).abs() ** 2  # zero-padded: no wrap-around
    auto = torch.fft.irfft2(power, s=(2 * h, 2 * w))
    if float(auto[0, 0]) <= 0:
        return 0.0
    dy, dx = torch.arange(2 * h), torch.arange(2 * w)
    shift = torch.maximum(torch.minimum(dy, 2 * h - dy)[:, None], torch.minimum(dx, 2 * w - dx)[None, :])
    return float(auto[(shift >= min_shift) & (shift <= max_shift)].max() / auto[0, 0])


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


# ---------------------------------------------------------------- the command line

def _preview(net, out, step, size):
    xs = [as_batch(p, size) for p in HELD_OUT]
    styles = net.styles or [None]
    with torch.no_grad():
        ys = [net(x, s) if s else net(x) for s in styles for x in xs]
    fig = grid(xs + ys, ncols=len(xs), titles=list(HELD_OUT) + [f"{s or 'step'} {step}" for s in styles for _ in xs])
    fig.savefig(out, dpi=72, bbox_inches="tight")
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
    fig = show_losses(history, title=f"{' + '.join(a.style)}: {a.steps} steps, {net.meta['seconds']:.0f} s")
    fig.savefig(f"{stem}_loss.png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), {stem}_loss.png and {stem}_preview.png "
          f"in {net.meta['seconds']:.0f} s")


__all__ = ["main", "ContentImages", "perceptual_terms", "perceptual_loss", "range_penalty", "saturation", "lattice", "train", "save_stylizer", "show_losses"]
