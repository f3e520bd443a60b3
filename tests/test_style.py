"""Gram matrices, style/content/TV losses, texture synthesis and style transfer (course_utils.style)."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import style as st
from course_utils import style_images as si
from course_utils.images import as_batch, load_image, noise_image, sample_images
from course_utils.optimize.objectives import tv_penalty
from course_utils.optimize import Progress
from helpers import assert_same_run

LITE0 = st.LOSS_LAYERS["efficientnet_lite0"]


@pytest.fixture(scope="module")
def net(model):
    return st.LossNetwork(model, LITE0["style"], LITE0["content"], name="lite0")


class TinyVGG(nn.Module):
    """A VGG-shaped model: features (conv, ReLU, max pool) then a classifier."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(16, 10)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


# ---------------------------------------------------------------- Gram matrix

def test_gram_matrix_matches_an_explicit_double_loop():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 4, 3))
    expected = np.zeros((5, 5))
    for i in range(5):
        for j in range(5):
            expected[i, j] = sum(f[i, y, x] * f[j, y, x] for y in range(4) for x in range(3)) / 12
    got = st.gram_matrix(torch.from_numpy(f))
    assert torch.allclose(got, torch.from_numpy(expected), atol=1e-12)
    assert torch.allclose(st.gram_matrix(torch.from_numpy(f), normalize=False), torch.from_numpy(expected * 12))


def test_gram_matrix_of_a_batch_is_one_gram_per_image_and_symmetric():
    f = torch.randn(3, 6, 5, 5)
    g = st.gram_matrix(f)
    assert g.shape == (3, 6, 6)
    for n in range(3):
        assert torch.allclose(g[n], st.gram_matrix(f[n]), atol=1e-6)
    assert torch.allclose(g, g.transpose(1, 2))
    # positions are thrown away: shuffling them leaves the Gram unchanged
    perm = torch.randperm(25)
    shuffled = f.flatten(2)[:, :, perm].view_as(f)
    assert torch.allclose(st.gram_matrix(shuffled), g, atol=1e-5)


@pytest.mark.parametrize("bad", [torch.zeros(4, 4), torch.zeros(1, 1, 2, 2, 2), np.zeros((2, 3, 3))])
def test_gram_matrix_rejects_bad_shapes(bad):
    with pytest.raises(ValueError, match="features must be"):
        st.gram_matrix(bad)


# ---------------------------------------------------------------- losses, hand-worked

def test_style_loss_hand_worked():
    # layer a: one channel with values 1 and 2 -> G = (1 + 4) / 2 = 2.5; target 2 -> (0.5)^2 / 2^2 = 1/16
    # layer b: channels (1, 0) and (0, 1) at two positions -> G = I / 2; target I -> ||I/2||^2 / ||I||^2 = 1/4
    feats = {"a": torch.tensor([[[[1.0, 2.0]]]]), "b": torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])}
    grams = {"a": torch.tensor([[[2.0]]]), "b": torch.eye(2)[None]}
    assert float(st.style_loss(feats, grams)) == pytest.approx((1 / 16 + 1 / 4) / 2)
    assert float(st.style_loss(feats, grams, weights={"a": 2.0, "b": 1.0})) == pytest.approx(2 / 16 + 1 / 4)
    assert float(st.style_loss(feats, {"a": st.gram_matrix(feats["a"])})) == 0.0
    with pytest.raises(ValueError, match="no features"):
        st.style_loss({"a": feats["a"]}, grams)


def test_content_loss_and_total_variation_hand_worked():
    p = torch.tensor([3.0, 4.0])  # ||p||^2 = 25
    assert float(st.content_loss(torch.tensor([3.0, 5.0]), p)) == pytest.approx(1 / 25)
    # TV: a 2x2 image [[0, 1], [0, 1]] has one top-left pixel with dx = 1, dy = 0 -> mean = 1
    x = torch.tensor([[0.0, 1.0], [0.0, 1.0]]).view(1, 1, 2, 2)
    assert float(tv_penalty(x)) == pytest.approx(1.0)
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 3, 4) / 3  # dx = 1/3 everywhere, dy = 0
    assert float(tv_penalty(ramp)) == pytest.approx(1 / 9)


