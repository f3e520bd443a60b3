"""What students write: for every graded exercise, one right answer and the typical mistakes.

Each is written from the method the notebook teaches (the formula, the paper), as a student would
write it in the notebook, not by editing the reference. `test_mistakes.py` proves that every right
answer passes and every mistake fails, both in the notebook's `check` and in the instructor's grader.
A mistake that passes means the check must get a case that catches it.

RIGHT[id] is a right answer; MISTAKES[id] is a list of (what the student got wrong, function).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import course_utils as cu
from course_utils import style as st
from course_utils.fast_style import DEFAULT_WEIGHTS
from course_utils.optimize.transforms import gaussian_blur

RIGHT, MISTAKES = {}, {}


def right(ex_id):
    def add(fn):
        RIGHT[ex_id] = fn
        return fn
    return add


def mistake(ex_id, what):
    def add(fn):
        MISTAKES.setdefault(ex_id, []).append((what, fn))
        return fn
    return add


# ---------------------------------------------------------------- 00: top-k of a softmax

def _checked_k(logits, k):
    if k > logits.shape[-1]:
        raise ValueError(f"k={k} > {logits.shape[-1]} classes")


@right("00.top_k")
def top_k(logits, k=5):
    _checked_k(logits, k)
    z = logits - logits.max()
    p = z.exp() / z.exp().sum()
    order = torch.argsort(p, descending=True)[:k]
    return p[order], order


@mistake("00.top_k", "returns the logits, not probabilities")
def _(logits, k=5):
    _checked_k(logits, k)
    return torch.topk(logits, k)


@mistake("00.top_k", "exp without subtracting the maximum: exp(1000) overflows")
def _(logits, k=5):
    _checked_k(logits, k)
    p = logits.exp() / logits.exp().sum()
    return torch.topk(p, k)


@mistake("00.top_k", "the k least likely classes (ascending order)")
def _(logits, k=5):
    _checked_k(logits, k)
    return torch.topk(torch.softmax(logits, -1), k, largest=False)


@mistake("00.top_k", "probabilities not normalized (exp only)")
def _(logits, k=5):
    _checked_k(logits, k)
    return torch.topk((logits - logits.max()).exp(), k)


# ---------------------------------------------------------------- 01: filters as pictures, dead units

@right("01.normalize_filters")
def normalize_filters(weights):
    out = torch.empty_like(weights)
    for i, f in enumerate(weights):
        lo, hi = f.min(), f.max()
        out[i] = 0.5 if hi == lo else (f - lo) / (hi - lo)
    return out


@mistake("01.normalize_filters", "one min and max for the whole bank, not per filter")
def _(weights):
    lo, hi = weights.min(), weights.max()
    return (weights - lo) / (hi - lo)


@mistake("01.normalize_filters", "a constant filter divides by zero (NaN)")
def _(weights):
    flat = weights.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo)).view_as(weights)


@mistake("01.normalize_filters", "each input channel of a filter scaled on its own")
def _(weights):
    flat = weights.flatten(2)
    lo, hi = flat.min(2, keepdim=True).values, flat.max(2, keepdim=True).values
    span = hi - lo
    return torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, 1.0), 0.5).view_as(weights)


@mistake("01.normalize_filters", "divided by the largest |weight| (range [-1, 1])")
def _(weights):
    m = weights.flatten(1).abs().max(1).values.view(-1, 1, 1, 1)
    return weights / m


@right("01.dead_fraction")
def dead_fraction(activations):
    units = activations.shape[1]
    dead = sum(1 for c in range(units) if not (activations[:, c] > 0).any())
    return dead / units


@mistake("01.dead_fraction", "the fraction of zero values, not of units")
def _(activations):
    return float((activations <= 0).float().mean())


@mistake("01.dead_fraction", "the batch dimension taken as the units")
def _(activations):
    alive = (activations.flatten(1) > 0).any(1)
    return 1.0 - float(alive.float().mean())


@mistake("01.dead_fraction", "a unit whose mean activation is tiny counted as dead")
def _(activations):
    mean = activations.transpose(0, 1).flatten(1).mean(1)
    return float((mean < 1e-3).float().mean())


@mistake("01.dead_fraction", "the number of dead units, not the fraction")
def _(activations):
    alive = (activations.transpose(0, 1).flatten(1) > 0).any(1)
    return float((~alive).sum())


# ---------------------------------------------------------------- 02: receptive fields, cosine neighbours

@right("02.rf_size_stride")
def rf_size_stride(layers):
    size, jump = 1, 1
    for kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
    return size, jump


@mistake("02.rf_size_stride", "each kernel adds kernel - 1, whatever the strides before it")
def _(layers):
    return 1 + sum(k - 1 for k, _ in layers), int(np.prod([s for _, s in layers]))


@mistake("02.rf_size_stride", "the jump updated before the size (a layer's own stride counted)")
def _(layers):
    size, jump = 1, 1
    for kernel, stride in layers:
        jump *= stride
        size += (kernel - 1) * jump
    return size, jump


@mistake("02.rf_size_stride", "strides added instead of multiplied")
def _(layers):
    size, jump = 1, 1
    for kernel, stride in layers:
        size += (kernel - 1) * jump
        jump += stride - 1
    return size, jump


def _checked_bank(bank, k):
    if not 1 <= k <= bank.shape[0]:
        raise ValueError(f"k must be between 1 and {bank.shape[0]}")


@right("02.cosine_neighbours")
def cosine_neighbours(query, bank, k=5):
    _checked_bank(bank, k)
    sims = torch.stack([torch.dot(b, query) / (b.norm() * query.norm()) for b in bank])
    return torch.topk(sims, k)


@mistake("02.cosine_neighbours", "dot products, not normalized by the lengths")
def _(query, bank, k=5):
    _checked_bank(bank, k)
    return torch.topk(bank @ query, k)


@mistake("02.cosine_neighbours", "the bank normalized, the query not")
def _(query, bank, k=5):
    _checked_bank(bank, k)
    return torch.topk(bank @ query / bank.norm(dim=1), k)


@mistake("02.cosine_neighbours", "the least similar vectors")
def _(query, bank, k=5):
    _checked_bank(bank, k)
    return torch.topk(F.cosine_similarity(bank, query[None]), k, largest=False)


@mistake("02.cosine_neighbours", "nearest by Euclidean distance")
def _(query, bank, k=5):
    _checked_bank(bank, k)
    d = (bank - query).norm(dim=1)
    order = d.argsort()[:k]
    return F.cosine_similarity(bank[order], query[None]), order


# ---------------------------------------------------------------- 03: saliency and occlusion

@right("03.saliency_map")
def saliency_map(model, x, target):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x)[0, cu.class_index(target)], x)
    return g[0].abs().max(dim=0).values


@mistake("03.saliency_map", "no absolute value: the largest signed derivative")
def _(model, x, target):
    x = x.clone().requires_grad_(True)
    model(x)[0, cu.class_index(target)].backward()
    return x.grad[0].max(dim=0).values


@mistake("03.saliency_map", "the mean over colours, not the max")
def _(model, x, target):
    x = x.clone().requires_grad_(True)
    model(x)[0, cu.class_index(target)].backward()
    return x.grad[0].abs().mean(dim=0)


@mistake("03.saliency_map", "the gradient of the probability, not of the score")
def _(model, x, target):
    x = x.clone().requires_grad_(True)
    torch.softmax(model(x), 1)[0, cu.class_index(target)].backward()
    return x.grad[0].abs().amax(dim=0)


def _occlusion(model, x, target, window, stride, baseline, last=1, scores=lambda s: torch.softmax(s, 1), sign=1):
    c = cu.class_index(target)
    h, w = x.shape[-2:]
    rows, cols = range(0, h - window + last, stride), range(0, w - window + last, stride)
    with torch.no_grad():
        p = scores(model(x))[0, c]
        out = torch.zeros(len(rows), len(cols))
        for i, r in enumerate(rows):
            for j, q in enumerate(cols):
                hidden = x.clone()
                hidden[..., r:r + window, q:q + window] = baseline
                out[i, j] = sign * (p - scores(model(hidden))[0, c])
    return out


@right("03.occlusion_map")
def occlusion_map(model, x, target, window, stride, baseline=0.5):
    return _occlusion(model, x, target, window, stride, baseline)


@mistake("03.occlusion_map", "off by one: the last window position is missed")
def _(model, x, target, window, stride, baseline=0.5):
    return _occlusion(model, x, target, window, stride, baseline, last=0)


@mistake("03.occlusion_map", "the fall of the logit, not of the probability")
def _(model, x, target, window, stride, baseline=0.5):
    return _occlusion(model, x, target, window, stride, baseline, scores=lambda s: s)


@mistake("03.occlusion_map", "sign flipped: occluded minus original")
def _(model, x, target, window, stride, baseline=0.5):
    return _occlusion(model, x, target, window, stride, baseline, sign=-1)


@mistake("03.occlusion_map", "the baseline ignored (always black)")
def _(model, x, target, window, stride, baseline=0.5):
    return _occlusion(model, x, target, window, stride, 0.0)


# ---------------------------------------------------------------- 04: guided ReLU, Grad-CAM, deconvnet

@right("04.guided_relu_backward")
def guided_relu_backward(x, grad_output):
    return torch.where((x > 0) & (grad_output > 0), grad_output, torch.zeros_like(grad_output))


@mistake("04.guided_relu_backward", "plain backprop: the input mask only")
def _(x, grad_output):
    return grad_output * (x > 0)


@mistake("04.guided_relu_backward", "the deconvnet rule: the gradient's sign only")
def _(x, grad_output):
    return grad_output.clamp(min=0)


@mistake("04.guided_relu_backward", "x >= 0: a unit at exactly 0 lets the gradient through")
def _(x, grad_output):
    return grad_output * (x >= 0) * (grad_output > 0)


@mistake("04.guided_relu_backward", "|gradient| passed where x > 0 (its sign dropped)")
def _(x, grad_output):
    return grad_output.abs() * (x > 0)


@right("04.grad_cam_from")
def grad_cam_map(activations, gradients):
    n, k, h, w = activations.shape
    alpha = gradients.sum(dim=(2, 3)) / (h * w)
    cam = torch.einsum("nk,nkhw->nhw", alpha, activations)
    return cam.clamp(min=0).unsqueeze(1)


@mistake("04.grad_cam_from", "no ReLU: negative evidence kept")
def _(activations, gradients):
    return (gradients.mean(dim=(2, 3), keepdim=True) * activations).sum(1, keepdim=True)


@mistake("04.grad_cam_from", "weights summed over positions, not averaged")
def _(activations, gradients):
    return torch.relu((gradients.sum(dim=(2, 3), keepdim=True) * activations).sum(1, keepdim=True))


@mistake("04.grad_cam_from", "gradient times activation at each position (no pooled weights)")
def _(activations, gradients):
    return torch.relu((gradients * activations).sum(1, keepdim=True))


@mistake("04.grad_cam_from", "ReLU on each channel before the sum")
def _(activations, gradients):
    return torch.relu(gradients.mean(dim=(2, 3), keepdim=True) * activations).sum(1, keepdim=True)


def _zf(model, x, layer, channel, switches=True, rectify=True, strongest=True):
    """Zeiler & Fergus's projection with knobs for the mistakes: go up recording what each layer did, keep the
    channel's strongest unit per image, then come down through rectification, unpooling and transposed filters."""
    with torch.no_grad():
        way = []
        for name, m in model.named_children():
            if isinstance(m, nn.MaxPool2d):
                out, idx = F.max_pool2d(x, m.kernel_size, m.stride, return_indices=True)
            else:
                out, idx = m(x), None
            way.append((m, x.shape, idx))
            x = out
            if name == layer:
                break
        r = torch.zeros_like(x)
        a = x[:, channel].flatten(1)
        if strongest:
            best = a.argmax(1)
            r[:, channel].view(len(x), -1)[torch.arange(len(x)), best] = a[torch.arange(len(x)), best]
        else:
            r[:, channel] = x[:, channel]
        for m, shape, idx in reversed(way):
            if isinstance(m, nn.MaxPool2d):
                r = (F.max_unpool2d(r, idx, m.kernel_size, m.stride, output_size=shape[-2:]) if switches
                     else F.interpolate(r, size=shape[-2:], mode="nearest") / (m.kernel_size ** 2 if isinstance(m.kernel_size, int) else 1))
            elif isinstance(m, nn.ReLU):
                r = r.clamp(min=0) if rectify else r
            else:
                r = F.conv_transpose2d(r, m.weight, stride=m.stride, padding=m.padding)
    return r


