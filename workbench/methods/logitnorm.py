"""LogitNorm (Wei, Xie, Cheng, Feng, An & Li, "Mitigating Neural Network Overconfidence with
Logit Normalization", ICML 2022).

In words: cross-entropy on the logits divided by their L2 norm and a temperature τ,

    L = CE( ℓ / (τ · (‖ℓ‖₂ + 1e-7)),  y ),   averaged over the batch.

Normalising decouples the logits' direction from their norm, so training cannot lower the loss
by growing the norm (the source of overconfidence the paper identifies); the softmax then sees
logits of norm 1/τ. It is a **training-time** loss only: at inference the raw logits are used
(MSP, energy, ... on ``model(x)``), as in the official code (logitnorm_ood#1).

Differences from the official code (``hongxin001/logitnorm_ood``, ``LogitNormLoss``): none in the
loss (the 1e-7 is theirs). Default τ = 0.04, the paper's CIFAR-10 value (OpenOOD's trainer too);
the code's own default is 1.0 and its README example passes 0.01; the author advises ≈ 0.0085
for CIFAR-100 (more classes → smaller τ).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from ._logit_loss import _LogitLossMethod, check_logits, reduce


def logitnorm_loss(logits: torch.Tensor, y: torch.Tensor, *, tau: float = 0.04, reduction: str = "mean") -> torch.Tensor:
    """CE on ``logits / (tau (‖logits‖ + 1e-7))`` for (N, C) logits and (N,) labels."""
    check_logits(logits, y, "logitnorm_loss")
    norms = logits.norm(p=2, dim=1, keepdim=True) + 1e-7
    return reduce(F.cross_entropy(logits / (norms * tau), y, reduction="none"), reduction)


class LogitNorm(_LogitLossMethod):
    """Cross-entropy on L2-normalised logits at temperature τ (module docstring). Logs ``acc``."""

    _fn = logitnorm_loss

    def __init__(self, tau: float = 0.04):
        super().__init__()
        self.tau = check_number(tau, "tau", min=0, min_open=True, hint="the temperature; the paper uses 0.04 on CIFAR-10")

    def _params(self) -> dict:
        return {"tau": self.tau}
