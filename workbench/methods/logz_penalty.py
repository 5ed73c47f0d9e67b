"""Cross-entropy with a log-partition penalty: the "z-loss" of PaLM (Chowdhery et al., "PaLM:
Scaling Language Modeling with Pathways", 2022, section 5), not de Brébisson & Vincent's
spherical-family Z-loss (that one is ``wb.methods.ZLoss``).

In words: with log Z = logsumexp(ℓ) the softmax normaliser of a sample,

    L = CE(ℓ, y) + c · (log Z)²,   averaged over the batch,

a small penalty (PaLM: c = 1e-4) that keeps log Z near 0, i.e. keeps the logits from drifting
upwards together; it was introduced for the numerical stability of large-scale training.
Optional label smoothing applies to the cross-entropy term as in ``wb.methods.CrossEntropy``.

Differences: PaLM adds the penalty to a language-model loss per token; here per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from ._logit_loss import _LogitLossMethod, check_logits, reduce


def logz_penalty_loss(logits: torch.Tensor, y: torch.Tensor, *, coef: float = 1e-4, label_smoothing: float = 0.0,
                      reduction: str = "mean") -> torch.Tensor:
    """CE (with label smoothing) + ``coef`` · logsumexp(logits)² for (N, C) logits and (N,) labels."""
    check_logits(logits, y, "logz_penalty_loss")
    ce = F.cross_entropy(logits, y, label_smoothing=label_smoothing, reduction="none")
    return reduce(ce + coef * torch.logsumexp(logits, 1).pow(2), reduction)


class LogZPenalty(_LogitLossMethod):
    """Cross-entropy + c · (log Z)², PaLM's "z-loss" (module docstring). Logs ``acc``."""

    _fn = logz_penalty_loss

    def __init__(self, coef: float = 1e-4, label_smoothing: float = 0.0):
        super().__init__()
        self.coef = check_number(coef, "coef", min=0, hint="the weight of (log Z)^2; PaLM uses 1e-4")
        self.label_smoothing = check_number(label_smoothing, "label_smoothing", min=0, max=1, max_open=True)

    def _params(self) -> dict:
        return {"coef": self.coef, "label_smoothing": self.label_smoothing}
