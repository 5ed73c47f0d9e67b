"""GEN: generalized entropy (Liu, Lochman & Zach, "GEN: Pushing the Limits of Softmax-Based
Out-of-Distribution Detection", CVPR 2023).

In words: with p = softmax(logits), sum p_j^γ·(1 − p_j)^γ over the M largest probabilities; a
confident (peaked) p gives a small sum, a flat p a large one, so the sum itself is the OOD score
(the official code returns its negative as an ID confidence). Nothing is fitted.

Defaults are the official ones (γ = 0.1, M = 100, tuned for ImageNet-1k); with M ≥ C every
class enters. OpenOOD sweeps γ and M on OOD validation data; here they are fixed.
"""

from __future__ import annotations

import torch

from .._checks import check_int, check_number
from .logits import _LogitDetector

__all__ = ["GEN"]


class GEN(_LogitDetector):
    """OOD score = Σ over the top-M probabilities of p^γ (1 − p)^γ."""

    def __init__(self, *, gamma: float = 0.1, M: int = 100):
        self.gamma = gamma
        self.M = M

    def _fit(self, z, y):
        super()._fit(z, y)
        check_number(self.gamma, "gamma", min=0, min_open=True)
        check_int(self.M, "M", min=1)

    def _score(self, z):
        g = check_number(self.gamma, "gamma", min=0, min_open=True)
        p = torch.softmax(z.double(), dim=1)
        top = p.topk(min(check_int(self.M, "M", min=1), p.shape[1]), dim=1).values
        return (top.pow(g) * (1 - top).pow(g)).sum(1)