@right("04.zf_projection")
def zf_projection(model, x, layer, channel):
    return _zf(model, x, layer, channel)


@mistake("04.zf_projection", "unpooling without switches (each value spread over its window)")
def _(model, x, layer, channel):
    return _zf(model, x, layer, channel, switches=False)


@mistake("04.zf_projection", "no rectification on the way down")
def _(model, x, layer, channel):
    return _zf(model, x, layer, channel, rectify=False)


@mistake("04.zf_projection", "the whole feature map projected, not its strongest unit")
def _(model, x, layer, channel):
    return _zf(model, x, layer, channel, strongest=False)


# ---------------------------------------------------------------- 05: gradient ascent

def _ascent(model, x, target, lr, l2_weight, sign=1.0, penalty=lambda x: (x - 0.5).pow(2).mean(), clamp=True,
            score=lambda s: s):
    x = x.detach().clone().requires_grad_(True)
    objective = score(model(x))[0, cu.class_index(target)] - l2_weight * penalty(x)
    (g,) = torch.autograd.grad(objective, x)
    x = x.detach() + sign * lr * g
    return x.clamp(0, 1) if clamp else x


@right("05.ascent_step")
def ascent_step(model, x, target, lr=0.1, l2_weight=1.0):
    return _ascent(model, x, target, lr, l2_weight)