def test_softmax_features_flattens_peaks_and_keeps_the_scale():
    flat = torch.full((2, 3, 4, 4), 5.0)
    assert torch.allclose(st.softmax_features(flat), torch.ones_like(flat))
    f = torch.randn(2, 3, 4, 4) * 3
    s = st.softmax_features(f, temperature=2.0)
    assert torch.allclose(s.flatten(1).sum(1), torch.full((2,), 48.0))
    assert (s > 0).all()
    # a large temperature approaches 1 + (f - mean) / T: nearly the centred features
    t = 1000.0
    lin = 1 + (f - f.flatten(1).mean(1).view(2, 1, 1, 1)) / t
    assert torch.allclose(st.softmax_features(f, t), lin, atol=1e-4)


# ---------------------------------------------------------------- loss networks

def test_truncate_computes_the_same_activations_with_fewer_modules(model):
    layers = ["stem.act", "blocks.3.expand.act", "blocks.4"]
    cut = st.truncate(model, layers)
    assert cut is not model and "blocks.5" not in dict(cut.named_modules())
    assert not cut.training  # a cut in training mode would let batch norm use (and update) batch statistics
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad(), st.capture(model, layers) as full, st.capture(cut, layers) as part:
        model(x)
        cut(x)
    for l in layers:
        assert torch.allclose(full[l], part[l], atol=1e-5)
    assert not any(m._forward_hooks for m in model.modules())


def test_truncate_falls_back_to_the_whole_model_when_it_cannot_cut():
    class Branchy(nn.Module):  # children applied in a different order than defined
        def __init__(self):
            super().__init__()
            self.b = nn.Conv2d(3, 3, 1)
            self.a = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.b(self.a(x))

    m = Branchy()
    assert st.truncate(m, ["a"]) is m


def test_with_avg_pool_copies_and_replaces_every_max_pool():
    m = TinyVGG()
    avg = st.with_avg_pool(m)
    assert not any(isinstance(x, nn.MaxPool2d) for x in avg.modules())
    assert sum(isinstance(x, nn.AvgPool2d) for x in avg.modules()) == 2
    assert sum(isinstance(x, nn.MaxPool2d) for x in m.modules()) == 2  # the original is unchanged
    x = torch.rand(1, 3, 16, 16)
    assert avg(x).shape == m(x).shape


def test_with_avg_pool_explains_models_without_max_pooling(model):
    with pytest.raises(ValueError, match="no max-pooling"):
        st.with_avg_pool(model)


def test_loss_network_rejects_unknown_layers_and_arguments():
    with pytest.raises(ValueError, match="no default layers"):
        st.loss_network("resnet18")
    with pytest.raises(ValueError, match="pooling"):
        st.loss_network(pooling="min")
    with pytest.raises(TypeError, match="a loss network is a model name or a LossNetwork"):
        st.style_transfer(3, "chelsea", "gravel", size=32, steps=1, progress=False)


# ---------------------------------------------------------------- texture synthesis and style transfer

def _style_error(net, x, style, size):
    return float(st.style_loss(net.features(x, net.style_layers), net.grams(style, size=size)))


def test_texture_synthesis_lowers_the_style_loss_by_a_large_factor(net):
    size, style = 64, si.painting("kandinsky", size=64)
    x = st.texture_synthesis(net, style, size=size, steps=40, seed=0, progress=False)
    assert x.shape == (1, 3, size, size) and 0 <= x.min() and x.max() <= 1
    before = _style_error(net, noise_image(size, 0), style, size)
    after = _style_error(net, x, style, size)
    assert after < before / 10, (before, after)


def test_texture_synthesis_is_reproducible_from_its_seed(net):
    a = st.texture_synthesis(net, "brick", size=48, steps=5, seed=3, progress=False)
    b = st.texture_synthesis(net, "brick", size=48, steps=5, seed=3, progress=False)
    c = st.texture_synthesis(net, "brick", size=48, steps=5, seed=4, progress=False)
    assert_same_run(a, b)
    assert not torch.allclose(a, c)


def test_style_transfer_moves_towards_the_style_and_leaves_the_model_unchanged(net, model):
    flags = [p.requires_grad for p in model.parameters()]
    history = []
    size = 64
    style = si.painting("embers", size=size)
    x = st.style_transfer(net, "chelsea", style, size=size, steps=20, progress=Progress(history=history, show=False))
    assert x.shape == (1, 3, size, size) and 0 <= x.min() and x.max() <= 1
    assert history[-1] > history[0]  # the objective (minus the loss) rose
    content = as_batch("chelsea", size)
    assert _style_error(net, x, style, size) < 0.5 * _style_error(net, content, style, size)
    assert [p.requires_grad for p in model.parameters()] == flags and not model.training
    assert not any(m._forward_hooks for m in model.modules())


