"""Checks that several test files share (the tiny models are in course_utils.testing)."""
import torch


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
