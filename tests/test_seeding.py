"""The seed rule: every random function draws from `seed=` alone and leaves torch's global generator as it was."""
import pytest
import torch

from course_utils import adversarial, ascent, digits, fast_style, testing
from course_utils.backprop import attribution, map_quality
from course_utils.images import noise_image
from course_utils.models import load_model
from course_utils.seeding import forked, generator
from course_utils.style import LossNetwork


def tiny():
    return testing.tiny_cnn(0, classes=10)


def randomized():
    model = tiny()
    map_quality.randomize_(model, 1)
    return model.conv1.weight


X = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))

RANDOM = {
    "noise_image": lambda: noise_image(8, 1),
    "tiny_cnn": lambda: testing.tiny_cnn(3).conv1.weight,
    "pgd": lambda: adversarial.pgd(tiny(), X, 1, 0.03, 0.01, 2, seed=1),
    "random_sign_noise": lambda: adversarial.random_sign_noise(X, 0.03, seed=1),
    "smoothgrad": lambda: attribution.smoothgrad(tiny(), X, 1, samples=3, seed=1),
    "class_visualization": lambda: ascent.class_visualization(testing.tiny_cnn(), 1, size=16, steps=3, seed=1,
                                                              progress=False),
    "randomize_": lambda: randomized(),
    "content crops": lambda: fast_style.ContentImages(["coffee"], size=16, seed=1).batch(2),
    "fast style training": lambda: fast_style.train(
        LossNetwork(testing.tiny_cnn(), ["relu1"], "relu2"), "strokes", steps=2, size=16, batch=1, width=4, blocks=1,
        photos=["coffee"], seed=1, progress=False).up[-1][1].weight,
    "digits training": lambda: digits.train_digits_cnn(epochs=0, seed=1, progress=False).model.conv1.weight,
    "random model": lambda: next(load_model("efficientnet_lite0", pretrained=False, seed=1).parameters()),
}


@pytest.mark.parametrize("name", RANDOM)
def test_global_generator_is_left_alone_and_results_repeat(name):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = RANDOM[name]()
    assert torch.equal(torch.get_rng_state(), state), f"{name} moved torch's global generator"
    torch.manual_seed(456)  # another global state: the result must not depend on it
    assert torch.equal(a, RANDOM[name]())


def test_generator_and_forked():
    g = generator(5)
    assert generator(g) is g
    assert torch.equal(torch.rand(3, generator=generator(5)), torch.rand(3, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(TypeError, match="seed"):
        generator(1.5)
    state = torch.get_rng_state()
    with forked(7):
        inside = torch.rand(2)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(7)
    assert torch.equal(torch.rand(2), inside)
