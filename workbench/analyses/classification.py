"""Predictions of a classifier over a data set: accuracy and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .embedding import embed


@dataclass(frozen=True, eq=False)
class Predictions:
    """``logits`` (N, C), ``pred`` (N,), ``y`` (N,) or None; all on CPU."""

    logits: torch.Tensor
    pred: torch.Tensor
    y: torch.Tensor | None

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.softmax(-1)

    @property
    def accuracy(self) -> float:
        if self.y is None:
            raise ValueError("the data had no labels, so accuracy is undefined")
        keep = self.y >= 0
        if not bool(keep.any()):
            raise ValueError("every label is -1 (OOD/unknown), so accuracy is undefined; pass labelled data")
        return float((self.pred[keep] == self.y[keep]).float().mean())

    def confusion(self, n_classes: int | None = None) -> torch.Tensor:
        """(C, C) counts: row = true class, column = predicted class (samples labelled -1 skipped)."""
        if self.y is None:
            raise ValueError("the data had no labels, so there is no confusion matrix")
        c = self.logits.shape[1] if n_classes is None else n_classes
        if isinstance(c, bool) or not isinstance(c, int) or c < self.logits.shape[1]:
            raise ValueError(
                f"n_classes must be an int >= the model's {self.logits.shape[1]} outputs (or None), got {n_classes!r}"
            )
        keep = self.y >= 0
        if bool(keep.any()) and int(self.y[keep].max()) >= c:
            raise ValueError(
                f"the labels go up to {int(self.y[keep].max())} but the confusion matrix has {c} classes; "
                f"pass n_classes={int(self.y[keep].max()) + 1}"
            )
        idx = self.y[keep] * c + self.pred[keep]
        return torch.bincount(idx, minlength=c * c).reshape(c, c)

    def __repr__(self) -> str:
        acc = f", accuracy={self.accuracy:.4f}" if self.y is not None else ""
        return f"Predictions(n={self.pred.shape[0]}, classes={self.logits.shape[1]}{acc})"


def predict(model: nn.Module, data, *, batch_size: int = 1024) -> Predictions:
    """Run the classifier over ``data`` (eval mode, no grad, model untouched)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module classifier, got {type(model).__name__}")
    logits = embed(model, data, fn=lambda m, x: m(x), batch_size=batch_size)
    if logits.ndim != 2:
        raise ValueError(f"the model's output has shape {tuple(logits.shape)}; predict needs (N, classes) logits")
    y = data.y.cpu() if getattr(data, "y", None) is not None else None
    return Predictions(logits, logits.argmax(1), y)
