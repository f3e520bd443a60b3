"""Neighbours and 2-D maps of a feature space.

Nearest neighbours in pixel space versus feature space (Krizhevsky et al., NIPS 2012, Fig. 4), 2-D
embeddings with PCA and t-SNE (van der Maaten & Hinton, *Visualizing Data using t-SNE*, JMLR 2008), and a
number for how well classes separate in them: the cross-validated accuracy of a k-NN classifier. And
the lecture's claim that a network makes classes *linearly* separable, layer by layer, measured with linear
probes (Alain & Bengio, *Understanding intermediate layers using linear classifier probes*, 2016).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from .layers import activations


def cosine_neighbours(query, bank, k=5):
    """(similarities, indices) of the k rows of `bank` (N, D) most cosine-similar to `query` (D,).

    cos(q, b) = q . b / (|q| |b|); most similar first. Zero vectors get similarity 0.
    """
    q, b = torch.as_tensor(query).double(), torch.as_tensor(bank).double()
    if q.dim() != 1 or b.dim() != 2 or b.shape[1] != q.shape[0]:
        raise ValueError(f"need query (D,) and bank (N, D), got {tuple(q.shape)} and {tuple(b.shape)}")
    if not 1 <= k <= b.shape[0]:
        raise ValueError(f"k must lie between 1 and the bank size {b.shape[0]}, got {k}")
    sims = (b @ q) / (b.norm(dim=1) * q.norm()).clamp_min(1e-12)
    values, indices = torch.topk(sims, k)
    return values, indices


def nearest_neighbours(query, bank, k=5, metric="cosine", exclude=None):
    """Indices of the k rows of `bank` nearest to `query`: metric "cosine" or "euclidean".

    exclude: an index, or a list of indices, to leave out (the query itself when it is in the bank, its
    mirror image).
    """
    q, b = torch.as_tensor(query).double().flatten(), torch.as_tensor(bank).double().flatten(1)
    if metric == "cosine":
        score = (b @ q) / (b.norm(dim=1) * q.norm()).clamp_min(1e-12)
    elif metric == "euclidean":
        score = -(b - q).norm(dim=1)
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if exclude is not None:
        score[exclude] = -math.inf
    return torch.topk(score, k).indices.tolist()


def pairwise_distance(points, metric="cosine"):
    """The mean distance between the rows of `points` (N, D) over all pairs i != j: "cosine" (1 - cos, 0 for
    parallel rows) or "euclidean". How different N images are, read from their feature vectors."""
    p = torch.as_tensor(points).detach().double().flatten(1)
    n = len(p)
    if n < 2:
        raise ValueError(f"need at least 2 points, got {n}")
    if metric == "cosine":
        u = p / p.norm(dim=1, keepdim=True).clamp_min(1e-12)
        d = 1 - u @ u.T
    elif metric == "euclidean":
        d = torch.cdist(p, p)
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    return float((d.sum() - d.diagonal().sum()) / (n * (n - 1)))


def embed(x, method="tsne", perplexity=30.0, seed=0, pca_dims=50, max_iter=500):
    """(N, 2) embedding of the rows of x with "pca" or "tsne" (scikit-learn).

    For t-SNE the data are first reduced to `pca_dims` dimensions with PCA (the usual speed-up,
    and what van der Maaten recommends), then embedded with Barnes-Hut t-SNE; 500 iterations
    (the first 250 with early exaggeration) are enough for a few thousand points.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(torch.as_tensor(x).flatten(1).double())
    if method == "pca":
        return PCA(2, random_state=seed).fit_transform(x)
    if method != "tsne":
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    if not 1 <= perplexity < len(x):
        raise ValueError(f"perplexity must lie between 1 and the number of points ({len(x)}), got {perplexity}")
    if x.shape[1] > pca_dims:
        x = PCA(pca_dims, random_state=seed).fit_transform(x)
    tsne = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto", max_iter=max_iter, random_state=seed)
    return tsne.fit_transform(x)


def knn_accuracy(points, labels, k=5, folds=5, seed=0):
    """Cross-validated accuracy of a k-nearest-neighbour classifier on `points`: how well classes separate."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(KNeighborsClassifier(k), np.asarray(points), np.asarray(labels), cv=cv).mean())


def knn_predict(queries, points, labels, k=5):
    """The majority label of each query's k nearest `points` (Euclidean): a judge that has learned nothing."""
    from sklearn.neighbors import KNeighborsClassifier

    flat = lambda a: np.asarray(torch.as_tensor(a).detach().flatten(1).double())
    knn = KNeighborsClassifier(k).fit(flat(points), np.asarray(torch.as_tensor(labels)))
    return torch.as_tensor(knn.predict(flat(queries)))


