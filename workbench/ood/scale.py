"""SCALE (Xu, Lian, Yang, Dai & Gong, "Scaling for Training Time and Post-hoc Out-of-distribution
Detection Enhancement", ICLR 2024).

In words: ASH-S without the pruning: per sample, with k = n − round(n·p/100), s1 = Σ h and s2 =
the sum of the top-k activations, scale every unit by exp(s1/s2), re-apply the linear head and
score −logsumexp(new logits). Nothing is fitted.

Default p = 85 (official config = OpenOOD's). With a bias b ≠ 0 the rescaling can change a few
argmaxes. A row with s2 = 0 is left unscaled (ratio 0) instead of dividing by zero.
"""

from __future__ import annotations

import torch

from .._checks import check_number
from ._head import HeadDetector, energy, shaping_parts

__all__ = ["SCALE"]


class SCALE(HeadDetector):
    """OOD score = −logsumexp(head(h · exp(s1/s2))).

    Parameters
    ----------
    percentile: p, defines the top-k sum s2 (85 by default).
    head: the linear head for ``fit_features``.

    Nothing is learned: ``fit`` only reads the head and the feature size.
    """

    def __init__(self, *, percentile: float = 85.0, head=None):
        self.percentile = percentile
        self.head = head

    def _fit(self, z, y):
        check_number(self.percentile, "percentile", min=0, max=100, max_open=True)
        self._read_head(z.shape[1], z.device)

    def _score(self, z):
        h = z.double()
        _, _, s1, s2 = shaping_parts(h, self.percentile)
        ratio = torch.where(s2 > 0, s1 / torch.where(s2 > 0, s2, torch.ones_like(s2)), torch.zeros_like(s2))
        return -energy(self._logits(h * ratio.exp()[:, None]))
