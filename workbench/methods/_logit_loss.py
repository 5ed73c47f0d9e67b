"""Shared by the classification losses that are a function of the logits alone.

A loss file defines a plain function ``fn(logits, y, *, reduction="mean", **params)`` (the
algorithm, with its docstring) and a small ``Method`` subclass of ``_LogitLossMethod`` that
stores the hyperparameters and names the function. This base class gives it

* ``loss(model, batch)``: ``logits = model(x)``, labels checked, the mean loss, and the batch
  accuracy as ``acc`` in the logs;
* ``loss_from_outputs(logits, y)`` (so loss landscapes and Hessians can vectorise it), and
* ``loss_form``: a ``LogitLoss`` declaring that the loss is the sample mean of a per-sample
  function of each sample's logits and label (``form.per_sample(logits, y) -> (N,)``).
"""

from __future__ import annotations

import torch

from .base import LogitLoss, Method
from .cross_entropy import check_labels

REDUCTIONS = ("mean", "sum", "none")


def reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """``per_sample`` (N,) reduced as ``reduction`` says ("mean", "sum" or "none")."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(map(repr, REDUCTIONS))}")


def check_logits(logits: torch.Tensor, y: torch.Tensor, who: str) -> None:
    """(N, C) logits with (N,) integer labels in [0, C) (for the plain loss functions)."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"{who} needs (N, C) logits, got {getattr(logits, 'shape', type(logits).__name__)}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != logits.shape[0]:
        raise ValueError(
            f"{who} needs (N,) integer labels for (N, C) = {tuple(logits.shape)} logits, got "
            f"{getattr(y, 'shape', type(y).__name__)}"
        )


class _LogitLossMethod(Method):
    """Base of the single-label losses on logits (see the module docstring). Subclasses set
    ``_fn`` (the loss function) and implement ``_params()`` (its keyword hyperparameters)."""

    _fn = None

    def _params(self) -> dict:  # pragma: no cover
        raise NotImplementedError

    @property
    def loss_form(self) -> LogitLoss:
        return LogitLoss(type(self).__name__, type(self)._fn, tuple(self._params().items()))

    def loss_from_outputs(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return type(self)._fn(logits, y, reduction="mean", **self._params())

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)
        name = type(self).__name__
        if y is not None and y.ndim != 1:
            raise ValueError(
                f"{name} takes one integer label per sample, got labels of shape {tuple(y.shape)} "
                "(a multi-label set?); use wb.methods.AsymmetricLoss for multi-label data"
            )
        check_labels(y, logits.shape[-1], name)
        loss = self.loss_from_outputs(logits, y)
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss, {"acc": acc}
