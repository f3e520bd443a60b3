import io

import numpy as np
import pytest
import torch
from PIL import Image

import course_utils as cu
from course_utils.images import BUNDLED, ImageLoadError


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_every_bundled_image_loads_as_rgb(name):
    img = cu.load_image(name)
    assert img.mode == "RGB" and min(img.size) > 16 and max(img.size) <= 1024


def test_sample_images_name_their_source():
    samples = cu.sample_images()
    assert samples["chelsea"].startswith("scikit-image")
    assert samples["china"].startswith("scikit-learn")
    assert samples["grace_hopper"].startswith("matplotlib")


def test_sizes():
    assert cu.load_image("chelsea", size=224).size == (224, 224)
    assert cu.load_image("chelsea", size=(100, 150)).size == (150, 100)  # (H, W) -> PIL (W, H)
    big = Image.new("RGB", (3000, 1500), "red")
    assert cu.load_image(big).size == (1024, 512)


def test_modes_are_converted(tmp_path):
    grey = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert cu.load_image(grey).mode == "RGB"
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent -> white background
    assert cu.load_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (4, 4))
    pal.putpalette([0, 0, 255] * 256)
    assert cu.load_image(pal).getpixel((1, 1)) == (0, 0, 255)
    deep = Image.fromarray(np.array([[0, 65535]], dtype=np.uint16))
    assert cu.load_image(deep).getpixel((1, 0)) == (255, 255, 255)
    assert cu.load_image("logo").mode == "RGB"  # a bundled RGBA image


def test_sources_array_tensor_path_bytes(tmp_path):
    a = (np.random.default_rng(0).random((10, 12, 3)) * 255).astype(np.uint8)
    p = tmp_path / "x.png"
    Image.fromarray(a).save(p)
    from_path = cu.load_image(str(p))
    assert np.array_equal(np.asarray(from_path), a)
    assert np.array_equal(np.asarray(cu.load_image(p)), a)
    assert np.array_equal(np.asarray(cu.load_image(p.read_bytes())), a)
    assert np.array_equal(np.asarray(cu.load_image(a)), a)
    assert np.array_equal(np.asarray(cu.load_image(a / 255.0)), a)
    t = cu.as_batch(from_path)
    assert t.shape == (1, 3, 10, 12) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1
    assert np.array_equal(np.asarray(cu.to_image(t)), a)
    assert np.array_equal(np.asarray(cu.load_image(t)), a)


def test_roundtrip_tensor_image():
    x = torch.rand(1, 3, 5, 7)
    y = cu.as_batch(cu.to_image(x))
    assert (x - y).abs().max() <= 0.5 / 255 + 1e-6


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with pytest.raises(ImageLoadError, match="notes.png") as e:
        cu.load_image(str(bad))
    assert "not an image format" in str(e.value)


def test_truncated_file_is_reported(tmp_path):
    p = tmp_path / "cut.jpg"
    cu.load_image("chelsea").save(p)
    p.write_bytes(p.read_bytes()[:2000])
    with pytest.raises(ImageLoadError, match="cut.jpg"):
        cu.load_image(str(p))


def test_missing_name_suggests_bundled():
    with pytest.raises(ImageLoadError, match="'chelsea'"):
        cu.load_image("chelsae")
    with pytest.raises(ImageLoadError, match="no such file|neither"):
        cu.load_image("/nonexistent/cat.png")


def test_url_offline_is_a_clear_error():
    with pytest.raises(ImageLoadError, match="offline"):
        cu.load_image("https://example.org/cat.jpg")


def test_bad_arrays_and_types():
    with pytest.raises(ImageLoadError, match="shape"):
        cu.load_image(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ImageLoadError, match=r"\[0, 1\]"):
        cu.load_image(np.full((4, 4), -7.0))
    with pytest.raises(ImageLoadError, match="batch"):
        cu.load_image(torch.rand(2, 3, 4, 4))
    with pytest.raises(ImageLoadError, match="dict"):
        cu.load_image({})
    with pytest.raises(ValueError, match="batch"):
        cu.to_image(torch.rand(2, 3, 4, 4))


def test_as_batch_is_the_one_way_in(model):
    # a name, a file's bytes, a PIL image, an array and a tensor give the same batch
    ref = cu.as_batch("coffee", 64)
    assert ref.shape == (1, 3, 64, 64) and ref.dtype == torch.float32
    img = cu.load_image("coffee", size=64)
    assert torch.equal(cu.as_batch(img), ref)
    assert torch.equal(cu.as_batch(np.asarray(img)), ref)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert torch.equal(cu.as_batch(buf.getvalue()), ref)
    assert torch.equal(cu.as_batch(ref[0]), ref)  # (3, H, W) is one image
    assert cu.as_batch(ref, 64) is not ref and torch.equal(cu.as_batch(ref, 64), ref)  # already that size
    assert cu.as_batch(ref, 32).shape == (1, 3, 32, 32)  # a tensor is resized as a photo would be
    assert cu.as_batch(torch.rand(5, 1, 8, 8)).shape == (5, 1, 8, 8)  # any channel count...
    with pytest.raises(ImageLoadError, match=r"\(3, H, W\)"):  # ...unless RGB is needed
        cu.as_batch(torch.rand(5, 1, 8, 8), channels=3)
    with pytest.raises(ImageLoadError, match=r"\(C, H, W\) or \(N, C, H, W\)"):
        cu.as_batch(torch.rand(8, 8))
    # on the model's device, in its dtype; a float64 tensor stays float64 without a model
    assert cu.as_batch(ref.double()).dtype == torch.float64
    assert cu.as_batch(ref.double(), device=model).dtype == torch.float32
    # integer tensors are converted, and 0..255 ones refused with the fix
    assert cu.as_batch(torch.ones(1, 3, 2, 2, dtype=torch.uint8)).dtype == torch.float32
    with pytest.raises(ValueError, match="divide it by 255"):
        cu.as_batch(torch.full((1, 3, 2, 2), 200, dtype=torch.uint8))


