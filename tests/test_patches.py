"""course_utils.patches: top patches against a brute-force search, the crop pool, selective channels."""
import numpy as np
import pytest
import torch

from course_utils.patches import cut_patch, photo_crops, selective_channels, show_top_patches, top_patches
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
    crops, sources = photo_crops(["chelsea", "coffee"], size=64, scales=(1.0, 0.5), flip=True)
    assert crops.shape[1:] == (3, 64, 64) and len(crops) == len(sources)
    assert set(sources) == {"chelsea", "coffee"}
    assert float(crops.min()) >= 0 and float(crops.max()) <= 1
    assert torch.equal(crops[1], crops[0].flip(-1))  # each crop is followed by its mirror image
    # scale 1: one centre crop (and its mirror); scale 0.5: shorter side 128 px -> 2 rows of 64
    assert sources.count("chelsea") == 2 * (1 + 2 * 3)




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


def test_show_top_patches_draws_one_row_per_channel():
    import matplotlib.pyplot as plt

    net, images = tiny_chain(), torch.rand(6, 3, 24, 24)
    fig = show_top_patches(net, images, "4", [0, 2], k=3, sources=[f"im{i}" for i in range(6)])
    assert len([ax for ax in fig.axes if ax.images]) == 6
    plt.close(fig)
