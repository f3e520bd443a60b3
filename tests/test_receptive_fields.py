"""course_utils.receptive_fields: hand-worked receptive fields, and the field equals the gradient footprint."""
import pytest
import torch
from torch import nn

from course_utils.layers import activations
from course_utils.receptive_fields import gradient_footprint, layer_geometry, mask_box, receptive_field, rf_size_stride


def tiny_chain():
    """conv 3 pad 1, ReLU, avg pool 2, conv 3/2 pad 1, ReLU, dilated conv 3 'same', ReLU (layers "0" to "6")."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(5, 6, 3, padding="same", dilation=2), nn.ReLU())


def _clip(box, h, w):
    t, l, b, r = box
    return max(t, 0), max(l, 0), min(b, h), min(r, w)


def test_rf_size_stride_alexnet_by_hand():
    # AlexNet: conv1 11/4 -> 11; pool1 3/2 -> 19; conv2 5/1 -> 51; pool2 3/2 -> 67;
    # conv3-5 3/1 -> 99, 131, 163 (stride 16); pool5 3/2 -> 195 (stride 32)
    stack = [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1)]
    assert rf_size_stride(stack[:1]) == (11, 4)
    assert rf_size_stride(stack[:3]) == (51, 8)
    assert rf_size_stride(stack) == (163, 16)
    assert rf_size_stride(stack + [(3, 2)]) == (195, 32)
    assert rf_size_stride([]) == (1, 1)
    with pytest.raises(ValueError):
        rf_size_stride([(0, 1)])


def test_receptive_field_hand_worked_sequential():
    net = tiny_chain()
    # conv 3 pad 1: size 3, offset -1 | avgpool 2/2: size 4, stride 2 | conv 3/2 pad 1: size 8, stride 4,
    # offset -1 - 2 = -3 | dilated conv 3 (d=2), 'same' pad 2: size 8 + 4*4 = 24, offset -3 - 2*4 = -11
    assert receptive_field(net, "0", 32) == receptive_field(net, "1", 32)
    rf = receptive_field(net, "0", 32)
    assert (rf.size, rf.stride, rf.offset) == ((3, 3), (1, 1), (-1, -1))
    rf = receptive_field(net, "4", 32)
    assert (rf.size, rf.stride, rf.offset) == ((8, 8), (4, 4), (-3, -3))
    rf = receptive_field(net, "6", 32)
    assert (rf.size, rf.stride, rf.offset) == ((24, 24), (4, 4), (-11, -11))
    assert [g[0] for g in layer_geometry(net, "6", 32)] == ["0", "2", "3", "5"]


def test_receptive_field_hand_worked_tensorflow_same_padding(model):
    # stem: 3x3 stride 2 at 224 px; SAME pads 1 pixel in total, at the bottom/right: unit 0 sees rows 0-2
    rf = receptive_field(model, "stem.conv", 224)
    assert (rf.size, rf.stride, rf.offset) == ((3, 3), (2, 2), (0, 0))
    # at 225 px SAME pads 2 in total, one on top: unit 0 sees rows -1..1
    assert receptive_field(model, "stem.conv", 225).offset == (-1, -1)
    # block 0's depthwise 3x3 (stride 1, padding 1 on top) on the stem's grid: 3 + 2*2 = 7, offset -2
    rf = receptive_field(model, "blocks.0", 224)
    assert (rf.size, rf.stride, rf.offset) == ((7, 7), (2, 2), (-2, -2))


@pytest.mark.parametrize("layer", ["4", "6"])
def test_receptive_field_equals_gradient_footprint_tiny(layer):
    net = tiny_chain()
    x = torch.rand(1, 3, 32, 32)
    rf = receptive_field(net, layer, 32)
    h = activations(net, x, layer).shape[-1]
    for i, j in [(0, 0), (h // 2, h // 2 + 1), (h - 1, h - 1), (1, h - 2)]:
        t, l, b, r = mask_box(gradient_footprint(net, x, layer, i, j))
        ct, cl, cb, cr = _clip(rf.box(i, j), 32, 32)
        assert ct <= t and cl <= l and b <= cb and r <= cr  # the footprint lies inside the field
    # away from the border the field is exactly the footprint; at the border a dilated layer reaches some
    # edge pixels only through padding, so there the footprint can be a little smaller than the clipped field
    i = j = h // 2
    assert mask_box(gradient_footprint(net, x, layer, i, j)) == _clip(rf.box(i, j), 32, 32)
    if layer == "4":  # no dilation: exact at the border too
        assert mask_box(gradient_footprint(net, x, layer, 0, h - 1)) == _clip(rf.box(0, h - 1), 32, 32)


@pytest.mark.parametrize("layer,size", [("blocks.2", 96), ("blocks.5", 128), ("blocks.10", 128)])
def test_receptive_field_equals_gradient_footprint_real_model(model, layer, size):
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size)
    rf = receptive_field(model, layer, size)
    h = activations(model, x, layer).shape[-1]
    for i, j in [(0, 0), (h // 2, h // 2), (h - 1, 1)]:
        fp = gradient_footprint(model, x, layer, i, j)
        assert mask_box(fp) == _clip(rf.box(i, j), size, size), (layer, i, j)
        # and the footprint fills the box: every pixel of the field reaches the unit
        t, l, b, r = _clip(rf.box(i, j), size, size)
        assert fp[t:b, l:r].float().mean() > 0.99
    assert all(not p.requires_grad for p in model.parameters()) and not model.training


def test_show_footprints_says_the_box_is_the_footprint():
    import matplotlib.pyplot as plt

    from course_utils.receptive_fields import show_footprints

    fig = show_footprints(tiny_chain(), torch.rand(1, 3, 32, 32), [("4", (3, 3))])
    assert fig.axes[1].get_title().endswith("box = gradient footprint: True")
    plt.close(fig)