def test_layer_weights_weigh_each_style_layer(net):
    """Weights {l1: 1, l2: 0, ...} are the style loss of l1 alone (the layer-list form with its weight 1/1); and a
    heavier weight on the first layer pulls that layer's Gram closer than equal weights do."""
    first, second = net.style_layers[:2]
    kw = dict(size=48, steps=15, optimizer="adam", progress=False)
    only = st.style_transfer(net, "coffee", "embers", layer_weights={first: 1.0, second: 0.0}, **kw)
    listed = st.style_transfer(net, "coffee", "embers", style_layers=[first], **kw)
    torch.testing.assert_close(only, listed)
    heavy = st.style_transfer(net, "coffee", "embers", layer_weights={first: 0.9, second: 0.1}, **kw)
    even = st.style_transfer(net, "coffee", "embers", layer_weights={first: 0.5, second: 0.5}, **kw)
    target = net.grams(as_batch("embers", 48), [first])[first]
    err = lambda x: float(st.relative_error(net.grams(x, [first])[first], target))  # noqa: E731
    assert err(heavy) < err(even)
    with pytest.raises(ValueError, match="not style layers"):
        st.style_transfer(net, "coffee", "embers", layer_weights={"blocks.0": 1.0}, **kw)
    with pytest.raises(ValueError, match="weight 0"):
        st.style_transfer(net, "coffee", "embers", layer_weights={first: 0.0}, **kw)


def test_style_transfer_from_noise_and_with_adam(net):
    a = st.style_transfer(net, "coffee", "gravel", size=32, steps=3, init="noise", seed=1,
                          progress=False)
    b = st.style_transfer(net, "coffee", "gravel", size=32, steps=3, optimizer="adam", progress=False)
    assert a.shape == b.shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="init"):
        st.style_transfer(net, "coffee", "gravel", size=32, steps=1, init="grey")
    with pytest.raises(ValueError, match="optimizer"):
        st.style_transfer(net, "coffee", "gravel", size=32, steps=1, optimizer="sgd!")


def test_softmax_network_runs_and_judge_scores_the_style_image_itself_as_perfect(model):
    sm = st.LossNetwork(model, LITE0["style"][:2], "stem.act", transform=st.softmax_features)
    x = st.texture_synthesis(sm, "grass", size=32, steps=3, progress=False)
    assert x.shape == (1, 3, 32, 32)
    judge = st.LossNetwork(model, LITE0["style"], LITE0["content"])
    s = st.stylization_scores(judge, "gravel", "chelsea", "gravel", size=64)
    assert s["style"] == pytest.approx(0.0, abs=1e-6) and s["stylized"]
    s = st.stylization_scores(judge, "chelsea", "chelsea", "gravel", size=64)
    assert s["content"] == pytest.approx(0.0, abs=1e-6) and not s["stylized"]


# ---------------------------------------------------------------- generated style images and exercises

@pytest.mark.parametrize("kind", si.GENERATED)
def test_generated_paintings_are_deterministic_and_colourful(kind):
    a, b = si.painting(kind, size=64, seed=0), si.painting(kind, size=64, seed=0)
    assert a.size == (64, 64) and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(si.painting(kind, size=64, seed=1)))
    assert np.asarray(a).reshape(-1, 3).std(0).mean() > 20  # not a flat image


def test_paintings_are_images_like_the_bundled_ones():
    assert load_image("mondrian", size=40).size == (40, 40)
    assert np.array_equal(np.asarray(load_image("mondrian", size=40)), np.asarray(si.painting("mondrian", 40)))
    assert load_image("gravel", size=40).size == (40, 40)
    assert load_image("strokes").size == (512, 512)
    assert as_batch("embers", (30, 40)).shape == (1, 3, 30, 40)
    assert "kandinsky" in sample_images()
    with pytest.raises(ValueError, match="unknown painting"):
        si.painting("picasso")
    with pytest.raises(ValueError, match="'mondrian'"):
        load_image("mondrain")


def test_shuffle_tiles_permutes_tiles_and_keeps_the_pixels():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    y = st.shuffle_tiles(x, tiles=4, seed=1)
    assert y.shape == x.shape and torch.equal(y.flatten().sort().values, x.flatten().sort().values)
    assert not torch.equal(x, y) and torch.equal(y, st.shuffle_tiles(x, tiles=4, seed=1))
    tiles = {tuple(x[0, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].flatten().tolist()) for i in range(4) for j in range(4)}
    assert {tuple(y[0, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].flatten().tolist()) for i in range(4) for j in range(4)} == tiles
