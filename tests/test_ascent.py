"""Gradient ascent: class and channel visualization, the regularizer ladder, the exercise step."""
import pytest
import torch
from torch import nn

from course_utils import ascent
from course_utils import objectives as O
from course_utils import param as P
from course_utils.grading import check
from course_utils.images import noise_image as _noise
from course_utils.layers import LayerNotFoundError
from course_utils.optimize import evaluate
from course_utils.testing import tiny_cnn

import helpers

_hooks = helpers.count_hooks


FAST = dict(progress=False)


def test_class_visualization_raises_the_class_logit_of_the_default_model(model):
    start = _noise(64)
    logit = O.class_logit("ostrich")
    x = ascent.class_visualization(model, "ostrich", size=64, steps=20, **FAST)
    assert x.shape == (1, 3, 64, 64) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert evaluate(model, logit, x) > evaluate(model, logit, start) + 1
    x_l2 = ascent.class_visualization(model, "ostrich", size=64, steps=12, **ascent.L2_ONLY, **FAST)
    assert evaluate(model, logit, x_l2) > evaluate(model, logit, start) + 5


@pytest.mark.parametrize("regs", [ascent.L2_ONLY, {}], ids=["l2 only", "all regularizers"])
def test_class_visualization_by_index_and_name_agree_and_raise_the_score(regs):
    net = tiny_cnn()
    a = ascent.class_visualization(net, 9, size=32, steps=15, **regs, **FAST)
    b = ascent.class_visualization(net, "ostrich", size=32, steps=15, **regs, **FAST)
    assert torch.equal(a, b)
    assert evaluate(net, O.class_logit(9), a) > evaluate(net, O.class_logit(9), _noise(32))


def test_seeds_reproduce_exactly_and_differ_between_seeds():
    net = tiny_cnn()
    a = ascent.class_visualization(net, 3, size=32, steps=8, seed=1, **FAST)
    b = ascent.class_visualization(net, 3, size=32, steps=8, seed=1, **FAST)
    c = ascent.class_visualization(net, 3, size=32, steps=8, seed=2, **FAST)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_the_l2_weight_pulls_the_image_towards_grey():
    net = tiny_cnn()
    weak = ascent.class_visualization(net, 3, size=32, steps=30, l2=0.0, **ascent.L2_ONLY, **FAST)
    strong = ascent.class_visualization(net, 3, size=32, steps=30, l2=1e4, **ascent.L2_ONLY, **FAST)
    assert float((strong - 0.5).pow(2).mean()) < float((weak - 0.5).pow(2).mean())


def test_fourier_parameterization_runs_with_the_defaults():
    net = tiny_cnn()
    x = ascent.class_visualization(net, 3, size=32, steps=5, param=P.fourier, **FAST)
    assert x.shape == (1, 3, 32, 32)


def test_unknown_class_and_bad_layer_or_channel_are_clear_errors(model):
    with pytest.raises(ValueError, match="not an ImageNet class"):
        ascent.class_visualization(model, "ostrichh", size=32, steps=1, **FAST)
    with pytest.raises(LayerNotFoundError, match="blocks.3"):
        ascent.channel_visualization(model, "block.3", 0, size=32, steps=1, **FAST)
    with pytest.raises(ValueError, match="has 24 channels"):
        ascent.channel_visualization(model, "blocks.2", 24, size=32, steps=1, **FAST)


def test_channel_visualization_raises_the_channel_and_leaves_the_model_unchanged():
    net = tiny_cnn().requires_grad_(True)
    flags = [p.requires_grad for p in net.parameters()]
    x = ascent.channel_visualization(net, "conv2", 5, size=32, steps=20, **FAST)
    ch = O.channel("conv2", 5)
    assert evaluate(net, ch, x) > evaluate(net, ch, _noise(32))
    assert [p.requires_grad for p in net.parameters()] == flags and not net.training and _hooks(net) == 0


