"""Tests of course_utils.backprop.map_quality: deletion/insertion curves, rank correlation, randomization."""
import numpy as np
import pytest
import torch
from torch import nn

import course_utils as cu
from course_utils.backprop import attribution as A
from course_utils.backprop import map_quality as Q
from helpers import assert_same_run


@pytest.fixture(scope="module")
def photos(model):
    """Three photos at 112 px with the model's top class for each."""
    x = torch.cat([cu.as_batch(n, 112) for n in ("coffee", "motorcycle", "grace_hopper")])
    with torch.no_grad():
        return x, model(x).argmax(1)


def test_curve_endpoints_hand_checked(model, photos):
    x, t = photos
    saliency = A.saliency(model, x[:1], t[:1])
    with A.count_forwards(model) as n:
        f, d = Q.deletion_curve(model, x[:1], t[:1], saliency, steps=8, baseline=0.0, batch_size=4)
    assert n.images == 9 and n.calls == 3  # all 9 images of the curve, in batches of 4
    assert torch.allclose(f, torch.linspace(0, 1, 9)) and d.shape == (1, 9)
    with torch.no_grad():
        p = torch.softmax(model(torch.cat([x[:1], torch.zeros_like(x[:1])])), 1)[:, t[0]]
    assert d[0, 0] == pytest.approx(float(p[0]), abs=1e-5)  # nothing removed yet
    assert d[0, -1] == pytest.approx(float(p[1]), abs=1e-5)  # everything replaced by black
    f, i = Q.insertion_curve(model, x[:1], t[:1], saliency, steps=8)
    assert i[0, -1] == pytest.approx(float(p[0]), abs=1e-5)  # everything put back


def test_the_most_important_pixels_go_first():
    """A model that only looks at the top-left pixel: the map that ranks it first wins at once."""

    class TopLeft(nn.Module):
        def forward(self, x):
            return torch.stack([x[:, 0, 0, 0] * 10, torch.zeros(len(x))], dim=1)

    model = TopLeft()
    x = torch.ones(1, 3, 4, 4)
    good = torch.zeros(1, 1, 4, 4)
    good[..., 0, 0] = 1
    f, d = Q.deletion_curve(model, x, 0, good, steps=16, baseline=0.0)
    assert d[0, 1] == pytest.approx(0.5)  # after 1/16 of the pixels: the logits are equal
    bad = 1 - good
    _, d_bad = Q.deletion_curve(model, x, 0, bad, steps=16, baseline=0.0)
    assert (d_bad[0, :-1] > 0.99).all()
    assert Q.area_under_curve(f, d) < Q.area_under_curve(f, d_bad)


def test_area_under_curve_hand_worked():
    f = torch.tensor([0.0, 0.5, 1.0])
    assert float(Q.area_under_curve(f, torch.tensor([1.0, 0.5, 0.0]))) == pytest.approx(0.5)
    assert Q.area_under_curve(f, torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])).tolist() == [1.0, 0.5]


def test_a_good_map_beats_a_random_map(model, photos):
    """Occlusion (the map made by hiding things) makes deletion fall faster and insertion rise
    faster than a random map does, on real photos."""
    x, t = photos
    good = A.occlusion(model, x, t, window=28, stride=14)
    random = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    f, del_good = Q.deletion_curve(model, x, t, good, steps=10)
    _, del_random = Q.deletion_curve(model, x, t, random, steps=10)
    _, ins_good = Q.insertion_curve(model, x, t, good, steps=10)
    _, ins_random = Q.insertion_curve(model, x, t, random, steps=10)
    assert Q.area_under_curve(f, del_good).mean() < 0.7 * Q.area_under_curve(f, del_random).mean()
    assert (Q.area_under_curve(f, ins_good) > Q.area_under_curve(f, ins_random)).all()


def test_rank_correlation_equals_scipy():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 1, 6, 6, generator=g)
    b = a + 0.3 * torch.rand(3, 1, 6, 6, generator=g)
    b[1] = torch.relu(b[1] - 0.8)  # many ties at 0, as in a Grad-CAM map
    a[2] = a[2].round()  # ties on both sides
    ours = Q.rank_correlation(a, b)
    for k in range(3):
        expected = stats.spearmanr(a[k].flatten().numpy(), b[k].flatten().numpy()).statistic
        assert float(ours[k]) == pytest.approx(expected, abs=1e-9)
    assert Q.rank_correlation(a, a).tolist() == [1.0, 1.0, 1.0]
    assert Q.rank_correlation(a, -a)[0] == pytest.approx(-1.0)
    assert np.isnan(float(Q.rank_correlation(a[:1], torch.zeros(1, 1, 6, 6))[0]))


