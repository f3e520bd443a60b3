import pytest
import torch
from torch import nn

import course_utils as cu
from course_utils.layers import LayerNotFoundError
from helpers import assert_same_run


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def test_get_layer_and_error_lists_valid_names(model):
    assert isinstance(cu.get_layer(model, "stem.conv"), nn.Conv2d)
    with pytest.raises(LayerNotFoundError) as e:
        cu.get_layer(model, "blocks.5.depthwise.actt")
    msg = str(e.value)
    assert "blocks.5.depthwise.act" in msg and "Valid layer names" in msg and "head.conv" in msg


def test_list_layers_shapes(model):
    layers = {info.name: info for info in cu.list_layers(model, input_size=224)}
    assert layers["stem.conv"].shape == (1, 32, 112, 112)
    assert layers["blocks.15"].shape == (1, 320, 7, 7)
    assert layers["head.act"].shape == (1, 1280, 7, 7)
    assert layers["classifier"].shape == (1, 1000)
    assert layers["blocks.3.depthwise.act"].type == "ReLU6"
    assert model.training is False and _hooks(model) == 0
    # Grad-CAM needs a spatial grid of maps: the head's 7x7 has one, the pooled and the classifier's outputs not
    assert layers["head.act"].grad_cam and layers["stem.conv"].grad_cam
    assert not layers["classifier"].grad_cam and not layers["pool"].grad_cam


def test_capture_keeps_what_a_layer_gave_before_an_in_place_operation():
    """torchvision-style ReLU(inplace=True) after the captured layer must not change the record."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(inplace=True), torch.nn.Flatten(),
                              torch.nn.Linear(8, 1))
    x = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    before_relu = net[0](x).detach()
    assert (before_relu < 0).any()  # the ReLU has something to change
    with cu.capture(net, ["0"]) as acts:
        net(x)
    assert_same_run(acts["0"], before_relu)
    with cu.capture(net, ["0"], detach=False) as acts:
        out = net(x)
    assert_same_run(acts["0"].detach(), before_relu)
    (g,) = torch.autograd.grad(out.sum(), acts["0"])  # still in the graph
    expected = net[3].weight.view(2, 2, 2) * (before_relu[0] > 0)
    assert torch.allclose(g[0], expected)


def test_capture_records_and_removes_hooks(model):
    x = torch.rand(1, 3, 64, 64)
    with cu.capture(model, ["stem.act", "head.act"]) as acts:
        logits = model(x)
    assert acts["stem.act"].shape == (1, 32, 32, 32)
    assert acts["stem.act"].min() >= 0 and acts["stem.act"].max() <= 6  # ReLU6
    # the recorded head activation gives the logits through pool + classifier
    assert torch.allclose(model.classifier(acts["head.act"].mean((2, 3))), logits, atol=1e-5)
    assert _hooks(model) == 0


def test_capture_removes_hooks_after_an_exception(model):
    with pytest.raises(RuntimeError, match="boom"):
        with cu.capture(model, ["stem.act", "blocks.2"]):
            model(torch.rand(1, 3, 32, 32))
            raise RuntimeError("boom")
    assert _hooks(model) == 0


def test_capture_wrong_name_hooks_nothing(model):
    with pytest.raises(LayerNotFoundError):
        with cu.capture(model, ["stem.act", "nope"]):
            pass
    assert _hooks(model) == 0


def test_capture_keeps_graph_when_asked(model):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    with cu.capture(model, "blocks.4", detach=False) as acts:
        model(x)
    acts["blocks.4"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_frozen_gives_back_each_modules_mode_and_each_parameters_flag_even_after_an_error():
    from torch import nn

    from course_utils.layers import frozen

    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 1))
    net.train()
    net[1].eval()  # a module in its own mode
    net[2].weight.requires_grad_(False)
    modes = [m.training for m in net.modules()]
    flags = [p.requires_grad for p in net.parameters()]
    with pytest.raises(RuntimeError, match="inside"):
        with frozen(net) as m:
            assert m is net and not any(x.training for x in net.modules())
            assert not any(p.requires_grad for p in net.parameters())
            raise RuntimeError("inside")
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == flags


def test_evaluating_gives_back_each_modules_mode_even_after_an_error():
    from course_utils.layers import evaluating

    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 1)).train()
    net[2].eval()
    with evaluating(net):
        assert not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == [True, True, True, False]
    with pytest.raises(RuntimeError, match="boom"):
        with evaluating(net):
            raise RuntimeError("boom")
    assert [m.training for m in net.modules()] == [True, True, True, False]


def test_activations_and_feature_vectors_leave_the_model_alone(model):
    from course_utils.layers import activations, feature_vectors

    x = torch.rand(3, 3, 64, 64)
    acts = activations(model, x, ["blocks.2", "pool"], batch_size=2)
    assert acts["blocks.2"].shape == (3, 24, 16, 16) and acts["pool"].shape == (3, 1280, 1, 1)
    f = feature_vectors(model, x, "blocks.2")
    assert torch.allclose(f, acts["blocks.2"].mean((2, 3)))
    assert not any(m._forward_hooks for m in model.modules())
    # one layer: its tensor, the same as a forward pass up to it; a name or a file works as the input
    from course_utils.testing import tiny_cnn

    net = tiny_cnn().train()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(activations(net, x, "relu1"), net.relu1(net.conv1(x)))
    assert net.training
    assert activations(model, "chelsea", "stem.act").shape == (1, 32, 150, 226)  # the photo at its own 300 x 451 px
    with pytest.raises(LayerNotFoundError, match="relu1"):
        activations(net, x, "relu")
