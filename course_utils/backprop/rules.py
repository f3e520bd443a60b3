"""Backprop to the image with a rule: how the backward pass treats ReLU-like units.

Plain backprop, the deconvnet and guided backprop compute the same backward pass except at
the ReLUs. For a unit y = relu(x) that receives the gradient g from above:

    gradient   (backprop)    passes g  where x > 0           (the true derivative)
    deconvnet  (Zeiler & Fergus, 2014)   passes max(g, 0), whatever x was
    guided     (Springenberg et al., 2015) passes max(g, 0) where x > 0 (both conditions)

`backward_rule(model, rule)` swaps the rule of every ReLU-like unit that `model`'s forward pass
computes, however it is computed: `nn.ReLU`/`nn.ReLU6` modules and `F.relu`, `torch.relu`,
`x.relu()` called inside a forward (torchvision's GoogLeNet, Inception and DenseNet do that),
in place or not. It works with a `torch.overrides.TorchFunctionMode` that is active only while
`model` runs forward (a pre-hook enters it, a hook that always runs leaves it): inside, each
activation call returns the same values through an autograd function whose backward applies the
rule. On exit (also after an exception) both hooks are removed; nothing of the model is changed,
not even its in-place flags (an in-place activation just returns a new tensor inside the block).

ReLU6 (the course's EfficientNet-Lite uses it) also clips at 6: y = min(max(x, 0), 6). Its true
derivative is zero where x >= 6 as well as where x <= 0: "gradient" and "guided" pass nothing
through a unit saturated at 6, while "deconvnet" ignores the forward pass altogether.

Units that are not ReLUs (SiLU/Swish in EfficientNet-B0, GELU in ConvNeXt, Hardswish in
MobileNetV3, Mish, leaky ReLU, ELU) get the same two rules, stated for any activation f with
the true backward g_in = f'(x) g:

    guided     max(f'(x) g, 0)    the true gradient, then keep the positive part (as Captum
                                  defines guided backprop for ReLU; for ReLU it is the rule above)
    deconvnet  max(g, 0)          rectify the signal from above, ignore the forward pass (Zeiler &
                                  Fergus's rectification, which never looks at x)

No paper defines guided backprop for these units; this is the generalization that reduces to
Springenberg's and Zeiler & Fergus's rules when f is a ReLU. Captum's GuidedBackprop and
Deconvolution override only `nn.ReLU` modules and leave every other unit (and every functional
ReLU) with its true gradient, so on such networks the two disagree by design.
Gates such as sigmoid in squeeze-and-excitation blocks are not activations of units and keep
their true gradient.

Papers: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014;
Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR workshop 2015.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

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


class _ActivationWithRule(torch.autograd.Function):
    """y = f(x) forward; backward: max(g, 0) (deconvnet) or max(f'(x) g, 0) (guided)."""

    @staticmethod
    def forward(ctx, x, f, rule):
        ctx.save_for_backward(x)
        ctx.f, ctx.rule = f, rule
        return f(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        if ctx.rule == "deconvnet":
            return grad_output.clamp(min=0), None, None
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            (true_grad,) = torch.autograd.grad(ctx.f(xx), xx, grad_output)
        return true_grad.clamp(min=0), None, None


def _arg(args, kwargs, i, name, default):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _activation(func, args, kwargs):
    """(input, f) when `func(*args, **kwargs)` is a ReLU-like activation of a tensor, else None."""
    if not args or not torch.is_tensor(args[0]):
        return None
    x = args[0]
    if func in (F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu_):
        return x, torch.relu
    if func in (F.relu6,):
        return x, F.relu6
    if func in (F.hardtanh, F.hardtanh_):  # nn.ReLU6 is Hardtanh(0, 6)
        lo, hi = float(_arg(args, kwargs, 1, "min_val", -1.0)), float(_arg(args, kwargs, 2, "max_val", 1.0))
        return (x, lambda t: F.hardtanh(t, lo, hi)) if lo == 0.0 else None
    if func in (F.leaky_relu, F.leaky_relu_):
        slope = float(_arg(args, kwargs, 1, "negative_slope", 0.01))
        return x, lambda t: F.leaky_relu(t, slope)
    if func in (F.elu, F.elu_):
        alpha = float(_arg(args, kwargs, 1, "alpha", 1.0))
        return x, lambda t: F.elu(t, alpha)
    if func is F.gelu:
        approximate = _arg(args, kwargs, 1, "approximate", "none")
        return x, lambda t: F.gelu(t, approximate=approximate)
    for f in (F.silu, F.hardswish, F.mish):
        if func is f:
            return x, f
    return None


class _RuleMode(TorchFunctionMode):
    def __init__(self, rule):
        super().__init__()
        self.rule, self.swapped = rule, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        found = _activation(func, args, kwargs)
        if found is None:
            return func(*args, **kwargs)
        self.swapped += 1
        x, f = found
        return _ActivationWithRule.apply(x, f, self.rule)


def relu_units(model: nn.Module) -> list[nn.Module]:
    """Every activation module of the model that the rules swap (nn.ReLU, ReLU6, SiLU, GELU, ...).

    Activations called as functions inside a forward are swapped too, but no list can name them.
    """
    kinds = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Hardswish, nn.Mish)
    return [m for m in model.modules() if isinstance(m, kinds)]


def activation_calls(model: nn.Module, x: torch.Tensor) -> int:
    """How many ReLU-like activations one forward pass of `model` on `x` computes: modules and
    functional calls (F.relu, torch.relu, ...) alike, every one that `backward_rule` swaps."""
    mode = _RuleMode("guided")
    with torch.no_grad(), mode:
        model(x)
    return mode.swapped


@contextlib.contextmanager
def backward_rule(model: nn.Module, rule: str = "guided"):
    """Inside the block, every ReLU-like unit of `model` backpropagates with `rule`.

        with backward_rule(model, "guided"):
            score = model(x)[0, c]
            grad, = torch.autograd.grad(score, x)

    The forward pass is unchanged. "gradient" is plain backprop (nothing is swapped). A forward
    pass of `model` in which no activation was found raises ValueError: the rule would change
    nothing.
    """
    _check_rule(rule)
    if rule == "gradient":
        yield model
        return
    depth, modes = [0], []

    def enter(module, inputs):
        depth[0] += 1
        if depth[0] == 1:
            modes.append(_RuleMode(rule))
            modes[-1].__enter__()

    def leave(module, inputs, output):
        depth[0] -= 1
        if depth[0] == 0 and modes:
            mode = modes.pop()
            mode.__exit__(None, None, None)
            if mode.swapped == 0:
                raise ValueError(f"{type(model).__name__} computed no ReLU-like activation (nn.ReLU, F.relu, "
                                 f"ReLU6, SiLU, GELU, ...), so the {rule!r} rule would change nothing")

    handles = [model.register_forward_pre_hook(enter), model.register_forward_hook(leave, always_call=True)]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
        while modes:  # a forward that never reached its hooks' end
            modes.pop().__exit__(None, None, None)
