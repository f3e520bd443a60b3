"""Exercises of 10_adversarial: one FGSM step, the linear explanation's probabilities, one step of PGD
adversarial training."""
import copy

import numpy as np
import torch
import torch.nn.functional as F

from ...adversarial import LECTURE_W, LECTURE_X, fgsm, logistic_attack, pgd_training_step
from ...testing import tiny_cnn, tiny_linear
from ..registry import Case, compare, register


def _image(rng, n, h, w, lo=0.0, hi=1.0):
    return torch.from_numpy(rng.uniform(lo, hi, (n, 3, h, w))).float()


def _fgsm_cases(rng):
    cases = []
    for n, eps, targeted in [(1, 2 / 255, False), (4, 8 / 255, False), (3, 4 / 255, True)]:
        h, w = (int(v) for v in rng.integers(8, 20, 2))
        labels = torch.from_numpy(rng.integers(0, 10, n))
        what = ("targeted: lower the loss of these labels" if targeted
                else "untargeted: raise the loss of the true labels")
        cases.append(Case(f"{n} random {h}x{w} image(s), small CNN, eps={eps * 255:g}/255, {what}",
                          (tiny_cnn(int(rng.integers(1000)), classes=10), _image(rng, n, h, w, 0.1, 0.9), labels, eps),
                          {"targeted": targeted}))
    cases.append(Case("a linear model, eps=0.1", (tiny_linear(3, 6), _image(rng, 2, 6, 6, 0.2, 0.8),
                                                    torch.tensor([1, 7]), 0.1)))
    cases.append(Case("pixels at 0 and 1 with a big eps=0.3: the result must stay in [0, 1]",
                      (tiny_cnn(5, classes=10), (_image(rng, 2, 10, 10) > 0.5).float(), torch.tensor([0, 3]), 0.3)))
    cases.append(Case("eps=0: the image comes back unchanged",
                      (tiny_cnn(6, classes=10), _image(rng, 1, 9, 9), torch.tensor([2]), 0.0)))
    return cases


def _tied(case):
    """The pixels whose gradient sign float32 cannot settle: |g| (float64) at most 10x the float32 rounding error
    seen there (|g32 - g64|), or exactly 0. Two right float32 answers may move these either way, or not at all."""
    model, x, labels, _ = copy.deepcopy(case.args)

    def grad(dtype):
        m, z = model.to(dtype), x.to(dtype).requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(m(z), torch.as_tensor(labels)), z)
        return g.double()

    g64 = grad(torch.float64)
    return (g64.abs() <= 10 * (grad(torch.float32) - g64).abs()) | (g64 == 0)


def _fgsm_verdict(case, expected, got):
    """Equal to the reference within float rounding everywhere but at tied pixels (`_tied`), where any of
    x - eps, x and x + eps (clamped) is right."""
    msg = compare(expected, got)
    if msg is None or not (torch.is_tensor(got) or isinstance(got, np.ndarray)) or tuple(got.shape) != tuple(expected.shape):
        return msg
    got = torch.as_tensor(np.asarray(got.detach().cpu() if torch.is_tensor(got) else got)).double()
    x, eps = case.args[1].double(), float(case.args[3])
    wrong = ~torch.isclose(got, expected.double(), atol=1e-5, rtol=1e-4)
    tied = _tied(case)
    right_at_a_tie = (got[None] - torch.stack([(x - eps).clamp(0, 1), x, (x + eps).clamp(0, 1)])).abs().le(1e-5).any(0)
    return msg if (wrong & ~(tied & right_at_a_tie)).any() else None


def _logistic_cases(rng):
    cases = [Case("the lecture's example: x, w from CS231n, b = 0, eps = 0.5", (LECTURE_X, LECTURE_W, 0.0, 0.5))]
    for n, eps in [(10, 0.25), (64, 0.1), (1000, 0.01)]:
        x, w = rng.normal(0, 1, n), rng.normal(0, 0.1, n)
        b = float(rng.normal(0, 1))
        cases.append(Case(f"random x, w of dimension {n}, b={b:.2f}, eps={eps}", (x, w, b, eps)))
    cases.append(Case("eps = 0: nothing changes", (LECTURE_X, LECTURE_W, 1.0, 0.0)))
    cases.append(Case("a weight of zero (np.sign(0) is 0)",
                      (np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, -1.0]), -0.5, 1.0)))
    return cases


register("10.fgsm_step", fgsm, _fgsm_cases, behaviour=_fgsm_verdict)
register("10.logistic_probabilities", logistic_attack, _logistic_cases, atol=1e-6, rtol=1e-5)


def _training_cases(rng):
    cases = []
    for n, (eps, alpha, steps, lr) in enumerate([(0.1, 0.05, 3, 0.1), (8 / 255, 2 / 255, 5, 0.5), (0.3, 0.1, 1, 0.05)]):
        h, w = (int(v) for v in rng.integers(8, 14, 2))
        model = tiny_cnn(int(rng.integers(1000)), classes=10, scale=0.5).requires_grad_(True)
        labels = torch.from_numpy(rng.integers(0, 10, 4))
        cases.append(Case(f"4 random {h}x{w} images, small CNN, eps={eps:.3g}, alpha={alpha:.3g}, {steps} PGD steps, "
                          f"lr={lr}", (model, _image(rng, 4, h, w, 0.1, 0.9), labels, eps, alpha, steps, lr)))
    model = tiny_cnn(8, classes=10, scale=0.5).requires_grad_(True)
    cases.append(Case("steps=0: an ordinary SGD step on the clean batch",
                      (model, _image(rng, 2, 9, 9), torch.tensor([1, 2]), 0.1, 0.05, 0, 0.1)))
    return cases


register("10.pgd_training_step", pgd_training_step, _training_cases, atol=1e-5, rtol=1e-4)
