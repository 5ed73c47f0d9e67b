"""PolyLoss, Poly-1 (Leng, Liu, Tan, Tao, Ding, Jia, Bhattacharyya, Gong & Cubuk, "PolyLoss: A
Polynomial Expansion Perspective of Classification Loss Functions", ICLR 2022).

In words: cross-entropy expands as −log p_t = Σ_{j≥1} (1 − p_t)^j / j. PolyLoss perturbs the
coefficients of the leading polynomial terms; Poly-1 changes only the first one by ε:

    L = CE + ε · (1 − p_t),   averaged over the batch.

ε = 0 is exactly cross-entropy. ε must be ≥ −1 so that the loss keeps decreasing in p_t (the
first coefficient 1 + ε stays non-negative); the best ε is task-dependent (positive for the
paper's ImageNet classification runs, negative for some detection runs).

Differences from the paper's reference snippet: none in the formula. The snippet computes p_t
against (possibly label-smoothed) one-hot labels; this file takes integer labels, without label
smoothing. The focal variant (FL + ε(1 − p_t)^{γ+1}) is not offered.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from ._logit_loss import _LogitLossMethod, check_logits, reduce


def poly1_loss(logits: torch.Tensor, y: torch.Tensor, *, epsilon: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Poly-1 = CE + ε (1 − p_t) of (N, C) ``logits`` against (N,) labels; ``reduction`` "mean",
    "sum" or "none"."""
    check_logits(logits, y, "poly1_loss")
    logpt = F.log_softmax(logits, -1).gather(1, y[:, None]).squeeze(1)  # (N,)
    return reduce(-logpt - epsilon * torch.expm1(logpt), reduction)


class PolyLoss(_LogitLossMethod):
    """Poly-1: cross-entropy plus ε (1 − p_t) (module docstring). Logs ``acc``."""

    _fn = poly1_loss

    def __init__(self, epsilon: float = 1.0):
        super().__init__()
        self.epsilon = check_number(epsilon, "epsilon", min=-1,
                                    hint="Poly-1's ε must be >= -1 so the loss keeps decreasing in p_t; 0 = cross-entropy")

    def _params(self) -> dict:
        return {"epsilon": self.epsilon}
