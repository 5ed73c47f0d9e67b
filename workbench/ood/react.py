"""ReAct: rectified activations (Sun, Guo & Li, "ReAct: Out-of-distribution Detection With
Rectified Activations", NeurIPS 2021).

In words: clip the penultimate activations at c, h ← min(h, c), apply the linear head again and
score with the energy: OOD score = −logsumexp(W·min(h, c) + b). c is one scalar, the
``percentile``-th percentile of **all** activation values of the fitting data (samples and units
pooled; numpy's linear interpolation).

Differences from the official code: the official threshold comes from ~2000 ImageNet validation
images (OpenOOD: ID validation set); here it comes from whatever ID data ``fit`` is given (pass a
held-out ID split to follow them). For non-ReLU features (ViT/Swin) the clip means something else.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_number
from ._head import HeadDetector, energy

__all__ = ["ReAct"]


class ReAct(HeadDetector):
    """OOD score = −logsumexp(W·min(h, c) + b), c = a percentile of the ID activations.

    Parameters
    ----------
    percentile: which percentile of the ID activations is the clip value (90 in the paper).
    head: the linear head for ``fit_features``.

    Fitted attributes: ``threshold_`` c, ``weight_``, ``bias_``, ``n_features_in_``.
    """

    def __init__(self, *, percentile: float = 90.0, head=None):
        self.percentile = percentile
        self.head = head

    def _fit(self, z, y):
        p = check_number(self.percentile, "percentile", min=0, max=100)
        self._read_head(z.shape[1], z.device)
        self.threshold_ = float(np.percentile(z.detach().double().cpu().numpy().ravel(), p))

    def _score(self, z):
        return -energy(self._logits(z.double().clamp_max(self.threshold_)))
