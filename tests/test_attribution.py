"""Tests of course_utils.backprop.attribution and backprop_rules against Captum, finite differences and
hand-worked values, and of the properties the methods must have."""
from collections import OrderedDict

import pytest
import torch
from torch import nn

import course_utils as cu
from course_utils.backprop import attribution as A
from course_utils import testing
from course_utils.backprop.rules import backward_rule, relu_backward, relu_units

from helpers import assert_unchanged, state

captum_attr = pytest.importorskip("captum.attr")
pytestmark = [pytest.mark.filterwarnings("ignore:Setting backward hooks"),
              pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")]


# ---------------------------------------------------------------- small models

def tiny_cnn(seed=0, classes=10, act=nn.ReLU, dtype=torch.float32):
    """conv-ReLU-conv-ReLU-pool-linear with large weights, eval mode, frozen; act=nn.ReLU6 for the default
    model's unit."""
    return testing.tiny_cnn(seed, classes, width=8, channels=6, act=act, scale=0.5, dtype=dtype)


class Stretch(nn.Module):
    """x -> a x + b: images in [0, 1] become inputs where units are off, or saturate at 6."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return self.a * x + self.b


def stretched(model, a, b, relu_first=False):
    """The model with `Stretch(a, b)` (and a ReLU) in front, its layers keeping their names."""
    first = [("stretch", Stretch(a, b))] + ([("relu0", nn.ReLU())] if relu_first else [])
    rest = list(model.named_children()) if isinstance(model, nn.Sequential) else [("model", model)]
    return nn.Sequential(OrderedDict(first + rest)).eval()


class Block(nn.Module):
    """A torchvision-style residual block: in-place ReLUs, one ReLU module used twice."""

    def __init__(self, ch):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)
        self.conv2, self.bn2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class TorchvisionStyle(nn.Module):
    """Nested blocks, in-place ReLUs, no `.features` attribute."""

    def __init__(self, seed=0, classes=7):
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(Block(8), Block(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        self.eval().requires_grad_(False)

    def forward(self, x):
        return self.fc(self.pool(self.layer1(self.stem(x))).flatten(1))


def close(a, b, atol=1e-6, rtol=1e-4):
    assert a.shape == b.shape, (a.shape, b.shape)
    torch.testing.assert_close(a.float(), b.float(), atol=atol, rtol=rtol)


@pytest.fixture(scope="module")
def images():
    """Two real photos at 32 px (cat, coffee): small, so that the default model is quick."""
    return torch.cat([cu.as_batch(n, 32) for n in ("chelsea", "coffee")])


@pytest.fixture(scope="module")
def resnet():
    return cu.load_model("resnet18", pretrained=False, seed=0)


# ---------------------------------------------------------------- the backward rules

def test_relu_backward_hand_worked():
    x = torch.tensor([-1.0, 0.0, 2.0, 7.0])
    g = torch.tensor([1.0, -1.0, -2.0, 3.0])
    assert relu_backward(x, g, "gradient").tolist() == [0, 0, -2, 3]
    assert relu_backward(x, g, "guided").tolist() == [0, 0, 0, 3]
    assert relu_backward(x, g, "deconvnet").tolist() == [1, 0, 0, 3]
    # ReLU6: a unit saturated at 6 passes no gradient, except under the deconvnet rule
    assert relu_backward(x, g, "gradient", upper=6).tolist() == [0, 0, -2, 0]
    assert relu_backward(x, g, "guided", upper=6).tolist() == [0, 0, 0, 0]
    assert relu_backward(x, g, "deconvnet", upper=6).tolist() == [1, 0, 0, 3]
    with pytest.raises(ValueError, match="guided"):
        relu_backward(x, g, "guide")


@pytest.mark.parametrize("make", [lambda: tiny_cnn(act=nn.ReLU), lambda: tiny_cnn(act=nn.ReLU6),
                                  lambda: TorchvisionStyle()])
def test_gradient_rule_is_plain_autograd(make):
    model = stretched(make(), 8, -2)  # some ReLU6 units saturate
    x = torch.rand(2, 3, 16, 16)
    xr = x.clone().requires_grad_(True)
    model(xr)[:, 3].sum().backward()
    close(A.gradient(model, x, 3), xr.grad)


def test_default_model_gradient_rule_is_plain_autograd(model, images):
    xr = images.clone().requires_grad_(True)
    model(xr)[:, 281].sum().backward()
    close(A.saliency(model, images, 281, abs=False), xr.grad, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("make", [tiny_cnn, TorchvisionStyle])
def test_guided_and_deconvnet_equal_captum(make):
    model = make()
    x = torch.rand(3, 3, 16, 16)
    target = torch.tensor([0, 2, 5])
    close(A.guided_backprop(model, x, target), captum_attr.GuidedBackprop(model).attribute(x.clone(), target=target))
    close(A.deconvnet(model, x, target), captum_attr.Deconvolution(model).attribute(x.clone(), target=target))


def test_guided_equals_captum_on_torchvision_resnet(resnet):
    x = torch.rand(1, 3, 64, 64)
    before = state(resnet)
    close(A.guided_backprop(resnet, x, 7), captum_attr.GuidedBackprop(resnet).attribute(x.clone(), target=7),
          atol=1e-7, rtol=1e-3)
    close(A.deconvnet(resnet, x, 7), captum_attr.Deconvolution(resnet).attribute(x.clone(), target=7),
          atol=1e-7, rtol=1e-3)
    assert_unchanged(resnet, before)


class ReLU6SeenAsReLU(nn.ReLU):
    """A ReLU6 that Captum's ReLU hooks recognize, to check our ReLU6 treatment against Captum's rule."""

    def forward(self, x):
        return x.clamp(0, 6)


def test_relu6_rules_follow_captums_definition():
    """guided = relu(true gradient), deconvnet = relu(incoming gradient), also for ReLU6."""
    ours = stretched(tiny_cnn(act=nn.ReLU6), 10, -2)
    theirs = stretched(tiny_cnn(act=ReLU6SeenAsReLU), 10, -2)
    x = torch.rand(2, 3, 16, 16)
    assert (ours[:3](x) >= 6).any()  # the upper clip is exercised
    close(A.guided_backprop(ours, x, 1), captum_attr.GuidedBackprop(theirs).attribute(x.clone(), target=1))
    close(A.deconvnet(ours, x, 1), captum_attr.Deconvolution(theirs).attribute(x.clone(), target=1))


def test_rule_context_restores_everything_even_after_an_error(resnet):
    before = state(resnet)
    assert any(m.inplace for m in relu_units(resnet))
    with pytest.raises(RuntimeError, match="boom"):
        with backward_rule(resnet, "guided"):
            assert all(m.inplace for m in relu_units(resnet))  # nothing of the model is touched, not even this
            resnet(torch.rand(1, 3, 32, 32))
            raise RuntimeError("boom")
    assert_unchanged(resnet, before)


def test_rule_context_needs_relu_like_units():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
    x = torch.rand(1, 3, 2, 2)
    with pytest.raises(ValueError, match="no ReLU-like activation"):
        with backward_rule(model, "guided"):
            model(x)
    assert not model._forward_hooks and not model._forward_pre_hooks
    with backward_rule(model, "gradient"):  # nothing to swap, nothing to complain about
        model(x)


def relu_input_gradients(model, x, target, rule):
    """The gradient arriving at the input of every ReLU/ReLU6 call, with that input."""
    seen = []

    def pre_hook(module, inputs):
        inp = inputs[0]
        inp.register_hook(lambda g, inp=inp.detach(): seen.append((inp, g, getattr(module, "max_val", None))))

    x = x.clone().requires_grad_(True)
    with backward_rule(model, rule):
        handles = [m.register_forward_pre_hook(pre_hook) for m in relu_units(model)]
        try:
            model(x)[:, target].sum().backward()
        finally:
            for h in handles:
                h.remove()
    return seen


def test_guided_backprop_is_non_negative_where_it_must_be(model, images):
    """Below every ReLU6 of the default model, guided backprop passes only non-negative gradients,
    and nothing where the unit was off (input <= 0) or saturated (input >= 6)."""
    seen = relu_input_gradients(model, images, 281, "guided")
    assert len(seen) == 1 + 2 * 16 - 1 + 1  # stem, (expand +) depthwise per block, head
    for inp, g, upper in seen:
        assert (g >= 0).all()
        assert (g[(inp <= 0) | (inp >= upper)] == 0).all()
    for inp, g, upper in relu_input_gradients(model, images, 281, "deconvnet"):
        assert (g >= 0).all()
    # a model whose first unit is a ReLU of 2x - 1: the guided map itself is >= 0, and 0 where 2x - 1 <= 0
    first = stretched(tiny_cnn(), 2, -1, relu_first=True)
    x = torch.rand(2, 3, 12, 12)
    gb = A.guided_backprop(first, x, 4)
    assert (gb >= 0).all() and (gb[2 * x - 1 <= 0] == 0).all() and (gb > 0).any()


def test_deconvnet_ignores_the_image_without_max_pooling(model, images):
    """No max-pooling switches in EfficientNet-Lite: the deconvnet pass never looks at the image."""
    d = A.deconvnet(model, images, 281)
    close(d[0], d[1], atol=1e-6, rtol=1e-4)
    assert not torch.allclose(A.guided_backprop(model, images, 281)[0], A.guided_backprop(model, images, 281)[1])


# ---------------------------------------------------------------- gradient saliency and SmoothGrad

def test_saliency_equals_captum(model, images):
    target = torch.tensor([281, 967])
    for absolute in (True, False):
        ours = A.saliency(model, images, target, abs=absolute)
        theirs = captum_attr.Saliency(model).attribute(images.clone(), target=target, abs=absolute)
        close(ours, theirs)
    assert (A.saliency(model, images, target) >= 0).all()


def test_saliency_against_finite_differences():
    model = tiny_cnn(dtype=torch.float64, classes=5)
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    grad = A.saliency(model, x, 2, abs=False)
    eps = 1e-6
    numeric = torch.zeros_like(x)
    for idx in range(x.numel()):
        d = torch.zeros(x.numel(), dtype=torch.float64)
        d[idx] = eps
        d = d.view_as(x)
        numeric.view(-1)[idx] = (model(x + d)[0, 2] - model(x - d)[0, 2]) / (2 * eps)
    torch.testing.assert_close(grad, numeric, atol=1e-7, rtol=1e-5)


def test_targets_by_name_index_and_per_image(model, images):
    by_name = A.saliency(model, images[:1], "tabby")
    close(by_name, A.saliency(model, images[:1], cu.class_index("tabby")))
    per_image = A.saliency(model, images, ["tabby", "espresso"])
    close(per_image[1:], A.saliency(model, images[1:], "espresso"), atol=1e-5, rtol=1e-3)  # batched kernels round differently
    with pytest.raises(ValueError, match="2 targets for 1 images"):
        A.saliency(model, images[:1], [1, 2])
    with pytest.raises(ValueError, match="not an ImageNet class"):
        A.saliency(model, images[:1], "tabbby cat")
    with pytest.raises(ValueError, match="not a class of this model"):
        A.saliency(tiny_cnn(), images[:1], 12)
    # any image is an input: one (C, H, W) image, a PIL image, a name (as_batch); 0..255 is refused
    close(A.saliency(model, images[0], 1), A.saliency(model, images[:1], 1))
    close(A.saliency(model, cu.load_image("chelsea", size=32), 1), A.saliency(model, images[:1], 1))
    with pytest.raises(ValueError, match="divide it by 255"):
        A.saliency(model, images * 255, 1)


@pytest.mark.parametrize("samples,batch", [(6, 6), (5, 2)])
def test_smoothgrad_equals_captum_noise_tunnel(images, samples, batch):
    model = tiny_cnn()
    ours = A.smoothgrad(model, images, [2, 7], samples=samples, stdev=0.2, batch_size=batch, seed=3)
    torch.manual_seed(3)
    theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
        images.clone(), nt_type="smoothgrad", nt_samples=samples, stdevs=0.2, nt_samples_batch_size=batch,
        target=torch.tensor([2, 7]))
    close(ours, theirs, atol=1e-6, rtol=1e-4)
    close(ours, A.smoothgrad(model, images, [2, 7], samples=samples, stdev=0.2, batch_size=batch, seed=3))


# ---------------------------------------------------------------- occlusion

def captum_occlusion(model, x, target, window, stride, baseline, score):
    forward = (lambda t: torch.softmax(model(t), 1)) if score == "probability" else model
    c = x.shape[1]
    return captum_attr.Occlusion(forward).attribute(
        x.clone(), sliding_window_shapes=(c, window, window), strides=(c, stride, stride),
        baselines=baseline, target=target, perturbations_per_eval=16)


@pytest.mark.parametrize("size,window,stride,baseline,score", [
    (16, 4, 2, 0.0, "probability"), (30, 8, 5, 0.5, "logit"), (17, 5, 3, "mean", "probability")])
def test_occlusion_equals_captum_on_a_small_model(size, window, stride, baseline, score):
    model = tiny_cnn(seed=1)
    x = torch.rand(2, 3, size, size)
    target = torch.tensor([3, 7])
    ours = A.occlusion(model, x, target, window, stride, baseline=baseline, score=score)
    # Captum's baseline computed here, not by the course: a number as it is, "mean" as each image's mean colour
    given = x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone() if baseline == "mean" else baseline
    theirs = captum_occlusion(model, x, target, window, stride, given, score)
    close(ours, theirs, atol=1e-6, rtol=1e-4)


def test_occlusion_equals_captum_on_the_default_model(model, images):
    ours = A.occlusion(model, images[:1], "tabby", window=14, stride=9, baseline=0.5)
    theirs = captum_occlusion(model, images[:1], cu.class_index("tabby"), 14, 9, 0.5, "probability")
    close(ours, theirs, atol=1e-6, rtol=1e-3)


def test_occlusion_is_batched_and_its_cost_is_as_stated(model, images):
    assert A.occlusion_positions(32, 8, 4) == [0, 4, 8, 12, 16, 20, 24]
    assert A.occlusion_positions(30, 8, 5) == [0, 5, 10, 15, 20, 25]  # the last window sticks out
    before = state(model)
    with A.count_forwards(model) as n:
        drops = A.occlusion_drops(model, images[:1], 8, 4, batch_size=16)
    assert n.images == 1 + 49 and n.calls == 1 + 4  # 49 occluded copies in batches of 16
    assert drops.shape == (1, 1000, 7, 7)
    assert_unchanged(model, before)
    # by default about 4 * 224 * 224 pixels per pass (what ran fastest), at most 32 copies
    net = testing.tiny_cnn(0, classes=5)
    for side, per_pass in [(224, 4), (112, 16), (32, 32)]:
        with A.count_forwards(net) as n:
            A.occlusion_drops(net, torch.rand(1, 3, side, side), side // 4, side // 8)
        assert A.occlusion_batch(torch.zeros(1, 3, side, side)) == per_pass
        assert n.images == 1 + 49 and n.calls == 1 + -(-49 // per_pass)
    # one entry by hand: hide the window at row 1, column 2 (pixels 4..12, 8..16) with black
    hidden = images[:1].clone()
    hidden[..., 4:12, 8:16] = 0
    with torch.no_grad():
        p, q = torch.softmax(model(images[:1]), 1), torch.softmax(model(hidden), 1)
    close(drops[0, :, 1, 2], (p - q)[0], atol=1e-6, rtol=1e-4)


def test_occlusion_errors(model, images):
    with pytest.raises(ValueError, match="larger than the image"):
        A.occlusion(model, images, 0, window=40, stride=8)
    with pytest.raises(ValueError, match="never hidden"):
        A.occlusion(model, images, 0, window=8, stride=16)
    with pytest.raises(ValueError, match="baseline"):
        A.occlusion(model, images, 0, window=16, stride=16, baseline="purple")


def test_baselines(images):
    x = images
    assert (A.baseline_image(x, "grey") == 0.5).all()
    close(A.baseline_image(x, "mean")[:, :, 5, 7], x.mean(dim=(2, 3)))
    blur = A.baseline_image(x, "blur")
    assert blur.shape == x.shape and blur.var() < x.var()  # smoother
    close(blur.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.02, rtol=0)


# ---------------------------------------------------------------- Grad-CAM, unit gradients

def test_grad_cam_equals_captum(model, images):
    target = torch.tensor([281, 967])
    lgc = captum_attr.LayerGradCam(model, cu.get_layer(model, "blocks.10"))
    theirs = lgc.attribute(images.clone(), target=target, relu_attributions=True)
    close(A.grad_cam(model, images, target, "blocks.10", upsample=False), theirs)
    assert theirs.shape == (2, 1, 2, 2)
    for mode in ("bilinear", "nearest"):
        up = captum_attr.LayerAttribution.interpolate(theirs, (32, 32), interpolate_mode=mode)
        close(A.grad_cam(model, images, target, "blocks.10", mode=mode), up)


def test_grad_cam_from_hand_worked():
    acts = torch.tensor([[[[1.0, 2.0], [0.0, 4.0]], [[1.0, 1.0], [1.0, -1.0]]]])  # (1, 2, 2, 2)
    grads = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[-4.0, 0.0], [0.0, 0.0]]]])  # alpha = (1, -1)
    assert A.grad_cam_from(acts, grads).tolist() == [[[[0.0, 1.0], [0.0, 5.0]]]]


def test_guided_grad_cam_equals_captum():
    model = TorchvisionStyle()
    x = torch.rand(2, 3, 16, 16)
    target = torch.tensor([1, 4])
    for mode in ("nearest", "bilinear"):
        theirs = captum_attr.GuidedGradCam(model, model.layer1[0]).attribute(x.clone(), target=target,
                                                                          interpolate_mode=mode)
        close(A.guided_grad_cam(model, x, target, "layer1.0", mode=mode), theirs)


def test_unit_gradient(model, images):
    layer, channel = "blocks.5", 17
    with cu.capture(model, [layer]) as acts:
        model(images)
    fmap = acts[layer][:, channel]
    flat = fmap.flatten(1).argmax(1)
    rows, cols = flat // fmap.shape[2], flat % fmap.shape[2]
    xr = images.clone().requires_grad_(True)
    with cu.capture(model, [layer], detach=False) as acts:
        model(xr)
    acts[layer][0, channel, rows[0], cols[0]].backward()
    close(A.unit_gradient(model, images[:1], layer, channel, rule="gradient"), xr.grad[:1])
    at = A.unit_gradient(model, images[:1], layer, channel, position=(int(rows[0]), int(cols[0])), rule="gradient")
    close(at, xr.grad[:1])
    # the receptive field: pixels far from the unit get no gradient
    g = A.unit_gradient(model, images[:1], "blocks.1", 3, position=(0, 0), rule="guided")
    assert g[..., 20:, :].abs().max() == 0 and g[..., :, 20:].abs().max() == 0 and g[..., :4, :4].abs().max() > 0
    with pytest.raises(ValueError, match="channels"):
        A.unit_gradient(model, images, layer, 5000)
    with pytest.raises(cu.layers.LayerNotFoundError):
        A.unit_gradient(model, images, "blocks.50", 0)


# ---------------------------------------------------------------- the model is left as it was

@pytest.mark.parametrize("call", [
    lambda m, x: A.saliency(m, x, 1), lambda m, x: A.smoothgrad(m, x, 1, samples=2),
    lambda m, x: A.guided_backprop(m, x, 1), lambda m, x: A.deconvnet(m, x, 1),
    lambda m, x: A.grad_cam(m, x, 1, "layer1.1"), lambda m, x: A.guided_grad_cam(m, x, 1, "layer1.1"),
    lambda m, x: A.occlusion(m, x, 1, 8, 8), lambda m, x: A.unit_gradient(m, x, "layer1.0", 2),
])
def test_functions_leave_the_model_unchanged_even_when_they_raise(call):
    model = TorchvisionStyle()
    x = torch.rand(1, 3, 16, 16)
    before = state(model)
    call(model, x)
    assert_unchanged(model, before)

    def fail(module, inputs, output):
        raise RuntimeError("failure inside the forward pass")

    handle = model.fc.register_forward_hook(fail)
    before = state(model)
    with pytest.raises(RuntimeError, match="failure inside"):
        call(model, x)
    assert_unchanged(model, before)
    handle.remove()


def test_heatmap_reductions():
    a = torch.tensor([[[[1.0]], [[-3.0]], [[2.0]]]])
    assert A.heatmap(a).item() == 3 and A.heatmap(a, "max").item() == 2
    assert A.heatmap(a, "sum").item() == 0 and A.heatmap(a, "abs_sum").item() == 6
    with pytest.raises(ValueError, match="reduce"):
        A.heatmap(a, "median")


def test_stride_pattern_counts_the_windows_of_a_strided_convolution():
    """3x3 windows at stride 2, padding 1, on 8 pixels cover pixels 0..7 (1, 2, 1, 2, 1, 2, 1, 1) times:
    even rows/columns average 1, odd ones 1.75, and the gradient of the summed output is the product."""
    conv = nn.Conv2d(3, 1, 3, stride=2, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    fc = nn.Linear(16, 1, bias=False)
    nn.init.ones_(fc.weight)
    model = nn.Sequential(conv, nn.Flatten(), fc)
    g = A.gradient(model, torch.rand(2, 3, 8, 8), 0)
    torch.testing.assert_close(A.stride_pattern(g), torch.tensor([[1.0, 1.75], [1.75, 1.75 ** 2]]))
    torch.testing.assert_close(A.stride_pattern(torch.ones(1, 3, 6, 6), 3), torch.ones(3, 3))
    hand = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 5.0, 6.0, 9.0], [7.0, 8.0, 9.0, 9.0]])[None, None]
    torch.testing.assert_close(A.stride_pattern(hand, 2), torch.tensor([[2.0, 5.5], [5.0, 7.0]]))  # row 2 is cut
    with pytest.raises(ValueError, match="period"):
        A.stride_pattern(hand, 0)


@pytest.mark.parametrize("method,kwargs", [("gradient", {}), ("saliency", {}), ("smoothgrad", {"samples": 3}),
                                           ("deconvnet", {}), ("guided_backprop", {}),
                                           ("grad_cam", {"layer": "relu2"}), ("guided_grad_cam", {"layer": "relu2"}),
                                           ("occlusion", {"window": 4, "stride": 4})])
def test_attribute_is_one_entry_point_for_every_method(method, kwargs):
    model, x = tiny_cnn(), torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(A.attribute(model, x, 3, method, **kwargs), A.METHODS[method](model, x, 3, **kwargs))
    with pytest.raises(ValueError, match="guided_backprop"):
        A.attribute(model, x, 3, "guided")
