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
