"""The panels' controls reach the calls they name. Outside a kernel a panel's output goes to stdout; the
course's functions behind it are replaced by recorders where running them would take long."""
import numpy as np
import pytest
import torch

from course_utils.backprop import attribution
from course_utils import embeddings, panels, testing
from course_utils import deepdream as dd


def _record(monkeypatch, kind):
    """Keep the panel widget that panels.<kind> (live_panel or run_panel) builds."""
    boxes, real = [], getattr(panels.lessons, kind)
    monkeypatch.setattr(panels.lessons, kind, lambda *a, **k: boxes.append(real(*a, **k)))
    return boxes


def _controls(box):
    return {c.description: c for c in box.children[0].children}


def _run_button(box):
    return box.children[1].children[0]


def test_saliency_panel_sets_smoothgrads_noise_and_samples(monkeypatch):
    model = testing.tiny_cnn(0, 1000, scale=0.3)
    calls, real = [], attribution.smoothgrad
    monkeypatch.setattr(attribution, "smoothgrad", lambda *a, **k: calls.append(k) or real(*a, **k))
    monkeypatch.setattr(panels.lessons, "show_maps", lambda *a, **k: None)
    boxes = _record(monkeypatch, "live_panel")
    panels.saliency_panel(model, {"noise": torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))})
    assert (calls[-1]["samples"], calls[-1]["stdev"]) == (8, 0.15)  # drawn once, with the defaults
    c = _controls(boxes[0])
    c["SG samples"].value = 3
    c["SG noise"].value = 0.3
    assert calls[-1]["samples"] == 3 and calls[-1]["stdev"] == pytest.approx(0.3)


def test_map_panel_draws_pca_or_tsne(monkeypatch):
    methods, real = [], embeddings.embed
    monkeypatch.setattr(panels.lessons, "embed", lambda x, method, **k: methods.append(method) or real(x, method, **k))
    boxes = _record(monkeypatch, "run_panel")
    rng = np.random.default_rng(0)
    panels.tsne_panel({"blobs": (rng.normal(size=(60, 5)) + np.repeat(np.eye(5)[:3] * 6, 20, 0), np.repeat([0, 1, 2], 20),
                           ["a", "b", "c"])})
    _controls(boxes[0])["map"].value = "PCA"
    _run_button(boxes[0]).click()
    assert methods == ["tsne", "pca"]


def test_deepdream_panel_guides_and_zooms(monkeypatch):
    from course_utils import load_model

    seen = []
    monkeypatch.setattr(dd, "deepdream", lambda model, x, **k: seen.append(("dream", k)) or x)
    monkeypatch.setattr(dd, "zoom_sequence", lambda model, x, **k: seen.append(("zoom", k)) or [x, x.flip(-1)])
    boxes = _record(monkeypatch, "run_panel")
    panels.deepdream_panel(load_model())
    c = _controls(boxes[0])
    assert seen[-1][0] == "dream" and seen[-1][1]["guide"] is None
    c["guide"].value, c["zoom frames"].value, c["size (px)"].value = "coffee", 3, 128
    _run_button(boxes[0]).click()
    kind, kw = seen[-1]
    assert kind == "zoom" and kw["guide"] == "coffee" and kw["frames"] == 3 and kw["size"] == 128


class _FakeNet:
    def __init__(self, name, layers, content, weights):
        self.name, self.style_layers, self.content_layer, self.weights = name, layers, content, weights


def test_style_transfer_panel_network_start_and_layer_weights(monkeypatch):
    lite = _FakeNet("lite0", ("s1", "s2", "s3", "s4", "s5"), "blocks.4", dict(content=1.0, style=100.0, tv=100.0))
    vgg = _FakeNet("vgg19 (random), avg pool", tuple(f"features.{i}" for i in (1, 6, 11, 20, 29)), "features.22",
                   dict(content=1.0, style=30.0, tv=3.0))
    asked, calls = [], []
    monkeypatch.setattr(panels.lessons, "loss_network", lambda name, **k: asked.append((name, k)) or vgg)
    monkeypatch.setattr(panels.lessons, "style_transfer", lambda net, c, s, **k: calls.append((net, k)) or torch.rand(1, 3, 8, 8))
    monkeypatch.setattr(panels.lessons, "stylization_scores", lambda *a, **k: dict(style=0.1, style_of_content=0.2, content=0.3,
                                                                        stylized=True))
    boxes = _record(monkeypatch, "run_panel")
    panels.style_transfer_panel(lite, judge=None)
    net, kw = calls[-1]
    assert net is lite and kw["init"] == "content" and kw["style_weight"] == 100
    assert kw["layer_weights"] == {f"s{k}": 0.2 for k in range(1, 6)}  # equal, summing to 1
    c = _controls(boxes[0])
    c["loss network"].value = "VGG-19, random"
    assert c["style/content"].value == pytest.approx(30) and c["TV weight"].value == pytest.approx(3)
    assert c["content layer"].value == "features.22"
    c["pooling (VGG)"].value, c["start from"].value = "avg", "noise"
    c["style layer 1"].value, c["style layer 2"].value = 0.0, 0.0
    _run_button(boxes[0]).click()
    net, kw = calls[-1]
    assert net is vgg and asked[-1] == ("vgg19", {"pretrained": False, "pooling": "avg"})
    assert kw["init"] == "noise" and kw["content_layer"] == "features.22"
    assert kw["layer_weights"] == {"features.1": 0.0, "features.6": 0.0, "features.11": pytest.approx(1 / 3),
                                   "features.20": pytest.approx(1 / 3), "features.29": pytest.approx(1 / 3)}
