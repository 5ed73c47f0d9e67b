"""Focal loss, softmax form (Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object
Detection", ICCV 2017; the multi-class form used for calibration by Mukhoti et al., NeurIPS 2020,
"Calibrating Deep Neural Networks using Focal Loss").

In words: with p_t the softmax probability of the true class, the cross-entropy −log p_t is
multiplied by (1 − p_t)^γ, so samples that are already classified confidently contribute little
and the loss concentrates on the hard ones:

    FL = −(1 − p_t)^γ · log p_t,   averaged over the batch.

γ = 0 is exactly cross-entropy; γ = 2 is RetinaNet's value; Mukhoti et al. use γ = 3 (or a
sample-dependent γ, "FLSD-53") for calibration.

Differences from the references, stated:

* RetinaNet's focal loss is per-class **sigmoid** (binary) with a class-balance weight α
  (α = 0.25 for positives, torchvision's ``sigmoid_focal_loss``) and is normalised by the number
  of positive anchors. This file is the multi-class **softmax** form without α (as in Mukhoti
  et al.'s calibration code), averaged over the batch. Not offered: α weights, FLSD-53.
* Numerics: log p_t comes from ``log_softmax`` (never log of a probability) and 1 − p_t from
  ``−expm1(log p_t)``; 1 − p_t is floored at the dtype's smallest normal number, so γ < 1 gives
  a finite gradient when p_t rounds to 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from ._logit_loss import _LogitLossMethod, check_logits, reduce


def focal_loss(logits: torch.Tensor, y: torch.Tensor, *, gamma: float = 2.0, reduction: str = "mean") -> torch.Tensor:
    """Softmax focal loss of (N, C) ``logits`` against (N,) labels ``y``; ``reduction`` "mean",
    "sum" or "none" (-> (N,)). ``gamma = 0`` equals ``F.cross_entropy``."""
    check_logits(logits, y, "focal_loss")
    logpt = F.log_softmax(logits, -1).gather(1, y[:, None]).squeeze(1)  # (N,)
    one_minus = (-torch.expm1(logpt)).clamp_min(torch.finfo(logits.dtype).tiny)
    return reduce(-one_minus.pow(gamma) * logpt, reduction)


class FocalLoss(_LogitLossMethod):
    """Softmax focal loss ``−(1 − p_t)^γ log p_t`` on ``model(x)`` logits (module docstring).
    Logs ``acc``."""

    _fn = focal_loss

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = check_number(gamma, "gamma", min=0, hint="the focusing exponent; 0 = cross-entropy, 2 is RetinaNet's")

    def _params(self) -> dict:
        return {"gamma": self.gamma}
