"""The image optimizer, its objectives, parameterizations, transforms and image operations."""
import numpy as np
import pytest
import torch

import course_utils.optimize.objectives as O
import course_utils.optimize.param as P
import course_utils.optimize.transforms as T
from course_utils.images import noise_image
from course_utils.optimize.objectives import Context
from course_utils.optimize import (OptimizationError, Progress, evaluate, octave_pyramid, octave_sizes,
                                   optimize_image)
from course_utils.testing import tiny_cnn as _tiny_cnn
from course_utils.optimize.transforms import clip_small_contributions, clip_small_pixels

import helpers

_hooks = helpers.count_hooks


def tiny_cnn(seed=0):
    return _tiny_cnn(seed, width=8)


def ctx_of(x, acts=None, logits=None):
    return Context(x, acts or {}, logits if logits is not None else torch.zeros(1, 1000))


# ---------------------------------------------------------------- objectives

def test_objectives_compose_like_numbers():
    x = torch.rand(1, 3, 4, 4)
    acts = {"a": torch.rand(1, 2, 3, 3), "b": torch.rand(1, 2, 3, 3)}
    ctx = ctx_of(x, acts)
    a, b = O.channel("a", 1), O.channel("b", 0)
    va, vb = float(acts["a"][:, 1].mean()), float(acts["b"][:, 0].mean())
    assert float((a + 0.1 * b)(ctx)) == pytest.approx(va + 0.1 * vb)
    assert float((a - b)(ctx)) == pytest.approx(va - vb)
    assert float((-a)(ctx)) == pytest.approx(-va)
    assert float((a / 2 + 1)(ctx)) == pytest.approx(va / 2 + 1)
    assert float((3 - a)(ctx)) == pytest.approx(3 - va)
    assert (a + 0.1 * b).layers == {"a", "b"}


def test_penalties_against_hand_worked_values():
    x = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])  # one channel, 2x2
    # TV: one position (0,0): dx = 1, dy = 1 -> (1 + 1)^(beta/2)
    assert float(O.tv_penalty(x, beta=2)) == pytest.approx(2.0)
    assert float(O.tv_penalty(x, beta=1)) == pytest.approx(2 ** 0.5, rel=1e-5)
    # 3x3 ramp: x[i,j] = j -> dx = 1, dy = 0 on the 4 positions
    ramp = torch.arange(3.0).repeat(3, 1).view(1, 1, 3, 3)
    assert float(O.tv_penalty(ramp)) == pytest.approx(1.0)
    img = torch.tensor([0.0, 0.5, 1.0, 0.75]).view(1, 1, 2, 2)
    assert float(O.l2()(ctx_of(img))) == pytest.approx((0.25 + 0 + 0.25 + 0.0625) / 4)
    assert float(O.alpha_norm(3)(ctx_of(img))) == pytest.approx((0.125 + 0 + 0.125 + 0.015625) / 4)


def test_feature_distance_and_deepdream_gradient():
    target = torch.rand(1, 4, 5, 5)
    a = target.clone().requires_grad_(True)
    d = O.feature_distance("l", target)(ctx_of(None, {"l": a}))
    assert float(d.detach()) == 0
    a2 = (2 * target).requires_grad_(True)
    assert float(O.feature_distance("l", target)(ctx_of(None, {"l": a2}))) == pytest.approx(1.0)
    # DeepDream: the gradient of the objective w.r.t. the activation is the activation (over N)
    act = torch.randn(1, 4, 5, 5, requires_grad=True)
    O.layer_l2("l")(ctx_of(None, {"l": act})).backward()
    assert torch.allclose(act.grad, act.detach() / act.numel())


def test_class_logit_by_name():
    logits = torch.zeros(1, 1000)
    logits[0, 9] = 3.0
    assert float(O.class_logit("ostrich")(ctx_of(None, logits=logits))) == 3.0
    with pytest.raises(ValueError, match="ostrich"):
        O.class_logit("ostrch")


# ---------------------------------------------------------------- transforms and image operations

def test_blur_matches_scipy():
    from scipy.ndimage import gaussian_filter

    x = torch.rand(1, 3, 20, 17, generator=torch.Generator().manual_seed(0))
    for sigma in (0.5, 1.0, 2.0):
        ours = T.gaussian_blur(x, sigma)[0].numpy()
        ref = np.stack([gaussian_filter(c, sigma, mode="mirror", truncate=4.0) for c in x[0].numpy()])
        assert np.allclose(ours, ref, atol=1e-5), sigma


