"""Fast neural style (course_utils.fast_style): the network, instance norm, the loss, training, weights."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import fast_style as fs
from course_utils import images as cu_images
from course_utils.models import count_parameters
from course_utils import style as st
from helpers import assert_same_run


# ---------------------------------------------------------------- instance normalization

def test_instance_norm_makes_each_channel_of_each_image_mean_0_variance_1():
    torch.manual_seed(0)
    x = (torch.randn(3, 4, 9, 7) * torch.tensor([1.0, 5.0, 0.1, 30.0]).view(1, 4, 1, 1) + 12.0).double()
    y = fs.instance_norm(x)
    assert torch.allclose(y.mean((2, 3)), torch.zeros(3, 4, dtype=torch.double), atol=1e-9)
    v = x.var((2, 3), unbiased=False)
    assert torch.allclose(y.var((2, 3), unbiased=False), v / (v + 1e-5), atol=1e-4)  # 1 up to eps
    assert torch.allclose(fs.instance_norm(x, eps=0.0).var((2, 3), unbiased=False), torch.ones(3, 4, dtype=torch.double), atol=1e-9)


def test_instance_norm_ignores_the_other_images_of_the_batch_unlike_batch_norm():
    a, b = torch.randn(1, 2, 5, 5), 100 * torch.randn(1, 2, 5, 5)
    alone = fs.instance_norm(a)
    together = fs.instance_norm(torch.cat([a, b]))[:1]
    assert torch.allclose(alone, together, atol=1e-6)
    bn = F.batch_norm(torch.cat([a, b]), None, None, training=True)[:1]
    assert not torch.allclose(bn, alone, atol=1e-2)


def test_instance_norm_matches_torch_and_the_module_matches_the_formula():
    x = torch.randn(2, 3, 6, 5)
    assert torch.allclose(fs.instance_norm(x), F.instance_norm(x), atol=1e-5)
    m = fs.InstanceNorm(3)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([2.0, -1.0, 0.5]))
        m.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
    expect = fs.instance_norm(x) * m.weight.view(1, 3, 1, 1) + m.bias.view(1, 3, 1, 1)
    assert torch.allclose(m(x), expect, atol=1e-5)


def test_instance_norm_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fs.instance_norm(torch.randn(3, 4, 5))


# ---------------------------------------------------------------- the transformation network

@pytest.mark.parametrize("h,w", [(32, 32), (33, 47), (17, 64), (1 + 4 * 9, 30)])
def test_output_has_the_input_size_even_for_odd_sizes(h, w):
    net = fs.TransformerNet(width=4, blocks=1).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.min() >= 0 and y.max() <= 1


def test_network_sizes_are_those_of_the_docstring():
    assert 1.6e6 < count_parameters(fs.TransformerNet(width=32, blocks=5)) < 1.8e6  # Johnson et al.
    assert 0.2e6 < count_parameters(fs.TransformerNet()) < 0.35e6


def test_unknown_norm_is_a_clear_error():
    with pytest.raises(ValueError, match="'instance', 'batch' or 'conditional'"):
        fs.TransformerNet(norm="layer")


def test_batch_norm_network_depends_on_the_batch_in_training_and_instance_norm_does_not():
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24) * 0.2
    for norm, same in (("instance", True), ("batch", False)):
        net = fs.TransformerNet(width=4, blocks=1, norm=norm).train()
        alone = net(torch.cat([a, a]))[:1]
        mixed = net(torch.cat([a, b]))[:1]
        assert torch.allclose(alone, mixed, atol=1e-5) == same, norm


# ---------------------------------------------------------------- the perceptual loss

def test_perceptual_terms_against_a_hand_worked_example():
    # content: F(y) = 2, F(x) = 1 everywhere -> ||1||^2 / ||1||^2 = 1
    out = {"c": torch.full((1, 1, 2, 2), 2.0), "s": torch.ones(1, 1, 2, 2)}
    content = torch.ones(1, 1, 2, 2)
    grams = {"s": torch.full((1, 1, 1), 2.0)}  # the output's Gram is 1: (1 - 2)^2 / 2^2 = 0.25
    img = torch.zeros(1, 1, 3, 3)
    img[..., 1, 1] = 1.0  # TV: dx^2 + dy^2 at the 2x2 top-left positions is 0, 1, 1, 1+1: mean 1
    t = fs.perceptual_terms(out, content, grams, img, "c", {"content": 1.0, "style": 10.0, "tv": 2.0, "range": 0.0})
    assert float(t["content"]) == pytest.approx(1.0)
    assert float(t["style"]) == pytest.approx(0.25)
    assert float(t["tv"]) == pytest.approx(1.0)
    assert float(t["total"]) == pytest.approx(1.0 + 2.5 + 2.0)


def test_range_penalty_by_hand():
    # logit(0.5) = 0 and logit(0.99) = Z_MAX: inside the range, no penalty; logit(y) = Z_MAX + 2 costs 2^2
    y = torch.tensor([0.5, 0.99, 0.01, float(torch.sigmoid(torch.tensor(fs.Z_MAX + 2.0)))]).view(1, 1, 2, 2)
    assert fs.Z_MAX == pytest.approx(math.log(99))
    assert float(fs.range_penalty(y)) == pytest.approx(4.0 / 4, rel=1e-4)
    assert float(fs.range_penalty(1 - y)) == pytest.approx(1.0, rel=1e-4)  # symmetric: dark as bright


def test_range_penalty_gradient_matches_finite_differences():
    torch.manual_seed(1)
    y = torch.rand(1, 3, 8, 8, dtype=torch.double).mul(0.998).add(0.001).requires_grad_(True)  # some beyond 1%..99%
    fs.range_penalty(y).backward()
    d = torch.randn_like(y)
    with torch.no_grad():
        numeric = (fs.range_penalty(y + 1e-7 * d) - fs.range_penalty(y - 1e-7 * d)) / 2e-7
    assert float(numeric) != 0 and float((y.grad * d).sum()) == pytest.approx(float(numeric), rel=1e-4)


def test_saturation_counts_new_saturated_pixels_only():
    photo = torch.full((1, 3, 2, 5), 0.5)
    photo[..., 0, 0] = 1.0  # already saturated in the photo: not the network's doing
    out = photo.clone()
    out[..., 0, 0] = 1.0
    out[0, 2, 1, :2] = 0.0  # two new pixels with their blue channel at 0
    out[0, 0, 1, 2] = 254.4 / 255  # rounds to 254: not saturated
    out[0, 1, 1, 3] = 254.6 / 255  # rounds to 255: saturated
    assert fs.saturation(photo, out) == pytest.approx(3 / 10)
    assert fs.saturation(photo, photo) == 0.0


def test_perceptual_terms_are_batch_means_of_the_single_image_terms():
    torch.manual_seed(0)
    out = {"c": torch.rand(3, 4, 5, 5), "s": torch.rand(3, 2, 4, 4)}
    content, grams, imgs = torch.rand(3, 4, 5, 5), {"s": st.gram_matrix(torch.rand(1, 2, 4, 4))}, torch.rand(3, 3, 6, 6)
    batch = fs.perceptual_terms(out, content, grams, imgs, "c")
    single = [fs.perceptual_terms({k: v[i:i + 1] for k, v in out.items()}, content[i:i + 1], grams, imgs[i:i + 1], "c")
              for i in range(3)]
    for key in ("content", "style", "total"):
        assert float(batch[key]) == pytest.approx(sum(float(s[key]) for s in single) / 3, rel=1e-5)
    # and per image they equal notebook 08's losses
    assert float(single[0]["content"]) == pytest.approx(float(st.content_loss(out["c"][:1], content[:1])), rel=1e-5)
    assert float(single[0]["style"]) == pytest.approx(float(st.style_loss({"s": out["s"][:1]}, grams)), rel=1e-5)


@pytest.fixture(scope="module")
def lossnet(model):
    return st.LossNetwork(model, st.LOSS_LAYERS["efficientnet_lite0"]["style"][:3], "blocks.2", name="lite0 (short)")


def test_perceptual_loss_gradient_matches_finite_differences(lossnet):
    # the whole loss (content and style through the loss network, and TV) must reach the pixels
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32, dtype=torch.double)
    y = (x + 0.1 * torch.randn_like(x)).requires_grad_(True)
    net = st.LossNetwork(lossnet.model.double(), lossnet.style_layers, lossnet.content_layer)
    try:
        grams = {l: g.double() for l, g in net.grams(torch.rand(1, 3, 32, 32, dtype=torch.double)).items()}
        for key in ("content", "style", "total"):
            y.grad = None
            no_range = {"range": 0.0}  # y leaves [0, 1] here: range_penalty's clamp is tested on its own above
            fs.perceptual_loss(net, y, x, grams, no_range)[key].backward()
            d = torch.randn_like(x)
            eps = 1e-5
            with torch.no_grad():
                plus = fs.perceptual_loss(net, y + eps * d, x, grams, no_range)[key]
                minus = fs.perceptual_loss(net, y - eps * d, x, grams, no_range)[key]
            numeric = float((plus - minus) / (2 * eps))
            assert abs(numeric) > 1e-6, key
            assert float((y.grad * d).sum()) == pytest.approx(numeric, rel=2e-3), key  # ReLU6 kinks
    finally:
        lossnet.model.float()


def test_one_training_step_lowers_the_loss_on_a_fixed_batch(lossnet):
    net = fs.TransformerNet(width=8, blocks=1)
    x = fs.ContentImages(["chelsea", "coffee"], size=48, seed=0).batch(2)
    grams = lossnet.grams("strokes", size=48)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    before = fs.perceptual_loss(lossnet, net(x), x, grams)["total"]
    opt.zero_grad()
    before.backward()
    opt.step()
    after = fs.perceptual_loss(lossnet, net(x), x, grams)["total"]
    assert after.item() < before.item()


def test_train_improves_the_loss_leaves_the_loss_network_as_it_was_and_records_history(lossnet):
    flags = [p.requires_grad for p in lossnet.model.parameters()]
    hist, seen = [], []
    net = fs.train(lossnet, "strokes", steps=12, size=40, batch=2, width=4, blocks=1, lr=1e-2, photos=["coffee"],
                   progress=False, history=hist, callback=lambda s, n, r: seen.append(s), callback_every=5)
    assert [h["step"] for h in hist] == list(range(1, 13)) and seen == [5, 10, 12]
    assert sum(h["total"] for h in hist[-3:]) < sum(h["total"] for h in hist[:3])
    assert not net.training and net.meta["steps"] == 12
    assert [p.requires_grad for p in lossnet.model.parameters()] == flags


# ---------------------------------------------------------------- the content set

def test_content_images_are_random_crops_in_range_and_reproducible(tmp_path):
    from PIL import Image

    Image.new("RGB", (60, 50), (200, 10, 10)).save(tmp_path / "red.png")
    a = fs.ContentImages(["coffee"], folder=tmp_path, size=32, seed=1)
    assert len(a.images) == 2
    b1, b2 = a.batch(4), a.batch(4)
    assert b1.shape == (4, 3, 32, 32) and 0 <= b1.min() and b1.max() <= 1
    assert not torch.equal(b1, b2)
    assert torch.equal(fs.ContentImages(["coffee"], folder=tmp_path, size=32, seed=1).batch(4), b1)


def test_content_images_bad_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        fs.ContentImages(folder=tmp_path / "nope")
    with pytest.raises(ValueError, match="no images"):
        fs.ContentImages(folder=tmp_path)


# ---------------------------------------------------------------- weights on disk

def test_save_and_load_round_trip_with_weights_only(tmp_path):
    net = fs.TransformerNet(width=4, blocks=2, norm="batch").eval()
    net.meta = {"style": "x"}
    path = fs.save_stylizer(net, tmp_path / "x.pt", history=[{"step": 1, "total": 2.0}], description="test")
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["meta"]["history"][0]["total"] == 2.0
    back = fs.load_stylizer(path)
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert_same_run(back(x), net(x))
    assert not back.training and back.meta["description"] == "test"


def test_missing_and_corrupt_weights_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a shipped style"):
        fs.load_stylizer(tmp_path / "nothing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="cannot load stylizer weights from .*bad.pt"):
        fs.load_stylizer(bad)
    torch.save({"config": {"width": 8}, "state_dict": fs.TransformerNet(width=4).state_dict()}, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="cannot load"):
        fs.load_stylizer(tmp_path / "w.pt")


def test_a_misspelt_shipped_style_suggests_the_right_one():
    names = list(fs.pretrained_styles())
    assert len(names) >= 3
    with pytest.raises(FileNotFoundError, match=repr(names[0])):
        fs.load_stylizer(names[0][:-1] + "x")


def test_shipped_styles_load_with_weights_only_and_stylize_held_out_photos():
    for name in fs.pretrained_styles():
        ckpt = torch.load(fs.DATA / f"{name}.pt", weights_only=True)  # raises if it holds anything but data
        assert ckpt["meta"]["command"].startswith("python -m course_utils.fast_style train")
        net = fs.load_stylizer(name)
        y = fs.stylize(net, "chelsea", size=65)
        w, h = cu_images.load_image("chelsea").size
        assert y.shape[-2:] == (65, round(w * 65 / h))  # shorter side 65, aspect kept
        x = fs.stylize(net, "chelsea", size=65, strength=0.0)
        assert (y - x).abs().mean() > 0.05  # the style changes the photo
        assert fs.pretrained_styles()[name] == ckpt["meta"]["description"] != ""
    assert not set(fs.HELD_OUT) & set(fs.TRAIN_PHOTOS)


def test_stylize_strength_blends_linearly():
    net = fs.TransformerNet(width=4, blocks=1).eval()
    x = torch.rand(1, 3, 16, 16)
    full, none, half = (fs.stylize(net, x, strength=s) for s in (1.0, 0.0, 0.5))
    assert torch.allclose(none, x)
    assert torch.allclose(half, (full + x) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="strength"):
        fs.stylize(net, x, strength=1.5)


# ---------------------------------------------------------------- exercises and the command line

def test_train_command_writes_weights_loss_curve_and_preview(tmp_path, monkeypatch):
    out = tmp_path / "new_folder" / "tiny.pt"  # a folder that does not exist yet: the previews go there too
    fs.main(["train", "--style", "embers", "--steps", "3", "--size", "32", "--batch", "1", "--width", "4",
             "--blocks", "1", "--preview-every", "2", "--out", str(out)])
    assert out.exists() and (out.parent / "tiny_loss.png").exists() and (out.parent / "tiny_preview.png").exists()
    net = fs.load_stylizer(out)
    assert net.meta["command"].endswith(f"--out {out}") and len(net.meta["history"]) == 3


def test_train_command_with_several_styles_trains_one_conditional_network(tmp_path):
    out = tmp_path / "two.pt"
    fs.main(["train", "--style", "embers", "--style", "kandinsky", "--steps", "2", "--size", "32", "--batch", "1",
             "--width", "4", "--blocks", "1", "--preview-every", "0", "--out", str(out)])
    net = fs.load_stylizer(out)
    assert net.styles == ["embers", "kandinsky"] and "--style embers --style kandinsky" in net.meta["command"]


def test_train_command_bad_style_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fs.main(["train", "--style", "no_such_picture.png", "--out", str(tmp_path / "x.pt"), "--steps", "1"])
    assert "no_such_picture.png" in capsys.readouterr().err


# ---------------------------------------------------------------- one network, several styles (Dumoulin et al.)

def test_conditional_instance_norm_by_hand():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5) * 3 + 1
    gammas, betas = torch.randn(4, 3), torch.randn(4, 3)
    normed = fs.instance_norm(x)
    for k in range(4):  # a one-hot mix is instance norm with that style's scale and shift
        y = fs.conditional_instance_norm(x, gammas, betas, F.one_hot(torch.tensor(k), 4).float())
        assert torch.allclose(y, normed * gammas[k].view(1, 3, 1, 1) + betas[k].view(1, 3, 1, 1), atol=1e-5)
    # a blend of two styles blends their parameters: for a fixed x, the output is the same blend
    mix = torch.tensor([0.25, 0.0, 0.75, 0.0])
    a, b = (fs.conditional_instance_norm(x, gammas, betas, F.one_hot(torch.tensor(k), 4).float()) for k in (0, 2))
    assert torch.allclose(fs.conditional_instance_norm(x, gammas, betas, mix), 0.25 * a + 0.75 * b, atol=1e-5)
    # one mix per image
    per_image = fs.conditional_instance_norm(x, gammas, betas, torch.stack([mix, F.one_hot(torch.tensor(1), 4).float()]))
    assert torch.allclose(per_image[1], normed[1] * gammas[1].view(3, 1, 1) + betas[1].view(3, 1, 1), atol=1e-5)


def test_a_conditional_network_shares_everything_but_its_norms():
    names = ["strokes", "embers", "kandinsky", "mondrian"]
    one, many = fs.TransformerNet(8, 1), fs.TransformerNet(8, 1, "conditional", names)
    norm_params = sum(p.numel() for m in one.modules() if isinstance(m, fs.InstanceNorm) for p in m.parameters())
    assert count_parameters(many) == count_parameters(one) + (len(names) - 1) * norm_params
    assert count_parameters(many) < 1.2 * count_parameters(one) < 4 * count_parameters(one)  # not N networks
    many.eval()
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():  # make the styles differ
        for m in many.modules():
            if isinstance(m, fs.ConditionalInstanceNorm):
                m.weight.add_(torch.randn_like(m.weight))
        by_name, by_index, by_dict = many(x, "embers"), many(x, 1), many(x, {"embers": 1.0})
        assert_same_run(by_name, by_index)
        assert_same_run(by_name, by_dict)
        assert not torch.allclose(many(x, 0), by_name)
        assert by_name.shape == x.shape and 0 < float(by_name.min()) and float(by_name.max()) < 1
    for bad, words in [(None, "needs style="), ("embres", "Did you mean 'embers'"), (7, "out of range"),
                       ([0.5, 0.5], "need 4 numbers")]:
        with pytest.raises(ValueError, match=words):
            many(x, bad)
    with pytest.raises(ValueError, match="one style"):
        one(x, "embers")
    with pytest.raises(ValueError, match="style names"):
        fs.TransformerNet(8, 1, "conditional")


def test_training_several_styles_takes_turns_and_saves_the_names(lossnet, tmp_path):
    history = []
    net = fs.train(lossnet, ["strokes", "embers"], steps=4, size=32, batch=1, width=4, blocks=1, progress=False,
                   history=history)
    assert net.styles == ["strokes", "embers"] and [h["style_index"] for h in history] == [0, 1, 0, 1]
    for m in net.modules():  # each style's row of scale and shift was trained
        if isinstance(m, fs.ConditionalInstanceNorm):
            assert (m.weight != 1).any(1).all()
    back = fs.load_stylizer(fs.save_stylizer(net, tmp_path / "two.pt"))
    x = torch.rand(1, 3, 16, 16)
    assert back.styles == net.styles
    assert_same_run(back(x, "embers"), net(x, "embers"))
    assert_same_run(fs.stylize(back, x, style="embers"), net(x, "embers"))
    with pytest.raises(ValueError, match="must differ"):
        fs.train(lossnet, ["strokes", "strokes"], steps=1, size=32, progress=False)


def test_the_shipped_networks_paint_no_saturated_patches():
    """Issue #18: on the held-out photos, at most 1% of pixels with a colour channel at 0 or 255 that the photo
    does not have, for every shipped style (the networks of one style and the four-style network)."""
    from course_utils.images import as_batch

    nets = {name: (fs.load_stylizer(name), None) for name in fs.pretrained_styles()}
    multi = fs.load_stylizer("paintings")
    nets.update({f"paintings: {s}": (multi, s) for s in multi.styles})
    assert len(nets) >= 3 + 4
    for label, (net, style) in nets.items():
        for photo in fs.HELD_OUT:
            x = as_batch(photo, shorter_side=256)
            share = fs.saturation(x, fs.stylize(net, x, style=style))
            assert share <= 0.01, (label, photo, share)


def test_lattice_finds_a_regular_pattern_and_not_noise():
    """Dots on a grid of 8 px, cos(x) cos(y), match themselves shifted by one period (up to the shrinking
    overlap of a zero-padded autocorrelation: 1 - 8/128); white noise matches no shift; a constant image has
    no detail at all."""
    t = torch.arange(128.0)
    wave = torch.cos(2 * math.pi * t / 8)
    dots = (0.5 + 0.3 * wave[:, None] * wave[None, :]).expand(1, 3, 128, 128)
    assert fs.lattice(dots) == pytest.approx(1 - 8 / 128, abs=0.03)
    noise = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    assert fs.lattice(noise) < 0.1
    assert fs.lattice(torch.full((1, 3, 32, 32), 0.4)) == 0.0
