"""Every technique on any architecture: torchvision networks with random weights (no download), at 64 px.

For each network: saliency, occlusion, deconvnet, guided backprop and Grad-CAM (at the last conv
stage and at a layer whose output the network then changes in place) against Captum, the model left
as it was, no hook behind; gradient ascent, inversion and DeepDream raise their objective.

Where Captum does not define a method for a network, the reference says why:
- functional ReLUs (GoogLeNet's F.relu in every BasicConv2d, DenseNet's last F.relu): Captum's
  GuidedBackprop and Deconvolution hook nn.ReLU modules only and miss them, so the reference is Captum
  on a twin of the network whose ReLUs are modules;
- ReLU6 (MobileNetV2, EfficientNet-Lite0): Captum hooks nn.ReLU only; the twin's ReLU6 are ReLU subclasses;
- SiLU, GELU, Hardswish (EfficientNet-B0, ConvNeXt, MobileNetV3): Captum leaves them with their true
  gradient; the reference applies the course's stated rule (guided: max(f'(x) g, 0); deconvnet:
  max(g, 0)) with Captum's own mechanism, a full backward hook on each activation module.
"""
import copy
import types

import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum import attr as captum_attr
from torch import nn
from torchvision.models.densenet import DenseNet
from torchvision.models.googlenet import BasicConv2d
from torchvision.models.resnet import BasicBlock

import course_utils as cu
from course_utils.backprop import attribution as A
from course_utils import ascent, deepdream, inversion
from course_utils.backprop.rules import backward_rule
from course_utils.optimize import Progress

from helpers import assert_unchanged, state

SIZE = 64

# name: (builder, last conv stage, a layer whose output is then changed in place, activations)
ARCHS = {
    "alexnet": (lambda: torchvision.models.alexnet(num_classes=10), "features.10", "features.10", "relu"),
    "vgg11": (lambda: torchvision.models.vgg11(num_classes=10), "features.18", "features.18", "relu"),
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=10), "layer4", "layer4.1.bn2", "relu"),
    "googlenet": (lambda: torchvision.models.googlenet(num_classes=10, aux_logits=False, init_weights=True),
                  "inception5b", "inception5b.branch1.bn", "functional"),
    "densenet121": (lambda: torchvision.models.densenet121(num_classes=10), "features.norm5", "features.norm5",
                    "functional"),
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(num_classes=10), "features.18", "features.18.1", "relu6"),
    "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10), "features.12",
                           "features.12.1", "other"),
    "efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(num_classes=10), "features.8", "features.8.1",
                        "other"),
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(num_classes=10), "features.12", "classifier.1", "relu"),
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(num_classes=10), "features.7",
                      "features.7.2.stochastic_depth", "other"),
    "efficientnet_lite0": (lambda: cu.load_model(), "head.conv", None, "relu6"),
}


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request):
    torch.manual_seed(0)
    build, last, inplace_layer, kind = ARCHS[request.param]
    model = build().eval()
    _calibrate(model)
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    target = int(model(x).argmax(1)[0])
    return request.param, model, x, target, last, inplace_layer, kind


def _calibrate(model):
    """Random batch-norm statistics from the network's own activations, so that deep random networks
    keep a signal (running mean 0 and variance 1 would blow up or vanish through 50 layers)."""
    with torch.no_grad():
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.train()
            m.momentum = None  # a cumulative average over the calibration batches
            m.reset_running_stats()
        model(torch.rand(8, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2)))
        for m in bns:
            m.eval()
            m.momentum = 0.1


def _out_of_place(model):
    """A copy of the network computing the same function with every activation a module, nothing in place."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
        if isinstance(m, BasicConv2d):  # torchvision: F.relu(self.bn(self.conv(x)), inplace=True)
            m.relu = nn.ReLU()
            m.forward = types.MethodType(lambda self, x: self.relu(self.bn(self.conv(x))), m)
        if isinstance(m, BasicBlock):  # out += identity, in place
            def block(self, x):
                identity = x if self.downsample is None else self.downsample(x)
                out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
                return self.relu(out + identity)
            m.forward = types.MethodType(block, m)
        if type(m).__name__ == "CNBlock":  # result += input, in place
            m.forward = types.MethodType(lambda self, x: self.stochastic_depth(self.layer_scale * self.block(x)) + x, m)
    if isinstance(twin, DenseNet):  # F.relu(features, inplace=True) in its forward
        twin.relu = nn.ReLU()
        twin.forward = types.MethodType(
            lambda self, x: self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.relu(self.features(x)), 1), 1)),
            twin)
    for name, m in list(twin.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(m, child_name, ReLU6AsReLU())
    return twin


class ReLU6AsReLU(nn.ReLU):
    """A ReLU6 that Captum's ReLU hooks recognize."""

    def forward(self, x):
        return x.clamp(0, 6)


ACTIVATION_MODULES = (nn.ReLU, nn.SiLU, nn.GELU, nn.Hardswish)


