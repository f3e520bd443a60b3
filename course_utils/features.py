"""Look at the representation: activation maps, receptive fields, top patches, neighbours, embeddings.

- Receptive field of a unit, computed layer by layer (size, stride and offset compose as in
  Dumoulin & Visin, *A guide to convolution arithmetic for deep learning*, 2016), including
  TensorFlow 'SAME' padding, and checked against the gradient footprint of the unit.
- Maximally activating patches: for one channel, the image patches (cut at the receptive
  field) where it responds most (Zeiler & Fergus, *Visualizing and Understanding
  Convolutional Networks*, ECCV 2014; Girshick et al., *Rich feature hierarchies*, CVPR 2014).
- Nearest neighbours in pixel space versus feature space (Krizhevsky et al., NIPS 2012, Fig. 4).
- 2-D embeddings with PCA and t-SNE (van der Maaten & Hinton, *Visualizing Data using t-SNE*,
  JMLR 2008) and a number for how well classes separate in them (k-NN accuracy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .efficientnet_lite import SameConv2d
from .layers import capture, get_layer

# ---------------------------------------------------------------- activations


def activations(model, layers, x, batch_size=32, progress=False):
    """Outputs of `layers` for images x (N, C, H, W), computed batch by batch without gradients.

    layers: one name (returns a tensor) or a list of names (returns {name: tensor}), all
    recorded in the same forward passes.
    """
    from tqdm.auto import tqdm

    names = [layers] if isinstance(layers, str) else list(layers)
    for name in names:
        get_layer(model, name)  # a wrong name fails before any work
    was_training = model.training
    model.eval()
    outs = {name: [] for name in names}
    try:
        with torch.no_grad(), capture(model, names) as acts:
            for i in tqdm(range(0, len(x), batch_size), desc="activations", disable=not progress, leave=False):
                model(x[i:i + batch_size])
                for name in names:
                    outs[name].append(acts[name].cpu())
    finally:
        model.train(was_training)
    result = {name: torch.cat(v) for name, v in outs.items()}
    return result[layers] if isinstance(layers, str) else result


def feature_vectors(model, layer, x, batch_size=64, progress=False):
    """(N, D) features of `layer`: spatial maps are averaged over positions, then flattened."""
    a = activations(model, layer, x, batch_size, progress)
    return (a.mean((2, 3)) if a.dim() == 4 else a.flatten(1)).float()


def show_maps(maps, ncols=8, size=1.3, title=None, cmap="viridis", labels=None):
    """A Figure with one panel per channel of `maps` (C, H, W), each on its own colour scale."""
    import matplotlib.pyplot as plt

    maps = torch.as_tensor(maps).detach().cpu().float()
    if maps.dim() == 4:
        maps = maps[0]
    if maps.dim() != 3:
        raise ValueError(f"expected activation maps (C, H, W), got shape {tuple(maps.shape)}")
    n = maps.shape[0]
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.35 if title else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(maps[k].numpy(), cmap=cmap, interpolation="nearest")
            ax.set_title(str(labels[k]) if labels is not None else str(k), fontsize=7, pad=2)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(pad=0.3)
    return fig


# ---------------------------------------------------------------- receptive fields


def rf_size_stride(layers):
    """Receptive field size and stride (in input pixels) of a unit after a stack of layers.

    layers: [(kernel_size, stride), ...] from the input up; each layer grows the field by
    (kernel - 1) times the product of the strides before it:
        r_l = r_{l-1} + (k_l - 1) * j_{l-1},   j_l = j_{l-1} * s_l,   r_0 = j_0 = 1.
    """
    size, jump = 1, 1
    for layer in layers:
        k, s = layer
        if int(k) != k or int(s) != s or k < 1 or s < 1:
            raise ValueError(f"kernel size and stride must be positive integers, got {(k, s)}")
        size, jump = size + (int(k) - 1) * jump, jump * int(s)
    return size, jump


@dataclass(frozen=True)
class ReceptiveField:
    """Where a unit of a layer looks in the input, per axis (rows, columns).

    Unit (i, j) sees input rows offset[0] + i*stride[0] ... offset[0] + i*stride[0] + size[0] - 1
    (the same for columns); offsets can be negative and fields can run past the image edge:
    those parts are padding.
    """

    size: tuple
    stride: tuple
    offset: tuple

    def box(self, i, j):
        """(top, left, bottom, right) of unit (i, j)'s field, bottom/right exclusive, not clipped."""
        top = self.offset[0] + i * self.stride[0]
        left = self.offset[1] + j * self.stride[1]
        return top, left, top + self.size[0], left + self.size[1]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _geometry(module, in_hw):
    """(kernel, stride, dilation, left/top padding) per axis of a layer, or None if it keeps geometry."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _pair(module.kernel_size), _pair(module.stride if module.stride is not None else module.kernel_size)
        d = _pair(getattr(module, "dilation", 1))
        if isinstance(module, SameConv2d):  # TensorFlow 'SAME': the smaller half of the padding on top/left
            pad = tuple(max((math.ceil(n / st) - 1) * st + kk - n, 0) // 2 for n, kk, st in zip(in_hw, k, s))
        elif module.padding == "same":
            pad = tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, d))
        elif module.padding == "valid":
            pad = (0, 0)
        else:
            pad = _pair(module.padding)
        if getattr(module, "ceil_mode", False):
            pass  # ceil_mode only adds units at the bottom/right; the formula for a unit is unchanged
        return k, s, d, pad
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = _pair(module.output_size)
        if any(o not in (1, None) for o in out):
            raise ValueError(f"receptive fields through {module} are only supported for output size 1")
        return tuple(in_hw), tuple(in_hw), (1, 1), (0, 0)
    if isinstance(module, (nn.ConvTranspose2d, nn.Upsample, nn.Unfold, nn.Fold, nn.PixelShuffle)):
        raise ValueError(f"receptive_field does not handle {type(module).__name__} layers")
    return None


class _Stop(Exception):
    pass


def layer_geometry(model, layer, input_size=224):
    """[(name, kernel, stride, dilation, padding)] of the layers that change geometry on the way to `layer`.

    Found by running the model once on a zero image of `input_size` and recording, in call
    order, every leaf module that runs before `layer` finishes (so TensorFlow SAME padding
    is known at that size). Assumes a chain of layers, possibly with residual skips (which
    never widen the field); branching networks (Inception) are not handled.
    """
    target = get_layer(model, layer)
    h, w = _pair(input_size)
    in_ch = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 3)
    names = {m: n for n, m in model.named_modules()}
    leaves = [m for m in model.modules() if not list(m.children())]
    recorded = []

    def pre_hook(module, inputs):
        if inputs and torch.is_tensor(inputs[0]) and inputs[0].dim() == 4:
            g = _geometry(module, inputs[0].shape[-2:])
            if g is not None:
                recorded.append((names[module],) + g)

    def stop(module, inputs, output):
        raise _Stop

    handles = [m.register_forward_pre_hook(pre_hook) for m in leaves]
    param = next(model.parameters(), None)
    x = torch.zeros(1, in_ch, h, w, device=param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        handles.append(target.register_forward_hook(stop))
        with torch.no_grad():
            model(x)
    except _Stop:
        pass
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    return recorded


def receptive_field(model, layer, input_size=224):
    """The ReceptiveField of a unit in `layer` (size, stride, offset per axis), at this input size."""
    size, jump, offset = [1, 1], [1, 1], [0, 0]
    for _, k, s, d, pad in layer_geometry(model, layer, input_size):
        for a in range(2):
            offset[a] -= pad[a] * jump[a]
            size[a] += (k[a] - 1) * d[a] * jump[a]
            jump[a] *= s[a]
    return ReceptiveField(tuple(size), tuple(jump), tuple(offset))


def gradient_footprint(model, layer, x, i, j, channel=None):
    """(H, W) bool mask of the input pixels whose gradient on unit (i, j) of `layer` is nonzero.

    The unit is one channel, or the sum over all channels (channel=None), so that a pixel
    counts when any path from it reaches the position. The model is left unchanged.
    """
    x = x.detach().clone().requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with capture(model, [layer], detach=False) as acts:
            model(x)
        a = acts[layer][0]
        unit = a[:, i, j].sum() if channel is None else a[channel, i, j]
        (grad,) = torch.autograd.grad(unit, x)
    finally:
        model.train(was_training)
    return grad[0].abs().sum(0) > 0


def mask_box(mask):
    """(top, left, bottom, right) of the True pixels of a 2-D mask, bottom/right exclusive."""
    rows, cols = torch.nonzero(torch.as_tensor(mask), as_tuple=True)
    if len(rows) == 0:
        raise ValueError("the mask is empty")
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def cut_patch(image, box, fill=0.5):
    """The part of `image` (3, H, W) inside box (top, left, bottom, right); outside the image is `fill`."""
    top, left, bottom, right = box
    _, h, w = image.shape
    patch = torch.full((image.shape[0], bottom - top, right - left), float(fill), dtype=image.dtype)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if b > t and r > lft:
        patch[:, t - top:b - top, lft - left:r - left] = image[:, t:b, lft:r]
    return patch


# ---------------------------------------------------------------- top patches


def photo_crops(names=None, size=128, scales=(1.0, 0.5, 0.25), flip=False):
    """A pool of square crops of the bundled photos at several scales: (crops (N, 3, size, size), sources).

    Each photo is resized so that a crop covers `scale` of its shorter side, then cut into a
    grid of non-overlapping crops (scale 1.0: one centre crop). sources[n] is the photo's name.
    flip=True adds every crop's mirror image.
    """
    from .images import PHOTOS, load_image, to_tensor

    names = list(PHOTOS) if names is None else list(names)
    crops, sources = [], []
    for name in names:
        img = load_image(name)
        w, h = img.size
        for scale in scales:
            side = max(size, round(size / scale))  # the resized shorter side
            x = to_tensor(img.resize((max(side, round(w * side / h)), max(side, round(h * side / w)))))[0]
            _, hh, ww = x.shape
            ny, nx = hh // size, ww // size
            oy, ox = (hh - ny * size) // 2, (ww - nx * size) // 2
            for r in range(ny):
                for c in range(nx):
                    crop = x[:, oy + r * size:oy + (r + 1) * size, ox + c * size:ox + (c + 1) * size]
                    crops.append(crop)
                    sources.append(name)
                    if flip:
                        crops.append(crop.flip(-1))
                        sources.append(name)
    return torch.stack(crops), sources


@dataclass
class Patch:
    """One maximally activating patch: which image, which unit position, how strongly, what pixels."""

    image_index: int
    position: tuple
    value: float
    box: tuple
    pixels: torch.Tensor


def channel_maxima(acts, channel, allowed=None):
    """(values (N,), positions (N, 2)): the largest response of `channel` in each image and where.

    allowed: an optional (h, w) bool mask of the positions that may be chosen.
    """
    a = acts[:, channel].float()
    if allowed is not None:
        a = a.masked_fill(~allowed, -math.inf)
    values, idx = a.flatten(1).max(1)
    w = a.shape[-1]
    return values, torch.stack([idx // w, idx % w], 1)


def inside_positions(rf, out_hw, in_hw):
    """(h, w) bool mask of the units whose receptive field lies entirely inside an in_hw image."""
    rows = torch.tensor([rf.offset[0] + i * rf.stride[0] >= 0 and rf.offset[0] + i * rf.stride[0] + rf.size[0]
                         <= in_hw[0] for i in range(out_hw[0])])
    cols = torch.tensor([rf.offset[1] + j * rf.stride[1] >= 0 and rf.offset[1] + j * rf.stride[1] + rf.size[1]
                         <= in_hw[1] for j in range(out_hw[1])])
    return rows[:, None] & cols[None, :]


def top_patches(model, layer, channel, images, k=9, acts=None, inside=True, clip=False):
    """The k images in which `channel` of `layer` responds most, each cut at that unit's receptive field.

    One patch per image (its strongest position), as in Zeiler & Fergus's figures.
    acts:   the layer's activations for `images` if already computed (saves the forward passes).
    inside: only consider units whose field lies entirely inside the image (units at the border
            partly see zero padding, and border effects would dominate); when the field is larger
            than the image, every unit is considered.
    clip:   cut the field clipped to the image (True) or the whole field, grey outside the image (False).
    Returns a list of Patch, strongest first.
    """
    if acts is None:
        acts = activations(model, layer, images)
    if not 0 <= channel < acts.shape[1]:
        raise ValueError(f"{layer} has {acts.shape[1]} channels; channel {channel} does not exist")
    k = min(k, len(images))
    rf = receptive_field(model, layer, tuple(images.shape[-2:]))
    allowed = inside_positions(rf, acts.shape[-2:], images.shape[-2:]) if inside else None
    if allowed is not None and not allowed.any():
        allowed = None
    values, positions = channel_maxima(acts, channel, allowed)
    order = torch.argsort(values, descending=True, stable=True)[:k]
    out = []
    for n in order.tolist():
        i, j = positions[n].tolist()
        box = rf.box(i, j)
        if clip:
            h, w = images.shape[-2:]
            box = (max(box[0], 0), max(box[1], 0), min(box[2], h), min(box[3], w))
        out.append(Patch(n, (i, j), float(values[n]), box, cut_patch(images[n], box)))
    return out


def show_patches(patches, title=None, ncols=9, size=1.3):
    """A Figure of patches (from `top_patches`) with their activation values."""
    import matplotlib.pyplot as plt

    ncols = min(ncols, len(patches))
    nrows = math.ceil(len(patches) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if title else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p in zip(axes.flat, patches):
        ax.imshow(p.pixels.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(f"{p.value:.2f}", fontsize=7, pad=2)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(pad=0.3)
    return fig


# ---------------------------------------------------------------- neighbours and embeddings


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

    exclude: an index to leave out (the query itself, when it is in the bank).
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


def scatter_embedding(points, labels, ax=None, title=None, images=None, n_thumbnails=0, zoom=0.6, seed=0,
                      names=None, min_dist=0.06):
    """Scatter a 2-D embedding coloured by label; optionally draw up to `n_thumbnails` of the images.

    Thumbnails are framed in their class colour and placed only at points at least `min_dist`
    (a fraction of the plot's extent) from the thumbnails already drawn, so they do not pile up.
    """
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    points, labels = np.asarray(points), np.asarray(labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
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
    return ax


def image_rows(rows, row_titles=None, col_titles=None, size=1.25):
    """A Figure with one row of images per entry of `rows` (lists of (3, H, W) tensors in [0, 1]).

    col_titles: None, or one list of titles per row.
    """
    import matplotlib.pyplot as plt

    nrows, ncols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 1.2, size * nrows * 1.12), squeeze=False)
    for r, row in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(row):
                continue
            ax.imshow(torch.as_tensor(row[c]).permute(1, 2, 0).clamp(0, 1).numpy())
            if col_titles is not None and col_titles[r] is not None:
                ax.set_title(str(col_titles[r][c]), fontsize=7, pad=2)
        if row_titles is not None:
            axes[r, 0].set_ylabel(str(row_titles[r]), fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return fig


def selective_channels(acts, n=6, allowed=None, k=9):
    """The n channels whose top-k responses (one per image) stand out most from their typical response.

    Score per channel: (mean of its k largest per-image maxima - median maximum) / std of the maxima.
    acts: (N, C, h, w); allowed: optional (h, w) bool mask of positions to consider.
    """
    a = acts.float() if allowed is None else acts.float().masked_fill(~allowed, -math.inf)
    vals = a.flatten(2).max(2).values  # (N, C)
    score = (vals.topk(min(k, len(vals)), 0).values.mean(0) - vals.median(0).values) / vals.std(0).clamp_min(1e-6)
    return score.argsort(descending=True)[:n].tolist()
