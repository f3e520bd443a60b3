"""Backprop to the image with a rule: how the backward pass treats ReLU-like units.

Plain backprop, the deconvnet and guided backprop compute the same backward pass except at
the ReLUs. For a unit y = relu(x) that receives the gradient g from above:

    gradient   (backprop)    passes g  where x > 0           (the true derivative)
    deconvnet  (Zeiler & Fergus, 2014)   passes max(g, 0), whatever x was
    guided     (Springenberg et al., 2015) passes max(g, 0) where x > 0 (both conditions)

`backward_rule(model, rule)` swaps the rule of every nn.ReLU and nn.ReLU6 module of any model
(found by walking `model.modules()`), and undoes itself on exit, even after an exception.

ReLU6 (the course's EfficientNet-Lite uses it) also clips at 6: y = min(max(x, 0), 6). Its true
derivative is zero where x >= 6 as well as where x <= 0. We treat the upper clip as part of the
forward condition: "gradient" and "guided" pass nothing through a unit saturated at 6 (guided is
"the true gradient, then keep the positive part", as Captum defines it for ReLU), while
"deconvnet" ignores the forward pass altogether, the lower and the upper clip alike.

Only ReLU *modules* are affected: a model that calls torch.relu / F.relu inside its forward
keeps the plain rule there. In-place ReLUs (torchvision's `ReLU(inplace=True)`) are switched
to out-of-place inside the block and switched back on exit.

Papers: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014;
Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR workshop 2015.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

RULES = ("gradient", "deconvnet", "guided")


def _check_rule(rule):
    if rule not in RULES:
        raise ValueError(f"unknown backward rule {rule!r}; choose one of {', '.join(map(repr, RULES))}")


def relu_backward(x, grad_output, rule="gradient", upper=None):
    """The gradient a ReLU (upper=None) or ReLU6 (upper=6) unit passes down to its input.

    x: the unit's input in the forward pass; grad_output: the gradient arriving from above.
    """
    _check_rule(rule)
    if rule == "deconvnet":
        return grad_output.clamp(min=0)
    passes = x > 0
    if upper is not None:
        passes = passes & (x < upper)
    grad = grad_output * passes
    return grad.clamp(min=0) if rule == "guided" else grad


class _ReLUWithRule(torch.autograd.Function):
    """clamp(x, 0, upper) forward; `relu_backward(x, g, rule, upper)` backward."""

    @staticmethod
    def forward(ctx, x, rule, upper):
        ctx.save_for_backward(x)
        ctx.rule, ctx.upper = rule, upper
        return x.clamp(min=0) if upper is None else x.clamp(0, upper)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return relu_backward(x, grad_output, ctx.rule, ctx.upper), None, None


def relu_units(model: nn.Module) -> list[nn.Module]:
    """Every nn.ReLU and nn.ReLU6 module of the model, at any depth."""
    return [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]


@contextlib.contextmanager
def backward_rule(model: nn.Module, rule: str = "guided"):
    """Inside the block, every ReLU/ReLU6 module of `model` backpropagates with `rule`.

        with backward_rule(model, "guided"):
            score = model(x)[0, c]
            grad, = torch.autograd.grad(score, x)

    The forward pass is unchanged. Each unit gets a forward hook that returns the same values
    through `_ReLUWithRule`, whose backward applies the rule. On exit (also after an exception)
    the hooks are removed and the units' `inplace` flags restored.
    """
    _check_rule(rule)
    units = relu_units(model)
    if not units and rule != "gradient":
        raise ValueError(f"{type(model).__name__} has no nn.ReLU or nn.ReLU6 modules, so the {rule!r} rule "
                         "would change nothing (ReLUs called as functions, F.relu, cannot be swapped)")

    def hook(module, inputs, output):
        upper = float(module.max_val) if isinstance(module, nn.ReLU6) else None
        return _ReLUWithRule.apply(inputs[0], rule, upper)

    handles, inplace = [], [(m, m.inplace) for m in units]
    try:
        for m in units:
            m.inplace = False  # the hook needs the unit's input intact
            handles.append(m.register_forward_hook(hook))
        yield model
    finally:
        for h in handles:
            h.remove()
        for m, flag in inplace:
            m.inplace = flag