def _hooked_rule(model, x, target, rule):
    """The stated rule with Captum's mechanism: a full backward hook on every activation module."""
    twin = _out_of_place(model)

    def hook(module, grad_input, grad_output):
        g = grad_output[0] if rule == "deconvnet" else grad_input[0]
        return (g.clamp(min=0),)

    handles = [m.register_full_backward_hook(hook) for m in twin.modules() if isinstance(m, ACTIVATION_MODULES)]
    try:
        x = x.clone().requires_grad_(True)
        twin(x)[:, target].sum().backward()
        return x.grad
    finally:
        for h in handles:
            h.remove()


def close(a, b, atol=1e-5, rtol=1e-3):
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = float(b.detach().abs().max()) or 1.0
    torch.testing.assert_close(a.float() / scale, b.float() / scale, atol=atol, rtol=rtol)


def test_saliency_and_occlusion_equal_captums(arch):
    name, model, x, target, *_ = arch
    before = state(model)
    close(A.saliency(model, x, target), captum_attr.Saliency(model).attribute(x.clone(), target=target, abs=True))
    ours = A.occlusion(model, x, target, window=16, stride=16, baseline=0.5, score="logit")
    theirs = captum_attr.Occlusion(model).attribute(x.clone(), sliding_window_shapes=(3, 16, 16), strides=(3, 16, 16),
                                                    baselines=0.5, target=target, perturbations_per_eval=8)
    close(ours, theirs)
    assert_unchanged(model, before)


@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
def test_backward_rules_equal_the_reference(arch, rule):
    name, model, x, target, _, _, kind = arch
    before = state(model)
    ours = A.guided_backprop(model, x, target) if rule == "guided" else A.deconvnet(model, x, target)
    assert_unchanged(model, before)
    assert ours.abs().sum() > 0
    if kind == "other":
        theirs = _hooked_rule(model, x, target, rule)
    else:  # relu, relu6, functional: Captum, on the twin whose units are all nn.ReLU modules
        method = captum_attr.GuidedBackprop if rule == "guided" else captum_attr.Deconvolution
        twin = _out_of_place(model)
        theirs = method(twin).attribute(x.clone(), target=target)
        if kind == "relu":  # and on the network itself, for networks whose units are plain nn.ReLU modules
            close(ours, method(model).attribute(x.clone(), target=target))
    close(ours, theirs)
    assert ours.shape == x.shape


def test_rules_reach_functional_relus(arch):
    """The gradient below every unit is non-negative under the guided rule, also where F.relu is called."""
    name, model, x, target, _, _, kind = arch
    if kind != "functional":
        pytest.skip("no functional ReLU in this network")
    seen = []
    real = F.relu

    def spy(t, *args, **kwargs):
        out = real(t, *args, **kwargs)
        if t.requires_grad:
            t.register_hook(lambda g: seen.append(float(g.min())))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(F, "relu", spy)
        plain = A.saliency(model, x, target, abs=False)
    assert seen and min(seen) < 0  # plain backprop sends negative gradients into the ReLUs
    guided = A.guided_backprop(model, x, target)
    assert not torch.allclose(guided, plain)


@pytest.mark.parametrize("where", ["last", "inplace"])
def test_grad_cam_equals_captums(arch, where):
    name, model, x, target, last, inplace_layer, _ = arch
    layer = last if where == "last" else inplace_layer
    if layer is None:
        pytest.skip(f"{name} changes no activation in place")
    before = state(model)
    ours = A.grad_cam(model, x, target, layer, upsample=False)
    assert_unchanged(model, before)
    twin = _out_of_place(model)  # nothing in place: the activation Captum records is intact
    theirs = captum_attr.LayerGradCam(twin, cu.get_layer(twin, layer)).attribute(
        x.clone(), target=target, relu_attributions=True)
    close(ours, theirs)
    assert ours.abs().sum() > 0


def _rises(history):
    return sum(history[-3:]) / 3 > history[0]


def test_optimizers_raise_their_objective(arch):
    name, model, x, target, last, *_ = arch
    before = state(model)
    h = []
    ascent.class_visualization(model, target, size=SIZE, steps=12, lr=0.01, progress=Progress(history=h, show=False),
                               **ascent.L2_ONLY)
    assert _rises(h), h
    h = []
    inversion.invert(model, x[:1], last, size=SIZE, steps=12, lr=0.005, progress=Progress(history=h, show=False))
    assert _rises(h), h
    h = []
    deepdream.deepdream(model, x[:1], last, octaves=1, steps=6, jitter=2, progress=Progress(history=h, show=False))
    assert _rises(h), h
    assert_unchanged(model, before)


def test_rule_context_leaves_no_hook_after_an_error():
    model = torchvision.models.googlenet(num_classes=10, aux_logits=False, init_weights=True).eval()
    before = state(model)
    with pytest.raises(RuntimeError):
        with backward_rule(model, "guided"):
            model(torch.rand(1, 3, 5, 5))  # too small: an error inside the forward
    assert_unchanged(model, before)
    with backward_rule(model, "guided"):  # the mode was left: plain code after the block is plain again
        pass
    y = torch.relu(torch.tensor([-1.0, 2.0], requires_grad=True))
    assert type(y.grad_fn).__name__ == "ReluBackward0"
