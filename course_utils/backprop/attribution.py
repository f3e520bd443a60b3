"""Which pixels does a decision depend on? Occlusion, gradient saliency, guided backprop, Grad-CAM.

Every function follows Captum's conventions: `f(model, x, target, ...)` takes a batch x of shape
(N, C, H, W) in [0, 1] (or anything `images.as_batch` takes) and returns a map shaped like the batch
(Grad-CAM: (N, 1, H, W)), and the result equals Captum's on the same settings (tests/test_attribution.py
checks it). `target` is a class index, an ImageNet class name, or one of them per image
(`labels.targets`). `attribute(model, x, target, method)` is the one entry point, as
`adversarial.attack` is for the attacks. `heatmap` turns a map into the (N, H, W) picture the papers show.

- occlusion: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.
- saliency: Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks", ICLR workshop 2014.
- smoothgrad: Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017.
- deconvnet, guided_backprop: Zeiler & Fergus 2014; Springenberg et al., "Striving for
  Simplicity: The All Convolutional Net", 2015 (the rules live in backprop_rules.py).
- grad_cam, guided_grad_cam: Selvaraju et al., "Grad-CAM", ICCV 2017.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..images import as_batch
from ..labels import class_scores, targets
from ..layers import capture
from ..seeding import generator
from .rules import backward_rule

# ---------------------------------------------------------------- targets and maps

def _select(out, targets):
    """out[i, targets[i]] for each i; a clear error when a target is not an output."""
    if out.dim() != 2:
        raise ValueError(f"the model must return scores of shape (N, classes), got {tuple(out.shape)}")
    if targets.min() < 0 or targets.max() >= out.shape[1]:
        raise ValueError(f"target {targets.max().item()} is not a class of this model "
                         f"(it has {out.shape[1]} outputs)")
    return out.gather(1, targets[:, None])[:, 0]


def heatmap(attribution, reduce="max_abs"):
    """A (N, H, W) map from an (N, C, H, W) attribution, one value per pixel.

    reduce: "max_abs" (Simonyan et al.: max over colour channels of |value|), "max", "sum",
    or "abs_sum". A (N, H, W) input is returned as it is.
    """
    a = attribution.detach()
    if a.dim() == 3:
        return a
    if a.dim() != 4:
        raise ValueError(f"expected an attribution of shape (N, C, H, W), got {tuple(a.shape)}")
    ops = {"max_abs": lambda t: t.abs().amax(1), "max": lambda t: t.amax(1),
           "sum": lambda t: t.sum(1), "abs_sum": lambda t: t.abs().sum(1)}
    if reduce not in ops:
        raise ValueError(f"reduce must be one of {list(ops)}, got {reduce!r}")
    return ops[reduce](a)


def stride_pattern(attribution, period=2):
    """(period, period): the mean of `heatmap(attribution)` at each (row mod period, column mod period).

    A strided convolution leaves a grid in gradient maps: with 3x3 windows at stride 2, a pixel in an even
    row and column lies in four windows, one in an odd row and column in one, so its gradient is a sum of
    more terms (the checkerboard of Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts",
    Distill 2016). A map without a grid gives a table of equal entries.
    """
    if not isinstance(period, int) or period < 1:
        raise ValueError(f"period must be a positive integer, got {period!r}")
    m = heatmap(attribution).float().mean(0)
    h, w = (m.shape[0] // period) * period, (m.shape[1] // period) * period
    if h == 0 or w == 0:
        raise ValueError(f"the map ({tuple(m.shape)}) is smaller than one period ({period})")
    return m[:h, :w].reshape(h // period, period, w // period, period).mean((0, 2))


# ---------------------------------------------------------------- gradients

def gradient(model, x, target, rule="gradient"):
    """d s_c / d x: the gradient of the target's class score (its logit) with respect to the
    pixels, with every ReLU of the model backpropagating by `rule` (see backprop_rules)."""
    x = as_batch(x, device=model)
    return _gradient(model, x, targets(target, len(x), x.device), rule)


def _gradient(model, x, classes, rule="gradient"):
    x = x.detach().requires_grad_(True)
    with backward_rule(model, rule):
        score = _select(model(x), classes).sum()  # the images are independent: one backward for all
        (grad,) = torch.autograd.grad(score, x)
    return grad


def saliency(model, x, target, abs=True):
    """Simonyan et al.'s saliency: |d s_c / d x|, the gradient of the class *score* (not the
    probability) for each pixel and channel. Same as captum.attr.Saliency."""
    grad = gradient(model, x, target)
    return grad.abs() if abs else grad


def smoothgrad(model, x, target, samples=25, stdev=0.15, abs=True, batch_size=25, seed=0):
    """SmoothGrad: the saliency averaged over `samples` copies of x with Gaussian noise added
    (standard deviation `stdev` in pixel units, 0.15 = 15% of the [0, 1] range, not clamped).

    Same as Captum's NoiseTunnel(Saliency) with nt_type="smoothgrad", nt_samples=samples,
    stdevs=stdev, nt_samples_batch_size=batch_size after torch.manual_seed(seed).
    """
    x = as_batch(x, device=model)
    classes = targets(target, len(x), x.device)
    gen = generator(seed)
    total, done = 0.0, 0
    while done < samples:
        k = min(batch_size, samples - done)
        noise = torch.normal(0.0, torch.full((len(x) * k, *x.shape[1:]), float(stdev)), generator=gen)
        noisy = x.repeat_interleave(k, dim=0) + noise.to(x.device)  # not clamped, as in Captum
        grads = _gradient(model, noisy, classes.repeat_interleave(k))
        grads = grads.abs() if abs else grads
        total = total + grads.view(len(x), k, *x.shape[1:]).sum(1)
        done += k
    return total / samples


def deconvnet(model, x, target):
    """Zeiler & Fergus's deconvnet: backprop where each ReLU passes only positive gradients,
    whatever its input was. Same as captum.attr.Deconvolution (for nn.ReLU models)."""
    return gradient(model, x, target, rule="deconvnet")


def guided_backprop(model, x, target):
    """Springenberg et al.'s guided backprop: each ReLU passes a gradient only where both its
    input and the gradient are positive. Same as captum.attr.GuidedBackprop (nn.ReLU models)."""
    return gradient(model, x, target, rule="guided")


def unit_gradient(model, x, layer, channel, position=None, rule="guided"):
    """The gradient of one activation of `layer` (channel `channel`, at `position` = (row, col))
    with respect to the pixels: the lecture's "set that unit's gradient to 1, all others to 0,
    and backprop to the image", under `rule`. position=None takes, for each image, the place
    where the channel responds most (as Zeiler & Fergus project the strongest activation).
    """
    x = as_batch(x, device=model).requires_grad_(True)
    with backward_rule(model, rule), capture(model, [layer], detach=False) as acts:
        model(x)
        a = acts[layer]
        if not 0 <= channel < a.shape[1]:
            raise ValueError(f"layer {layer!r} has {a.shape[1]} channels; channel {channel} does not exist")
        fmap = a[:, channel].reshape(len(x), -1)  # (N, positions)
        if position is None:
            where = fmap.argmax(dim=1)
        else:
            row, col = position
            if a.dim() != 4 or not (0 <= row < a.shape[2] and 0 <= col < a.shape[3]):
                raise ValueError(f"position {position} is outside the {tuple(a.shape[2:])} map of {layer!r}")
            where = torch.full((len(x),), row * a.shape[3] + col, device=x.device)
        unit = fmap.gather(1, where[:, None]).sum()
        (grad,) = torch.autograd.grad(unit, x)
    return grad


# ---------------------------------------------------------------- Grad-CAM

def grad_cam_from(activations, gradients):
    """Grad-CAM from a layer's activations A (N, K, h, w) and the gradients dS/dA of the class score:
    alpha_k = mean over positions of dS/dA^k; map = ReLU(sum_k alpha_k A^k), shape (N, 1, h, w)."""
    alpha = gradients.mean(dim=(2, 3), keepdim=True)
    return torch.relu((alpha * activations).sum(dim=1, keepdim=True))


def grad_cam(model, x, target, layer, upsample=True, mode="bilinear"):
    """Grad-CAM for `layer` (a name of model.named_modules(), e.g. "head.act").

    Returns (N, 1, H, W), upsampled to x's size with F.interpolate(mode) like Captum's
    LayerGradCam(relu_attributions=True) followed by LayerAttribution.interpolate; with
    upsample=False the (N, 1, h, w) map at the layer's own resolution.
    """
    x = as_batch(x, device=model).requires_grad_(True)  # so that the layer's output is in the graph
    with capture(model, [layer], detach=False) as acts:
        score = _select(model(x), targets(target, len(x), x.device)).sum()
    a = acts[layer]
    if not torch.is_tensor(a) or a.dim() != 4:
        raise ValueError(f"Grad-CAM needs a layer with a spatial (N, K, h, w) output; {layer!r} gives "
                         f"{tuple(a.shape) if torch.is_tensor(a) else type(a).__name__}")
    (g,) = torch.autograd.grad(score, a)
    cam = grad_cam_from(a.detach(), g)
    return F.interpolate(cam, size=x.shape[-2:], mode=mode) if upsample else cam


def guided_grad_cam(model, x, target, layer, mode="bilinear"):
    """Guided Grad-CAM: guided backprop (sharp, but not class-discriminative) times the upsampled
    Grad-CAM map (coarse, but class-discriminative). Shaped like x; same as Captum's
    GuidedGradCam with interpolate_mode=mode (for nn.ReLU models)."""
    return guided_backprop(model, x, target) * grad_cam(model, x, target, layer, mode=mode)


# ---------------------------------------------------------------- occlusion

def baseline_image(x, baseline=0.0):
    """What replaces hidden pixels, shaped like x: a number (0 black, 0.5 grey), "grey",
    "mean" (each image's mean colour), "blur" (a Gaussian-blurred copy), or a tensor."""
    if torch.is_tensor(baseline):
        return baseline.to(x.device, x.dtype).expand_as(x)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if baseline in ("grey", "gray"):
        return torch.full_like(x, 0.5)
    if baseline == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    if baseline == "blur":
        from torchvision.transforms.functional import gaussian_blur

        sigma = max(x.shape[-2:]) / 20
        k = min(2 * math.ceil(2 * sigma) + 1, 2 * (min(x.shape[-2:]) // 2) - 1)
        return gaussian_blur(x, kernel_size=max(k, 1), sigma=sigma)
    raise ValueError(f"baseline must be a number, 'grey', 'mean', 'blur' or a tensor, got {baseline!r}")


def occlusion_positions(size, window, stride):
    """Where the window's top-left corner goes along a side of `size` pixels: 0, s, 2s, ...,
    ceil((size - window) / stride) + 1 places; the last may stick out and is cut (as in Captum)."""
    if window > size:
        raise ValueError(f"the window ({window} px) is larger than the image ({size} px)")
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive pixel counts, got {window} and {stride}")
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


# Occluded copies per forward pass: about 200,000 pixels (4 images at 224 px), at most 32. Measured on 2 cores
# (Lite0, 224 px): 13 ms per image in batches of 4, 20 in 16, 28 in 32, since a small batch's activations stay
# in cache; for the 28 px digits 32 per pass ran fastest.
OCCLUSION_PIXELS_PER_PASS = 4 * 224 * 224


def occlusion_batch(x) -> int:
    """How many occluded copies of x (N, C, H, W) `occlusion` sends through the model at once by default."""
    return max(1, min(32, OCCLUSION_PIXELS_PER_PASS // (x.shape[-2] * x.shape[-1])))


def occlusion_drops(model, x, window, stride, baseline=0.0, score="probability", batch_size=None, progress=False):
    """Zeiler & Fergus's experiment for every class at once: (N, classes, rows, cols), entry
    [n, c, i, j] = score_c(x_n) - score_c(x_n with the window at position (i, j) hidden).

    All occluded copies go through the model in batches of `batch_size` (None: `occlusion_batch(x)`, what
    ran fastest); the cost is N * (1 + rows * cols) images through the model (rows, cols from
    occlusion_positions).
    """
    from tqdm.auto import tqdm

    x = as_batch(x, device=model)
    if x.dim() != 4:
        raise ValueError(f"occlusion hides square windows of images (N, C, H, W); this input has shape {tuple(x.shape)}")
    base = baseline_image(x, baseline)
    batch_size = batch_size or occlusion_batch(x)
    rows, cols = occlusion_positions(x.shape[2], window, stride), occlusion_positions(x.shape[3], window, stride)
    corners = [(r, c) for r in rows for c in cols]
    reference = class_scores(model, x, score)
    result = []
    for n in range(len(x)):
        drops = []
        for start in tqdm(range(0, len(corners), batch_size), desc="occlusion", disable=not progress, leave=False):
            chunk = corners[start:start + batch_size]
            mask = torch.zeros(len(chunk), 1, *x.shape[2:], device=x.device, dtype=x.dtype)
            for k, (r, c) in enumerate(chunk):
                mask[k, :, r:r + window, c:c + window] = 1
            hidden = x[n] * (1 - mask) + base[n] * mask
            drops.append(reference[n] - class_scores(model, hidden, score, batch_size))
        result.append(torch.cat(drops).T.reshape(-1, len(rows), len(cols)))
    return torch.stack(result)


def spread_windows(grid, size, window, stride):
    """Turn per-position values (N, K, rows, cols) into a pixel map (N, K, H, W): each pixel gets
    the mean over the windows that covered it (what Captum's Occlusion returns)."""
    H, W = size
    rows, cols = occlusion_positions(H, window, stride), occlusion_positions(W, window, stride)
    if stride > window:
        raise ValueError(f"with stride {stride} > window {window} some pixels are never hidden")
    total = grid.new_zeros(*grid.shape[:2], H, W)
    count = grid.new_zeros(H, W)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            total[..., r:r + window, c:c + window] += grid[..., i, j, None, None]
            count[r:r + window, c:c + window] += 1
    return total / count


def occlusion(model, x, target, window, stride, baseline=0.0, score="probability", batch_size=None, progress=False):
    """Occlusion map shaped like x: for each pixel, how much the target's score falls, on
    average, when a window x window square (all channels) around it is replaced by `baseline`.

    score="probability" (the default) measures the fall of the softmax probability, as Zeiler &
    Fergus do; score="logit" that of the class score. Same as Captum's Occlusion with
    sliding_window_shapes=(C, window, window), strides=(C, stride, stride) on softmax(model(x))
    (or on model(x) for logits).
    """
    x = as_batch(x, device=model)
    classes = targets(target, len(x), x.device)
    if stride > window:
        raise ValueError(f"with stride {stride} > window {window} some pixels are never hidden")
    baseline_image(x[:1], baseline)  # a bad baseline fails before the expensive part
    drops = occlusion_drops(model, x, window, stride, baseline, score, batch_size, progress)
    picked = drops[torch.arange(len(x)), classes][:, None]  # (N, 1, rows, cols)
    return spread_windows(picked, x.shape[2:], window, stride).expand_as(x).contiguous()


@dataclass
class ForwardCount:
    calls: int = 0
    images: int = 0


@contextlib.contextmanager
def count_forwards(model):
    """Count the forward calls of `model` and the images they carried (the hook goes on exit).

        with count_forwards(model) as n:
            occlusion(model, x, "tabby", 32, 8)
        n.images  # 626 for one 224 px image
    """
    count = ForwardCount()

    def hook(module, inputs):
        count.calls += 1
        count.images += len(inputs[0])

    handle = model.register_forward_pre_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


# ---------------------------------------------------------------- one entry point

METHODS = {"gradient": gradient, "saliency": saliency, "smoothgrad": smoothgrad, "deconvnet": deconvnet,
           "guided_backprop": guided_backprop, "grad_cam": grad_cam, "guided_grad_cam": guided_grad_cam,
           "occlusion": occlusion}


def attribute(model, x, target, method="saliency", **kwargs):
    """One entry point for every map: METHODS[method](model, x, target, **kwargs).

    method: "gradient" (signed), "saliency" (|gradient|), "smoothgrad", "deconvnet", "guided_backprop",
    "grad_cam" and "guided_grad_cam" (give layer=...), "occlusion" (give window=..., stride=...).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    return METHODS[method](model, x, target, **kwargs)