def test_randomization_steps(model):
    steps = Q.randomization_steps(model)
    assert steps == ["classifier", "head"] + [f"blocks.{i}" for i in range(15, -1, -1)] + ["stem"]


def test_cascading_randomization(model):
    x = cu.as_batch("chelsea", 32)
    before = [p.clone() for p in model.parameters()]
    methods = {"gradient": lambda m, x, t: A.saliency(m, x, t), "guided": A.guided_backprop}
    steps = ["classifier", ["head", "blocks.15"]]
    names, maps = Q.cascading_randomization(model, x, "tabby", methods, steps=steps, seed=1, progress=False)
    assert names == ["trained", "classifier", "head ... blocks.15"]
    assert all(len(v) == 3 for v in maps.values())
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))  # the model is untouched
    assert_same_run(maps["gradient"][0], A.saliency(model, x, "tabby"))
    assert not torch.allclose(maps["gradient"][1], maps["gradient"][0])
    _, again = Q.cascading_randomization(model, x, "tabby", methods, steps=steps, seed=1, progress=False)
    for a, b in zip(again["guided"], maps["guided"]):  # seeded: the same maps within float rounding
        assert_same_run(a, b)
    with pytest.raises(cu.layers.LayerNotFoundError):
        Q.cascading_randomization(model, x, "tabby", methods, steps=["clasifier"], progress=False)


def test_randomize_keeps_the_scale():
    conv = nn.Conv2d(8, 16, 3)
    with torch.no_grad():
        conv.weight.mul_(5).add_(1)
    mean, std = conv.weight.mean().item(), conv.weight.std().item()
    old = conv.weight.clone()
    Q.randomize_(conv, torch.Generator().manual_seed(0))
    assert not torch.allclose(conv.weight, old)
    assert conv.weight.mean().item() == pytest.approx(mean, abs=0.2 * std)
    assert conv.weight.std().item() == pytest.approx(std, rel=0.1)


def test_judge_maps_adds_a_random_map_and_matches_the_curves():
    from course_utils import testing

    model = testing.tiny_cnn(1, classes=5, scale=0.5)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    m = A.saliency(model, x, 2)
    judged = Q.judge_maps(model, x, 2, {"saliency": m}, steps=4, seed=3)
    assert list(judged) == ["saliency", "random"]
    f, d, i = judged["saliency"]
    f2, d2 = Q.deletion_curve(model, x, 2, m, steps=4)
    _, i2 = Q.insertion_curve(model, x, 2, m, steps=4)
    assert torch.equal(f, f2)
    assert_same_run(d, d2[0])
    assert_same_run(i, i2[0])
    random = torch.rand(x.shape, generator=torch.Generator().manual_seed(3))
    assert_same_run(judged["random"][1], Q.deletion_curve(model, x, 2, random, steps=4)[1][0])
    import matplotlib.pyplot as plt

    fig = Q.show_judged(judged, "class 2")
    assert [ax.get_title() for ax in fig.axes] == ["deletion, class 2", "insertion, class 2"]
    plt.close(fig)


def test_cascade_correlations_and_figures():
    import matplotlib.pyplot as plt

    maps = {"a": [torch.rand(1, 3, 8, 8) for _ in range(3)], "b": [torch.rand(1, 1, 8, 8) for _ in range(3)]}
    maps["a"][1] = maps["a"][0] * 2  # the same ranking
    rho = Q.cascade_correlations(maps)
    assert rho["a"][0] == pytest.approx(1.0) and rho["a"][1] == pytest.approx(1.0) and abs(rho["a"][2]) < 0.5
    fig = Q.show_cascade(["trained", "x", "y"], maps, torch.rand(1, 3, 8, 8), {"a": "rgb", "b": "heat"}, "t")
    assert len(fig.axes) == 6
    plt.close(fig)
    plt.close(Q.show_correlations(["trained", "x", "y"], rho))


def test_share_inside_by_hand():
    m = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    mask = torch.tensor([[True, False], [False, False]])
    assert Q.share_inside(m, mask) == pytest.approx(0.25)
    assert Q.share_inside(torch.ones(4, 4), torch.eye(4, dtype=torch.bool)) == pytest.approx(0.25)  # flat: the mask's share
    signed = torch.tensor([[[[1.0, -3.0], [0.0, 0.0]]]])  # (N, C, H, W): heatmap takes |.|, max over channels
    assert Q.share_inside(signed, mask) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="negative"):
        Q.share_inside(torch.tensor([[1.0, -1.0]]), torch.tensor([[True, False]]))