def test_the_ladder_adds_one_regularizer_at_a_time():
    names = [name for name, _ in ascent.LADDER]
    assert names[0] == "L2 only" and len(names) == 5
    first, last = ascent.LADDER[0][1], ascent.LADDER[-1][1]
    assert first == ascent.L2_ONLY
    for key in ascent.L2_ONLY:  # the last row has every regularizer on, at the default setting
        assert last[key] == ascent.REGULARIZERS[key]
    for (_, a), (_, b) in zip(ascent.LADDER, ascent.LADDER[1:]):
        switched_on = {k for k in a if a[k] != b[k]}
        assert switched_on and all(not a[k] for k in switched_on)  # only additions


def test_robustness_transforms_switch_off_one_by_one():
    assert len(ascent.robustness_transforms(8, 0.05, 5)) == 3
    assert len(ascent.robustness_transforms(0, 0.05, 0)) == 1
    assert ascent.robustness_transforms(0, 0, 0) == []


class Linear(nn.Module):
    """logits = W . x (flattened): its gradient w.r.t. x is the row W[c]."""

    def __init__(self, n_pixels, seed=0):
        super().__init__()
        self.w = nn.Parameter(torch.randn(1000, n_pixels, generator=torch.Generator().manual_seed(seed)) * 0.01)

    def forward(self, x):
        return x.flatten(1) @ self.w.T


def test_ascent_step_against_the_hand_derived_gradient():
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    net = Linear(x.numel())
    lr, lam, c = 0.5, 2.0, 9
    # d/dx [W_c . x - lam * mean (x - 1/2)^2] = W_c - 2 lam (x - 1/2) / n
    grad = net.w[c].detach().view_as(x) - 2 * lam * (x - 0.5) / x.numel()
    expected = (x + lr * grad).clamp(0, 1)
    assert torch.allclose(ascent.ascent_step(net, x, "ostrich", lr=lr, l2_weight=lam), expected, atol=1e-6)
    big = ascent.ascent_step(net, x, c, lr=1e4, l2_weight=lam)
    assert float(big.min()) >= 0 and float(big.max()) <= 1 and set(big.unique().tolist()) <= {0.0, 1.0}


def test_recognized_by_a_model_that_always_says_one_class():
    class Always(nn.Module):
        def forward(self, x):
            out = torch.zeros(x.shape[0], 1000)
            out[:, 130] = 40.0
            return out

    [(p, top1)] = ascent.recognized_by(Always(), torch.rand(1, 3, 40, 40), "flamingo", size=32)
    assert p == pytest.approx(1.0, abs=1e-6) and top1 == 1.0
    [(p, top1)] = ascent.recognized_by(Always(), [torch.rand(1, 3, 40, 40)], "ostrich")
    assert p < 1e-6 and top1 == 0.0


def test_the_exercises_accept_their_reference_and_reject_a_wrong_answer():
    from course_utils.transforms import clip_small_pixels

    assert check("05.ascent_step", ascent.ascent_step)
    assert check("05.clip_small_pixels", clip_small_pixels)

    def unclamped(model, x, target, lr=0.1, l2_weight=1.0):
        x = x.clone().requires_grad_(True)
        (model(x)[0, 5 if target == 5 else 0] - l2_weight * (x - 0.5).pow(2).mean()).backward()
        return x + lr * x.grad

    with pytest.raises(AssertionError):
        check("05.ascent_step", unclamped)


def test_channel_visualization_leaves_clipping_off_unless_asked():
    net = tiny_cnn()
    default = ascent.channel_visualization(net, "conv2", 1, size=32, steps=6, **FAST)
    explicit = ascent.channel_visualization(net, "conv2", 1, size=32, steps=6, clip_pixels=0, clip_contributions=0,
                                            l2=0, **FAST)
    clipped = ascent.channel_visualization(net, "conv2", 1, size=32, steps=6, clip_pixels=50, **FAST)
    assert torch.equal(default, explicit) and not torch.equal(default, clipped)
