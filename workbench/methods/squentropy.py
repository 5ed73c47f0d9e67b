"""Squentropy (Hui, Belkin & Wright, "Cut your Losses with Squentropy", ICML 2023).

In words: cross-entropy plus the average square of the **non-target** raw logits,

    L = CE(ℓ, y) + (1 / (C − 1)) · Σ_{j ≠ y} ℓ_j²,   averaged over the batch.

The square term pulls the logits of the wrong classes to zero (the target logit is left to the
cross-entropy), which the paper finds improves calibration at equal accuracy. No hyperparameters.

Differences from the official code (``Squentropy-for-classification`` ``main.py``'s "mixed"
loss): none in the formula. ``Squentropy_vision/svhn.py`` multiplies the square term by
``args.resquare``, which its argument parser never defines (it crashes as published); the
paper's factor is 1, used here. Not to be confused with Σ_j (softmax_j − onehot_j)², the Brier
term, which some third-party "squentropy" code computes instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._logit_loss import _LogitLossMethod, check_logits, reduce


def squentropy_loss(logits: torch.Tensor, y: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """CE + mean square of the non-target logits, for (N, C) ``logits`` (C >= 2) and (N,) labels."""
    check_logits(logits, y, "squentropy_loss")
    c = logits.shape[1]
    if c < 2:
        raise ValueError(f"squentropy needs at least 2 classes (the square term averages over C - 1), got C={c}")
    ce = F.cross_entropy(logits, y, reduction="none")  # (N,)
    sq = logits.pow(2).sum(1) - logits.gather(1, y[:, None]).squeeze(1).pow(2)
    return reduce(ce + sq / (c - 1), reduction)


class Squentropy(_LogitLossMethod):
    """Cross-entropy plus the mean square of the non-target logits (module docstring). Logs ``acc``."""

    _fn = squentropy_loss

    def __init__(self):
        super().__init__()

    def _params(self) -> dict:
        return {}
