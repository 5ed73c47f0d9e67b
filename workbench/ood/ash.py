"""ASH: activation shaping (Djurisic, Bozanic, Ashok & Liu, "Extremely Simple Activation Shaping
for Out-of-Distribution Detection", ICLR 2023).

In words, per sample on the penultimate activation vector h (n units): keep the top k =
n − round(n·p/100) values; s1 = Σ h (all units), s2 = Σ of the kept ones; then
* ASH-P: zero the others;
* ASH-B: every kept unit becomes s1/k, the others 0 (binarised);
* ASH-S: zero the others and multiply the kept ones by exp(s1/s2);
re-apply the linear head; OOD score = −logsumexp(new logits). Nothing is fitted.

Differences from the official code: the official functions overwrite the activations in place;
here a new tensor is built. Defaults: variant "s", percentile 90 (the paper's ImageNet ResNet-50
setting); the official CIFAR DenseNet configs use ASH-S@95; **OpenOOD's "ASH" row is ASH-B@90**.
ASH assumes non-negative (post-ReLU) activations; a row whose kept sum s2 is 0 keeps ratio 0
(no rescaling) instead of dividing by zero.
"""

from __future__ import annotations

import torch

from .._checks import check_choice, check_number
from ._head import HeadDetector, energy, shaping_parts

__all__ = ["ASH", "ash"]

VARIANTS = ("p", "b", "s")


def ash(h: torch.Tensor, percentile: float, variant: str = "s") -> torch.Tensor:
    """The shaped activations (N, n) of ``h`` (N, n) (a new tensor; h is not changed)."""
    check_choice(variant, "variant", VARIANTS)
    mask, k, s1, s2 = shaping_parts(h, percentile)
    if variant == "p":
        return h * mask
    if variant == "b":
        return mask * (s1 / k)[:, None]
    ratio = torch.where(s2 > 0, s1 / torch.where(s2 > 0, s2, torch.ones_like(s2)), torch.zeros_like(s2))
    return h * mask * ratio.exp()[:, None]


class ASH(HeadDetector):
    """OOD score = −logsumexp(head(ASH-shaped activations)).

    Parameters
    ----------
    variant: "s" (scale, default), "p" (prune) or "b" (binarise).
    percentile: p, the share (in %) of units pruned per sample.
    head: the linear head for ``fit_features``.

    Nothing is learned: ``fit`` only reads the head and the feature size.
    """

    def __init__(self, *, variant: str = "s", percentile: float = 90.0, head=None):
        self.variant = variant
        self.percentile = percentile
        self.head = head

    def _fit(self, z, y):
        check_choice(self.variant, "variant", VARIANTS)
        check_number(self.percentile, "percentile", min=0, max=100, max_open=True)
        self._read_head(z.shape[1], z.device)

    def _score(self, z):
        return -energy(self._logits(ash(z.double(), self.percentile, self.variant)))
