"""Residual: the norm of a feature outside the principal subspace (the baseline of the ViM paper,
Wang et al., CVPR 2022).

In words: the same origin u = −W⁺b and residual basis R as ViM (top-D principal directions of
the ID training features about u removed); the OOD score is r(z) = ‖Rᵀ(z − u)‖, no logits.

Differences from OpenOOD: OpenOOD fits Σ on ID *validation* data and its default dim 512 leaves R
empty for 512-d ResNet-18 features (every score 0); here Σ comes from the fitting data (train,
as in the official code) and D follows the official rule, with D ≥ N refused.
"""

from __future__ import annotations

from .vim import ViM

__all__ = ["Residual"]


class Residual(ViM):
    """OOD score = ‖Rᵀ(z − u)‖ (ViM's virtual logit without the energy term or α).

    Parameters and fitted attributes as ``ViM``.
    """

    def _score(self, z):
        return self._residual(z)