@mistake("05.ascent_step", "a descent step (sign flipped)")
def _(model, x, target, lr=0.1, l2_weight=1.0):
    return _ascent(model, x, target, lr, l2_weight, sign=-1.0)


@mistake("05.ascent_step", "not clamped to [0, 1]")
def _(model, x, target, lr=0.1, l2_weight=1.0):
    return _ascent(model, x, target, lr, l2_weight, clamp=False)


@mistake("05.ascent_step", "the penalty pulls towards black: mean(x^2)")
def _(model, x, target, lr=0.1, l2_weight=1.0):
    return _ascent(model, x, target, lr, l2_weight, penalty=lambda x: x.pow(2).mean())


@mistake("05.ascent_step", "a sum where the formula has a mean")
def _(model, x, target, lr=0.1, l2_weight=1.0):
    return _ascent(model, x, target, lr, l2_weight, penalty=lambda x: (x - 0.5).pow(2).sum())


@mistake("05.ascent_step", "the probability raised, not the score")
def _(model, x, target, lr=0.1, l2_weight=1.0):
    return _ascent(model, x, target, lr, l2_weight, score=lambda s: torch.softmax(s, 1))


@right("05.clip_small_pixels")
def clip_small_pixels(x, percentile):
    norm = (x - 0.5).pow(2).sum(1, keepdim=True).sqrt()
    t = torch.quantile(norm.flatten(), percentile / 100)
    return torch.where(norm < t, 0.5, x)


