"""course_utils.filters and course_utils.digits: filter display, roughness, dead units, the digits CNN."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils.digits import DigitsCNN, UNIT_LAYERS, load_digits_data, train_digits_cnn
from course_utils.filters import (dead_fraction, dead_units, filter_grid, filter_roughness, first_conv,
                                  normalize_filters, show_filters)
from helpers import assert_same_run


def test_normalize_filters_hand_worked():
    w = torch.tensor([[[[-1.0, 0.0], [1.0, 3.0]]], [[[2.0, 2.0], [2.0, 2.0]]]])
    out = normalize_filters(w)
    assert torch.allclose(out[0, 0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.all(out[1] == 0.5)  # a constant filter is mid grey, not NaN
    sym = normalize_filters(w, mode="symmetric")
    assert torch.allclose(sym[0, 0], torch.tensor([[0.5 - 1 / 6, 0.5], [0.5 + 1 / 6, 1.0]]))


def test_normalize_filters_each_filter_on_its_own():
    w = torch.randn(8, 3, 5, 5)
    w[3] *= 1000
    out = normalize_filters(w)
    assert torch.allclose(out.flatten(1).min(1).values, torch.zeros(8))
    assert torch.allclose(out.flatten(1).max(1).values, torch.ones(8))
    # colours of one filter keep their ratios: an affine map of the raw weights
    a, b = np.polyfit(w[3].flatten().numpy(), out[3].flatten().numpy(), 1)
    assert np.allclose(a * w[3].flatten().numpy() + b, out[3].flatten().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="out_channels"):
        normalize_filters(torch.randn(3, 3, 3))
    with pytest.raises(ValueError, match="mode"):
        normalize_filters(w, mode="abs")


def test_filter_grid_layout_and_nearest_enlargement():
    w = torch.randn(10, 3, 3, 3)
    img = filter_grid(w, ncols=4, zoom=5, pad=1)
    assert img.shape == (3 * 16 + 1, 4 * 16 + 1, 3)
    tile = img[1 + 16:1 + 16 + 15, 1 + 2 * 16:1 + 2 * 16 + 15]  # filter 6: row 1, column 2
    expected = normalize_filters(w)[6].permute(1, 2, 0).numpy().repeat(5, 0).repeat(5, 1)
    assert np.allclose(tile, expected)
    assert np.all(img[0] == 1.0)  # padding is the background
    assert filter_grid(torch.randn(4, 1, 5, 5), zoom=2).ndim == 2
    with pytest.raises(ValueError, match="one input channel"):
        filter_grid(torch.randn(4, 16, 3, 3))
    show_filters(w, title="x")


def test_first_conv_of_the_default_model(model):
    name, conv = first_conv(model)
    assert name == "stem.conv" and tuple(conv.weight.shape) == (32, 3, 3, 3)


def test_filter_roughness_orders_smooth_below_noise():
    torch.manual_seed(0)
    noise = torch.randn(500, 1, 7, 7)
    assert filter_roughness(noise) == pytest.approx(2.0, rel=0.05)
    assert filter_roughness(torch.ones(4, 3, 5, 5)) == 0.0
    yy, xx = torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij")
    gabor = torch.cos(xx / 2) * torch.exp(-((xx - 3) ** 2 + (yy - 3) ** 2) / 8)
    assert filter_roughness(gabor[None, None]) < 0.5


def test_dead_fraction_hand_worked():
    a = torch.zeros(4, 5, 2, 2)
    a[0, 1, 0, 0] = 1.0
    a[3, 4, 1, 1] = 0.5
    assert dead_fraction(a) == pytest.approx(3 / 5)
    assert dead_fraction(torch.tensor([[0.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.5)
    assert dead_fraction(a, threshold=0.7) == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="batch"):
        dead_fraction(torch.zeros(5))


def test_dead_units_streams_like_all_at_once_and_leaves_the_model_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 10), nn.ReLU())
    with torch.no_grad():
        net[0].bias[:3] = -100.0  # three dead channels
    x = torch.rand(37, 1, 8, 8)
    net.train()
    got = dead_units(net, x, ["1", "4"], batch_size=5)
    with torch.no_grad():
        full1, full4 = net[1](net[0](x)), net(x)
    assert got["1"] == pytest.approx(dead_fraction(full1)) and got["1"] >= 0.5
    assert got["4"] == pytest.approx(dead_fraction(full4))
    assert net.training and not any(m._forward_hooks for m in net.modules())


def test_load_digits_data():
    xtr, ytr, xte, yte = load_digits_data(size=28)
    assert xtr.shape[1:] == (1, 28, 28) and len(xtr) + len(xte) == 1797
    assert float(xtr.min()) >= 0 and float(xtr.max()) <= 1
    assert set(ytr.tolist()) == set(range(10)) and set(yte.tolist()) == set(range(10))
    with pytest.raises(ValueError):
        load_digits_data(size=4)


@pytest.fixture(scope="module")
def digits():
    xtr, ytr, xte, yte = load_digits_data()
    return xtr[:700], ytr[:700], xte[:200], yte[:200]  # a subset keeps the tests fast


def test_train_digits_cnn_learns_and_snapshots(digits):
    r = train_digits_cnn(epochs=2, snapshot_epochs=(0, 1, 2), data=digits, progress=False, seed=1)
    assert sorted(r.snapshots) == [0, 1, 2]
    torch.manual_seed(1)
    init = DigitsCNN()
    assert torch.equal(r.snapshots[0], init.conv1.weight)  # snapshot 0 is the seeded initialization
    assert torch.equal(r.snapshots[2], r.model.conv1.weight)
    assert not torch.equal(r.snapshots[1], r.snapshots[0])
    assert r.history["test_acc"][-1] > 0.7 and len(r.history["dead"]) == 3
    assert set(r.history["dead"][0]) == set(UNIT_LAYERS)
    assert not r.model.training
    again = train_digits_cnn(epochs=1, snapshot_epochs=(1,), data=digits, progress=False, seed=1)
    assert_same_run(again.snapshots[1], r.snapshots[1])  # reproducible from the seed


def test_model_epochs_keep_copies_of_the_whole_network(digits):
    r = train_digits_cnn(epochs=2, snapshot_epochs=(), model_epochs=(0, 2), data=digits, progress=False, seed=1)
    assert sorted(r.models) == [0, 2] and r.models[2] is not r.model
    for (name, a), b in zip(r.models[2].state_dict().items(), r.model.state_dict().values()):
        assert torch.equal(a, b), name  # the last copy is the trained network
    torch.manual_seed(1)
    assert torch.equal(r.models[0].conv2.weight, DigitsCNN().conv2.weight)  # the first is the initialization
    assert not r.models[0].training


def test_active_fraction_by_hand_and_the_activity_figure(digits):
    from collections import OrderedDict

    from course_utils.digits import show_activity
    from course_utils.filters import active_fraction

    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 1, bias=False)), ("relu", nn.ReLU())]))
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))  # channel 0 on where x > 0, channel 1 never
    x = torch.zeros(2, 1, 2, 2)
    x[0, 0, 0, 0], x[1, 0, 1, 1], x[1, 0, 0, 1] = 0.5, 0.2, 0.9  # 3 of 8 pixels above 0
    got = active_fraction(model, x, ["conv", "relu"], batch_size=1)
    assert got == {"conv": 3 / 16, "relu": 3 / 16}  # 3 positive activations of 2 channels x 8 positions
    assert active_fraction(model, x, "relu", threshold=0.3) == {"relu": 2 / 16}
    r = train_digits_cnn(epochs=1, snapshot_epochs=(), model_epochs=(0, 1), data=digits, progress=False)
    fig = show_activity(r, digits[2][:50])
    assert [len(line.get_xdata()) for line in fig.axes[0].lines] == [2, 2, 2]
    with pytest.raises(ValueError, match="model_epochs"):
        show_activity(train_digits_cnn(epochs=1, snapshot_epochs=(), data=digits, progress=False), digits[2])


def test_first_layer_size_and_stride_and_shift_agreement_by_hand():
    from course_utils.digits import shift_agreement

    for first, fc_in in [((5, 1), 32 * 7 * 7), ((7, 2), 32 * 3 * 3), ((11, 4), 32 * 1 * 1)]:
        m = DigitsCNN(first=first)
        assert m.fc.in_features == fc_in and m(torch.rand(2, 1, 28, 28)).shape == (2, 10)
        assert m.conv1.kernel_size == (first[0],) * 2 and m.conv1.stride == (first[1],) * 2
    with pytest.raises(ValueError, match="odd kernel"):
        DigitsCNN(first=(4, 1))
    with pytest.raises(ValueError, match="leaves nothing"):
        DigitsCNN(size=8, first=(11, 8))

    class Spot(nn.Module):  # class 0 when pixel (2, 2) is bright, else class 1: as position-bound as can be
        def forward(self, x):
            return torch.stack([10 * x[:, 0, 2, 2], torch.ones(len(x))], 1)

    class Total(nn.Module):  # the same decision from the total ink: blind to position
        def forward(self, x):
            return torch.stack([10 * x.sum((1, 2, 3)), torch.ones(len(x))], 1)

    x = torch.zeros(4, 1, 8, 8)
    x[:2, 0, 2, 2] = 1.0  # two images with the spot, two blank
    assert shift_agreement(Spot(), x) == 0.5  # every shift moves the spot away: the first two change their answer
    assert shift_agreement(Total(), x) == 1.0
    assert shift_agreement(Spot(), x, shifts=((0, 8),)) == 1.0  # a full turn around brings the spot back


def test_a_marker_shortcut_is_learned_and_followed(digits):
    from course_utils.digits import MARKER, add_marker, marker_mask, accuracy

    xtr, ytr, xte, yte = digits
    x, cue = add_marker(xte[:20], yte[:20])
    assert torch.equal(cue, yte[:20])
    mask = marker_mask(cue)
    assert (x[:, 0][mask] == 1).all() and torch.equal(x[:, 0][~mask], xte[:20, 0][~mask])
    assert mask.sum((1, 2)).tolist() == [MARKER * MARKER] * 20
    cols = [int(m[0].nonzero()[0]) for m in marker_mask(torch.arange(10))]
    assert cols[0] == 0 and cols[-1] == 28 - MARKER and cols == sorted(set(cols))  # ten places along the edge
    xr, cr = add_marker(xte, yte, "random", seed=2)
    assert (cr != yte).float().mean() > 0.8 and torch.equal(cr, add_marker(xte, yte, "random", seed=2)[1])
    assert torch.equal(add_marker(xte, yte, "none")[0], xte)
    with pytest.raises(ValueError, match="mode"):
        add_marker(xte, yte, "sometimes")
    # a network trained with the marker follows it: right with it, misled by a random one
    net = train_digits_cnn(epochs=4, snapshot_epochs=(), data=(add_marker(xtr, ytr)[0], ytr, xte, yte), progress=False).model
    assert accuracy(net, add_marker(xte, yte)[0], yte) > 0.95
    assert accuracy(net, xr, cr) > 0.3  # it reads the random marker's label far above chance (0.1)


def test_too_high_learning_rate_kills_units(digits):
    high = train_digits_cnn(epochs=1, lr=0.5, data=digits, progress=False)
    assert high.history["dead"][-1]["relu2"] == 1.0 and high.history["test_acc"][-1] < 0.2
    with pytest.raises(ValueError):
        train_digits_cnn(epochs=1, lr=0, data=digits, progress=False)


def test_a_diverging_run_stops_with_finite_weights(digits):
    r = train_digits_cnn(epochs=3, lr=5.0, data=digits, progress=False)
    assert r.history["diverged"] and r.history["epoch"][-1] < 3
    assert all(torch.isfinite(p).all() for p in r.model.parameters())


def test_training_figures():
    import matplotlib.pyplot as plt

    from course_utils import digits

    data = load_digits_data()
    small = tuple(t[:200] for t in data)
    run = train_digits_cnn(epochs=2, snapshot_epochs=(0, 1, 2), data=small, progress=False)
    fig = digits.show_training(run)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["epoch 0", "epoch 1", "epoch 2"]
    plt.close(fig)
    fig = digits.show_runs({"end": run, "after 1 epoch": (run, 1)})
    assert fig.axes[1].get_title().startswith("after 1 epoch\nacc")
    plt.close(fig)
    fig = digits.show_dead_units({"end": run})
    assert fig.axes[1].get_ylabel() == "dead fraction of relu2"
    plt.close(fig)
