"""Benchmarks of notebooks 01-02: training the digits CNN, the crop pool's forward pass, t-SNE."""
import torch

from bench import timed

import course_utils as cu
from course_utils import digits, embeddings, patches, receptive_fields


def _train():
    data = digits.load_digits_data()
    out = {}
    s = timed(lambda: out.setdefault("r", digits.train_digits_cnn(epochs=12, lr=0.03, weight_decay=0.02,
                                                                 data=data, progress=False)))
    return s, f"test accuracy {out['r'].history['test_acc'][-1]:.1%}"


def _pool():
    model = cu.load_model()
    crops, _, _ = patches.photo_crops(size=128, scales=(1.0, 0.5, 0.33), flip=True)
    s = timed(lambda: cu.activations(model, crops, ["blocks.3", "blocks.5", "blocks.8", "blocks.10", "pool"]))
    return s, f"{len(crops)} crops of 128 px"


def _tsne():
    data = digits.load_digits_data()
    r = digits.train_digits_cnn(epochs=2, data=data, progress=False)
    x = torch.cat([data[0], data[2]])
    f = cu.layers.feature_vectors(r.model, x, "relu3")
    return timed(lambda: embeddings.embed(f, "tsne", perplexity=30)), f"{len(f)} points, 64-d"


def _rf():
    model = cu.load_model()
    return timed(lambda: receptive_fields.receptive_field(model, "blocks.10", 224))


BENCHES = [
    ("01/02 train_digits_cnn, 12 epochs", 10, _train),
    ("02 activations of the crop pool (5 layers)", None, _pool),
    ("02 t-SNE of the 1,797 digits", 5, _tsne),
    ("02 receptive_field(blocks.10)", None, _rf),
]