@mistake("05.clip_small_pixels", "each colour value judged on its own, not the pixel's norm")
def _(x, percentile):
    d = (x - 0.5).abs()
    return torch.where(d < torch.quantile(d.flatten(), percentile / 100), 0.5, x)


@mistake("05.clip_small_pixels", "the norm of x, not of x - 1/2")
def _(x, percentile):
    norm = x.norm(dim=1, keepdim=True)
    return torch.where(norm < torch.quantile(norm.flatten(), percentile / 100), 0.5, x)


@mistake("05.clip_small_pixels", "small pixels set to black, not to grey")
def _(x, percentile):
    norm = (x - 0.5).norm(dim=1, keepdim=True)
    return torch.where(norm < torch.quantile(norm.flatten(), percentile / 100), 0.0, x)


@mistake("05.clip_small_pixels", "<= the threshold: the pixel at the percentile is clipped too")
def _(x, percentile):
    norm = (x - 0.5).norm(dim=1, keepdim=True)
    return torch.where(norm <= torch.quantile(norm.flatten(), percentile / 100), 0.5, x)


def _grams(acts, normalize=True):
    f = acts.flatten(2)
    g = f @ f.transpose(1, 2)
    return g / g.flatten(1).norm(dim=1).view(-1, 1, 1) if normalize else g


@right("05.diversity")
def gram_similarity(acts):
    n = acts.shape[0]
    g = _grams(acts).flatten(1)
    total = sum(float(g[i] @ g[j]) for i in range(n) for j in range(n) if i != j)
    return total / n


@mistake("05.diversity", "Gram matrices not normalized")
def _(acts):
    g = _grams(acts, normalize=False).flatten(1)
    pairs = g @ g.T
    return float((pairs.sum() - pairs.diagonal().sum()) / acts.shape[0])


@mistake("05.diversity", "each image's likeness with itself included")
def _(acts):
    g = _grams(acts).flatten(1)
    return float((g @ g.T).sum() / acts.shape[0])


@mistake("05.diversity", "divided by the number of ordered pairs N(N - 1), not by N")
def _(acts):
    n = acts.shape[0]
    g = _grams(acts).flatten(1)
    pairs = g @ g.T
    return float((pairs.sum() - pairs.diagonal().sum()) / max(1, n * (n - 1)))


def _visualize(model, target, size, steps, lr, l2_weight, blur_every, blur_sigma, seed, sign=1.0, clamp=True):
    x = cu.noise_image(size, seed).requires_grad_(True)
    c = cu.class_index(target)
    opt = torch.optim.Adam([x], lr=lr)
    for step in range(1, steps + 1):
        opt.zero_grad()
        objective = model(x)[0, c] - l2_weight * (x - 0.5).pow(2).mean()
        (-sign * objective).backward()
        opt.step()
        with torch.no_grad():
            if blur_every and step % blur_every == 0:
                x.copy_(gaussian_blur(x, blur_sigma))
            if clamp:
                x.clamp_(0, 1)
    return x.detach()


@right("05.class_visualization")
def visualize_class(model, target, size=32, steps=40, lr=0.05, l2_weight=1.0, blur_every=4, blur_sigma=0.5, seed=0):
    # Adam told to maximize, the blur as a convolution of its own: the same method, written another way
    x = cu.noise_image(size, seed).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr, maximize=True)
    for step in range(steps):
        opt.zero_grad()
        (model(x)[0, cu.class_index(target)] - l2_weight * ((x - 0.5) ** 2).mean()).backward()
        opt.step()
        with torch.no_grad():
            if blur_every and (step + 1) % blur_every == 0:
                x.copy_(_blur(x, blur_sigma))
            x.clamp_(0, 1)
    return x.detach()


