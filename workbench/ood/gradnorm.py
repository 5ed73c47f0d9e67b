"""GradNorm (Huang, Geng & Li, "On the Importance of Gradients for Detecting Distributional Shifts
in the Wild", NeurIPS 2021).

In words: back-propagate the KL divergence between the uniform distribution and softmax(ℓ/T) to
the last layer's **weight** and take its L1 norm; ID samples give larger gradients. For a linear
head ℓ = Wz + b the gradient is an outer product, so the norm has a closed form (no per-sample
autograd): with L = Σ_j −t_j log softmax(ℓ/T)_j, ∂L/∂W = (1/T)(Σt·p − t) zᵀ and

    ‖∂L/∂W‖₁ = (1/T) · Σ_j |(Σt)·p_j − t_j| · Σ_i |z_i|.

OOD score = −that.

Differences: the paper's targets are uniform t_j = 1/C; the official code (and OpenOOD) uses
t_j = 1, i.e. C times the paper's value (same ranking): ``targets="ones"`` (default, official)
or ``"uniform"`` (paper). The official script needs batch size 1 (per-sample gradients); the
closed form is per-sample by construction. pytorch-ood's all-parameter L2 variant is not this.
"""

from __future__ import annotations

import torch

from .._checks import check_choice, check_number
from ._head import HeadDetector

__all__ = ["GradNorm"]


class GradNorm(HeadDetector):
    """OOD score = −‖∂ KL(targets ‖ softmax(ℓ/T)) / ∂W‖₁ (last-layer weight, closed form).

    Parameters
    ----------
    temperature: T (1 in the paper).
    targets: "ones" (official code) or "uniform" (paper, 1/C).
    head: the linear head for ``fit_features``.

    Nothing is learned: ``fit`` only reads the head and the feature size.
    """

    def __init__(self, *, temperature: float = 1.0, targets: str = "ones", head=None):
        self.temperature = temperature
        self.targets = targets
        self.head = head

    def _fit(self, z, y):
        check_number(self.temperature, "temperature", min=0, min_open=True)
        check_choice(self.targets, "targets", ("ones", "uniform"))
        self._read_head(z.shape[1], z.device)

    def _score(self, z):
        t = float(self.temperature)
        z = z.double()
        p = torch.softmax(self._logits(z) / t, dim=1)
        c = p.shape[1]
        tj = 1.0 if self.targets == "ones" else 1.0 / c
        g = (c * tj * p - tj).abs().sum(1) / t                                   # Σ_j |(Σt) p_j − t_j| / T
        return -g * z.abs().sum(1)
