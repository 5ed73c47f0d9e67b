"""Class-conditional Mahalanobis distance with a tied covariance.

Paper: Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting Out-of-Distribution
Samples and Adversarial Attacks" (NeurIPS 2018).

In words: fit one Gaussian per class with its own mean μ_c and one covariance Σ shared by all
classes (the class-centred scatter of the training features, divided by N as scikit-learn's
``EmpiricalCovariance`` does). A test feature's OOD score is its squared Mahalanobis distance to
the closest class mean, min_c (z − μ_c)ᵀ Σ⁻¹ (z − μ_c); the paper's confidence score is its
negative.

Where this differs from the paper / official code:
* no input pre-processing (the paper's FGSM-style perturbation) and no layer ensemble with a
  logistic regression on top: it is the plain, single-layer score that OpenOOD calls MDS (and
  that OpenOOD uses to score PALM, on L2-normalised features: ``normalize=True``);
* Σ⁻¹ is a pseudo-inverse (eigenvalues below ``rcond`` times the largest count as zero), so a
  singular covariance (dead ReLU units, fewer samples than dimensions) does not crash or blow up
  (pytorch-ood#8); ``shrinkage`` s in [0, 1] optionally uses (1 − s)·Σ + s·(tr Σ / d)·I
  (scikit-learn's ``ShrunkCovariance``) instead;
* computations run in float64; the means and the covariance are accumulated over row blocks
  (two passes), so millions of (memory-mapped) rows fit without a float64 copy of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_bool
from .._stream import row_chunks
from ._linalg import check_rcond, pinv_sqrt, sq_dists
from .base import Detector, score_rows

__all__ = ["Mahalanobis"]


class Mahalanobis(Detector):
    """Squared Mahalanobis distance to the nearest class mean (tied covariance).

    Parameters
    ----------
    space: which features to fit ("backbone" (default), "embedding" or "logits").
    normalize: L2-normalise the features first (OpenOOD's scoring of PALM).
    shrinkage: 0 (empirical covariance) to 1 (scaled identity).
    rcond: relative eigenvalue cut-off of the pseudo-inverse.

    Fitted attributes: ``classes_``, ``means_`` (C, d), ``covariance_`` (d, d), ``precision_``
    (d, d), ``n_features_in_``.
    """

    needs_labels = True

    def __init__(self, *, space: str = "backbone", normalize: bool = False, shrinkage: float = 0.0,
                 rcond: float = 1e-10):
        self.space = space
        self.normalize = normalize
        self.shrinkage = shrinkage
        self.rcond = rcond

    def _prep(self, z):
        z = z.double()
        return F.normalize(z, dim=1) if self.normalize else z

    def _fit(self, z, y):
        rcond = check_rcond(self.rcond)
        s = self.shrinkage
        if not isinstance(s, (int, float)) or isinstance(s, bool) or not 0.0 <= s <= 1.0:
            raise ValueError(f"shrinkage must be a number in [0, 1], got {s!r}")
        check_bool(self.normalize, "normalize")
        classes = torch.unique(y)
        if z.shape[0] <= classes.numel():
            raise ValueError(
                f"Mahalanobis estimates a covariance around {classes.numel()} class mean(s) and needs more "
                f"training samples than classes, got {z.shape[0]}; fit on more in-distribution data"
            )
        idx = torch.searchsorted(classes, y)
        counts = torch.bincount(idx, minlength=classes.numel()).to(torch.float64)
        means = torch.zeros(classes.numel(), z.shape[1], dtype=torch.float64, device=z.device)
        rows = score_rows(z)  # two passes over row blocks: no float64 copy of all the features
        for i, block in row_chunks(z, rows):
            means.index_add_(0, idx[i : i + rows], self._prep(block))
        means /= counts[:, None]
        cov = torch.zeros(z.shape[1], z.shape[1], dtype=torch.float64, device=z.device)
        for i, block in row_chunks(z, rows):
            centred = self._prep(block) - means[idx[i : i + rows]]
            cov.addmm_(centred.T, centred)
            del centred  # one block's copy alive at a time
        cov /= z.shape[0]  # (d, d), biased like EmpiricalCovariance
        if s > 0:
            d = cov.shape[0]
            cov = (1 - s) * cov + s * (torch.trace(cov) / d) * torch.eye(d, dtype=cov.dtype, device=cov.device)
        w = pinv_sqrt(cov, rcond)
        self.classes_ = classes
        self.means_ = means
        self.covariance_ = cov
        self.precision_ = w.T @ w
        self._w = w
        self._means_w = means @ w.T

    def distances(self, z) -> torch.Tensor:
        """Squared Mahalanobis distances (N, C) of features ``z`` to every class mean."""
        self._check_fitted()
        from .base import check_features

        z = check_features(z)
        if z.shape[1] != self.n_features_in_:
            raise ValueError(f"fitted on {self.n_features_in_}-d features, got {z.shape[1]}")
        return sq_dists(self._prep(z) @ self._w.T, self._means_w).float().cpu()

    def _score(self, z):
        return sq_dists(self._prep(z) @ self._w.T, self._means_w).amin(1)
