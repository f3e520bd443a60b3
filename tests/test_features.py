"""course_utils.features: receptive fields (hand-worked and empirical), top patches, neighbours, embeddings."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils.features import (activations, cosine_neighbours, cut_patch, embed, feature_vectors,
                                   gradient_footprint, knn_accuracy, layer_geometry, mask_box,
                                   nearest_neighbours, photo_crops, receptive_field, rf_size_stride,
                                   top_patches)


def _clip(box, h, w):
    t, l, b, r = box
    return max(t, 0), max(l, 0), min(b, h), min(r, w)


def test_rf_size_stride_alexnet_by_hand():
    # AlexNet: conv1 11/4 -> 11; pool1 3/2 -> 19; conv2 5/1 -> 51; pool2 3/2 -> 67;
    # conv3-5 3/1 -> 99, 131, 163 (stride 16); pool5 3/2 -> 195 (stride 32)
    stack = [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1)]
    assert rf_size_stride(stack[:1]) == (11, 4)
    assert rf_size_stride(stack[:3]) == (51, 8)
    assert rf_size_stride(stack) == (163, 16)
    assert rf_size_stride(stack + [(3, 2)]) == (195, 32)
    assert rf_size_stride([]) == (1, 1)
    with pytest.raises(ValueError):
        rf_size_stride([(0, 1)])


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(5, 6, 3, padding="same", dilation=2), nn.ReLU())


def test_receptive_field_hand_worked_sequential():
    net = _tiny()
    # conv 3 pad 1: size 3, offset -1 | avgpool 2/2: size 4, stride 2 | conv 3/2 pad 1: size 8, stride 4,
    # offset -1 - 2 = -3 | dilated conv 3 (d=2), 'same' pad 2: size 8 + 4*4 = 24, offset -3 - 2*4 = -11
    assert receptive_field(net, "0", 32) == receptive_field(net, "1", 32)
    rf = receptive_field(net, "0", 32)
    assert (rf.size, rf.stride, rf.offset) == ((3, 3), (1, 1), (-1, -1))
    rf = receptive_field(net, "4", 32)
    assert (rf.size, rf.stride, rf.offset) == ((8, 8), (4, 4), (-3, -3))
    rf = receptive_field(net, "6", 32)
    assert (rf.size, rf.stride, rf.offset) == ((24, 24), (4, 4), (-11, -11))
    assert [g[0] for g in layer_geometry(net, "6", 32)] == ["0", "2", "3", "5"]


def test_receptive_field_hand_worked_tensorflow_same_padding(model):
    # stem: 3x3 stride 2 at 224 px; SAME pads 1 pixel in total, at the bottom/right: unit 0 sees rows 0-2
    rf = receptive_field(model, "stem.conv", 224)
    assert (rf.size, rf.stride, rf.offset) == ((3, 3), (2, 2), (0, 0))
    # at 225 px SAME pads 2 in total, one on top: unit 0 sees rows -1..1
    assert receptive_field(model, "stem.conv", 225).offset == (-1, -1)
    # block 0's depthwise 3x3 (stride 1, padding 1 on top) on the stem's grid: 3 + 2*2 = 7, offset -2
    rf = receptive_field(model, "blocks.0", 224)
    assert (rf.size, rf.stride, rf.offset) == ((7, 7), (2, 2), (-2, -2))


@pytest.mark.parametrize("layer", ["4", "6"])
def test_receptive_field_equals_gradient_footprint_tiny(layer):
    net = _tiny()
    x = torch.rand(1, 3, 32, 32)
    rf = receptive_field(net, layer, 32)
    h = activations(net, layer, x).shape[-1]
    for i, j in [(0, 0), (h // 2, h // 2 + 1), (h - 1, h - 1), (1, h - 2)]:
        t, l, b, r = mask_box(gradient_footprint(net, layer, x, i, j))
        ct, cl, cb, cr = _clip(rf.box(i, j), 32, 32)
        assert ct <= t and cl <= l and b <= cb and r <= cr  # the footprint lies inside the field
    # away from the border the field is exactly the footprint; at the border a dilated layer reaches some
    # edge pixels only through padding, so there the footprint can be a little smaller than the clipped field
    i = j = h // 2
    assert mask_box(gradient_footprint(net, layer, x, i, j)) == _clip(rf.box(i, j), 32, 32)
    if layer == "4":  # no dilation: exact at the border too
        assert mask_box(gradient_footprint(net, layer, x, 0, h - 1)) == _clip(rf.box(0, h - 1), 32, 32)


@pytest.mark.parametrize("layer,size", [("blocks.2", 96), ("blocks.5", 128), ("blocks.10", 128)])
def test_receptive_field_equals_gradient_footprint_real_model(model, layer, size):
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size)
    rf = receptive_field(model, layer, size)
    h = activations(model, layer, x).shape[-1]
    for i, j in [(0, 0), (h // 2, h // 2), (h - 1, 1)]:
        fp = gradient_footprint(model, layer, x, i, j)
        assert mask_box(fp) == _clip(rf.box(i, j), size, size), (layer, i, j)
        # and the footprint fills the box: every pixel of the field reaches the unit
        t, l, b, r = _clip(rf.box(i, j), size, size)
        assert fp[t:b, l:r].float().mean() > 0.99
    assert all(not p.requires_grad for p in model.parameters()) and not model.training


def test_cut_patch_pads_outside_the_image():
    img = torch.rand(3, 10, 12)
    p = cut_patch(img, (-2, 8, 5, 15))
    assert p.shape == (3, 7, 7)
    assert torch.equal(p[:, 2:, :4], img[:, 0:5, 8:12])
    assert torch.all(p[:, :2] == 0.5) and torch.all(p[:, :, 4:] == 0.5)


@pytest.mark.parametrize("inside", [False, True])
def test_top_patches_match_a_brute_force_search(inside):
    net = _tiny()
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
    got = top_patches(net, layer, channel, images, k=k, inside=inside)
    assert [p.image_index for p in got] == [n for _, n, _ in best[:k]]
    assert [p.position for p in got] == [pos for _, _, pos in best[:k]]
    assert np.allclose([p.value for p in got], [v for v, _, _ in best[:k]], atol=1e-5)
    for p in got:  # the patch holds the pixels whose gradient reaches the unit (the empirical field)
        fp = gradient_footprint(net, layer, images[p.image_index:p.image_index + 1], *p.position, channel=None)
        t, l, b, r = mask_box(fp)
        top, left = p.box[0], p.box[1]
        assert torch.equal(p.pixels[:, t - top:b - top, l - left:r - left], images[p.image_index][:, t:b, l:r])
    with pytest.raises(ValueError, match="channels"):
        top_patches(net, layer, 99, images)


def test_photo_crops():
    crops, sources = photo_crops(["chelsea", "coffee"], size=64, scales=(1.0, 0.5), flip=True)
    assert crops.shape[1:] == (3, 64, 64) and len(crops) == len(sources)
    assert set(sources) == {"chelsea", "coffee"}
    assert float(crops.min()) >= 0 and float(crops.max()) <= 1
    assert torch.equal(crops[1], crops[0].flip(-1))  # each crop is followed by its mirror image
    # scale 1: one centre crop (and its mirror); scale 0.5: shorter side 128 px -> 2 rows of 64
    assert sources.count("chelsea") == 2 * (1 + 2 * 3)


def test_activations_and_feature_vectors_leave_the_model_alone(model):
    x = torch.rand(3, 3, 64, 64)
    acts = activations(model, ["blocks.2", "pool"], x, batch_size=2)
    assert acts["blocks.2"].shape == (3, 24, 16, 16) and acts["pool"].shape == (3, 1280, 1, 1)
    f = feature_vectors(model, "blocks.2", x)
    assert torch.allclose(f, acts["blocks.2"].mean((2, 3)))
    assert not any(m._forward_hooks for m in model.modules())


def test_cosine_neighbours_match_scikit_learn():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    bank, query = rng.normal(size=(200, 16)), rng.normal(size=16)
    sims, idx = cosine_neighbours(torch.tensor(query), torch.tensor(bank), k=5)
    dist, ref = NearestNeighbors(n_neighbors=5, metric="cosine").fit(bank).kneighbors(query[None])
    assert idx.tolist() == ref[0].tolist()
    assert np.allclose(sims.numpy(), 1 - dist[0])
    assert nearest_neighbours(query, bank, 5, "cosine") == ref[0].tolist()
    _, ref_e = NearestNeighbors(n_neighbors=6).fit(bank).kneighbors(bank[7:8])
    assert nearest_neighbours(bank[7], bank, 5, "euclidean", exclude=7) == ref_e[0][1:].tolist()
    with pytest.raises(ValueError):
        cosine_neighbours(torch.tensor(query), torch.tensor(bank), k=0)
    with pytest.raises(ValueError):
        nearest_neighbours(query, bank, 3, metric="manhattan")


def test_embeddings_and_knn_accuracy():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 60)
    centres = rng.normal(0, 10, (3, 40))
    x = centres[labels] + rng.normal(0, 1, (180, 40))
    for method in ("pca", "tsne"):
        pts = embed(x, method, perplexity=20)
        assert pts.shape == (180, 2)
        assert knn_accuracy(pts, labels) == 1.0  # well separated blobs stay separate
    assert abs(knn_accuracy(rng.normal(size=(180, 2)), labels) - 1 / 3) < 0.15  # chance level
    assert np.allclose(embed(x[:60], "tsne", perplexity=10, seed=3), embed(x[:60], "tsne", perplexity=10, seed=3))
    with pytest.raises(ValueError):
        embed(x, "umap")
