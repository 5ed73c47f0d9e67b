"""Cross-entropy classification (with optional label smoothing).

Loss: mean over the batch of -log softmax(model(x))_y, with label smoothing ``s`` mixing the
one-hot target with the uniform distribution (Szegedy et al. 2016), as ``torch.nn.functional.
cross_entropy(label_smoothing=s)`` defines it. Samples labelled -1 (unknown/OOD) are refused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import CrossEntropyOnLogits, Method


def check_labels(y, n_classes: int | None = None, who: str = "this method") -> torch.Tensor:
    if y is None:
        raise ValueError(f"{who} needs labels, but the batch has y=None; pass a labelled Dataset")
    if (y < 0).any():
        raise ValueError(
            f"{who} got labels of -1 (unknown/OOD); train on in-distribution samples only "
            "(see wb.data.ood_split)"
        )
    if n_classes is not None and (y >= n_classes).any():
        raise ValueError(
            f"labels go up to {int(y.max())} but the model predicts {n_classes} classes; "
            f"build it with out_dim={int(y.max()) + 1}"
        )
    return y


class CrossEntropy(Method):
    """Softmax cross-entropy on ``model(x)`` logits. Logs ``acc`` (batch accuracy)."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    @property
    def loss_form(self) -> CrossEntropyOnLogits | None:
        """Declares the loss as softmax cross-entropy on logits, unless a subclass changed
        ``loss_from_outputs`` (then it declares nothing)."""
        if type(self).loss_from_outputs is not CrossEntropy.loss_from_outputs:
            return None
        return CrossEntropyOnLogits(self.label_smoothing)

    def loss_from_outputs(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)
        check_labels(y, logits.shape[-1], "CrossEntropy")
        loss = self.loss_from_outputs(logits, y)
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss, {"acc": acc}
