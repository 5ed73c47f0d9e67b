"""fDBD: fast decision-boundary-based detection (Liu & Qin, "Fast Decision Boundary based
Out-of-Distribution Detector", ICML 2024).

In words: for the predicted class f = argmax ℓ, the distance from z to the decision boundary
between f and class j of a linear head is |ℓ_f − ℓ_j| / ‖w_f − w_j‖. ID samples lie farther
from the boundaries, relative to their distance from the mean training feature μ. ID-ness =
Σ_{j≠f} |ℓ_f − ℓ_j| / ‖w_f − w_j‖ ÷ ‖z − μ‖; the OOD score is its negative.

Differences from the paper: the paper averages over the C − 1 other classes; the official code
and OpenOOD sum (a constant factor, same ranking) — summed here. ``normalizer="norm"`` divides
by ‖z‖ instead of ‖z − μ‖ (OpenOOD's ``distance_as_normalizer=False``, which its docstring calls
a deviation from the paper). Logits include the bias.
"""

from __future__ import annotations

import torch

from .._checks import check_choice
from ._head import HeadDetector

__all__ = ["FDBD"]


class FDBD(HeadDetector):
    """OOD score = −Σ_{j≠f} |ℓ_f − ℓ_j| / ‖w_f − w_j‖ / ‖z − μ_train‖.

    Parameters
    ----------
    normalizer: "mean" (‖z − μ_train‖, official) or "norm" (‖z‖).
    head: the linear head for ``fit_features``.

    Fitted attributes: ``mean_`` μ (d,), ``weight_``, ``bias_``, ``n_features_in_``.
    """

    def __init__(self, *, normalizer: str = "mean", head=None):
        self.normalizer = normalizer
        self.head = head

    def _fit(self, z, y):
        check_choice(self.normalizer, "normalizer", ("mean", "norm"))
        self._read_head(z.shape[1], z.device)
        self.mean_ = z.double().mean(0)
        dist = torch.cdist(self.weight_, self.weight_)                          # (C, C) ‖w_i − w_j‖
        self._wdist = dist.fill_diagonal_(1.0)

    def _score(self, z):
        z = z.double()
        logits = self._logits(z)
        f = logits.argmax(1)
        gaps = (logits.gather(1, f[:, None]) - logits).abs() / self._wdist[f]    # (N, C), 0 at j = f
        ref = z - self.mean_ if self.normalizer == "mean" else z
        return -gaps.sum(1) / ref.norm(dim=1).clamp_min(1e-12)
