"""Fast neural style: a feed-forward network trained to stylize in one pass (Johnson et al. 2016).

Notebook 08 optimizes every image from scratch: hundreds of forward-backward passes per picture.
Here a *transformation network* f_W is trained once, on many photos, to minimize the same perceptual
loss (the loss network of notebook 08, `style.loss_network()`):

    L(W) = E_x [ a * content(f_W(x), x) + b * style(f_W(x), s) + c * TV(f_W(x)) ]

after which stylizing is one forward pass. The network: strided convolutions down, residual blocks,
upsampling back by resize-convolution (nearest upsample, then a convolution: no checkerboard
artifacts, Odena et al. 2016), with instance normalization (Ulyanov et al. 2016) after each convolution.

    python -m course_utils.fast_style train --style strokes --steps 1000 --size 128 --out my_style.pt

Papers: Johnson, Alahi & Fei-Fei, "Perceptual losses for real-time style transfer and
super-resolution", ECCV 2016; Ulyanov, Vedaldi & Lempitsky, "Instance normalization: the missing
ingredient for fast stylization", 2016; Odena, Dumoulin & Olah, "Deconvolution and checkerboard
artifacts", Distill 2016.
"""
from . import network, training
from .network import *  # noqa: F403 - the package is the lesson: fs.stylize, fs.train, ...
from .training import *  # noqa: F403

__all__ = ["network", "training", *network.__all__, *training.__all__]
