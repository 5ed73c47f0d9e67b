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
        return float((self.pred[keep] == self.y[keep]).float().mean())

    def confusion(self, n_classes: int | None = None) -> torch.Tensor:
        """(C, C) counts: row = true class, column = predicted class (samples labelled -1 skipped)."""
        if self.y is None:
            raise ValueError("the data had no labels, so there is no confusion matrix")
        c = n_classes or self.logits.shape[1]
        keep = self.y >= 0
        idx = self.y[keep] * c + self.pred[keep]
        return torch.bincount(idx, minlength=c * c).reshape(c, c)

    def __repr__(self) -> str:
        acc = f", accuracy={self.accuracy:.4f}" if self.y is not None else ""
        return f"Predictions(n={self.pred.shape[0]}, classes={self.logits.shape[1]}{acc})"


def predict(model: nn.Module, data, *, batch_size: int = 1024) -> Predictions:
    """Run the classifier over ``data`` (eval mode, no grad, model untouched)."""
    logits = embed(model, data, fn=lambda m, x: m(x), batch_size=batch_size)
    if logits.ndim != 2:
        raise ValueError(f"the model's output has shape {tuple(logits.shape)}; predict needs (N, classes) logits")
    y = data.y.cpu() if getattr(data, "y", None) is not None else None
    return Predictions(logits, logits.argmax(1), y)
