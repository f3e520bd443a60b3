"""Gradient ascent: class and channel visualization, the regularizer ladder, the exercise step."""
import pytest
import torch
from torch import nn

from course_utils import ascent
from course_utils.optimize import objectives as O
from course_utils.optimize import param as P
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
    helpers.assert_same_run(a, b)
    assert evaluate(net, O.class_logit(9), a) > evaluate(net, O.class_logit(9), _noise(32))


def test_seeds_reproduce_exactly_and_differ_between_seeds():
    net = tiny_cnn()
    a = ascent.class_visualization(net, 3, size=32, steps=8, seed=1, **FAST)
    b = ascent.class_visualization(net, 3, size=32, steps=8, seed=1, **FAST)
    c = ascent.class_visualization(net, 3, size=32, steps=8, seed=2, **FAST)
    helpers.assert_same_run(a, b)
    assert not torch.allclose(a, c)


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


def test_channel_visualization_leaves_clipping_off_unless_asked():
    net = tiny_cnn()
    default = ascent.channel_visualization(net, "conv2", 1, size=32, steps=6, **FAST)
    explicit = ascent.channel_visualization(net, "conv2", 1, size=32, steps=6, clip_pixels=0, clip_contributions=0,
                                            l2=0, **FAST)
    clipped = ascent.channel_visualization(net, "conv2", 1, size=32, steps=6, clip_pixels=50, **FAST)
    helpers.assert_same_run(default, explicit)
    assert not torch.allclose(default, clipped)


# ---------------------------------------------------------------- units, diversity, interpolation (#18)

def test_a_neuron_moves_only_the_pixels_in_its_receptive_field():
    from course_utils.receptive_fields import receptive_field

    net = tiny_cnn()
    size = 24
    unit = ascent.unit(net, "conv2", 1, "neuron")
    x = ascent.visualize(net, unit, size=size, steps=5, seed=3, **ascent.NONE, **FAST)  # no jitter, no blur
    start = P.noise(size, 3).image()
    out_hw = net.conv2(net.relu1(net.conv1(start))).shape[-1]
    top, left, bottom, right = receptive_field(net, "conv2", size).box(out_hw // 2, out_hw // 2)
    inside = torch.zeros(size, size, dtype=torch.bool)
    inside[max(top, 0):bottom, max(left, 0):right] = True
    moved = (x - start).abs().amax(1)[0] > 1e-6
    assert moved[inside].float().mean() > 0.5 and not moved[~inside].any()
    assert evaluate(net, unit, x) > evaluate(net, unit, start)


def test_unit_checks_its_kind_layer_and_channel(model):
    assert ascent.unit(model, "blocks.2", 3).name == "blocks.2:3"
    with pytest.raises(ValueError, match="'channel' or 'neuron'"):
        ascent.unit(model, "blocks.2", 3, "pixel")
    with pytest.raises(ValueError, match="has 24 channels"):
        ascent.unit(model, "blocks.2", 24, "neuron")


def test_diversity_draws_different_images_that_still_drive_the_unit(model):
    """Notebook 05's diversity row: four images of blocks.10:84 in Fourier space. With the diversity term they
    are far apart in the features of a network that took no part (Lite1), and each still drives the unit to
    at least 0.8 of the single image's value."""
    import course_utils as cu
    from course_utils import embeddings
    from course_utils.layers import feature_vectors

    judge = cu.load_model("efficientnet_lite1")
    unit = O.channel("blocks.10", 84)
    settings = dict(size=112, steps=96, param=P.fourier, lr=0.1, **ascent.UNIT, **FAST)
    single = evaluate(model, unit, ascent.visualize(model, unit, **settings))
    plain = ascent.visualize(model, unit, batch=4, **settings)
    diverse = ascent.visualize(model, unit - 3 * O.diversity("blocks.10"), batch=4, **settings)
    spread = {name: embeddings.pairwise_distance(feature_vectors(judge, x, "head.act"))
              for name, x in [("plain", plain), ("diverse", diverse)]}
    assert spread["diverse"] > 2 * spread["plain"], spread
    assert min(evaluate(model, unit, diverse, each=True)) >= 0.8 * single


def test_interpolation_walks_from_one_unit_to_the_other(model):
    a, b = O.channel("blocks.10", 36), O.channel("blocks.10", 66)
    x = ascent.visualize(model, O.interpolate(a, b, 5), size=64, steps=30, batch=5, param=P.fourier, lr=0.1,
                         **ascent.UNIT, **FAST)
    va, vb = evaluate(model, a, x, each=True), evaluate(model, b, x, each=True)
    assert va[0] > va[-1] and vb[-1] > vb[0]  # the first image is about a, the last about b
    assert va[0] - vb[0] > va[-1] - vb[-1]


def test_the_feature_visualization_panel_runs_every_kind(model, monkeypatch, capsys):
    """Outside a kernel the panel's output goes to stdout; what it draws is recorded from panels.show."""
    from course_utils import panels

    boxes, drawn = [], []
    real = panels.lessons.run_panel
    monkeypatch.setattr(panels.lessons, "run_panel", lambda *a, **k: boxes.append(real(*a, **k)))
    monkeypatch.setattr(panels.lessons, "show", lambda images, titles, **k: drawn.append((len(images), titles)))
    panels.feature_visualization_panel(model)
    box = boxes[0]
    controls = {c.description: c for c in box.children[0].children}
    run = box.children[1].children[0].click
    assert drawn[-1][0] == 1 and drawn[-1][1][0].startswith("flamingo")  # it ran once: the class default
    assert controls["L2 weight"].value == ascent.REGULARIZERS["l2"]  # a class: the class defaults
    controls["visualize"].value = "neuron"
    assert controls["L2 weight"].value == 0 and controls["clip pixels %"].value == 0  # a unit: UNIT's
    for name, value in [("optimize", "Fourier"), ("images", 2), ("diversity", 3.0), ("steps", 10), ("size px", 64)]:
        controls[name].value = value
    run()
    assert drawn[-1] == (2, ["blocks.6, neuron 0"] * 2)
    controls["layer"].value = "blocks.2"
    controls["channel"].value = 30
    capsys.readouterr()
    run()
    assert "has 24 channels" in capsys.readouterr().out and len(drawn) == 2  # a clear message, no figure
    controls["visualize"].value = "class"
    assert controls["L2 weight"].value == ascent.REGULARIZERS["l2"]
