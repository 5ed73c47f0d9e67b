"""RMDS: relative Mahalanobis distance (Ren, Fort, Liu, Roy, Padhy & Lakshminarayanan, "A Simple
Fix to Mahalanobis Distance for Improving Near-OOD Detection", 2021).

In words: fit one Gaussian per class with the class means μ_k and one shared covariance Σ (the
pooled within-class scatter over n, as Mahalanobis), and one background Gaussian on all
training features (mean μ₀, covariance Σ₀ over n). The relative distance to class k is
MD_k(z) − MD₀(z); the OOD score is its minimum over k, i.e. the plain Mahalanobis score minus
MD₀(z), which removes the part of the distance every class shares.

Differences from the official/OpenOOD code: precisions are pseudo-inverses with a relative
eigenvalue cut-off ``rcond`` (sklearn's ``pinvh`` in OpenOOD), computed in float64 (OpenOOD casts
features to float32).
"""

from __future__ import annotations

import torch

from ._linalg import check_rcond, pinv_sqrt, sq_dists
from .base import Detector

__all__ = ["RMDS"]


class RMDS(Detector):
    """OOD score = min_k [MD_k(z) − MD₀(z)] (class Gaussians with a tied Σ, background Σ₀).

    Parameters
    ----------
    space: "backbone" (default), "embedding" or "logits".
    rcond: relative eigenvalue cut-off of the pseudo-inverses.

    Fitted attributes: ``classes_``, ``means_`` (C, d), ``covariance_``, ``background_mean_``,
    ``background_covariance_``, ``n_features_in_``.
    """

    needs_labels = True

    def __init__(self, *, space: str = "backbone", rcond: float = 1e-10):
        self.space = space
        self.rcond = rcond

    def _fit(self, z, y):
        rcond = check_rcond(self.rcond)
        z = z.double()
        self.classes_ = torch.unique(y)
        if z.shape[0] <= self.classes_.numel():
            raise ValueError(f"RMDS needs more training samples than classes, got {z.shape[0]} samples "
                             f"for {self.classes_.numel()} classes")
        onehot = (y[:, None] == self.classes_[None, :]).double()               # (N, C)
        self.means_ = (onehot.T @ z) / onehot.sum(0)[:, None]                   # (C, d)
        centred = z - onehot @ self.means_
        self.covariance_ = centred.T @ centred / z.shape[0]
        self.background_mean_ = z.mean(0)
        c0 = z - self.background_mean_
        self.background_covariance_ = c0.T @ c0 / z.shape[0]
        self._w = pinv_sqrt(self.covariance_, rcond)                            # WᵀW = Σ⁺
        self._w0 = pinv_sqrt(self.background_covariance_, rcond)

    def _score(self, z):
        z = z.double()
        md = sq_dists(z @ self._w.T, self.means_ @ self._w.T)                   # (N, C)
        md0 = ((z - self.background_mean_) @ self._w0.T).square().sum(1)        # (N,)
        return md.amin(1) - md0
