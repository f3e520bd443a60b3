import pytest
import torch

import course_utils as cu


def test_labels():
    labels = cu.imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench" and labels[9] == "ostrich"


def test_class_index_by_name_and_index():
    assert cu.class_index("ostrich") == 9
    assert cu.class_index("  Ostrich ") == 9
    assert cu.class_index(9) == 9
    assert cu.class_index(torch.tensor(9)) == 9
    assert cu.class_name(9) == "ostrich"


def test_unknown_class_suggests_close_names():
    with pytest.raises(ValueError) as e:
        cu.class_index("ostrch")
    assert "'ostrich'" in str(e.value)
    with pytest.raises(ValueError, match="espresso"):
        cu.class_index("expresso")
    with pytest.raises(ValueError, match="out of range"):
        cu.class_index(1000)
    with pytest.raises(TypeError):
        cu.class_index(3.5)


def test_predict_accepts_tensor_and_names(model):
    x = cu.as_batch("coffee", 224)
    a = cu.predict(model, x, topk=3)
    b = cu.predict(model, "coffee", topk=3)
    assert a == b and len(a) == 3 and a[0][0] == "espresso"
    assert cu.predict(model, x[0])[0][0] == "espresso"
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        cu.predict(model, torch.rand(1, 1, 32, 32))


def test_predict_batch_probabilities_match_softmax(model):
    x = torch.rand(2, 3, 64, 64)
    out = cu.predict_batch(model, x, topk=1000)
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
    for row, probs in zip(out, p):
        assert abs(sum(q for _, q in row) - 1) < 1e-4
        assert row[0][1] == pytest.approx(float(probs.max()), abs=1e-6)


def test_targets_is_the_one_way_a_class_is_given():
    from course_utils.labels import targets

    assert targets("ostrich", 3).tolist() == [9, 9, 9]
    assert targets(9, 2).tolist() == [9, 9]
    assert targets(torch.tensor(9), 2).tolist() == [9, 9]  # a one-element tensor is one class for all
    assert targets(["ostrich", 1], 2).tolist() == [9, 1]
    assert targets(torch.tensor([3, 4]), 2).dtype == torch.long
    with pytest.raises(ValueError, match="2 targets for 3 images"):
        targets([1, 2], 3)
    with pytest.raises(ValueError, match="ostrich"):
        targets("ostrch", 1)
    with pytest.raises(ValueError, match=">= 0"):
        targets(-1, 1)
    with pytest.raises(TypeError):
        targets(True, 1)


def test_class_scores_in_chunks_equal_one_pass(model):
    from course_utils.labels import class_scores

    x = torch.cat([cu.as_batch(n, 64) for n in ("coffee", "chelsea", "rocket")])
    with torch.no_grad():
        full = model(x)
    torch.testing.assert_close(class_scores(model, x, batch_size=2), full, atol=1e-4, rtol=1e-4)
    p = class_scores(model, x, "probability")
    torch.testing.assert_close(p, torch.softmax(full, 1), atol=1e-5, rtol=1e-4)
    assert torch.allclose(p.sum(1), torch.ones(3))
    with pytest.raises(ValueError, match="score"):
        class_scores(model, x, "odds")
