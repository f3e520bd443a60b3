"""Adversarial examples: images changed imperceptibly so that a network changes its mind.

- `fooling_image`: push a photo towards a chosen class by gradient steps on the image until the
  model says so (Szegedy et al. 2013, "Intriguing properties of neural networks"). It is the
  course's image optimizer (`optimize_image`) maximizing log p(target), started at the photo, with a
  `stop` condition: the model's top class is the target.
- `fgsm`: the fast gradient sign method (Goodfellow, Shlens & Szegedy 2015, "Explaining and
  Harnessing Adversarial Examples"): one step of size eps along the sign of the loss gradient,

      untargeted:  x' = clip(x + eps * sign(grad_x L(x, y)))     (raise the loss of the true label y)
      targeted:    x' = clip(x - eps * sign(grad_x L(x, t)))     (lower the loss of the target label t)

- `pgd`: many such steps of size alpha, each followed by a projection back onto the eps-ball
  around x, optionally from a random start in that ball (Madry et al. 2018, "Towards Deep
  Learning Models Resistant to Adversarial Attacks"); `iterative_fgsm` is the same without the
  random start (Kurakin, Goodfellow & Bengio 2017, "Adversarial examples in the physical world").
- `logistic_attack`: the linear explanation in numbers (Goodfellow et al. 2015): moving every
  input by eps towards sign(w) raises the score w.x + b by eps * ||w||_1, which grows with the
  dimension.

Conventions: images in [0, 1], shape (N, C, H, W) (anything `images.as_batch` takes); eps and step
sizes in the same pixel units (8/255 is "8 grey levels"); every result is clamped to [0, 1] and lies
within eps of x in the L-infinity norm; L is the cross-entropy of the logits. `target` is a class index
or name (the same for every image) or one per image (`labels.targets`). Random starts draw from `seed`.

FGSM and PGD keep a short loop of their own instead of calling `optimize_image`: a step along the
sign of the gradient followed by a projection onto the eps-ball is an attack's update rule, not
an objective to maximize with Adam.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .images import as_batch, takes_unit_images, unit_images
from .labels import class_index, class_name, class_scores, predict_batch, targets
from .layers import frozen
from .objectives import Objective
from .optimize import Progress, optimize_image
from .plots import draw_image, draw_predictions, grid
from .seeding import generator

METHODS = ("fgsm", "iterative_fgsm", "pgd")


# ---------------------------------------------------------------- checking the arguments

def _per_image(value, x, name, norm="linf", pixels=True):
    """eps or alpha shaped (N, 1, ...) like the batch x: a float, or one value per image. pixels: the input is
    an image in [0, 1], so an L-infinity step above 1 is a mistake in units."""
    n = len(x)
    v = torch.as_tensor(value, dtype=torch.float32).flatten()
    if v.numel() not in (1, n):
        raise ValueError(f"{name} must be a number or one value per image ({n}), got {v.numel()} values")
    if (v < 0).any() or (pixels and norm == "linf" and (v > 1).any()):
        raise ValueError(f"{name} is in pixel units of [0, 1] (8 grey levels is 8/255 = 0.031), "
                         f"got {v.tolist() if v.numel() < 5 else v}")
    return v.to(x.device).expand(n).reshape(n, *([1] * (x.dim() - 1)))


def loss_gradient(model, x, labels):
    """(loss per image, d loss / d x) for the cross-entropy of model(x) against `labels`."""
    x = x.detach().clone().requires_grad_(True)
    logits = model(x)
    if labels.max() >= logits.shape[1]:
        raise ValueError(f"class {int(labels.max())} does not exist: the model has {logits.shape[1]} classes")
    losses = F.cross_entropy(logits, labels, reduction="none")
    (grad,) = torch.autograd.grad(losses.sum(), x)  # the sum: each image gets its own gradient
    return losses.detach(), grad


def project(x_adv, x, eps, norm="linf", bounds=(0.0, 1.0)):
    """Back into the eps-ball around x, then into `bounds` (None: no bounds). norm="linf": the closest such
    input (each value within eps of x); norm="l2": the change scaled down to L2 length eps where it is longer."""
    if norm == "linf":
        out = torch.min(torch.max(x_adv, x - eps), x + eps)
    else:
        d = x_adv - x
        length = d.flatten(1).norm(dim=1).view(-1, *([1] * (d.dim() - 1)))
        out = x + d * torch.clamp(eps / length.clamp_min(1e-12), max=1.0)
    return out.clamp(*bounds) if bounds is not None else out


def _bounds(model):
    """Pixels stay in [0, 1] for a model that takes images in [0, 1]; other inputs are not bounded (as in Captum)."""
    return (0.0, 1.0) if takes_unit_images(model) else None


def _step(grad, norm):
    """The direction of one attack step: sign(grad) (L-infinity), or grad / ||grad||_2 (L2)."""
    if norm == "linf":
        return grad.sign()
    return grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.dim() - 1)))


# ---------------------------------------------------------------- the attacks

def fgsm(model, x, target, eps, targeted=False, norm="linf"):
    """Fast gradient sign method: one step of size eps (pixel units) along sign(grad_x L).

    target: the true label (untargeted: its loss goes up) or, with targeted=True, the class the
    image should become (its loss goes down): an index, a name, or one per image.
    Returns a batch like x with |x' - x| <= eps everywhere, in [0, 1] for a model that takes images
    (`images.unit_images`; other inputs are not bounded, as in Captum). norm="l2": one step of L2 length
    eps along the gradient instead (the fast gradient method).
    """
    x = as_batch(x, device=model)
    labels = targets(target, len(x), x.device)
    eps = _per_image(eps, x, "eps", norm, _bounds(model) is not None)
    with frozen(model):
        _, grad = loss_gradient(model, x, labels)
    direction = -1.0 if targeted else 1.0
    return project(x + direction * eps * _step(grad, norm), x, eps, norm, _bounds(model))


def pgd(model, x, target, eps, alpha, steps, targeted=False, random_start=True, seed=0, norm="linf",
        progress=False):
    """Projected gradient descent: `steps` steps of size alpha, each projected back onto the eps-ball
    around x (and [0, 1]); with random_start, from a uniform random point of that ball drawn from `seed`.

    norm="linf" (the default): sign steps, every value within eps of x (Madry et al. 2018).
    norm="l2": steps along the gradient scaled to L2 length alpha, the change's L2 length at most eps
    (eps in the same pixel units, over the whole image: 1 is one pixel moved by 1, or 100 by 0.1).
    Returns a batch like x, in [0, 1] for a model that takes images (other inputs are not bounded).
    """
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    x = as_batch(x, device=model)
    labels = targets(target, len(x), x.device)
    eps = _per_image(eps, x, "eps", norm, _bounds(model) is not None)
    alpha = _per_image(alpha, x, "alpha", norm, _bounds(model) is not None)
    direction = -1.0 if targeted else 1.0
    x_adv = x.clone()
    if random_start:
        x_adv = project(x + eps * _uniform_in_ball(x.shape, norm, generator(seed)).to(x.device), x, eps, norm,
                        _bounds(model))
    with frozen(model):
        for _ in tqdm(range(int(steps)), desc="PGD" if random_start else "iterative FGSM",
                      disable=not progress, leave=False):
            _, grad = loss_gradient(model, x_adv, labels)
            x_adv = project(x_adv + direction * alpha * _step(grad, norm), x, eps, norm, _bounds(model))
    return x_adv


def _uniform_in_ball(shape, norm, g):
    """Points drawn uniformly from the unit ball of the norm, one per image of a batch of `shape`."""
    if norm == "linf":
        return torch.rand(shape, generator=g) * 2 - 1
    u = torch.randn(shape, generator=g)
    u = u / u.flatten(1).norm(dim=1).view(-1, *([1] * (len(shape) - 1)))
    d = u[0].numel()
    return u * (torch.rand(shape[0], generator=g) ** (1.0 / d)).view(-1, *([1] * (len(shape) - 1)))


def pgd_training_step(model, x, y, eps, alpha, steps, lr):
    """One step of PGD adversarial training with plain SGD (Madry et al. 2018): attack the batch with
    `steps` PGD steps started at x itself (no random start), then move every parameter by -lr times the
    gradient of the cross-entropy on the attacked batch. Changes the model (its parameters must require
    gradients); returns its parameters after the step, as a list of tensors."""
    x_adv = pgd(model, x, y, eps, alpha, steps, random_start=False)
    model.zero_grad()
    F.cross_entropy(model(x_adv), targets(y, len(x_adv))).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return [p.detach().clone() for p in model.parameters()]


def random_sign_noise(x, eps, seed=0):
    """The control experiment: x + eps * (random +1 or -1 per value), clamped to [0, 1]. Same
    L-infinity size as FGSM, but not aligned with the gradient."""
    x = as_batch(x)
    signs = torch.randint(0, 2, x.shape, generator=generator(seed)).to(x.device, x.dtype) * 2 - 1
    eps = _per_image(eps, x, "eps")
    return project(x + eps * signs, x, eps)


def iterative_fgsm(model, x, target, eps, alpha, steps, targeted=False, progress=False):
    """The basic iterative method (Kurakin et al. 2017): PGD started at x itself."""
    return pgd(model, x, target, eps, alpha, steps, targeted, random_start=False, progress=progress)


def attack(model, x, target, method="pgd", eps=2 / 255, alpha=None, steps=10, targeted=False, seed=0, norm="linf",
           progress=False):
    """One entry point for the three attacks (the notebook's panel and curves use it).

    method: "fgsm", "iterative_fgsm" or "pgd". alpha (iterative attacks) defaults to
    2.5 * eps / steps (Madry et al.): enough to cross the ball and come back. norm: "linf" or "l2".
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "fgsm":
        return fgsm(model, x, target, eps, targeted, norm)
    alpha = 2.5 * torch.as_tensor(eps, dtype=torch.float32) / max(int(steps), 1) if alpha is None else alpha
    alpha = torch.as_tensor(alpha, dtype=torch.float32)
    alpha = alpha.clamp(max=1.0) if norm == "linf" else alpha
    return pgd(model, x, target, eps, alpha, steps, targeted, random_start=method == "pgd", seed=seed, norm=norm,
               progress=progress)


# ---------------------------------------------------------------- fooling images (the optimizer)

def fooling_image(model, x, target, lr=1 / 255, max_steps=100, confidence=0.0, size=224, progress=True):
    """Szegedy et al.'s fooling image: gradient steps on the image (Adam, pixel space, clamped to
    [0, 1]) that raise log p(target), started at the photo x, until the model's top class is
    `target` with probability at least `confidence` (or max_steps have run).

    x: one image, anything `as_batch` takes (a file or a name is resized to `size`).
    lr: the step size in pixel units (Adam moves each pixel by about lr per step).
    progress: True, False, a callback or an `optimize.Progress` (its history receives log p(target) at
    the start of each step: its length is the number of steps taken).
    Returns the fooled image, a (1, 3, H, W) tensor in [0, 1].
    """
    c = class_index(target)
    x = as_batch(x, None if torch.is_tensor(x) else size, channels=3)
    if len(x) != 1:
        raise ValueError(f"fooling_image makes one image at a time, got a batch of {len(x)}")
    if not 0 <= confidence < 1:
        raise ValueError(f"confidence is a probability in [0, 1), got {confidence}")

    def reached(ctx):  # the model says so: stop here
        logits = ctx.logits.detach()
        return int(logits.argmax(1)[0]) == c and float(F.log_softmax(logits, dim=1)[0, c].exp()) >= confidence

    log_p = Objective(lambda ctx: F.log_softmax(ctx.logits, dim=1)[:, c].mean(), name=f"log p[{c}]")
    return optimize_image(model, log_p, x, max_steps, lr, "adam", stop=reached,
                          progress=Progress.of(progress, f"fooling towards {class_name(c)}"))


# ---------------------------------------------------------------- measuring

def perturbation_norms(x, x_adv):
    """Sizes of the change x_adv - x of one image: L-infinity and RMS in grey levels (1/255), L2 in
    [0, 1] units, and L2 relative to the image's own L2 norm."""
    d = (x_adv - x).detach().float()
    return {"linf_255": float(d.abs().max()) * 255, "rms_255": float(d.pow(2).mean().sqrt()) * 255,
            "l2": float(d.norm()), "l2_relative": float(d.norm() / x.float().norm().clamp_min(1e-12))}


@torch.no_grad()
def success(model, x_adv, target, targeted=False, topk=1):
    """A bool per image: did the attack work? Targeted: the top class is the target. Untargeted:
    the true label is not the top class (topk=1), or not even among the top k classes."""
    logits = class_scores(model, x_adv)
    labels = targets(target, len(logits), logits.device)
    if targeted:
        return logits.argmax(1) == labels
    return (logits.topk(topk, dim=1).indices != labels[:, None]).all(1)


def top1(model, x, batch_size=16):
    """The model's top-1 class index for each image of a batch."""
    return class_scores(model, x, batch_size=batch_size).argmax(1)


def success_curve(model, x, target, eps_values, method="pgd", targeted=False, steps=5, alpha_scale=2.5, seed=0,
                  topk=1, norm="linf"):
    """The success rate of an attack at each eps, over a batch of images: a list of floats.

    All eps values run as one batch (images repeated, one eps per copy). For an untargeted attack
    `target` is the true label (usually the model's own top-1 on the clean images); it succeeds when
    that label is not among the top `topk` classes. With a tuple topk=(1, 5) the result is a dict
    {k: rates}, from the same attacks. Iterative attacks take steps of alpha_scale * eps / steps; norm as
    in `pgd`.
    """
    x = as_batch(x, device=model)
    n, k = len(x), len(eps_values)
    labels = targets(target, n)
    xs, ls = x.repeat(k, 1, 1, 1), labels.repeat(k)
    eps = torch.tensor(eps_values, dtype=torch.float32).repeat_interleave(n)
    x_adv = attack(model, xs, ls, method, eps, alpha=alpha_scale * eps / max(int(steps), 1), steps=steps,
                   targeted=targeted, seed=seed, norm=norm)
    rates = {t: success(model, x_adv, ls, targeted, t).float().cpu().reshape(k, n).mean(1).tolist()
             for t in (topk if isinstance(topk, (tuple, list)) else (topk,))}
    return rates if isinstance(topk, (tuple, list)) else rates[topk]


def linearity_check(model, x, target, eps_values):
    """How linear is the network around x? For one image, the loss increase that a straight line
    predicts for an FGSM step of size eps, eps * ||grad_x L||_1 (the first-order Taylor term),
    and the increase actually measured. Returns (predicted, actual) lists, one value per eps."""
    x = as_batch(x, device=model)[:1]
    labels = targets(target, 1, x.device)
    with frozen(model):
        loss, grad = loss_gradient(model, x, labels)
        eps = torch.tensor(eps_values, dtype=torch.float32, device=x.device).reshape(-1, 1, 1, 1)
        moved = (x + eps * grad.sign()).clamp(0, 1)
        with torch.no_grad():
            after = F.cross_entropy(model(moved), labels.expand(len(moved)), reduction="none")
    predicted = (eps.flatten() * grad.abs().sum()).tolist()
    return predicted, (after - loss).tolist()


# ---------------------------------------------------------------- the linear explanation

LECTURE_X = np.array([2, -1, 3, -2, 2, 2, 1, -4, 5, 1], dtype=float)   # CS231n's example input
LECTURE_W = np.array([-1, -1, 1, -1, 1, -1, 1, 1, -1, 1], dtype=float)  # and weights, b = 0


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def logistic_attack(x, w, b, eps):
    """Logistic regression p(class 1 | x) = sigmoid(w.x + b), before and after moving every input
    by eps towards sign(w) (the FGSM step that raises class 1). Returns (p, p_adversarial).

    The score rises by exactly eps * ||w||_1: with CS231n's x, w, b = 0 and eps = 0.5 it goes
    from -3 to 2, and p from 4.7% to 88%.
    """
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    if x.shape != w.shape:
        raise ValueError(f"x and w must have the same shape, got {x.shape} and {w.shape}")
    x_adv = x + eps * np.sign(w)
    return float(sigmoid(w @ x + b)), float(sigmoid(w @ x_adv + b))


def score_changes(dims, eps=1 / 255, trials=50, seed=0):
    """For a linear score w.x with random weights w_i ~ N(0, 1) of each dimension n in `dims`: the change
    eps * ||w||_1 of moving every input by eps along sign(w), and the typical change |eps s.w| of random
    signs s (the mean over `trials` draws). Returns (aligned, random), one value per n."""
    rng = np.random.default_rng(seed)
    aligned, random_signs = [], []
    for n in dims:
        w = rng.normal(0, 1, n)
        aligned.append(eps * np.abs(w).sum())
        random_signs.append(np.abs(eps * rng.choice([-1, 1], (trials, n)) @ w).mean())
    return aligned, random_signs


def linear_model(coef, intercept):
    """A torch classifier logits = x.flatten() @ coef.T + intercept from, e.g., a scikit-learn
    LogisticRegression's coef_ and intercept_, so the same attacks apply to it."""
    coef = torch.as_tensor(np.asarray(coef), dtype=torch.float32)
    layer = torch.nn.Linear(coef.shape[1], coef.shape[0])
    with torch.no_grad():
        layer.weight.copy_(coef)
        layer.bias.copy_(torch.as_tensor(np.asarray(intercept), dtype=torch.float32))
    model = torch.nn.Sequential(torch.nn.Flatten(), layer).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return unit_images(model)  # the digits' pixels, in [0, 1]


# ---------------------------------------------------------------- figures

def show_attack(model, x, x_adv, titles=("original", "adversarial"), topk=5, magnify=None):
    """A figure: the original, the adversarial image and their difference magnified (top row);
    the top-k predictions of both and the perturbation's sizes (bottom row). Returns the Figure."""
    import matplotlib.pyplot as plt

    x, x_adv = as_batch(x)[:1].cpu(), as_batch(x_adv)[:1].cpu()
    d = x_adv - x
    m = float(d.abs().max())
    magnify = magnify or (0.5 / m if m > 0 else 1.0)
    norms = perturbation_norms(x, x_adv)
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.2), gridspec_kw={"height_ratios": [1.2, 1]})
    pics = [x, x_adv, (0.5 + magnify * d).clamp(0, 1)]
    names = list(titles) + [f"difference x {magnify:.0f}  (grey = 0)"]
    for ax, pic, name in zip(axes[0], pics, names):
        draw_image(ax, pic, name, fontsize=10)
    for ax, img in zip(axes[1, :2], (x, x_adv)):
        draw_predictions(ax, predict_batch(model, img, topk)[0], width=20)
    ax = axes[1, 2]
    ax.axis("off")
    ax.text(0.0, 0.5, "size of the change\n\n"
            f"L-inf  {norms['linf_255']:.2f} / 255\n"
            f"RMS    {norms['rms_255']:.2f} / 255\n"
            f"L2     {norms['l2']:.2f}\n"
            f"       = {norms['l2_relative']:.1%} of the\n"
            "       image's own L2",
            family="monospace", fontsize=9, va="center")
    fig.tight_layout()
    return fig