def test_jitter_is_a_seeded_shift():
    x = torch.rand(1, 3, 10, 10)
    t = T.jitter(3)
    a = t(x, torch.Generator().manual_seed(1))
    b = t(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(a.flatten().sort().values, x.flatten().sort().values)  # a permutation of the pixels
    shifts = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)]
    assert any(torch.equal(a, torch.roll(x, s, dims=(-2, -1))) for s in shifts)


def test_scale_and_rotate():
    x = torch.rand(1, 3, 40, 40)
    g = torch.Generator().manual_seed(0)
    sizes = {T.random_scale((0.5, 1.0))(x, g).shape[-1] for _ in range(20)}
    assert sizes == {20, 40}
    assert torch.allclose(T.random_rotate(0)(x, g), x, atol=1e-5)
    y = T.random_rotate(30)(x, g)
    assert y.shape == x.shape and not torch.allclose(y, x)


def test_clip_small_pixels_follows_its_definition():
    x = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(0))
    out = clip_small_pixels(x, 30)
    norms = np.linalg.norm(x[0].numpy() - 0.5, axis=0)
    thr = np.percentile(norms, 30)
    for i in range(6):
        for j in range(7):
            expected = np.full(3, 0.5) if norms[i, j] < thr else x[0, :, i, j].numpy()
            assert np.allclose(out[0, :, i, j].numpy(), expected)
    assert (norms < thr).sum() == 13  # the 30th percentile of 42 values sits at sorted index 0.3 * 41 = 12.3