def test_tensors_resize_as_tensors():
    """Issue #25: a tensor is resized in float (antialiased bicubic), never through 8-bit PIL, any channel
    count; the crop arithmetic is torchvision's Resize + CenterCrop, and the picture is PIL's within a few
    levels."""
    from torchvision.transforms.v2 import functional as TF

    x = cu.as_batch("chelsea", (90, 120)).double()
    small = cu.as_batch(x, 40)
    assert small.dtype == torch.float64 and small.shape == (1, 3, 40, 40)
    assert not torch.allclose(small * 255, (small * 255).round())  # not quantized to 8 bits
    ref = TF.center_crop(TF.resize(x, 40, interpolation=TF.InterpolationMode.BICUBIC, antialias=True), 40)
    assert torch.allclose(small, ref.clamp(0, 1))
    pil = cu.as_batch(cu.load_image(cu.to_image(x), size=40)).double()
    assert (small - pil).abs().mean() < 0.02
    # shorter_side keeps the whole picture, for pictures and tensors alike
    assert cu.as_batch(x, shorter_side=45).shape == (1, 3, 45, 60)
    assert cu.as_batch("chelsea", shorter_side=45).shape[-2:] == cu.as_batch(cu.load_image("chelsea"), shorter_side=45).shape[-2:]
    h, w = cu.load_image("chelsea").size[::-1]
    assert cu.load_image("chelsea", shorter_side=45).size == (round(w * 45 / h), 45)
    assert cu.as_batch(torch.rand(2, 1, 28, 28), (14, 14)).shape == (2, 1, 14, 14)  # the digits, too
    # antialiased: a one-pixel checkerboard shrinks to grey, not to another pattern
    board = ((torch.arange(64)[:, None] + torch.arange(64)[None]) % 2).float().expand(1, 3, 64, 64)
    assert (cu.as_batch(board, 16) - 0.5).abs().max() < 0.02
    with pytest.raises(ValueError, match="not both"):
        cu.as_batch(x, 40, shorter_side=40)


def test_noise_image_is_seeded_and_in_range():
    a, b = cu.noise_image(16, 3), cu.noise_image((16, 16), 3)
    assert torch.equal(a, b) and a.shape == (1, 3, 16, 16) and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, cu.noise_image(16, 4))
    g = torch.Generator().manual_seed(3)
    assert torch.equal(cu.noise_image(16, g), a)  # a generator is a seed too
    state = torch.get_rng_state()
    cu.noise_image(16, 5)
    assert torch.equal(torch.get_rng_state(), state)  # torch's global generator is left alone


def test_grid_draws_titled_panels():
    import matplotlib

    matplotlib.use("Agg")
    fig = cu.grid([cu.load_image("coffee"), torch.rand(1, 3, 8, 8), torch.rand(8, 8)], titles=["a", "b", "c"])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="titles"):
        cu.grid([torch.rand(8, 8)], titles=["a", "b"])
    cu.show(torch.rand(3, 3, 8, 8))  # a batch; closes the figure under Agg


def test_load_image_applies_the_exif_orientation():
    """A phone's portrait photo: landscape pixels plus 'rotate 90' (orientation 6) in its EXIF."""
    from PIL import Image

    img = Image.new("RGB", (80, 40), (200, 10, 10))
    img.paste((10, 10, 200), (0, 0, 10, 40))  # a blue stripe on the left edge
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    loaded = cu.load_image(buf.getvalue())
    assert loaded.size == (40, 80)  # width 40, height 80: standing up
    top = np.asarray(loaded)[:5].mean((0, 1))
    assert top[2] > 150 and top[0] < 80  # orientation 6 turns the left edge to the top


def test_tensors_outside_zero_one_are_refused_with_the_fix():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="divide it by 255"):
        cu.as_batch(x * 255)
    with pytest.raises(ValueError, match="divide it by 255"):
        cu.load_image(x[0] * 255)
    with pytest.raises(ValueError, match="normalizes it itself"):
        cu.as_batch((x - 0.45) / 0.22)
    with pytest.warns(UserWarning, match="clamped"):
        assert cu.as_batch(x * 1.05).max() <= 1
    assert torch.equal(cu.as_batch(x), x)


def test_the_model_warns_on_a_0_255_image(model):
    x = torch.rand(1, 3, 32, 32)
    with pytest.warns(UserWarning, match="divide a 0..255 image by 255"):
        model(x * 255)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(x)
