"""Attribution and attacks on any model a user brings: the model says what it takes.

The course's models declare images in [0, 1] (`images.unit_images`) and keep refusing a 0..255 or a
normalized tensor with the fix. Any other model gets its tensors as they are: Captum's own test networks with
their documented inputs, and a torchvision network fed an image the user normalized outside it, give
Captum's values for saliency, occlusion, guided backprop, deconvnet, Grad-CAM and guided Grad-CAM.
"""
import warnings

import pytest
import torch
import torchvision
from captum import attr as captum_attr
from captum.robust import FGSM
from captum.testing.helpers.basic_models import BasicModel_ConvNet_One_Conv, BasicModel_MultiLayer

import course_utils as cu
from course_utils import adversarial as adv
from course_utils.backprop import attribution as A
from course_utils import images
from course_utils.digits import DigitsCNN
from course_utils.images import ImageLoadError
from course_utils.labels import class_scores
from course_utils.layers import activations
from course_utils.seeding import forked
from course_utils.testing import tiny_cnn

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks", "ignore:Input Tensor 0 did not already")


def close(a, b, atol=1e-6, rtol=1e-5):
    torch.testing.assert_close(a, b, atol=atol, rtol=rtol)


def one_conv():
    return BasicModel_ConvNet_One_Conv().eval(), torch.arange(16, dtype=torch.float).view(1, 1, 4, 4)


def multi_layer():
    return BasicModel_MultiLayer().eval(), torch.tensor([[20.0, 50.0, 30.0], [-3.0, 4.0, 0.5]])


def user_normalized():
    """A torchvision ResNet-18 (random weights, 64 px) and the cat normalized by the user, outside the model."""
    with forked(3):
        model = torchvision.models.resnet18(weights=None).eval()
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return model, (cu.as_batch("chelsea", 64) - mean) / std


def test_captums_documented_inputs_were_refused_and_now_pass_unchanged():
    model, x = one_conv()
    assert not images.takes_unit_images(model)
    assert images.as_batch(x, device=model) is not x and torch.equal(images.as_batch(x, device=model), x)
    assert torch.equal(images.as_batch(torch.arange(16).view(1, 1, 4, 4), device=model), x)  # ints become floats
    with pytest.raises(ImageLoadError, match="0..255"):
        images.as_batch(x)  # no model: an image for the course
    mlp, v = multi_layer()
    assert torch.equal(images.as_batch(v, device=mlp), v)  # (N, 3) features, any range


@pytest.mark.parametrize("make", [one_conv, multi_layer, user_normalized], ids=["one_conv", "multi_layer", "resnet18"])
def test_gradient_maps_equal_captums(make):
    model, x = make()
    target = 1
    close(A.saliency(model, x, target), captum_attr.Saliency(model).attribute(x.clone(), target=target))
    close(A.guided_backprop(model, x, target), captum_attr.GuidedBackprop(model).attribute(x.clone(), target=target))
    close(A.deconvnet(model, x, target), captum_attr.Deconvolution(model).attribute(x.clone(), target=target))


@pytest.mark.parametrize("make,layer,window,stride", [(one_conv, "conv1", 2, 1), (user_normalized, "layer4", 16, 8)],
                         ids=["one_conv", "resnet18"])
def test_occlusion_and_grad_cam_equal_captums(make, layer, window, stride):
    model, x = make()
    target, module = 1, dict(model.named_modules())[layer]
    c = x.shape[1]
    close(A.occlusion(model, x, target, window, stride, baseline=0.0, score="logit"),
          captum_attr.Occlusion(model).attribute(x.clone(), sliding_window_shapes=(c, window, window),
                                                 strides=(c, stride, stride), baselines=0.0, target=target),
          atol=1e-5, rtol=1e-4)
    theirs = captum_attr.LayerGradCam(model, module).attribute(x.clone(), target=target, relu_attributions=True)
    close(A.grad_cam(model, x, target, layer),
          captum_attr.LayerAttribution.interpolate(theirs, tuple(x.shape[-2:]), interpolate_mode="bilinear"))
    close(A.guided_grad_cam(model, x, target, layer),
          captum_attr.GuidedGradCam(model, module).attribute(x.clone(), target=target, interpolate_mode="bilinear"),
          atol=1e-5, rtol=1e-4)


def test_what_does_not_fit_a_method_is_said_clearly():
    mlp, v = multi_layer()
    with pytest.raises(ValueError, match="images"):
        A.occlusion(mlp, v, 1, 2, 1)
    with pytest.raises(ValueError, match="spatial"):
        A.grad_cam(mlp, v, 1, "linear1")


def test_attacks_leave_a_models_inputs_unbounded_unless_it_takes_images():
    mlp, v = multi_layer()
    ours = adv.fgsm(mlp, v, torch.tensor([0, 1]), 0.5)
    attack = FGSM(mlp, lower_bound=float("-inf"), upper_bound=float("inf"))
    attack.zero_thresh = 0  # Captum's tie rule (see test_adversarial)
    close(ours, attack.perturb(v.clone(), 0.5, torch.tensor([0, 1])))
    assert ours.max() > 1  # not clamped to a pixel range the model never had
    net = tiny_cnn(0, classes=10)
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert adv.fgsm(net, x, torch.tensor([1, 2]), 0.5).max() <= 1  # an image model's pixels stay in [0, 1]


def test_activations_and_predictions_of_any_model():
    model, x = one_conv()
    a = activations(model, x, "conv1")
    close(a, model.conv1(x))
    assert class_scores(model, x).shape == (1, 4)
    resnet, normalized = user_normalized()
    with torch.no_grad():
        p = torch.softmax(resnet(normalized), 1)[0]
    top = cu.predict(resnet, normalized, topk=3)  # the normalized image reaches the model as it is
    assert [round(q, 6) for _, q in top] == [round(float(q), 6) for q in p.topk(3).values]


@pytest.mark.parametrize("model", [tiny_cnn(0, classes=10), DigitsCNN(), cu.load_model()],
                         ids=["tiny_cnn", "digits", "lite0"])
def test_the_courses_models_still_refuse_a_wrong_range_with_the_fix(model):
    c = 1 if isinstance(model, DigitsCNN) else 3
    assert images.takes_unit_images(model)
    x = torch.rand(1, c, 28, 28, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ImageLoadError, match="divide it by 255"):
        A.saliency(model, (x * 255).round(), 0)
    with pytest.raises(ImageLoadError, match="normalized"):
        A.saliency(model, (x - 0.5) / 0.2, 0)


def test_0_255_pixels_to_an_undeclared_image_network_warn_once(monkeypatch):
    monkeypatch.setattr(images, "_warned_pixels", [])
    model, x = user_normalized()
    pixels = (cu.as_batch("chelsea", 64) * 255).round()
    with pytest.warns(UserWarning, match="0..255 pixels"):
        A.saliency(model, pixels, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A.saliency(model, pixels, 1)  # said once
        A.saliency(model, x, 1)  # a normalized image: nothing to say


def test_a_users_own_model_can_declare_unit_images():
    model, _ = user_normalized()
    images.unit_images(model)
    with pytest.raises(ImageLoadError, match="normalized"):
        A.saliency(model, user_normalized()[1], 1)