def test_clip_small_contributions_follows_its_definition():
    x = torch.rand(1, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    grad = torch.randn(1, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    out = clip_small_contributions(x, grad, 50)
    contrib = np.abs((x[0].numpy() - 0.5) * grad[0].numpy()).sum(0)
    thr = np.percentile(contrib, 50)
    grey = contrib < thr
    assert np.allclose(out[0].numpy()[:, grey], 0.5)
    assert np.allclose(out[0].numpy()[:, ~grey], x[0].numpy()[:, ~grey])


# ---------------------------------------------------------------- the loop

@pytest.mark.parametrize("optimizer,lr", [("adam", 0.05), ("sgd", 50.0), ("lbfgs", 0.5), ("normalized", 0.02)])
def test_optimizer_raises_the_objective(optimizer, lr):
    net = tiny_cnn()
    obj = O.channel("conv2", 3) - 0.1 * O.l2()
    history = []
    x = optimize_image(net, obj, P.noise(24), steps=25, lr=lr, optimizer=optimizer,
                       progress=Progress(history=history, show=False))
    assert x.shape == (1, 3, 24, 24) and 0 <= x.min() and x.max() <= 1
    assert len(history) == 25
    assert history[-1] > history[0] + 0.05, (history[0], history[-1])
    assert evaluate(net, obj, x) > evaluate(net, obj, torch.full_like(x, 0.5))


def test_normalized_step_is_the_formula():
    # x <- clamp(x + lr * g / mean|g|, 0, 1), with g the gradient of the objective, worked out with autograd
    net, x, lr = tiny_cnn(), torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25, 0.03
    obj = O.layer_l2("relu2")
    xx = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(0.5 * _relu2(net, xx).pow(2).mean(), xx)
    expected = (x + lr * g / g.abs().mean()).clamp(0, 1)
    got = optimize_image(net, obj, x, steps=1, lr=lr, optimizer="normalized", progress=False)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def _relu2(net, x):
    return net.relu2(net.conv2(net.relu1(net.conv1(x))))


def test_fourier_parameterization_and_transforms():
    net = tiny_cnn()
    history = []
    x = optimize_image(net, O.channel("relu1", 2), P.fourier((20, 28)), steps=20, lr=0.1,
                       transforms=T.standard(jitter_px=2), progress=Progress(history=history, show=False))
    assert x.shape == (1, 3, 20, 28) and 0 <= x.min() and x.max() <= 1
    assert history[-1] > history[0]


def test_seeds_reproduce_exactly():
    net = tiny_cnn()
    kw = dict(steps=5, transforms=T.standard(jitter_px=2), post=[T.clip_pixels(10), T.blur_every(2, 0.5)],
              progress=False)
    a = optimize_image(net, O.channel("conv2", 1), P.noise(24, 3), seed=3, **kw)
    b = optimize_image(net, O.channel("conv2", 1), P.noise(24, 3), seed=3, **kw)
    c = optimize_image(net, O.channel("conv2", 1), P.noise(24, 3), seed=4, **kw)
    helpers.assert_same_run(a, b)
    assert not torch.allclose(a, c)
    # a generator passed as the seed goes on with its stream: start and transforms from one seed
    g = torch.Generator().manual_seed(3)
    d = optimize_image(net, O.channel("conv2", 1), P.noise(24, g), seed=g, **kw)
    g = torch.Generator().manual_seed(3)
    e = optimize_image(net, O.channel("conv2", 1), P.noise(24, g), seed=g, **kw)
    helpers.assert_same_run(d, e)
    assert not torch.allclose(d, a)
    assert torch.equal(P.noise(24, 3).image(), noise_image(24, 3))


def test_post_step_operations_run_in_order_on_the_step_count():
    net, seen = tiny_cnn(), []

    def record(x, step):
        seen.append((step.index, step.grad.shape, type(step.value)))
        return x

    optimize_image(net, O.channel("conv2", 0), P.noise(16), steps=3, post=[record], progress=False)
    assert seen == [(k, (1, 3, 16, 16), float) for k in range(3)]
    # blur_every(2): the image is blurred after steps 1 and 3 (0-based: index 1, 3), not after 0 and 2
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    op = T.blur_every(2, 1.0)
    step = lambda k: type("S", (), {"index": k, "grad": None})  # noqa: E731
    assert torch.equal(op(x, step(0)), x) and torch.allclose(op(x, step(1)), T.gaussian_blur(x, 1.0))


def test_stop_returns_the_image_of_that_pass_before_stepping():
    net, history = tiny_cnn(), []
    calls = []

    def stop(ctx):
        calls.append(ctx.image.detach().clone())
        return len(calls) == 4

    x = optimize_image(net, O.channel("conv2", 0), P.noise(16), steps=10, stop=stop,
                       progress=Progress(history=history, show=False))
    assert len(history) == 3  # three steps were taken; the fourth pass stopped it
    assert torch.equal(x, calls[-1])


def test_progress_calls_back_every_n_steps_and_at_the_end():
    net, seen = tiny_cnn(), []
    progress = Progress(callback=lambda step, image, value: seen.append((step, tuple(image.shape))), every=4,
                        show=False)
    optimize_image(net, O.channel("conv2", 0), P.noise(16), steps=10, progress=progress)
    assert seen == [(4, (1, 3, 16, 16)), (8, (1, 3, 16, 16)), (10, (1, 3, 16, 16))]
    # a bare callback is a Progress too
    got = []
    optimize_image(net, O.channel("conv2", 0), P.noise(16), steps=10, progress=lambda s, x, v: got.append(s))
    assert got == [10]


def test_octaves_keep_size_and_carry_detail():
    net = tiny_cnn()
    start = torch.rand(1, 3, 40, 30)
    # with no steps, the detail is zero at every octave and the start comes back
    same = octave_pyramid(start, lambda x: optimize_image(net, O.channel("conv2", 0), x, steps=0, progress=False))
    assert torch.allclose(same, start, atol=1e-6)
    assert octave_sizes((40, 30), 3, 2) == [(10, 8), (20, 15), (40, 30)]
    seen = []
    progress = Progress(callback=lambda s, x, v: seen.append(tuple(x.shape[-2:])), every=2, show=False, total=6)
    with progress.running():
        out = octave_pyramid(start, lambda x: optimize_image(net, O.channel("conv2", 0), x, steps=2,
                                                             progress=progress), octaves=3, octave_scale=2)
    assert out.shape == start.shape
    assert seen == [(10, 8), (20, 15), (40, 30)]
    with pytest.raises(ValueError, match="octave"):
        octave_sizes((40, 30), 3, 0.5)


def test_nan_and_explosion_stop_with_a_clear_message():
    net = tiny_cnn()
    nan = O.Objective(lambda ctx: ctx.image.sum() * float("nan"), name="nan")
    with pytest.raises(OptimizationError, match="NaN|nan"):
        optimize_image(net, nan, P.noise(16), steps=3, progress=False)
    huge = O.Objective(lambda ctx: ctx.image.sum() * 1e15, name="huge")
    with pytest.raises(OptimizationError, match="step size"):
        optimize_image(net, huge, P.noise(16), steps=3, progress=False)


def test_model_is_left_unchanged_even_after_an_error():
    net = tiny_cnn()
    net.train()
    net.fc.weight.requires_grad_(True)
    net.conv1.weight.requires_grad_(False)
    flags = [p.requires_grad for p in net.parameters()]
    optimize_image(net, O.channel("conv2", 0), P.noise(16), steps=2, progress=False)
    bad = O.Objective(lambda ctx: ctx.acts["conv2"].sum() * float("inf"), {"conv2"})
    with pytest.raises(OptimizationError):
        optimize_image(net, bad, P.noise(16), steps=2, progress=False)
    assert net.training and [p.requires_grad for p in net.parameters()] == flags
    # modes are restored module by module: an eval-mode part of a training-mode model stays in eval
    net.conv2.eval()
    optimize_image(net, O.channel("conv2", 0), P.noise(16), steps=1, progress=False)
    assert net.training and not net.conv2.training
    assert _hooks(net) == 0 and all(p.grad is None for p in net.parameters())


def test_bad_arguments_are_clear():
    net = tiny_cnn()
    with pytest.raises(TypeError, match="Objective"):
        optimize_image(net, lambda ctx: 0, P.noise(16), progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        optimize_image(net, O.channel("conv2", 0), P.noise(16), steps=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="pixel"):
        optimize_image(net, O.channel("conv2", 0), P.fourier(16), steps=1, post=[T.clip_pixels(10)], progress=False)
    with pytest.raises(ValueError, match="steps"):
        optimize_image(net, O.channel("conv2", 0), P.noise(16), steps=2.5, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        optimize_image(net, O.channel("conv2", 0), torch.full((1, 3, 8, 8), 200.0), steps=1, progress=False)
    from course_utils.layers import LayerNotFoundError

    with pytest.raises(LayerNotFoundError, match="conv2"):
        optimize_image(net, O.channel("conv3", 0), P.noise(16), steps=1, progress=False)


# ---------------------------------------------------------------- batches: interpolation and diversity

def test_on_image_and_interpolate_weight_each_image_of_the_batch():
    acts = {"l": torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)}
    ctx = ctx_of(torch.zeros(2, 3, 4, 4), acts, torch.zeros(2, 1000))
    a, b = O.channel("l", 0), O.channel("l", 2)
    assert float(O.on_image(a, 1)(ctx)) == pytest.approx(float(acts["l"][1, 0].mean()))
    # two images: image 0 gets a alone, image 1 gets b alone
    expected = float(acts["l"][0, 0].mean() + acts["l"][1, 2].mean())
    assert float(O.interpolate(a, b, 2)(ctx)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least 2"):
        O.interpolate(a, b, 1)


def test_direction_against_its_definition():
    a = torch.randn(2, 3, 4, 5)
    v = torch.tensor([1.0, -2.0, 0.5])
    ctx = ctx_of(None, {"l": a})
    expected = float(sum(v[c] * a[:, c] for c in range(3)).mean())
    assert float(O.direction("l", v)(ctx)) == pytest.approx(expected, rel=1e-5)
    assert float(O.direction("l", [1.0, 0, 0])(ctx)) == pytest.approx(float(O.channel("l", 0)(ctx)), rel=1e-5)
    with pytest.raises(ValueError, match="3 channels"):
        O.direction("l", [1.0, 2.0])(ctx)


def test_gram_similarity_by_hand():
    one = torch.rand(1, 4, 3, 3)
    assert float(O.gram_similarity(one.repeat(3, 1, 1, 1))) == pytest.approx(2.0, rel=1e-5)  # N - 1
    apart = torch.zeros(2, 2, 2, 2)
    apart[0, 0], apart[1, 1] = 1.0, 1.0
    assert float(O.gram_similarity(apart)) == 0.0
    # two images, by hand: G_i = F_i F_i^T / |F_i F_i^T|, similarity = 2 <G_0, G_1> / 2
    f = torch.rand(2, 3, 5)
    g = [fi @ fi.T / (fi @ fi.T).norm() for fi in f]
    assert float(O.gram_similarity(f.view(2, 3, 5, 1))) == pytest.approx(float((g[0] * g[1]).sum()), rel=1e-5)


def test_diversity_makes_a_batch_differ_and_batches_optimize_together():
    net = tiny_cnn()
    obj = O.channel("relu2", 3)
    same = optimize_image(net, obj, P.noise(24, 0, batch=3), steps=30, lr=0.05, progress=False)
    apart = optimize_image(net, obj - 5.0 * O.diversity("relu2"), P.noise(24, 0, batch=3), steps=30, lr=0.05,
                           progress=False)
    assert same.shape == apart.shape == (1 * 3, 3, 24, 24)
    with torch.no_grad():
        sim = lambda x: float(O.gram_similarity(net.relu2(net.conv2(net.relu1(net.conv1(x))))))  # noqa: E731
    assert sim(apart) < sim(same)


def test_evaluate_each_image_of_a_batch_alone():
    model = _tiny_cnn(0, 10)
    x = noise_image(16, seed=0, batch=3, std=0.2)
    objective = O.class_logit(3) + O.channel("conv1", 1) - 0.5 * O.l2()
    each = evaluate(model, objective, x, each=True)
    assert each == pytest.approx([evaluate(model, objective, x[k:k + 1]) for k in range(3)], rel=1e-5)
    assert evaluate(model, objective, x) == pytest.approx(sum(each) / 3, rel=1e-5)  # the batch: their mean
    assert len(set(round(v, 4) for v in each)) == 3  # and they do differ
