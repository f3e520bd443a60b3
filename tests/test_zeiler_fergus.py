"""Tests of course_utils.zeiler_fergus: Zeiler & Fergus's projection with switches, against autograd with the
deconvnet rule as Captum's NeuronDeconvolution computes it (an independent oracle), and by hand."""
from collections import OrderedDict

import matplotlib
import pytest
import torch
from torch import nn

from course_utils import zeiler_fergus as D
from course_utils.digits import DigitsCNN
from course_utils.seeding import forked

from helpers import assert_unchanged, state

matplotlib.use("Agg")


def digits_net(seed=0):
    with forked(seed):
        return DigitsCNN().eval()


def acts(model, x, layer):
    with torch.no_grad():
        return D.forward_with_switches(model, x, layer)[0]


def images(seed=0, n=3):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def captum_projection(model, x, layer, channel):
    """Captum's NeuronDeconvolution of each image's strongest unit of the channel, times that unit's value:
    the projection computed by a library that knows nothing of switches (an independent oracle)."""
    from captum.attr import NeuronDeconvolution

    module = dict(model.named_modules())[layer]
    out = []
    for image in x.split(1):
        a = acts(model, image, layer)[0, channel]
        i, j = divmod(int(a.flatten().argmax()), a.shape[1])
        out.append(float(a[i, j]) * NeuronDeconvolution(model, module).attribute(image.clone(),
                                                                               neuron_selector=(channel, i, j)))
    return torch.cat(out)


@pytest.mark.parametrize("layer", ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"])
def test_projection_is_the_activation_times_captums_deconvnet_gradient(layer):
    model, x = digits_net(1), images(1)
    before = state(model)
    channel = 5
    r = D.project(model, x, layer, channel)
    a = acts(model, x, layer)
    assert (a[:, channel].flatten(1).max(1).values > 0).any()
    torch.testing.assert_close(r, captum_projection(model, x, layer, channel), atol=1e-5, rtol=1e-4)
    assert r.abs().sum() > 0
    assert_unchanged(model, before)


def test_projection_equals_captums_neuron_deconvolution():
    captum_attr = pytest.importorskip("captum.attr")
    model, x = digits_net(2), images(2, n=1)
    channel = 3
    a = acts(model, x, "relu2")[0, channel]
    i, j = divmod(int(torch.where(a > 0, a, a.max()).argmin()), a.shape[1])  # the weakest unit that responds
    value = float(a[i, j])
    assert value > 0 and value < float(a.max())
    r = D.project(model, x, "relu2", channel, position=(i, j))
    ref = captum_attr.NeuronDeconvolution(model, model.relu2).attribute(x.clone(), neuron_selector=(channel, i, j))
    torch.testing.assert_close(r, value * ref, atol=1e-5, rtol=1e-4)


def test_one_convolution_by_hand():
    """A conv's projection of unit (i, j) is the unit's value times its filter, laid at the unit's field
    (cross-correlation's adjoint: the filter as it is, not flipped, in PyTorch's convention)."""
    conv = nn.Conv2d(1, 1, 3, bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(9.0).view(1, 1, 3, 3) - 4)
        conv.bias.fill_(10.0)  # the projection ignores the bias: only the value carries it
    model = nn.Sequential(OrderedDict([("conv", conv)]))
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 3] = 1.0  # unit (1, 1) sees rows 1-3, cols 1-3: weight[1, 2] = 1 -> value 1 + 10 = 11
    r = D.project(model, x, "conv", 0, position=(1, 1))
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 1:4, 1:4] = 11.0 * conv.weight[0, 0].detach()
    torch.testing.assert_close(r, expected)


def test_unpooling_puts_values_at_the_switches_by_hand():
    pool = nn.MaxPool2d(2)
    model = nn.Sequential(OrderedDict([("pool", pool)]))
    x = torch.tensor([[[[0.1, 0.5, 0.0, 0.02], [0.2, 0.3, 0.09, 0.01], [0.0, 0.0, 0.7, 0.0], [0.0, 0.05, 0.0, 0.0]]]])
    r = D.project(model, x, "pool", 0, position=(0, 0))  # the window's winner is 0.5 at (0, 1)
    expected = torch.zeros_like(x)
    expected[0, 0, 0, 1] = 0.5
    torch.testing.assert_close(r, expected)
    r = D.project(model, x, "pool", 0)  # strongest unit: 0.7 at (2, 2)
    assert r.nonzero().tolist() == [[0, 0, 2, 2]] and float(r.sum()) == pytest.approx(0.7)


