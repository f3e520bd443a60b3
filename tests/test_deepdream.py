"""DeepDream: its objectives, one step, the octave pyramid, the zoom loop and the GIF writer."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import course_utils.deepdream as dd
import course_utils.optimize.transforms as T
from course_utils.images import as_batch as cu_as_batch
from course_utils.layers import activations
from course_utils.optimize.objectives import Context
from course_utils.optimize import Progress, evaluate, octave_pyramid, optimize_image
from course_utils.testing import tiny_cnn as _tiny_cnn

import helpers

_hooks = helpers.count_hooks


def tiny_cnn(seed=0):
    return _tiny_cnn(seed, width=8)


# ---------------------------------------------------------------- objectives

def test_dream_gradient_is_the_activation():
    a = torch.randn(1, 5, 4, 3, requires_grad=True)
    dd.dream_objective("l")(Context(None, {"l": a}, None)).backward()
    assert torch.allclose(a.grad, a.detach() / a.numel())


def test_guided_objective_matches_the_best_guide_vector_by_hand():
    # two guide vectors; each image position picks the one with the larger dot product
    guide = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).T.reshape(1, 2, 1, 2)  # y0 = (1, 0), y1 = (0, 2)
    a = torch.tensor([[3.0, 1.0], [1.0, 1.0], [-1.0, -2.0]]).T.reshape(1, 2, 1, 3).requires_grad_(True)
    # dots: pos0 (3, 2) -> 3 via y0; pos1 (1, 2) -> 2 via y1; pos2 (-1, -4) -> -1 via y0
    value = dd.guided_objective("l", guide)(Context(None, {"l": a}, None))
    assert float(value.detach()) == pytest.approx((3 + 2 - 1) / 3)
    value.backward()
    expected = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]]).T.reshape(1, 2, 1, 3) / 3
    assert torch.allclose(a.grad, expected)


def test_guided_objective_errors_are_clear():
    with pytest.raises(ValueError, match="activations"):
        dd.guided_objective("l", torch.zeros(4, 4))
    obj = dd.guided_objective("l", torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="same layer"):
        obj(Context(None, {"l": torch.zeros(1, 5, 2, 2)}, None))


# ---------------------------------------------------------------- one step and the pyramid

def test_dream_step_is_the_normalized_gradient_step():
    net = tiny_cnn()
    x = torch.rand(1, 3, 12, 10)
    out = dd.dream_step(net, x, "conv2", lr=0.05)
    # by hand: gradient of 1/2 mean(a^2) by autograd, then x + lr g / mean|g|
    xg = x.clone().requires_grad_(True)
    a = net.relu1(net.conv1(xg))
    a = net.conv2(a)
    (0.5 * a.pow(2).mean()).backward()
    g = xg.grad
    assert torch.allclose(out, (x + 0.05 * g / g.abs().mean()).clamp(0, 1), atol=1e-6)
    # the mean absolute change is lr (before clamping) whatever the gradient's scale
    assert (out - x).abs().mean() <= 0.05 + 1e-6


def test_deepdream_is_the_octave_pyramid_around_jittered_normalized_steps():
    net = tiny_cnn(1)
    x = torch.rand(1, 3, 30, 22)
    g = torch.Generator().manual_seed(5)  # one stream of jitter draws for all octaves
    by_hand = octave_pyramid(x, lambda z: optimize_image(net, dd.dream_objective("conv2"), z, 2, 0.03, "normalized",
                                                         [T.jitter(4)], seed=g, progress=False), 3, 1.5)
    dream = dd.deepdream(net, x, "conv2", octaves=3, octave_scale=1.5, steps=2, lr=0.03, jitter=4, seed=5,
                         progress=False)
    helpers.assert_same_run(dream, by_hand)


def test_octave_pyramid_with_a_ripple_by_hand():
    x = torch.rand(1, 3, 20, 16)
    resize = lambda t, hw: torch.nn.functional.interpolate(t, size=hw, mode="bilinear", align_corners=False)  # noqa
    add = lambda t: (t + 0.1).clamp(0, 1)  # noqa: E731 - a "dream" that brightens
    small = add(resize(x, (10, 8)))
    expected = add((x + resize(small - resize(x, (10, 8)), (20, 16))).clamp(0, 1))
    assert torch.allclose(octave_pyramid(x, add, 2, 2.0), expected, atol=1e-6)


# ---------------------------------------------------------------- deepdream on the real model

def test_deepdream_raises_the_objective_and_keeps_the_input_size(model):
    x = torch.rand(1, 3, 96, 80) * 0.5 + 0.25
    history = []
    out = dd.deepdream(model, x, layer="blocks.4", octaves=3, octave_scale=1.4, steps=4,
                       progress=Progress(history=history, show=False))
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert len(history) == 12
    # each octave starts lower (a new size) but rises within it, and the dream ends higher than it began
    for k in range(3):
        assert history[4 * k + 3] > history[4 * k]
    obj = dd.dream_objective("blocks.4")
    assert evaluate(model, obj, out) > 1.5 * evaluate(model, obj, x)


def test_deepdream_takes_names_and_sizes(model):
    out = dd.deepdream(model, "chelsea", layer="blocks.2", size=(48, 64), octaves=2, steps=1, progress=False)
    assert out.shape == (1, 3, 48, 64)


def test_seeds_reproduce(model):
    x = torch.rand(1, 3, 64, 64)
    kw = dict(layer="blocks.3", octaves=2, steps=3, jitter=8, progress=False)
    a = dd.deepdream(model, x, seed=1, **kw)
    b = dd.deepdream(model, x, seed=1, **kw)
    c = dd.deepdream(model, x, seed=2, **kw)
    helpers.assert_same_run(a, b)
    assert not torch.allclose(a, c)


def test_guided_dream_moves_towards_the_guide(model):
    layer = "blocks.4"
    x = torch.rand(1, 3, 64, 64) * 0.4 + 0.3
    guide = activations(model, cu_as_batch("chelsea", 224), layer)
    obj = dd.guided_objective(layer, guide)

    out = dd.deepdream(model, x, layer=layer, guide="chelsea", octaves=1, steps=5, progress=False)
    assert evaluate(model, obj, out) > evaluate(model, obj, x)


def test_model_is_left_unchanged(model):
    flags = [p.requires_grad for p in model.parameters()]
    dd.deepdream(model, torch.rand(1, 3, 48, 48), layer="blocks.2", octaves=1, steps=1, progress=False)

    def fail(step, image, value):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        dd.deepdream(model, torch.rand(1, 3, 48, 48), layer="blocks.2", octaves=1, steps=2,
                     progress=Progress(callback=fail, every=1, show=False))
    assert not model.training and [p.requires_grad for p in model.parameters()] == flags and _hooks(model) == 0


def test_bad_arguments_are_clear(model):
    from course_utils.layers import LayerNotFoundError

    with pytest.raises(LayerNotFoundError):
        dd.deepdream(model, torch.rand(1, 3, 32, 32), layer="block.3", progress=False)
    with pytest.raises(TypeError, match="layer name"):
        dd.deepdream(model, torch.rand(1, 3, 32, 32), layer=3, progress=False)
    with pytest.raises(ValueError, match="octave_scale"):
        dd.deepdream(model, torch.rand(1, 3, 32, 32), layer="blocks.2", octave_scale=0.5, progress=False)
    with pytest.raises(ValueError, match="frames"):
        dd.zoom_sequence(model, frames=0, progress=False)
    with pytest.raises(ValueError, match="zoom"):
        dd.zoom(torch.rand(1, 3, 8, 8), 0.9)


# ---------------------------------------------------------------- zoom loop and GIF

def test_zoom_magnifies_the_centre():
    x = torch.zeros(1, 3, 40, 40)
    x[..., 15:25, 15:25] = 1.0  # a centred square of side 10
    z = dd.zoom(x, 2.0)
    assert z.shape == x.shape
    assert 18 <= int((z[0, 0, 20] > 0.5).sum()) <= 22  # twice as wide
    assert torch.equal(dd.zoom(x, 1.0), x)


def test_zoom_sequence_keeps_size_and_range(model):
    frames = dd.zoom_sequence(model, "noise", frames=3, size=48, layer="blocks.3", octaves=2, steps=2,
                              zoom_factor=1.1, progress=False)
    assert len(frames) == 3
    for f in frames:
        assert f.shape == (1, 3, 48, 48) and 0 <= f.min() and f.max() <= 1
    assert not torch.equal(frames[1], frames[2])
    again = dd.zoom_sequence(model, "noise", frames=3, size=48, layer="blocks.3", octaves=2, steps=2,
                             zoom_factor=1.1, progress=False)
    for a, b in zip(frames, again):
        helpers.assert_same_run(a, b)
    photo = dd.zoom_sequence(model, "rocket", frames=2, size=40, layer="blocks.3", octaves=1, steps=1, progress=False)
    assert photo[0].shape == (1, 3, 40, 40)


def test_gif_has_the_frames(tmp_path):
    frames = [torch.full((1, 3, 10, 12), v) for v in (0.0, 0.5, 1.0)]
    data = dd.gif_bytes(frames, duration=100)
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.size == (12, 10) and gif.n_frames == 3
    gif.seek(1)
    assert abs(np.asarray(gif.convert("RGB")).astype(int).mean() - 128) <= 1
    path = dd.save_gif(frames, tmp_path / "sub" / "z.gif")
    assert Image.open(path).n_frames == 3
    with pytest.raises(ValueError, match="frames"):
        dd.gif_bytes([])


# ---------------------------------------------------------------- the notebook's exercises
