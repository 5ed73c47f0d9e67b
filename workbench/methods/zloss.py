"""The Z-loss of the spherical family (de Brébisson & Vincent, "The Z-loss: a shift and scale
invariant classification loss belonging to the Spherical Family", arXiv 1604.08859, 2016).

**Which z-loss.** Two different things carry the name. This file is de Brébisson & Vincent's
classification loss on **standardised logits**. The other, the "z-loss" of PaLM (Chowdhery et
al. 2022) and later large language models, is a small penalty c · (log Z)² on the softmax
normaliser added to cross-entropy; it is offered separately as ``wb.methods.LogZPenalty``.

In words: standardise the logits of each sample over its C classes, with the mean μ and the
population standard deviation σ, and apply a scaled softplus to the target's standardised score:

    z_y = (ℓ_y − μ) / σ,      L = (1/a) · softplus(a · (b − z_y)),   averaged over the batch.

The loss is invariant to ℓ → sℓ + t (s > 0): it depends on the logits only through Σℓ, Σℓ²
and ℓ_y, so it never pushes the logits to grow (unlike cross-entropy). z_y is bounded by
√(C − 1), so the loss saturates; a > 0 sets the sharpness of the softplus and b its offset.

Differences from the authors' example (``factored_output_layer``, ``example/timing_example.py``,
Theano): a = 1, b = 0 and the 1e-12 added to σ are theirs; they **sum** over the batch, this file
averages (so the learning rate does not depend on the batch size). The (a, b) tuned in the
paper's experiments are not reproduced here (not verified).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from ._logit_loss import _LogitLossMethod, check_logits, reduce


def z_loss(logits: torch.Tensor, y: torch.Tensor, *, a: float = 1.0, b: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """De Brébisson & Vincent's Z-loss ``softplus(a (b − z_y)) / a`` of (N, C) ``logits`` (C >= 2)
    against (N,) labels, with z_y the target logit standardised over the classes."""
    check_logits(logits, y, "z_loss")
    if logits.shape[1] < 2:
        raise ValueError(f"the Z-loss standardises over the classes and needs C >= 2, got C={logits.shape[1]}")
    mu = logits.mean(1)
    sigma = (logits.pow(2).mean(1) - mu.pow(2)).clamp_min(0).sqrt()  # population std
    z = (logits.gather(1, y[:, None]).squeeze(1) - mu) / (sigma + 1e-12)
    return reduce(F.softplus(a * (b - z)) / a, reduction)


class ZLoss(_LogitLossMethod):
    """The spherical-family Z-loss on standardised logits (module docstring). Logs ``acc``."""

    _fn = z_loss

    def __init__(self, a: float = 1.0, b: float = 0.0):
        super().__init__()
        self.a = check_number(a, "a", min=0, min_open=True, hint="the softplus sharpness, e.g. a=1")
        self.b = check_number(b, "b", hint="the offset of the standardised target score, e.g. b=0")

    def _params(self) -> dict:
        return {"a": self.a, "b": self.b}
