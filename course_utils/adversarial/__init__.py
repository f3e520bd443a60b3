"""Adversarial examples: images changed imperceptibly so that a network changes its mind.

- `fooling_image`: push a photo towards a chosen class by gradient steps on the image until the
  model says so (Szegedy et al. 2013, "Intriguing properties of neural networks"). It is the
  course's image optimizer (`optimize_image`) maximizing log p(target), started at the photo, with a
  `stop` condition: the model's top class is the target.
- `fgsm`: the fast gradient sign method (Goodfellow, Shlens & Szegedy 2015, "Explaining and
  Harnessing Adversarial Examples"): one step of size eps along the sign of the loss gradient,

      untargeted:  x' = clip(x + eps * sign(grad_x L(x, y)))     (raise the loss of the true label y)
      targeted:    x' = clip(x - eps * sign(grad_x L(x, t)))     (lower the loss of the target label t)

- `pgd`: many such steps of size alpha, each followed by a projection back onto the eps-ball
  around x, optionally from a random start in that ball (Madry et al. 2018, "Towards Deep
  Learning Models Resistant to Adversarial Attacks"); `iterative_fgsm` is the same without the
  random start (Kurakin, Goodfellow & Bengio 2017, "Adversarial examples in the physical world").
- `logistic_attack`: the linear explanation in numbers (Goodfellow et al. 2015): moving every
  input by eps towards sign(w) raises the score w.x + b by eps * ||w||_1, which grows with the
  dimension.

Conventions: images in [0, 1], shape (N, C, H, W) (anything `images.as_batch` takes); eps and step
sizes in the same pixel units (8/255 is "8 grey levels"); every result is clamped to [0, 1] and lies
within eps of x in the L-infinity norm; L is the cross-entropy of the logits. `target` is a class index
or name (the same for every image) or one per image (`labels.targets`). Random starts draw from `seed`.

FGSM and PGD keep a short loop of their own instead of calling `optimize_image`: a step along the
sign of the gradient followed by a projection onto the eps-ball is an attack's update rule, not
an objective to maximize with Adam.
"""
from . import attacks, figures
from .attacks import *  # noqa: F403 - the package is the lesson: adv.fgsm, adv.show_attack, ...
from .figures import *  # noqa: F403

__all__ = ["attacks", "figures", *attacks.__all__, *figures.__all__]
