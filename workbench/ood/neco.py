"""NECO: the share of a feature's norm that lies in the principal (neural-collapse) subspace.

Paper: Ben Ammar, Belkhir, Popescu, Manzanera & Franchi, "NECO: NEural Collapse Based
Out-of-distribution Detection" (ICLR 2024).

In words (the official code): standardise the training features (per-dimension mean and standard
deviation, scikit-learn's ``StandardScaler``), fit a full PCA on them, and keep the first ``dim``
principal directions P (the paper's "ETF dimension", about the number of classes). For a test
feature x, with x̃ = standardised x,

    NECO(x) = ‖P (x̃ − m)‖ / ‖x̃‖          (m = PCA's centre, ≈ 0 after standardising)

Under neural collapse the ID features live in the span of the class means, so their ratio is
near 1, while OOD features keep more of their norm outside it. The OOD score is −NECO(x).

Where this differs from the paper / official code:
* for ViT/Swin/DeiT backbones the official score is multiplied by the maximum logit; that
  variant is not offered here (it needs logits and backbone features at once);
* the official code notes that skipping the scaler can be better when NC1 holds well:
  ``scale=False``;
* ``dim`` defaults to the number of classes when labels are given to ``fit`` (it must be given
  otherwise); the paper tunes it;
* a tiny epsilon guards ‖x̃‖ = 0; PCA uses an SVD in float64.
"""

from __future__ import annotations

import torch

from .._checks import check_bool
from .base import Detector

__all__ = ["NECO"]


class NECO(Detector):
    """OOD score = −‖first `dim` PCA coordinates of the scaled feature‖ / ‖scaled feature‖.

    Parameters
    ----------
    dim: number of principal directions kept (default: number of classes in the fitting labels).
    space: "backbone" (default), "embedding" or "logits".
    scale: standardise features before the PCA (the official default).

    Fitted attributes: ``mean_``, ``scale_`` (the scaler), ``pca_mean_``, ``components_``
    (dim, d), ``explained_variance_ratio_`` (all directions), ``dim_``, ``n_features_in_``.
    """

    def __init__(self, *, dim: int | None = None, space: str = "backbone", scale: bool = True):
        self.dim = dim
        self.space = space
        self.scale = scale

    def _scaled(self, z):
        return (z.double() - self.mean_) / self.scale_

    def _fit(self, z, y):
        dim = self.dim
        if dim is None:
            if y is None:
                raise ValueError(
                    "NECO needs dim= (the number of principal directions, about the number of classes) "
                    "when the fitting data has no labels; pass NECO(dim=C)"
                )
            dim = int(torch.unique(y).numel())
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        check_bool(self.scale, "scale")
        if z.shape[0] < 2:
            raise ValueError(f"NECO fits a PCA and needs at least 2 training samples, got {z.shape[0]}")
        d = z.shape[1]
        if dim > min(d, z.shape[0]):
            raise ValueError(
                f"dim={dim} is larger than the feature size ({d}) or the number of samples "
                f"({z.shape[0]}); pass dim <= {min(d, z.shape[0])}"
            )
        z = z.double()
        if self.scale:
            self.mean_ = z.mean(0)
            std = z.std(0, correction=0)
            self.scale_ = torch.where(std > 0, std, torch.ones_like(std))  # as StandardScaler
        else:
            self.mean_ = torch.zeros(d, dtype=z.dtype, device=z.device)
            self.scale_ = torch.ones(d, dtype=z.dtype, device=z.device)
        zs = self._scaled(z)
        self.pca_mean_ = zs.mean(0)
        _, s, vh = torch.linalg.svd(zs - self.pca_mean_, full_matrices=False)
        var = s.square()
        self.explained_variance_ratio_ = var / var.sum().clamp_min(1e-300)
        self.components_ = vh[:dim]
        self.dim_ = dim

    def _score(self, z):
        zs = self._scaled(z)
        proj = (zs - self.pca_mean_) @ self.components_.T
        return -proj.norm(dim=1) / zs.norm(dim=1).clamp_min(1e-12)
