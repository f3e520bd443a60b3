"""course_utils.embeddings: neighbours against scikit-learn, PCA and t-SNE, k-NN accuracy."""
import numpy as np
import pytest
import torch

from course_utils.embeddings import cosine_neighbours, embed, knn_accuracy, nearest_neighbours


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


def test_embed_spaces_and_their_figure():
    import matplotlib.pyplot as plt

    from course_utils.embeddings import embed_spaces, show_embeddings

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(2), 30)
    x = rng.normal(0, 1, (60, 5)) + 10 * labels[:, None]
    maps = embed_spaces({"raw": x, "noise": rng.normal(size=(60, 5))}, perplexity=10)
    assert list(maps) == [("raw", "pca"), ("noise", "pca"), ("raw", "tsne"), ("noise", "tsne")]
    assert np.allclose(maps[("raw", "pca")], embed(x, "pca"))
    fig = show_embeddings(maps, labels)
    assert fig.axes[0].get_title() == "PCA of raw\n5-NN accuracy in 2-D: 100%"
    plt.close(fig)


def test_knn_predict_takes_the_majority_of_the_k_nearest():
    from course_utils.embeddings import knn_predict

    points = torch.tensor([[0.0, 0], [1, 0], [0, 1], [10, 10], [11, 10], [5, 5.2]])
    labels = torch.tensor([0, 0, 1, 2, 2, 1])
    # (0.4, 0.3): nearest are (0,0), (1,0), (0,1) -> labels 0, 0, 1 -> 0; (9, 9): (10,10), (11,10), (5,5.2) -> 2
    queries = torch.tensor([[0.4, 0.3], [9.0, 9.0]]).view(2, 1, 2)  # any shape per item: flattened
    assert knn_predict(queries, points, labels, k=3).tolist() == [0, 2]
    assert knn_predict(queries, points, labels, k=1).tolist() == [0, 2]
    assert knn_predict(torch.tensor([[0.1, 0.9]]), points, labels, k=1).tolist() == [1]


def test_pairwise_distance_by_hand_and_against_scikit_learn():
    from sklearn.metrics import pairwise_distances

    from course_utils.embeddings import pairwise_distance

    # three vectors: (1,0), (0,1), (1,1): cosine distances 1, 1 - 1/sqrt2, 1 - 1/sqrt2
    p = torch.tensor([[1.0, 0], [0, 1], [1, 1]])
    assert pairwise_distance(p) == pytest.approx((1 + 2 * (1 - 2 ** -0.5)) / 3)
    assert pairwise_distance(p, "euclidean") == pytest.approx((2 ** 0.5 + 1 + 1) / 3)
    assert pairwise_distance(torch.ones(4, 5)) == pytest.approx(0.0, abs=1e-12)  # copies: no spread
    x = torch.randn(6, 7, generator=torch.Generator().manual_seed(0))
    for metric in ["cosine", "euclidean"]:
        d = pairwise_distances(x.numpy().astype(float), metric=metric)
        assert pairwise_distance(x, metric) == pytest.approx(d.sum() / 30, rel=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        pairwise_distance(torch.ones(1, 3))


def test_linear_probe_separates_what_a_line_separates_and_nothing_else():
    from course_utils.embeddings import linear_probe

    rng = np.random.default_rng(0)
    # XOR of two signs: a k-NN sees it, no linear classifier can (accuracy near 1/2)
    x = rng.uniform(-1, 1, (800, 2))
    xor = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)
    assert linear_probe(x[:400], xor[:400], x[400:], xor[400:]) < 0.65
    assert knn_accuracy(x, xor) > 0.9
    # the same points with the product as a third feature: now one plane separates them
    x3 = np.c_[x, x[:, 0] * x[:, 1]]
    assert linear_probe(x3[:400], xor[:400], x3[400:], xor[400:]) > 0.95
    # labels that have nothing to do with the features: chance (10 classes)
    noise = rng.integers(0, 10, 800)
    assert linear_probe(x3[:400], noise[:400], x3[400:], noise[400:]) < 0.2
    with pytest.raises(ValueError, match="do not match"):
        linear_probe(x[:10], xor[:9], x[10:20], xor[10:20])


def test_layer_probes_and_few_per_class():
    from collections import OrderedDict

    from torch import nn

    from course_utils.embeddings import few_per_class, layer_probes, linear_probe, show_probes

    labels = np.repeat(np.arange(3), [5, 7, 9])
    picked = few_per_class(labels, 4, seed=1)
    assert len(picked) == 12 and np.bincount(labels[picked]).tolist() == [4, 4, 4]
    assert picked == few_per_class(labels, 4, seed=1) and picked == sorted(picked)
    with pytest.raises(ValueError, match="only 5 examples"):
        few_per_class(labels, 6)
    # a layer that computes the XOR feature: the probe on it beats the probe on the pixels
    g = torch.Generator().manual_seed(0)
    x = torch.rand(600, 1, 1, 2, generator=g)  # an "image" of two pixels in [0, 1]
    y = ((x[:, 0, 0, 0] > 0.5) ^ (x[:, 0, 0, 1] > 0.5)).long()

    class Product(nn.Module):
        def forward(self, t):
            return torch.cat([t, (t[..., :1] - 0.5) * (t[..., 1:] - 0.5)], -1)

    model = nn.Sequential(OrderedDict([("product", Product())])).eval()
    acc = layer_probes(model, ["product"], x[:300], y[:300], x[300:], y[300:])
    assert list(acc) == ["pixels", "product"] and acc["pixels"] < 0.65 < 0.95 < acc["product"]
    few = layer_probes(model, ["product"], x[:300], y[:300], x[300:], y[300:], per_class=20)
    keep = few_per_class(y[:300], 20)
    assert few["product"] == linear_probe(model(x[:300][keep]), y[:300][keep], model(x[300:]), y[300:])
    fig = show_probes({"all": acc, "20 per class": few}, chance=0.5)
    assert len(fig.axes[0].lines) == 3
