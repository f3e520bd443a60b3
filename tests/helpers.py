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


REQUIRE_ISOLATION = "COURSE_REQUIRE_ISOLATION"  # CI sets it: a sandbox without isolation is then a failure


def require_isolation():
    """Skip, with the reason in the report, where this machine cannot seal a submission (no bubblewrap, no
    working unshare); fail instead when COURSE_REQUIRE_ISOLATION=1 (CI), so a machine that lost its
    isolation cannot pass quietly."""
    import os

    import pytest

    from course_utils.grading import sandbox

    if sandbox.backend()[0] == sandbox.NONE:
        reason = f"this machine cannot seal a submission: {sandbox.isolation()}"
        if os.environ.get(REQUIRE_ISOLATION) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ISOLATION}=1 asks for it)")
        pytest.skip(reason)


def assert_same_run(a, b):
    """Two runs of one seeded computation agree within float rounding, not bit for bit: a convolution on other
    memory, another batch size or another thread count can take another kernel path and round differently."""
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * max(1.0, float(torch.as_tensor(b).abs().max())))
