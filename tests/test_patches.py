"""course_utils.patches: top patches against a brute-force search, the crop pool, selective channels."""
import numpy as np
import pytest
import torch

from course_utils.patches import (POOL_PHOTOS, Region, cut_patch, photo_crops, selective_channels, show_top_patches,
                                  strongest_channels, top_patches)
from course_utils.receptive_fields import gradient_footprint, mask_box, receptive_field

from test_receptive_fields import tiny_chain


def test_cut_patch_pads_outside_the_image():
    img = torch.rand(3, 10, 12)
    p = cut_patch(img, (-2, 8, 5, 15))
    assert p.shape == (3, 7, 7)
    assert torch.equal(p[:, 2:, :4], img[:, 0:5, 8:12])
    assert torch.all(p[:, :2] == 0.5) and torch.all(p[:, :, 4:] == 0.5)


@pytest.mark.parametrize("inside", [False, True])
def test_top_patches_match_a_brute_force_search(inside):
    net = tiny_chain()
    torch.manual_seed(1)
    images = torch.rand(7, 3, 24, 24)
    layer, channel, k = "4", 2, 4
    rf = receptive_field(net, layer, 24)
    # brute force: every image alone, every position, in plain Python loops
    best = []
    for n in range(len(images)):
        with torch.no_grad():
            a = net[:5](images[n:n + 1])[0, channel]
        v, pos = -np.inf, None
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                t, l, b, r = rf.box(i, j)
                if inside and not (t >= 0 and l >= 0 and b <= 24 and r <= 24):
                    continue
                if float(a[i, j]) > v:  # the first position wins a tie, as argmax does
                    v, pos = float(a[i, j]), (i, j)
        best.append((v, n, pos))
    best.sort(key=lambda t: -t[0])
    got = top_patches(net, images, layer, channel, k=k, inside=inside)
    assert [p.image_index for p in got] == [n for _, n, _ in best[:k]]
    assert [p.position for p in got] == [pos for _, _, pos in best[:k]]
    assert np.allclose([p.value for p in got], [v for v, _, _ in best[:k]], atol=1e-5)
    for p in got:  # the patch holds the pixels whose gradient reaches the unit (the empirical field)
        fp = gradient_footprint(net, images[p.image_index:p.image_index + 1], layer, *p.position, channel=None)
        t, l, b, r = mask_box(fp)
        top, left = p.box[0], p.box[1]
        assert torch.equal(p.pixels[:, t - top:b - top, l - left:r - left], images[p.image_index][:, t:b, l:r])
    with pytest.raises(ValueError, match="channels"):
        top_patches(net, images, layer, 99)


def test_photo_crops():
    crops, sources, regions = photo_crops(["chelsea", "coffee"], size=64, scales=(1.0, 0.5), flip=True)
    assert crops.shape[1:] == (3, 64, 64) and len(crops) == len(sources) == len(regions)
    assert set(sources) == {"chelsea", "coffee"}
    assert float(crops.min()) >= 0 and float(crops.max()) <= 1
    assert torch.equal(crops[1], crops[0].flip(-1))  # each crop is followed by its mirror image
    # scale 1: one centre crop (and its mirror); scale 0.5: shorter side 128 px -> 2 rows of 64
    assert sources.count("chelsea") == 2 * (1 + 2 * 3)
    # chelsea is 451x300, resized to 96x64: the centre crop starts 16 px in, 16 * 451 / 96 = 75.2 px of the photo
    assert regions[0].photo == "chelsea" and not regions[0].flipped and regions[1].flipped
    assert regions[0].box == pytest.approx((0.0, 16 * 451 / 96, 300.0, 80 * 451 / 96))
    assert all(r.box[2] - r.box[0] == pytest.approx(150, abs=1) for r in regions[2:14])


