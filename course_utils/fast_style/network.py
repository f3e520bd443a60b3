"""The fast style network and its use: instance normalization (plain and conditional), the transformation
network, the shipped styles (`load_stylizer`, `stylize`). Training is in `training`; the package's
docstring says the method."""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..images import as_batch
from ..plots import grid

DATA = Path(__file__).resolve().parent.parent / "data" / "fast_style"
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
    x = as_batch(image, channels=3, shorter_side=size)
    with torch.no_grad():
        y = stylizer(x, style) if style is not None else stylizer(x)
    return (strength * y + (1 - strength) * x).clamp(0, 1)


def images_per_second(net, x, repeat=5):
    """How many forward passes of `net` on the batch x run per second (after one warm-up pass)."""
    with torch.no_grad():
        net(x)
        t0 = time.perf_counter()
        for _ in range(repeat):
            net(x)
    return repeat / (time.perf_counter() - t0)


def show_blends(net, image, styles=None, n=5, size=128):
    """Dumoulin et al.'s figure: `image` through a network of several styles, on an n x n grid whose corners
    are four styles (top-left, top-right, bottom-left, bottom-right) and whose other cells blend them
    bilinearly. Returns the Figure."""
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


__all__ = ["DATA", "instance_norm", "InstanceNorm", "conditional_instance_norm", "ConditionalInstanceNorm", "TransformerNet", "load_stylizer", "stylize", "pretrained_styles", "images_per_second", "show_blends", "TRAIN_PHOTOS", "HELD_OUT", "DEFAULT_WEIGHTS", "Z_MAX"]