def show_attacks(model, x, adversarials, magnify=None):
    """A grid: the adversarial images of one photo (top row, titled with the model's top class) and
    their differences from x, magnified (bottom row). adversarials = {name: image}. Returns the Figure."""
    x = as_batch(x)[:1].cpu()
    adversarials = {name: as_batch(xa)[:1].cpu() for name, xa in adversarials.items()}
    diffs = {name: xa - x for name, xa in adversarials.items()}
    m = max(float(d.abs().max()) for d in diffs.values())
    magnify = magnify or (0.5 / m if m > 0 else 1.0)
    images, titles = [], []
    for name, xa in adversarials.items():
        (label, p), = predict_batch(model, xa, 1)[0]
        images.append(xa)
        titles.append(f"{name}\n{label[:18]} {p:.0%}")
    for name, d in diffs.items():
        n = perturbation_norms(x, x + d)
        images.append((0.5 + magnify * d).clamp(0, 1))
        titles.append(f"x {magnify:.0f}: Linf {n['linf_255']:.1f}/255, L2 {n['l2']:.2f}")
    return grid(images, titles, ncols=len(adversarials), size=2.5)


def show_linearity(dims, aligned, random_signs, eps_levels, predicted, actual):
    """The linear explanation in two plots: the score change of aligned and random-sign perturbations
    against the number of inputs (`score_changes`), and a network's predicted and measured loss increase
    against eps in grey levels (`linearity_check`). Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(12, 4.3))
    a0.loglog(dims, aligned, "o-", ms=3, label=r"aligned with w: $\varepsilon\|w\|_1$")
    a0.loglog(dims, random_signs, "s-", ms=3, label=r"random signs: $|\varepsilon\, s^\top w|$")
    a0.axhline(5, color="gray", ls=":", label="shift 5: 5% -> 88% in the lecture example")
    for n, name, ha in [(10, " lecture\n n = 10", "left"), (64, " 8x8 digits\n n = 64", "left"),
                        (150528, "224x224x3 \nn = 150528 ", "right")]:
        a0.axvline(n, color="k", lw=0.5, alpha=0.4)
        a0.text(n, 6e3, name, fontsize=8, ha=ha, va="top")
    a0.set(xlabel="number of inputs n", ylabel="change of the score", ylim=(3e-3, 1e4),
           title="every input moved by 1/255", xlim=(6, 4e5))
    a0.legend(fontsize=8, loc="lower right")
    a1.loglog(eps_levels, predicted, "o--", label=r"straight line: $\varepsilon\|\nabla_x L\|_1$")
    a1.loglog(eps_levels, actual, "o-", label="measured on EfficientNet-Lite0")
    a1.set(xlabel="eps (grey levels, 1/255)", ylabel="increase of the loss of the top class",
           title="the cat photo, one FGSM step")
    a1.set_xticks(eps_levels, [f"{e:g}" for e in eps_levels])
    a1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_transfer(rates, title):
    """Success rates of attacks on the network they were made on and on another one:
    rates = {attack: (rate on the attacked network, rate on the other)}. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = np.arange(len(rates))
    ax.bar(xs - 0.2, [r[0] for r in rates.values()], 0.4, label="Lite0 (attacked, white-box)")
    ax.bar(xs + 0.2, [r[1] for r in rates.values()], 0.4, label="Lite1 (transfer)")
    for i, (r0, r1) in enumerate(rates.values()):
        ax.text(i - 0.2, r0 + 0.02, f"{r0:.0%}", ha="center", fontsize=8)
        ax.text(i + 0.2, r1 + 0.02, f"{r1:.0%}", ha="center", fontsize=8)
    ax.set_xticks(xs, list(rates))
    ax.set(ylim=(0, 1.12), ylabel="top class changed", title=title)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def show_digit_attack(eps_values, curves, x, x_adv, labels, predicted, attack="FGSM"):
    """Error rate against eps for a digits classifier ({name: rates}), beside a few digits (top) and their
    attacked versions (bottom, titled `attack` and the prediction, in red when fooled). Returns the Figure."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 3.8))
    ax = fig.add_subplot(1, 2, 1)
    for (name, rates), style in zip(curves.items(), ("o-", "s--", "^:")):
        ax.plot(eps_values, rates, style, label=name)
    ax.set(xlabel="eps (fraction of the pixel range)", ylabel="error rate on the test digits",
           title="logistic regression on 8x8 digits", ylim=(0, 1.03))
    ax.legend(fontsize=8)
    for k in range(len(x)):
        fooled = int(predicted[k]) != int(labels[k])
        for row, (img, title) in enumerate([(x[k], f"digit {int(labels[k])}"), (x_adv[k], f"{attack}: {int(predicted[k])}")]):
            a = fig.add_subplot(2, 10, 6 + k + 10 * row)
            a.imshow(img[0], cmap="gray_r", vmin=0, vmax=1)
            a.set_title(title, fontsize=8, color="red" if row and fooled else "black")
            a.axis("off")
    fig.tight_layout()
    return fig


def show_digit_change(model, x, x_adv, title=""):
    """One digit before and after an attack, their difference (grey = 0), and the model's ten class
    probabilities for both. Returns the Figure."""
    import matplotlib.pyplot as plt

    x, x_adv = as_batch(x)[:1], as_batch(x_adv)[:1]
    p = class_scores(model, torch.cat([x, x_adv]), "probability")
    d = x_adv - x
    fig, axes = plt.subplots(1, 4, figsize=(11, 2.8), gridspec_kw={"width_ratios": [1, 1, 1, 1.6]})
    for ax, im, name, k in [(axes[0], x, "digit", 0), (axes[1], x_adv, "attacked", 1)]:
        ax.imshow(im[0, 0], cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{name}: {int(p[k].argmax())} ({float(p[k].max()):.0%})", fontsize=10)
    m = float(d.abs().max()) or 1.0
    axes[2].imshow(d[0, 0], cmap="bwr", vmin=-m, vmax=m)
    axes[2].set_title(f"change: L2 {float(d.norm()):.2f}, Linf {m:.2f}", fontsize=10)
    for ax in axes[:3]:
        ax.axis("off")
    for k, (label, color) in enumerate([("before", "#9bb7d4"), ("after", "#1f5f9e")]):
        axes[3].bar(torch.arange(10) + (k - 0.5) * 0.4, p[k].cpu(), 0.4, label=label, color=color)
    axes[3].set(xticks=range(10), ylim=(0, 1), xlabel="class", title="probabilities")
    axes[3].legend(fontsize=8)
    axes[3].spines[["top", "right"]].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def show_robust_accuracy(eps_values, accuracies, train_eps=None, xlabel="eps (fraction of the pixel range)", ax=None):
    """Accuracy under attack against eps, one line per model: accuracies = {name: [accuracy at each eps]};
    a dotted line marks the eps a robust model was trained at. Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for (name, acc), style in zip(accuracies.items(), ("o-", "s-", "^--", "d:")):
        ax.plot(eps_values, acc, style, label=name)
    if train_eps is not None:
        ax.axvline(train_eps, color="grey", ls=":", lw=1)
        ax.text(train_eps, 1.0, " training eps", fontsize=8, va="top", color="grey")
    ax.set(xlabel=xlabel, ylabel="accuracy under PGD", ylim=(-0.02, 1.05))
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax.figure