def test_the_pool_holds_every_bundled_photo_and_a_folder(tmp_path):
    from PIL import Image

    _, sources, _ = photo_crops(size=128, scales=(1.0,))
    assert sources == list(POOL_PHOTOS) and len(POOL_PHOTOS) >= 16
    for name in ("b.png", "a.jpg"):
        Image.new("RGB", (120, 100), (200, 30, 30)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    crops, sources, _ = photo_crops([tmp_path, "coffee"], size=64, scales=(1.0,))
    assert sources == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png"), "coffee"]
    assert torch.allclose(crops[0, 0], torch.full((64, 64), 200 / 255), atol=0.02)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image"):
        photo_crops([tmp_path / "empty"])


def test_region_parts_and_overlaps_by_hand():
    r = Region("p", (100.0, 200.0, 300.0, 400.0))  # a 200 px square of the photo, shown as a 100 px crop
    assert r.part((10, 20, 30, 60), 100) == Region("p", (120.0, 240.0, 160.0, 320.0))
    mirrored = Region("p", r.box, flipped=True)  # column c of the mirror is column 100 - c of the crop
    assert mirrored.part((10, 40, 30, 80), 100).box == (120.0, 240.0, 160.0, 320.0)
    assert r.part((-5, -5, 10, 10), 100).box == (100.0, 200.0, 120.0, 220.0)  # clipped to the crop
    a, b = Region("p", (0, 0, 10, 10)), Region("p", (5, 0, 15, 10))
    assert a.overlaps(b) and not a.overlaps(b, share=0.6)  # they share half of either
    assert not a.overlaps(Region("q", (0, 0, 10, 10)))  # another photo
    assert Region("p", (0, 0, 100, 100)).overlaps(Region("p", (10, 10, 20, 20)))  # a zoomed view of one place


def test_top_patches_take_one_patch_per_place():
    from course_utils import load_model
    from course_utils.layers import activations

    model = load_model()
    crops, sources, regions = photo_crops(["chelsea", "grace_hopper", "china"], size=96, scales=(1.0, 0.5),
                                          flip=True)
    model_acts = activations(model, crops, "blocks.5")
    repeated = 0
    for channel in range(0, 40, 4):
        plain = top_patches(model, crops, "blocks.5", channel, k=6, acts=model_acts)
        once = top_patches(model, crops, "blocks.5", channel, k=6, acts=model_acts, regions=regions)
        places = [regions[p.image_index].part(p.box, 96) for p in once]
        assert len(once) == 6
        assert not any(places[i].overlaps(places[j]) for i in range(6) for j in range(i))
        assert [p.value for p in once] == sorted((p.value for p in once), reverse=True)
        assert once[0].value == plain[0].value
        plain_places = [regions[p.image_index].part(p.box, 96) for p in plain]
        repeated += any(plain_places[i].overlaps(plain_places[j]) for i in range(6) for j in range(i))
    assert repeated >= 3  # without regions, mirror images and zoomed copies do take several slots


def test_selective_channels_by_hand():
    # 10 images, 3 channels; channel 1 has a few images with huge responses (selective), channel 0 is flat noise,
    # channel 2 is large everywhere (strong but not selective)
    g = torch.Generator().manual_seed(0)
    acts = torch.rand(10, 3, 2, 2, generator=g)
    acts[:, 2] += 50
    acts[:3, 1, 0, 0] = 20
    images = torch.rand(10, 3, 8, 8)
    net = tiny_chain()
    assert selective_channels(net, images, "0", n=1, acts=acts, inside=False, k=3) == [1]
    # the score is (mean of the k largest per-image maxima - median maximum) / std of the maxima
    vals = acts.flatten(2).max(2).values
    score = (vals.topk(3, 0).values.mean(0) - vals.median(0).values) / vals.std(0)
    assert selective_channels(net, images, "0", n=3, acts=acts, inside=False, k=3) == score.argsort(descending=True).tolist()


def test_strongest_channels_by_hand():
    # channel 2 is large everywhere (strongest); channel 1 has three huge responses; channel 0 is small noise
    acts = torch.rand(10, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    acts[:, 2] += 50
    acts[:3, 1, 0, 0] = 20
    net = tiny_chain()
    # top-3 means: channel 2 about 51, channel 1 exactly 20, channel 0 below 1
    assert strongest_channels(net, torch.rand(10, 3, 8, 8), "0", n=3, acts=acts, k=3) == [2, 1, 0]
    # with k=10 channel 1's three peaks are averaged with seven values below 1: (60 + 7 * ~0.7) / 10 < 50
    assert strongest_channels(net, None, "0", n=1, acts=acts, k=10) == [2]


def test_show_top_patches_draws_one_row_per_channel():
    import matplotlib.pyplot as plt

    net, images = tiny_chain(), torch.rand(6, 3, 24, 24)
    fig = show_top_patches(net, images, "4", [0, 2], k=3, sources=[f"im{i}" for i in range(6)])
    assert len([ax for ax in fig.axes if ax.images]) == 6
    plt.close(fig)
