"""The attacks of notebook 10 (fooling images, FGSM, iterative FGSM, PGD, adversarial training's inner
step), how to measure them, and the linear explanation; the package's docstring says the formulas."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..images import as_batch, takes_unit_images, unit_images
from ..labels import class_index, class_name, class_scores, targets
from ..layers import frozen
from ..optimize.loop import Progress, optimize_image
from ..optimize.objectives import Objective
from ..seeding import generator

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


def pgd_training(eps, alpha, steps, warmup=0, norm="linf"):
    """The inner maximization of PGD adversarial training (Madry et al. 2018), for
    `digits.train_digits_cnn(attack=...)`: each batch attacked by `pgd` (its random start drawn from the
    training's generator), eps and alpha growing linearly over the first `warmup` epochs. Each batch costs
    steps + 1 times the work of plain training."""
    def attack(model, x, y, epoch, gen):
        k = min(1.0, epoch / warmup) if warmup else 1.0
        return pgd(model, x, y, eps * k, alpha * k, steps, seed=gen, norm=norm)

    return attack


# Notebook 10's robust digits network: PGD in the L2 ball of radius 2 (about one stroke of 4 pixels turned from
# ink to paper), 5 steps, the radius growing over the first 5 epochs (training against the full radius from the
# start never gets going).
ROBUST_TRAINING = pgd_training(eps=2.0, alpha=1.0, steps=5, warmup=5, norm="l2")


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


__all__ = ["fgsm", "pgd", "pgd_training_step", "iterative_fgsm", "attack", "fooling_image", "loss_gradient", "project", "perturbation_norms", "success", "top1", "success_curve", "random_sign_noise", "linearity_check", "logistic_attack", "sigmoid", "score_changes", "linear_model", "LECTURE_X", "LECTURE_W", "METHODS", "pgd_training", "ROBUST_TRAINING"]
