"""course_utils.backprop.segmentation: GrabCut seeded by a map, IoU, the composites where the answer is known."""
import numpy as np
import pytest
import torch

from course_utils.backprop import segmentation as S


def _square_scene(size=64, top=6, left=8, side=24):
    """A red square on a green-grey noisy field, and its mask."""
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.full((size, size), 0.3), torch.full((size, size), 0.6), torch.full((size, size), 0.3)])
    x = (x + 0.05 * torch.randn(3, size, size, generator=g)).clamp(0, 1)
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top:top + side, left:left + side] = True
    x[0][mask], x[1][mask], x[2][mask] = 0.9, 0.1, 0.1
    return x[None], mask


def test_iou_and_centre_box_by_hand():
    a = torch.zeros(4, 4, dtype=torch.bool)
    a[:2, :2] = True  # 4 pixels
    b = torch.zeros(4, 4, dtype=torch.bool)
    b[1:3, 1:3] = True  # 4 pixels, 1 shared
    assert S.iou(a, b) == pytest.approx(1 / 7)
    assert S.iou(a, a) == 1.0 and S.iou(torch.zeros(2, 2), torch.zeros(2, 2)) == 1.0
    box = S.centre_box((10, 10), 16)
    assert int(box.sum()) == 16 and box[3:7, 3:7].all()
    with pytest.raises(ValueError, match="shapes"):
        S.iou(a, torch.zeros(3, 3))


def test_grabcut_grows_seeds_into_the_object():
    x, mask = _square_scene()
    # a blurry, offset map: a Gaussian bump near the square's centre, not its outline (the square is off-centre)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    bump = torch.exp(-((yy - 16) ** 2 + (xx - 22) ** 2) / (2 * 8.0 ** 2))  # the square's centre is (18, 20)
    got = S.grabcut(x, bump)
    assert S.iou(got, mask) > 0.9
    assert S.iou(S.centre_box(mask.shape, int(mask.sum())), mask) < 0.5  # the baseline is far worse here
    assert torch.equal(got, S.grabcut(x, bump))  # seeded: the same mask twice
    with pytest.raises(ValueError, match="one size"):
        S.grabcut(x, bump[:32])
    with pytest.raises(ValueError, match="background < foreground"):
        S.grabcut(x, bump, foreground=0.2, background=0.3)


def test_composites_paste_the_object_where_the_mask_says():
    x, mask = S.composite("coffee", "grass", size=96, object_size=40, seed=3)
    from course_utils.images import as_batch

    obj = as_batch("coffee", 40)
    rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
    top, left = int(rows[0]), int(cols[0])
    assert int(mask.sum()) == 40 * 40 and len(rows) == len(cols) == 40
    torch.testing.assert_close(x[..., top:top + 40, left:left + 40], obj)
    assert not torch.equal(S.composite("coffee", "grass", 96, 40, seed=4)[1], mask)  # another seed, another place
    cases = S.composites(3, size=96, object_size=40)
    assert [c for _, _, c in cases] == [c for _, c in S.OBJECTS[:3]]


def test_benchmark_beats_the_centred_box_on_composites(model):
    cases = S.composites(3, seed=0)
    methods = {k: S.METHODS[k] for k in ("gradient", "Grad-CAM")}
    scores = S.benchmark(model, cases, methods)
    assert set(scores) == {"gradient", "Grad-CAM", "centred box"} and all(len(v) == 3 for v in scores.values())
    assert np.mean(scores["Grad-CAM"]) > np.mean(scores["centred box"]) + 0.2
    assert all(0 <= v <= 1 for vs in scores.values() for v in vs)


def _shoelace(polygon):
    x, y = np.array(polygon, dtype=float).T
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def test_photo_masks_cover_the_outlined_object_after_the_crop():
    """The shipped outlines, filled and cropped as the photo is: each covers the share of the 224-px crop that
    its polygon's area (the shoelace formula) gives, and lies where the polygon lies. These three outlines lie
    inside the centre square of their photo (the crop cuts the motorcycle's front wheel)."""
    import json

    outlines = json.loads(S.MASKS.read_text())
    cases = dict(zip(["coffee", "astronaut", "rocket"], S.photo_cases(224, ["coffee", "astronaut", "rocket"])))
    crops = {"coffee": (400, 100), "astronaut": (512, 0), "rocket": (427, (640 - 427) / 2)}  # side, left edge
    for name, (x, mask, target) in cases.items():
        side, left = crops[name]
        assert x.shape == (1, 3, 224, 224) and mask.shape == (224, 224) and target == outlines[name]["target"]
        (polygon,) = outlines[name]["polygons"]
        assert float(mask.float().mean()) == pytest.approx(_shoelace(polygon) / side ** 2, rel=0.08)
        rows, cols = np.nonzero(mask.numpy())
        px, py = np.array(polygon, dtype=float).T
        scale = 224 / side
        assert cols.min() == pytest.approx((px.min() - left) * scale, abs=2)
        assert cols.max() == pytest.approx((px.max() - left) * scale, abs=2)
        assert rows.min() == pytest.approx(py.min() * scale, abs=2) and rows.max() == pytest.approx(py.max() * scale, abs=2)
    with pytest.raises(ValueError, match="outlined photos"):
        S.photo_cases(names=["chelsea"])


def test_score_table_lays_out_the_scores_by_hand():
    table = S.score_table({"gradient": [0.1, 0.3], "centred box": [0.5, 0.0]}, ["cup", "rocket"])
    header, grad, box = table.splitlines()
    assert header.split() == ["cup", "rocket", "mean"]
    assert grad.split() == ["gradient", "0.10", "0.30", "0.20"] and box.split() == ["centred", "box", "0.50", "0.00", "0.25"]
