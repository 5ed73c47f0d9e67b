"""ViM: virtual-logit matching (Wang, Li, Feng & Zhang, "ViM: Out-Of-Distribution with
Virtual-logit Matching", CVPR 2022).

In words: move the origin of feature space to u = −W⁺b (the point the linear head maps to zero
logits). On the ID training features, take the second moment Σ = (1/n)·Σ_i (z_i − u)(z_i − u)ᵀ,
its eigenvectors sorted by eigenvalue (descending), and keep those after the first D as the
residual basis R. The residual r(z) = ‖Rᵀ(z − u)‖ is the norm of the feature outside the
principal subspace. α = mean_train(max_c ℓ_c) / mean_train(r) matches the virtual logit's scale
to the real ones, and the OOD score is α·r(z) − logsumexp(ℓ(z)).

Differences from the official code: ``eigh`` instead of ``eig`` on the symmetric Σ (real output);
D = ``dim`` defaults to the official rule (N ≥ 2048 → 1000, N ≥ 768 → 512, otherwise N/2) and
D ≥ N is refused (R would be empty and ViM would silently become Energy).
"""

from __future__ import annotations

import torch

from .._checks import check_int
from ._head import HeadDetector, energy

__all__ = ["ViM", "default_vim_dim"]


def default_vim_dim(n: int) -> int:
    """The official principal-space size for n-dimensional features."""
    return 1000 if n >= 2048 else 512 if n >= 768 else n // 2


class ViM(HeadDetector):
    """OOD score = α·‖residual of z − u outside the top-D principal space‖ − logsumexp(logits).

    Parameters
    ----------
    dim: D, the principal-space size (None: the official rule from the feature size).
    head: the linear head for ``fit_features`` (``fit(model, ...)`` reads ``model.head``).

    Fitted attributes: ``origin_`` u (d,), ``residual_basis_`` R (d, d−D), ``alpha_``, ``dim_``,
    ``weight_``, ``bias_``, ``n_features_in_``.
    """

    def __init__(self, *, dim: int | None = None, head=None):
        self.dim = dim
        self.head = head

    def _fit(self, z, y):
        n = z.shape[1]
        dim = default_vim_dim(n) if self.dim is None else check_int(self.dim, "dim", min=1)
        if dim >= n:
            raise ValueError(f"dim={dim} must be smaller than the feature size {n} (else the residual is "
                             f"empty and ViM becomes Energy); pass dim < {n}")
        self._read_head(n, z.device)
        self.origin_ = -(torch.linalg.pinv(self.weight_) @ self.bias_)        # (d,)
        c = z.double() - self.origin_
        second = c.T @ c / c.shape[0]                                           # (d, d)
        evals, evecs = torch.linalg.eigh(second)
        order = evals.argsort(descending=True)
        self.residual_basis_ = evecs[:, order[dim:]].contiguous()               # (d, d - D)
        self.dim_ = dim
        self.alpha_ = float(self._logits(z).amax(1).mean() / self._residual(z).mean().clamp_min(1e-12))

    def _residual(self, z):
        return ((z.double() - self.origin_) @ self.residual_basis_).norm(dim=1)

    def _score(self, z):
        return self.alpha_ * self._residual(z) - energy(self._logits(z))