def test_overlapping_pooling_sums_like_the_gradient():
    """With 3x3 windows at stride 2 two windows can pick the same winner; unpooling then adds, as backprop does."""
    with forked(3):
        model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 4, 3, padding=1)), ("relu", nn.ReLU()),
                                           ("pool", nn.MaxPool2d(3, stride=2)), ("conv2", nn.Conv2d(4, 2, 3)),
                                           ("relu2", nn.ReLU())])).eval()
    x = images(3, n=2)[:, :, :15, :15]
    r = D.project(model, x, "relu2", 1)
    torch.testing.assert_close(r, captum_projection(model, x, "relu2", 1), atol=1e-5, rtol=1e-4)


def test_the_image_enters_through_the_switches():
    """Rectification ignores the forward pass and the rest is linear, so the map's shape can only change with
    the switches: the same unit of two images gives different shapes, while half the image (the digits net
    has zero biases: the same switches) gives exactly half the map."""
    model = digits_net(4)
    a, b = images(4, n=2).split(1)
    both = torch.minimum(acts(model, a, "relu2")[0], acts(model, b, "relu2")[0])
    channel, i, j = (int(v) for v in torch.unravel_index(both.argmax(), both.shape))
    maps = [D.project(model, t, "relu2", channel, position=(i, j)) for t in (a, b, a / 2)]
    values = [float(acts(model, t, "relu2")[0, channel, i, j]) for t in (a, b, a / 2)]
    assert min(values) > 0
    assert not torch.allclose(maps[0] / values[0], maps[1] / values[1], atol=1e-4)
    torch.testing.assert_close(maps[2], maps[0] / 2)  # the value halves; the steps back down are the same


def test_projection_lies_inside_the_receptive_field():
    from course_utils.receptive_fields import receptive_field

    model, x = digits_net(5), images(5, n=1)
    rf = receptive_field(model, "relu2", (28, 28))
    r = D.project(model, x, "relu2", 2, position=(6, 5))
    top, left, bottom, right = rf.box(6, 5)
    inside = torch.zeros_like(r, dtype=torch.bool)
    inside[..., max(top, 0):bottom, max(left, 0):right] = True
    assert r[inside].abs().sum() > 0 and r[~inside].abs().sum() == 0


def test_clear_errors():
    model, x = digits_net(), images(n=1)
    with pytest.raises(ValueError, match="its layers are conv1, relu1, pool1"):
        D.project(model, x, "conv3", 0)
    with pytest.raises(ValueError, match="'flatten' is a Flatten.*conv1, relu1, pool1, conv2, relu2, pool2"):
        D.project(model, x, "fc", 0)
    with pytest.raises(ValueError, match="16 channels; channel 16"):
        D.project(model, x, "relu1", 16)
    with pytest.raises(ValueError, match="outside the"):
        D.project(model, x, "relu1", 0, position=(28, 0))


def test_top_projections_and_figure():
    model, x = digits_net(6), images(6, n=20)
    pairs = D.top_projections(model, x, "relu2", 3, k=4)
    assert len(pairs) == 4
    values = [p.value for p, _ in pairs]
    assert values == sorted(values, reverse=True)
    for p, r in pairs:
        assert r.shape == p.pixels.shape and r.abs().sum() > 0
    fig = D.show_projections(model, x, {"relu1": [0, 1], "relu2": [3]}, k=4)
    assert len(fig.axes) == 8 and sum(bool(ax.images) for ax in fig.axes) == 6
    tile = D.mosaic([torch.zeros(1, 2, 2)] * 4, ncols=3, gap=1)
    assert tile.shape == (3, 5, 8) and float(tile[:, 2, :].min()) == 1.0 and float(tile[:, :2, :2].max()) == 0
    blue = D.mosaic([torch.zeros(3, 2, 2)] * 2, ncols=2, fill=(0.1, 0.2, 0.3))
    assert blue[:, 0, 2].tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_show_evolution_projects_each_units_strongest_activation():
    models = {0: digits_net(7), 3: digits_net(8)}
    x = images(7, n=12)
    n, (i, j) = D.strongest(models[3], x, "relu2", 4)
    a = acts(models[3], x, "relu2")[:, 4]
    assert float(a[n, i, j]) == float(a.max())
    fig = D.show_evolution(models, x, {"relu1": [0], "relu2": [4, 5]})
    assert len(fig.axes) == 6 and all(ax.images for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes[:2]] == ["epoch 0", "epoch 3"]
