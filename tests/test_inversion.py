"""Feature inversion: the loss, the regularized objective, the reconstruction."""
import pytest
import torch

from course_utils import inversion
from course_utils.optimize import objectives as O
from course_utils.layers import LayerNotFoundError
from course_utils.images import noise_image
from course_utils.optimize.objectives import Context, tv_penalty
from course_utils.testing import tiny_cnn

import helpers

_hooks = helpers.count_hooks


def _image(size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    # a smooth image: low-resolution noise upsampled
    return torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(size, size), mode="bilinear",
                                           align_corners=False)


@torch.no_grad()
def test_inversion_loss_against_its_definition():
    net, x, x0 = tiny_cnn(), _image(seed=1), _image(seed=2)
    target = net[:4](x0)
    expected = float((net[:4](x) - target).pow(2).sum() / target.pow(2).sum())
    assert inversion.inversion_loss(net, x, "relu2", target) == pytest.approx(expected, rel=1e-5)
    assert inversion.inversion_loss(net, x0, "relu2", target) == pytest.approx(0.0, abs=1e-10)
    assert inversion.reconstruction_error(net, x, x0, "relu2") == pytest.approx(expected, rel=1e-5)


@torch.no_grad()
def test_objective_is_minus_the_sum_of_loss_and_regularizers():
    net, x, x0 = tiny_cnn(), _image(seed=1), _image(seed=2)
    target = net[:2](x0)
    ctx = Context(x, {"relu1": net[:2](x)}, None)
    d = float((net[:2](x) - target).pow(2).sum() / target.pow(2).sum())
    alpha = float((x - 0.5).abs().pow(6).mean())
    tv = float(tv_penalty(x, 2.0))
    obj = inversion.inversion_objective("relu1", target, tv=0.3, alpha=6, alpha_weight=7.0)
    assert float(obj(ctx)) == pytest.approx(-(d + 7.0 * alpha + 0.3 * tv), rel=1e-5)
    bare = inversion.inversion_objective("relu1", target, tv=0, alpha_weight=0)
    assert float(bare(ctx)) == pytest.approx(-d, rel=1e-5)


def test_invert_lowers_the_feature_distance_on_the_default_model(model):
    x0 = _image(64)
    start = noise_image(64, seed=0)
    x = inversion.invert(model, x0, "blocks.2", steps=25, progress=False)
    assert x.shape == x0.shape and 0 <= float(x.min()) and float(x.max()) <= 1
    before = inversion.reconstruction_error(model, start, x0, "blocks.2")
    after = inversion.reconstruction_error(model, x, x0, "blocks.2")
    assert after < 0.5 * before


def test_invert_takes_a_bundled_image_name_and_leaves_the_model_unchanged():
    net = tiny_cnn().requires_grad_(True)
    x = inversion.invert(net, "coffee", "relu1", size=32, steps=3, progress=False)
    assert x.shape == (1, 3, 32, 32)
    assert not net.training and _hooks(net) == 0 and all(p.requires_grad for p in net.parameters())


def test_seeds_reproduce_exactly():
    net, x0 = tiny_cnn(), _image()
    a = inversion.invert(net, x0, "relu2", steps=10, seed=3, progress=False)
    b = inversion.invert(net, x0, "relu2", steps=10, seed=3, progress=False)
    c = inversion.invert(net, x0, "relu2", steps=10, seed=4, progress=False)
    helpers.assert_same_run(a, b)
    assert not torch.allclose(a, c)


def test_total_variation_weight_smooths_the_reconstruction():
    net, x0 = tiny_cnn(), _image()
    rough = inversion.invert(net, x0, "relu2", steps=40, tv=0, alpha_weight=0, progress=False)
    smooth = inversion.invert(net, x0, "relu2", steps=40, tv=5.0, alpha_weight=0, progress=False)
    assert float(tv_penalty(smooth)) < 0.5 * float(tv_penalty(rough))


def test_alpha_norm_weight_keeps_pixels_away_from_the_extremes():
    net, x0 = tiny_cnn(), _image()
    free = inversion.invert(net, x0, "relu2", steps=40, tv=0, alpha_weight=0, lr=0.1, progress=False)
    held = inversion.invert(net, x0, "relu2", steps=40, tv=0, alpha_weight=1e4, lr=0.1, progress=False)
    alpha = O.alpha_norm(6)
    assert float(alpha(Context(held, {}, None))) < float(alpha(Context(free, {}, None)))


def test_bad_image_tensor_and_layer_are_clear_errors():
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        inversion.invert(tiny_cnn(), torch.rand(1, 1, 8, 8), "relu1", steps=1, progress=False)
    with pytest.raises(LayerNotFoundError, match="relu1"):
        inversion.invert(tiny_cnn(), torch.rand(1, 3, 8, 8), "relu", steps=1, progress=False)


def test_default_tv_weight_grows_with_the_stride_of_the_code(model):
    assert inversion.tv_weight(model, "stem.act", 64) == pytest.approx(inversion.TV * 2 / 16)
    assert inversion.tv_weight(model, "blocks.3", 64) == pytest.approx(inversion.TV * 8 / 16)
    assert inversion.tv_weight(model, "blocks.15", 64) == pytest.approx(inversion.TV)
    assert inversion.tv_weight(model, "classifier", 64) == pytest.approx(inversion.TV)


def test_tv_auto_is_the_tv_weight_of_the_layer():
    net, x0 = tiny_cnn(), _image()
    auto = inversion.invert(net, x0, "relu2", steps=5, progress=False)
    explicit = inversion.invert(net, x0, "relu2", steps=5, tv=inversion.tv_weight(net, "relu2", 32), progress=False)
    helpers.assert_same_run(auto, explicit)
    with pytest.raises(ValueError, match="auto"):
        inversion.invert(net, x0, "relu2", steps=1, tv="strong", progress=False)