def _blur(x, sigma):
    """A Gaussian blur as a depthwise convolution with reflected borders."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


@mistake("05.class_visualization", "one step only")
def _(model, target, size=32, steps=40, lr=0.05, l2_weight=1.0, blur_every=4, blur_sigma=0.5, seed=0):
    return _visualize(model, target, size, 1, lr, l2_weight, blur_every, blur_sigma, seed)


@mistake("05.class_visualization", "the objective lowered, not raised")
def _(model, target, size=32, steps=40, lr=0.05, l2_weight=1.0, blur_every=4, blur_sigma=0.5, seed=0):
    return _visualize(model, target, size, steps, lr, l2_weight, blur_every, blur_sigma, seed, sign=-1.0)


@mistake("05.class_visualization", "pixels never clamped to [0, 1]")
def _(model, target, size=32, steps=40, lr=0.05, l2_weight=1.0, blur_every=4, blur_sigma=0.5, seed=0):
    return _visualize(model, target, size, steps, lr, l2_weight, blur_every, blur_sigma, seed, clamp=False)


# ---------------------------------------------------------------- 06: inversion

def _tv(x, beta, each=False, reduce=torch.mean):
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    if each:
        return reduce(dx.abs().pow(beta) + dy.abs().pow(beta))
    return reduce((dx * dx + dy * dy).pow(beta / 2))


@right("06.tv_penalty")
def tv_penalty(x, beta=2.0):
    return _tv(x, beta)


@mistake("06.tv_penalty", "a sum where the formula has a mean")
def _(x, beta=2.0):
    return _tv(x, beta, reduce=torch.sum)


@mistake("06.tv_penalty", "beta applied to each difference: |dx|^beta + |dy|^beta")
def _(x, beta=2.0):
    return _tv(x, beta, each=True)


@mistake("06.tv_penalty", "the image wraps around (torch.roll)")
def _(x, beta=2.0):
    dx, dy = torch.roll(x, -1, -1) - x, torch.roll(x, -1, -2) - x
    return (dx * dx + dy * dy).pow(beta / 2).mean()


@mistake("06.tv_penalty", "horizontal and vertical differences averaged separately")
def _(x, beta=2.0):
    dx, dy = x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
    return dx.abs().pow(beta).mean() + dy.abs().pow(beta).mean()


def _code(model, x, layer):
    with torch.no_grad(), cu.capture(model, [layer]) as acts:
        model(x)
    return acts[layer]


@right("06.inversion_loss")
def inversion_loss(model, x, layer, target):
    phi = _code(model, x, layer)
    return float(((phi - target) ** 2).sum() / (target ** 2).sum())


@mistake("06.inversion_loss", "not divided by ||target||^2")
def _(model, x, layer, target):
    return float((_code(model, x, layer) - target).pow(2).sum())


@mistake("06.inversion_loss", "a mean squared error")
def _(model, x, layer, target):
    return float(F.mse_loss(_code(model, x, layer), target))


@mistake("06.inversion_loss", "norms, not squared norms")
def _(model, x, layer, target):
    return float((_code(model, x, layer) - target).norm() / target.norm())


def _tv_grad(x, factor=2.0, count=None, wrap=False, sign=1.0):
    """dR_TV/dx for beta = 2, worked out by hand: pixel (i, j) enters d_x(i, j) and d_y(i, j) with a minus sign
    and d_x(i, j-1), d_y(i-1, j) with a plus sign, wherever those differences exist."""
    n, c, h, w = x.shape
    if wrap:
        dx, dy = torch.roll(x, -1, -1) - x, torch.roll(x, -1, -2) - x
        g = -dx - dy + torch.roll(dx, 1, -1) + torch.roll(dy, 1, -2)
        return sign * factor * g / (count or x.numel())
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    g = torch.zeros_like(x)
    g[..., :-1, :-1] -= dx + dy
    g[..., :-1, 1:] += dx
    g[..., 1:, :-1] += dy
    return sign * factor * g / (count or n * c * (h - 1) * (w - 1))


@right("06.tv_gradient")
def tv_gradient(x):
    return _tv_grad(x)


@mistake("06.tv_gradient", "the 2 of the square forgotten")
def _(x):
    return _tv_grad(x, factor=1.0)


@mistake("06.tv_gradient", "divided by the number of values N*C*H*W, not N*C*(H-1)*(W-1)")
def _(x):
    return _tv_grad(x, count=x.numel())


@mistake("06.tv_gradient", "four neighbours everywhere: the image wraps around")
def _(x):
    return _tv_grad(x, wrap=True, count=x.shape[0] * x.shape[1] * (x.shape[2] - 1) * (x.shape[3] - 1))


@mistake("06.tv_gradient", "the sign turned: the direction that raises the variation")
def _(x):
    return _tv_grad(x, sign=-1.0)


# ---------------------------------------------------------------- 07: DeepDream

def _dream(model, x, layer, lr, objective=lambda a: 0.5 * a.pow(2).mean(), scale=lambda g: g.abs().mean(), sign=1.0,
           clamp=True):
    x = x.clone().requires_grad_(True)
    with cu.capture(model, [layer], detach=False) as acts:
        model(x)
    (g,) = torch.autograd.grad(objective(acts[layer]), x)
    out = x.detach() + sign * lr * g / scale(g)
    return out.clamp(0, 1) if clamp else out


@right("07.dream_step")
def dream_step(model, x, layer, lr=0.02):
    return _dream(model, x, layer, lr)


@mistake("07.dream_step", "the gradient not normalized")
def _(model, x, layer, lr=0.02):
    return _dream(model, x, layer, lr, scale=lambda g: 1.0)


@mistake("07.dream_step", "normalized by the largest |gradient|, not the mean")
def _(model, x, layer, lr=0.02):
    return _dream(model, x, layer, lr, scale=lambda g: g.abs().max())


@mistake("07.dream_step", "the mean activation raised, not its square")
def _(model, x, layer, lr=0.02):
    return _dream(model, x, layer, lr, objective=lambda a: a.mean())


@mistake("07.dream_step", "not clamped to [0, 1]")
def _(model, x, layer, lr=0.02):
    return _dream(model, x, layer, lr, clamp=False)


def _resize(x, hw):
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False)


def _octaves(x, dream_fn, octaves, octave_scale, keep_detail=True, order=1, offset=0):
    h, w = x.shape[-2:]
    sizes = [(max(1, round(h / octave_scale ** (octaves - 1 - k + offset))),
              max(1, round(w / octave_scale ** (octaves - 1 - k + offset)))) for k in range(octaves)][::order]
    detail = torch.zeros_like(x)
    for hw in sizes:
        base = _resize(x, hw)
        detail = _resize(detail, hw) if keep_detail else torch.zeros_like(base)
        out = dream_fn((base + detail).clamp(0, 1))
        detail = out - base
    return out


@right("07.octave_pyramid")
def octave_pyramid(x, dream_fn, octaves=3, octave_scale=1.4):
    return _octaves(x, dream_fn, octaves, octave_scale)


@mistake("07.octave_pyramid", "the detail of the smaller octaves is thrown away")
def _(x, dream_fn, octaves=3, octave_scale=1.4):
    return _octaves(x, dream_fn, octaves, octave_scale, keep_detail=False)


@mistake("07.octave_pyramid", "octaves from large to small")
def _(x, dream_fn, octaves=3, octave_scale=1.4):
    return _octaves(x, dream_fn, octaves, octave_scale, order=-1)


@mistake("07.octave_pyramid", "off by one: the last octave is not the full size")
def _(x, dream_fn, octaves=3, octave_scale=1.4):
    return _octaves(x, dream_fn, octaves, octave_scale, offset=1)


# ---------------------------------------------------------------- 08: Gram matrices, style loss, texture

@right("08.gram_matrix")
def gram_matrix(features, normalize=True):
    *lead, c, h, w = features.shape
    f = features.reshape(*lead, c, h * w)
    g = torch.einsum("...ik,...jk->...ij", f, f)
    return g / (h * w) if normalize else g


@mistake("08.gram_matrix", "not divided by H*W")
def _(features, normalize=True):
    f = features.flatten(-2)
    return f @ f.transpose(-1, -2)


@mistake("08.gram_matrix", "divided by C*H*W")
def _(features, normalize=True):
    f = features.flatten(-2)
    g = f @ f.transpose(-1, -2)
    return g / (f.shape[-1] * f.shape[-2]) if normalize else g


@mistake("08.gram_matrix", "the batch folded into the channels")
def _(features, normalize=True):
    f = features.reshape(-1, features.shape[-2] * features.shape[-1]) if features.dim() == 4 else features.flatten(-2)
    g = f @ f.T
    return g / f.shape[-1] if normalize else g


def _style(features, target_grams, weights=None, normalized=True, mean=True):
    layers = list(target_grams)
    weights = weights or {l: (1 / len(layers) if mean else 1.0) for l in layers}
    total = 0.0
    for l in layers:
        diff = (st.gram_matrix(features[l]) - target_grams[l]).pow(2).sum()
        total = total + weights[l] * (diff / target_grams[l].pow(2).sum() if normalized else diff)
    return float(total)


@right("08.style_loss")
def style_loss(features, target_grams, weights=None):
    return _style(features, target_grams, weights)


@mistake("08.style_loss", "each layer's term not divided by ||G_target||^2")
def _(features, target_grams, weights=None):
    return _style(features, target_grams, weights, normalized=False)


@mistake("08.style_loss", "the layers summed, not averaged")
def _(features, target_grams, weights=None):
    return _style(features, target_grams, weights, mean=False)


@mistake("08.style_loss", "a mean of squared differences per layer")
def _(features, target_grams, weights=None):
    layers = list(target_grams)
    weights = weights or {l: 1 / len(layers) for l in layers}
    return float(sum(weights[l] * F.mse_loss(st.gram_matrix(features[l]), target_grams[l]) for l in layers))


def _mean_std(features, style_features, spread=lambda v: v.sqrt(), hw_minus_1=False, square=False, over=-1):
    total = 0.0
    for layer, style in style_features.items():
        terms = []
        for f in (features[layer], style):
            f = f[0].reshape(f.shape[1], -1)
            if over == 0:
                f = f.T  # one "channel" per position: the statistics over the channels
            mean = f.sum(1) / f.shape[1]
            var = ((f - mean[:, None]) ** 2).sum(1) / (f.shape[1] - (1 if hw_minus_1 else 0))
            terms.append((mean, spread(var)))
        for a, b in zip(*terms):
            d = ((a - b) ** 2).sum()
            total += float(d if square else d.sqrt())
    return total


@right("08.mean_std_loss")
def mean_std_loss(features, style_features):
    return _mean_std(features, style_features)


@mistake("08.mean_std_loss", "the unbiased standard deviation (divided by HW - 1)")
def _(features, style_features):
    return _mean_std(features, style_features, hw_minus_1=True)


@mistake("08.mean_std_loss", "squared norms, not norms")
def _(features, style_features):
    return _mean_std(features, style_features, square=True)


@mistake("08.mean_std_loss", "the variance, not the standard deviation")
def _(features, style_features):
    return _mean_std(features, style_features, spread=lambda v: v)


@mistake("08.mean_std_loss", "statistics over the channels at each position")
def _(features, style_features):
    return _mean_std(features, style_features, over=0)


# ---------------------------------------------------------------- 09: instance norm, perceptual loss

@right("09.instance_norm")
def instance_norm(x, eps=1e-5):
    n, c = x.shape[:2]
    f = x.reshape(n, c, -1)
    mean = f.mean(-1, keepdim=True)
    var = ((f - mean) ** 2).mean(-1, keepdim=True)
    return ((f - mean) / (var + eps).sqrt()).view_as(x)


@mistake("09.instance_norm", "batch statistics (batch norm)")
def _(x, eps=1e-5):
    m, v = x.mean((0, 2, 3), keepdim=True), x.var((0, 2, 3), keepdim=True, unbiased=False)
    return (x - m) / (v + eps).sqrt()


@mistake("09.instance_norm", "the unbiased variance (divided by HW - 1)")
def _(x, eps=1e-5):
    m, v = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True)
    return (x - m) / (v + eps).sqrt()


@mistake("09.instance_norm", "eps added to the standard deviation, outside the square root")
def _(x, eps=1e-5):
    m, s = x.mean((2, 3), keepdim=True), x.std((2, 3), keepdim=True, unbiased=False)
    return (x - m) / (s + eps)


@mistake("09.instance_norm", "statistics over channels too (layer norm)")
def _(x, eps=1e-5):
    m, v = x.mean((1, 2, 3), keepdim=True), x.var((1, 2, 3), keepdim=True, unbiased=False)
    return (x - m) / (v + eps).sqrt()


def _perceptual(out_features, content_features, style_grams, outputs, content_layer, weights=None, content_norm=True,
                style_mean=True, with_tv=True):
    w = {k: DEFAULT_WEIGHTS[k] for k in ("content", "style", "tv")}
    w.update(weights or {})
    n = outputs.shape[0]
    total = 0.0
    for i in range(n):  # each image on its own, then the batch mean
        f, fc = out_features[content_layer][i], content_features[i]
        content = (f - fc).pow(2).sum() / (fc.pow(2).sum() if content_norm else 1.0)
        style = sum((st.gram_matrix(out_features[l][i]) - g[0]).pow(2).sum() / g.pow(2).sum()
                    for l, g in style_grams.items())
        style = style / len(style_grams) if style_mean else style
        total = total + (w["content"] * content + w["style"] * style) / n
    if with_tv:
        total = total + w["tv"] * _tv(outputs, 2.0)
    return float(total)


@right("09.perceptual_loss")
def perceptual_loss(out_features, content_features, style_grams, outputs, content_layer, weights=None):
    return _perceptual(out_features, content_features, style_grams, outputs, content_layer, weights)


@mistake("09.perceptual_loss", "the content term not divided by ||F_c(x)||^2")
def _(out_features, content_features, style_grams, outputs, content_layer, weights=None):
    return _perceptual(out_features, content_features, style_grams, outputs, content_layer, weights, content_norm=False)


@mistake("09.perceptual_loss", "the style layers summed, not averaged")
def _(out_features, content_features, style_grams, outputs, content_layer, weights=None):
    return _perceptual(out_features, content_features, style_grams, outputs, content_layer, weights, style_mean=False)


@mistake("09.perceptual_loss", "total variation left out")
def _(out_features, content_features, style_grams, outputs, content_layer, weights=None):
    return _perceptual(out_features, content_features, style_grams, outputs, content_layer, weights, with_tv=False)


def _cin(x, gammas, betas, mix, eps, how="blend"):
    mix = mix.to(x).expand(x.shape[0], -1)
    if how == "argmax":
        mix = F.one_hot(mix.argmax(1), mix.shape[1]).to(x)
    if how == "first":
        mix = mix[:1].expand(x.shape[0], -1)
    gamma, beta = mix @ gammas, mix @ betas
    if how == "scale-first":
        return instance_norm(x * gamma[..., None, None], eps) + beta[..., None, None]
    return instance_norm(x, eps) * gamma[..., None, None] + beta[..., None, None]


@right("09.conditional_instance_norm")
def conditional_instance_norm(x, gammas, betas, mix, eps=1e-5):
    return _cin(x, gammas, betas, mix, eps)


@mistake("09.conditional_instance_norm", "the strongest style only, no blend")
def _(x, gammas, betas, mix, eps=1e-5):
    return _cin(x, gammas, betas, mix, eps, how="argmax")


@mistake("09.conditional_instance_norm", "the first image's blend used for the whole batch")
def _(x, gammas, betas, mix, eps=1e-5):
    return _cin(x, gammas, betas, mix, eps, how="first")


@mistake("09.conditional_instance_norm", "scaled before normalizing (the scale is normalized away)")
def _(x, gammas, betas, mix, eps=1e-5):
    return _cin(x, gammas, betas, mix, eps, how="scale-first")


# ---------------------------------------------------------------- 10: adversarial examples

def _fgsm(model, x, label, eps, targeted, sign=True, clamp=True, times=1.0, ignore_target=False):
    x = x.detach().clone().requires_grad_(True)
    logp = F.log_softmax(model(x), dim=1)
    loss = -logp[torch.arange(len(x)), label].sum()  # a sum, not cross_entropy's mean: the same signs
    (g,) = torch.autograd.grad(loss, x)
    step = g.sign() if sign else g
    direction = 1.0 if ignore_target or not targeted else -1.0
    out = x.detach() + times * direction * eps * step
    return out.clamp(0, 1) if clamp else out


@right("10.fgsm_step")
def fgsm_step(model, x, label, eps, targeted=False):
    return _fgsm(model, x, label, eps, targeted)


@mistake("10.fgsm_step", "targeted ignored: always away from the label")
def _(model, x, label, eps, targeted=False):
    return _fgsm(model, x, label, eps, targeted, ignore_target=True)


@mistake("10.fgsm_step", "not clamped to [0, 1]")
def _(model, x, label, eps, targeted=False):
    return _fgsm(model, x, label, eps, targeted, clamp=False)


@mistake("10.fgsm_step", "the raw gradient, not its sign")
def _(model, x, label, eps, targeted=False):
    return _fgsm(model, x, label, eps, targeted, sign=False)


@mistake("10.fgsm_step", "eps applied twice")
def _(model, x, label, eps, targeted=False):
    return _fgsm(model, x, label, eps, targeted, times=2.0)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@right("10.logistic_probabilities")
def logistic_probabilities(x, w, b, eps):
    return float(_sigmoid(np.dot(w, x) + b)), float(_sigmoid(np.dot(w, x + eps * np.sign(w)) + b))


@mistake("10.logistic_probabilities", "moved along w, not along sign(w)")
def _(x, w, b, eps):
    return float(_sigmoid(w @ x + b)), float(_sigmoid(w @ (x + eps * w) + b))


@mistake("10.logistic_probabilities", "moved against sign(w): the probability falls")
def _(x, w, b, eps):
    return float(_sigmoid(w @ x + b)), float(_sigmoid(w @ (x - eps * np.sign(w)) + b))


@mistake("10.logistic_probabilities", "the bias left out")
def _(x, w, b, eps):
    return float(_sigmoid(w @ x)), float(_sigmoid(w @ (x + eps * np.sign(w))))


def _pgd_train(model, x, y, eps, alpha, steps, lr, project=True, adversarial=True, attack_sign=1.0, learn_sign=1.0,
               zero_grad=True):
    x_adv = x.clone()
    for _ in range(steps if adversarial else 0):
        z = x_adv.clone().requires_grad_(True)
        loss = F.cross_entropy(model(z), y)
        if zero_grad:
            (g,) = torch.autograd.grad(loss, z)
        else:  # backward() also fills the parameters' .grad
            loss.backward()
            g = z.grad
        x_adv = x_adv + attack_sign * alpha * g.sign()
        if project:
            x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
        x_adv = x_adv.clamp(0, 1).detach()
    if zero_grad:
        model.zero_grad()
    F.cross_entropy(model(x_adv), y).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= learn_sign * lr * p.grad
    return [p.detach().clone() for p in model.parameters()]


@right("10.pgd_training_step")
def pgd_training_step(model, x, y, eps, alpha, steps, lr):
    return _pgd_train(model, x, y, eps, alpha, steps, lr)


@mistake("10.pgd_training_step", "no projection back into the eps-ball")
def _(model, x, y, eps, alpha, steps, lr):
    return _pgd_train(model, x, y, eps, alpha, steps, lr, project=False)


@mistake("10.pgd_training_step", "trained on the clean batch")
def _(model, x, y, eps, alpha, steps, lr):
    return _pgd_train(model, x, y, eps, alpha, steps, lr, adversarial=False)


@mistake("10.pgd_training_step", "the attack lowers the loss")
def _(model, x, y, eps, alpha, steps, lr):
    return _pgd_train(model, x, y, eps, alpha, steps, lr, attack_sign=-1.0)


@mistake("10.pgd_training_step", "the attack's gradients left in the parameters (no zero_grad)")
def _(model, x, y, eps, alpha, steps, lr):
    return _pgd_train(model, x, y, eps, alpha, steps, lr, zero_grad=False)