def _level(v):
    """A grey level as text: 2, 0.5 -> '1/2', 0.03125 -> '1/32'."""
    return f"1/{round(1 / v)}" if 0 < v < 1 and abs(1 / v - round(1 / v)) < 1e-6 else f"{v:g}"


def show_success(eps_values, curves, title="attack success over the bundled photos", ax=None):
    """Success rate against eps (in grey levels) for each method: curves = {name: [rate, ...]}.
    Markers shrink from one method to the next, so lines that coincide stay visible."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    levels = [e * 255 for e in eps_values]
    styles = [("o", 10, "-"), ("s", 7, "--"), ("^", 5, ":"), ("D", 4, "-.")]
    for k, (name, rates) in enumerate(curves.items()):
        marker, size, line = styles[k % len(styles)]
        ax.plot(levels, rates, marker=marker, ms=size, linestyle=line, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [_level(v) for v in levels])
    ax.set_xlabel("eps (grey levels, 1/255)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.04, 1.04)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax.figure


__all__ = ["fgsm", "pgd", "pgd_training_step", "iterative_fgsm", "attack", "fooling_image", "loss_gradient", "project",
           "perturbation_norms", "success", "top1", "success_curve", "random_sign_noise", "linearity_check",
           "show_attacks", "logistic_attack", "sigmoid", "score_changes", "linear_model", "show_attack", "show_success",
           "show_linearity", "show_transfer", "show_digit_attack", "show_digit_change", "show_robust_accuracy", "LECTURE_X", "LECTURE_W", "METHODS"]
