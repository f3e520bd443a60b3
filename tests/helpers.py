"""Small models and checks that several test files share."""
import torch
from torch import nn


def tiny_cnn(seed=0, width=8):
    """conv1 -> relu1 -> conv2 (stride 2) -> relu2 -> pool -> flat -> fc (1000 'classes'), seeded, eval mode."""
    torch.manual_seed(seed)
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(3, 8, 3, padding=1))
    net.add_module("relu1", nn.ReLU())
    net.add_module("conv2", nn.Conv2d(8, width, 3, padding=1, stride=2))
    net.add_module("relu2", nn.ReLU())
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(width, 1000))
    return net.eval()


def count_hooks(model):
    """Forward, backward and forward-pre hooks left on any module."""
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def state(model):
    """Everything about a model that a function must leave as it was."""
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                     + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules()),
        "inplace": [getattr(m, "inplace", None) for m in model.modules()],
        "params": [p.detach().clone() for p in model.parameters()],
    }


def assert_unchanged(model, before):
    after = state(model)
    for key in ("training", "requires_grad", "hooks", "inplace"):
        assert after[key] == before[key], key
    assert all(torch.equal(a, b) for a, b in zip(after["params"], before["params"]))