def linear_probe(train, train_labels, test, test_labels, C=1.0):
    """Test accuracy of a linear classifier trained on `train` (N, D) and scored on `test` (M, D): how
    linearly separable the classes are in this space. The classifier is multinomial logistic regression
    (scikit-learn) on standardized features, with an L2 penalty of strength 1/C."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    flat = lambda a: np.asarray(torch.as_tensor(a).detach().flatten(1).double())  # noqa: E731
    ytr, yte = np.asarray(torch.as_tensor(train_labels)), np.asarray(torch.as_tensor(test_labels))
    xtr, xte = flat(train), flat(test)
    if len(xtr) != len(ytr) or len(xte) != len(yte) or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train {xtr.shape} with {len(ytr)} labels and test {xte.shape} with {len(yte)} labels "
                         "do not match")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    return float((probe.fit(xtr, ytr).predict(xte) == yte).mean())


def few_per_class(labels, per_class, seed=0):
    """Indices of `per_class` examples of each label, drawn from `seed` (sorted)."""
    labels = np.asarray(torch.as_tensor(labels))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        if len(where) < per_class:
            raise ValueError(f"label {c} has only {len(where)} examples, fewer than per_class={per_class}")
        picked += rng.choice(where, per_class, replace=False).tolist()
    return sorted(picked)


def layer_probes(model, layers, x_train, y_train, x_test, y_test, per_class=None, seed=0):
    """{"pixels": accuracy, layer: accuracy, ...}: `linear_probe` on the pixels and on the flattened
    activations of each layer (every position kept). per_class: train on only that many examples of each
    class (`few_per_class`); the test set stays whole."""
    if per_class is not None:
        keep = few_per_class(y_train, per_class, seed)
        x_train, y_train = x_train[keep], torch.as_tensor(y_train)[keep]
    out = {"pixels": linear_probe(x_train, y_train, x_test, y_test)}
    train_acts, test_acts = activations(model, x_train, list(layers)), activations(model, x_test, list(layers))
    for layer in layers:
        out[layer] = linear_probe(train_acts[layer], y_train, test_acts[layer], y_test)
    return out


def show_probes(curves, ax=None, chance=None):
    """One line per entry of {label: `layer_probes` result}: test accuracy against depth. Returns the Figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6))
    for n, (label, acc) in enumerate(curves.items()):
        ax.plot(range(len(acc)), list(acc.values()), "o-", label=label)
        for i, v in enumerate(acc.values()):  # the first curve's numbers above it, the others' below
            ax.annotate(f"{v:.0%}", (i, v), textcoords="offset points", xytext=(0, 6 if n == 0 else -13),
                        ha="center", fontsize=8)
    ax.set_xticks(range(len(acc)), list(acc), rotation=0)
    if chance is not None:
        ax.axhline(chance, color="grey", lw=0.8, ls="--", label="chance")
    ax.set(xlabel="features of", ylabel="linear probe: test accuracy", title="How linearly separable, layer by layer",
           ylim=(0, 1.08))
    ax.legend(fontsize=8, loc="lower right")
    ax.figure.tight_layout()
    return ax.figure


def show_embedding(points, labels, ax=None, title=None, images=None, n_thumbnails=0, zoom=0.6, seed=0,
                   names=None, min_dist=0.06, size=(5, 5), legend=False):
    """A scatter of a 2-D embedding coloured by label, optionally with up to `n_thumbnails` of the images;
    returns the Figure.

    Thumbnails are framed in their class colour and placed only at points at least `min_dist`
    (a fraction of the plot's extent) from the thumbnails already drawn, so they do not pile up.
    size: the new figure's size when no `ax` is given; legend: the classes' legend beside the plot.
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    points, labels = np.asarray(points), np.asarray(labels)
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    classes = list(dict.fromkeys(labels.tolist())) if names is None else list(names)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for c_i, c in enumerate(classes):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=6, color=cmap(c_i % cmap.N), label=str(c), alpha=0.8)
    if images is not None and n_thumbnails:  # thumbnails at points at least min_dist apart (sklearn's recipe)
        rng = np.random.default_rng(seed)
        span = points.max(0) - points.min(0)
        shown = np.empty((0, 2))
        for n in rng.permutation(len(points)):
            if len(shown) >= n_thumbnails:
                break
            if len(shown) and (np.abs(shown - points[n]) / span).max(1).min() < min_dist:
                continue
            shown = np.vstack([shown, points[n]])
            im = torch.as_tensor(images[n]).detach().cpu().float()
            im = im[0].numpy() if im.shape[0] == 1 else im.permute(1, 2, 0).numpy()
            color = cmap(classes.index(labels[n].item()) % cmap.N) if labels[n].item() in classes else "k"
            box = OffsetImage(im, zoom=zoom, cmap="gray_r" if im.ndim == 2 else None)
            ax.add_artist(AnnotationBbox(box, points[n], pad=0.05, bboxprops=dict(edgecolor=color, lw=1.2)))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
        ax.figure.tight_layout()
    return ax.figure



def embed_spaces(spaces, methods=("pca", "tsne"), perplexity=30.0, seed=0):
    """{(space, method): (N, 2) points}: every space of {name: (N, D) data} embedded by every method."""
    return {(space, method): embed(x, method, perplexity=perplexity, seed=seed)
            for method in methods for space, x in spaces.items()}


def show_embeddings(points, labels, names=None, title="{method} of {space}\n5-NN accuracy in 2-D: {score:.0%}"):
    """One scatter per map of `embed_spaces`, in a row, each titled with its k-NN accuracy (`knn_accuracy`);
    the legend is beside the last one. Returns the Figure."""
    fig, axes = plt.subplots(1, len(points), figsize=(4 * len(points), 4.2), squeeze=False)
    for ax, ((space, method), pts) in zip(axes[0], points.items()):
        show_embedding(pts, labels, ax=ax, names=names,
                       title=title.format(method=method.upper(), space=space, score=knn_accuracy(pts, labels)))
    axes[0, -1].legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig
