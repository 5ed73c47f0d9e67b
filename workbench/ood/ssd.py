"""SSD+-style class-agnostic Mahalanobis score, as PALM's official evaluation computes it.

Papers: Sehwag, Chiang & Mittal, "SSD: A Unified Framework for Self-Supervised Outlier
Detection" (ICLR 2021); used as the OOD score of PALM (Lu et al., "Learning with Mixture of
Prototypes for Out-of-Distribution Detection", ICLR 2024), whose ``eval_cifar.py`` prints it as
"SSD+".

In words (PALM's ``eval_maha``):
1. L2-normalise the backbone features (not PALM's head embedding);
2. standardise every dimension with the mean m and standard deviation s of the normalised
   training features: x̃ = (x − m) / (s + 1e-10);
3. fit one Gaussian for all training data, whatever the class: Σ = covariance of the
   standardised training features (divided by N), precision = its pseudo-inverse;
4. OOD score = (x̃ − μ)ᵀ Σ⁺ (x̃ − μ) (PALM returns the negative as an ID score).

**The μ quirk.** The official code uses μ = m, the mean of the *normalised but unstandardised*
training features, although x̃ is already centred (its training mean is 0). That shifts the
centre of the Gaussian by the constant vector m in standardised units: technically not SSD+, but
it is what produced PALM's published numbers. ``center="official"`` (default) reproduces it;
``center="standardized"`` uses μ = 0, the textbook SSD+ with one cluster.

Where this differs: no k-means clusters (SSD's multi-cluster variant); float64; a
pseudo-inverse with a relative cut-off ``rcond``.
"""

from __future__ import annotations

import torch

from ._linalg import check_rcond, pinv_sqrt, sq_dists
from .base import Detector

__all__ = ["SSD"]

CENTERS = ("official", "standardized")


class SSD(Detector):
    """Class-agnostic Mahalanobis on standardised, L2-normalised features (PALM's scoring).

    Parameters
    ----------
    space: "backbone" (default, as PALM) or "embedding" / "logits".
    center: "official" (PALM's μ quirk, default) or "standardized" (μ = 0).
    rcond: relative eigenvalue cut-off of the pseudo-inverse.

    Fitted attributes: ``mean_``, ``std_`` (of the normalised training features), ``center_``
    (μ in standardised units), ``covariance_``, ``precision_``, ``n_features_in_``.
    """

    def __init__(self, *, space: str = "backbone", center: str = "official", rcond: float = 1e-10):
        self.space = space
        self.center = center
        self.rcond = rcond

    def _standardize(self, z):
        zn = z.double() / (z.double().norm(dim=1, keepdim=True) + 1e-10)
        return (zn - self.mean_) / (self.std_ + 1e-10)

    def _fit(self, z, y):
        rcond = check_rcond(self.rcond)
        if self.center not in CENTERS:
            raise ValueError(f"unknown center {self.center!r}; valid: {', '.join(CENTERS)}")
        if z.shape[0] < 2:
            raise ValueError("SSD needs at least 2 training samples to estimate a covariance")
        zn = z.double() / (z.double().norm(dim=1, keepdim=True) + 1e-10)
        self.mean_ = zn.mean(0)
        self.std_ = zn.std(0, correction=0)
        zs = (zn - self.mean_) / (self.std_ + 1e-10)
        c = zs - zs.mean(0)
        cov = c.T @ c / zs.shape[0]
        w = pinv_sqrt(cov, rcond)
        self.center_ = self.mean_.clone() if self.center == "official" else torch.zeros_like(self.mean_)
        self.covariance_ = cov
        self.precision_ = w.T @ w
        self._w = w

    def _score(self, z):
        zs = self._standardize(z)
        return sq_dists(zs @ self._w.T, (self.center_ @ self._w.T)[None]).squeeze(1)
