"""Asymmetric loss, ASL, for multi-label classification (Ridnik, Ben-Baruch, Zamir, Noy,
Friedman, Protter & Zelnik-Manor, "Asymmetric Loss For Multi-Label Classification", ICCV 2021).

Multi-label data: every sample carries any subset of C classes, given as (N, C) 0/1 targets
(``wb.data.load("multi_digits")``); the model outputs C independent logits x_c, s_c = σ(x_c).

In words, per class: a binary cross-entropy whose two halves are focused differently. Positives
are down-weighted by (1 − s)^{γ+} (focal), negatives by s_m^{γ−} with a larger γ− **and** a
probability margin m: s_m = max(s − m, 0) ("probability shifting"), so easy negatives (s < m)
are discarded entirely and the many negatives of a multi-label set do not swamp the few
positives:

    L_c = −[ y_c (1 − s_c)^{γ+} log s_c  +  (1 − y_c) s_m,c^{γ−} log(1 − s_m,c) ],

summed over the classes. γ+ = γ− = m = 0 is the summed binary cross-entropy.

As in the official code (``Alibaba-MIIL/ASL``, ``AsymmetricLoss``): 1 − s_m is computed as
min(1 − s + m, 1); the logarithms are of probabilities clamped at 1e-8 (so each term is capped
at −log 1e-8 ≈ 18.4 and has no gradient beyond it); ``detach_focal_weight=True`` computes the
focusing weights without gradient (the official ``disable_torch_grad_focal_loss=True``, which
its ``train.py`` uses; ``False`` is the "bit-accurate" ``AsymmetricLossOptimized`` variant with
different gradients, ASL#31). Defaults γ− = 4, γ+ = 0, m = 0.05: the paper's and ``train.py``'s.

Differences: the official loss is the **sum** over batch and classes (its scale grows with the
batch size); ``reduction="mean"`` (default) averages the per-sample sums over the batch so the
learning rate does not depend on the batch size, ``reduction="sum"`` is the official total.

Metrics (``evaluate``, ``multilabel_metrics``): ``map`` = mean over classes (with at least one
positive) of the average precision of the logits, AP = Σ_k (R_k − R_{k−1}) P_k over the
distinct score thresholds (scikit-learn's ``average_precision_score``; the ASL paper reports
mAP); ``subset_acc`` = the fraction of samples whose whole label set is predicted exactly at
s > 0.5 (logit > 0); ``label_acc`` = the fraction of the N·C individual labels predicted right.
"""

from __future__ import annotations

import torch

from .._checks import check_bool, check_choice, check_number
from ._logit_loss import reduce
from .base import LogitLoss, Method

EPS = 1e-8


def _check_targets(logits: torch.Tensor, y, who: str) -> torch.Tensor:
    if y is None:
        raise ValueError(f"{who} needs labels, but the batch has y=None; pass a labelled multi-label Dataset")
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"{who} needs (N, C) logits, got {getattr(logits, 'shape', type(logits).__name__)}")
    if y.ndim != 2 or tuple(y.shape) != tuple(logits.shape):
        raise ValueError(
            f"{who} needs (N, C) 0/1 multi-label targets of the logits' shape {tuple(logits.shape)}, got labels "
            f"of shape {tuple(y.shape)}; for one class per sample use wb.methods.CrossEntropy (or "
            "wb.data.load('multi_digits') for a multi-label set)"
        )
    if bool(((y != 0) & (y != 1)).any()):
        raise ValueError(f"{who} needs 0/1 targets; got values other than 0 and 1")
    return y.to(logits.dtype)


def asymmetric_loss(logits: torch.Tensor, y: torch.Tensor, *, gamma_neg: float = 4.0, gamma_pos: float = 0.0,
                    clip: float = 0.05, detach_focal_weight: bool = True, reduction: str = "mean") -> torch.Tensor:
    """ASL of (N, C) logits against (N, C) 0/1 targets: per sample the sum over classes, then
    ``reduction`` ("mean" over samples, "sum" = the official total, "none" -> (N,))."""
    y = _check_targets(logits, y, "asymmetric_loss")
    s = torch.sigmoid(logits)
    neg = (1 - s + clip).clamp(max=1) if clip > 0 else 1 - s   # 1 - s_m
    loss = y * torch.log(s.clamp(min=EPS)) + (1 - y) * torch.log(neg.clamp(min=EPS))
    if gamma_neg > 0 or gamma_pos > 0:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not detach_focal_weight):
            pt = s * y + neg * (1 - y)
            w = torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
        loss = loss * w
    return reduce(-loss.sum(1), reduction)


def average_precision(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Average precision of each column: (N, C) scores and 0/1 targets -> (C,), NaN for a column
    without positives. AP = Σ_k (R_k − R_{k−1}) P_k over the distinct thresholds (ties count
    together), as scikit-learn's ``average_precision_score``."""
    n, c = scores.shape
    out = torch.full((c,), float("nan"), dtype=torch.float64)
    for j in range(c):  # a handful of classes: one sort each
        s, t = scores[:, j].double(), y[:, j].double()
        pos = t.sum()
        if pos == 0:
            continue
        order = torch.argsort(s, descending=True, stable=True)
        s, t = s[order], t[order]
        tp = t.cumsum(0)
        last = torch.ones(n, dtype=torch.bool)
        last[:-1] = s[1:] != s[:-1]          # the last sample of each group of tied scores
        tp = tp[last]
        k = torch.arange(1, n + 1, dtype=torch.float64)[last]
        recall = tp / pos
        precision = tp / k
        out[j] = ((recall - torch.cat([recall.new_zeros(1), recall[:-1]])) * precision).sum()
    return out


def multilabel_metrics(logits: torch.Tensor, y: torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """``map``, ``subset_acc`` and ``label_acc`` of (N, C) logits against (N, C) 0/1 targets
    (module docstring); a label is predicted when its sigmoid exceeds ``threshold``. ASL shifts
    the probabilities up (easy negatives are discarded), so its best threshold is usually above
    0.5; mAP does not depend on it."""
    y = _check_targets(logits, y, "multilabel_metrics")
    threshold = check_number(threshold, "threshold", min=0, max=1, min_open=True, max_open=True)
    pred = logits > torch.logit(torch.tensor(threshold, dtype=torch.float64)).item()
    hit = pred == y.bool()
    ap = average_precision(logits.detach().cpu(), y.cpu())
    return {
        "map": float(ap[~ap.isnan()].mean()) if bool((~ap.isnan()).any()) else float("nan"),
        "subset_acc": float(hit.all(1).float().mean()),
        "label_acc": float(hit.float().mean()),
    }


class AsymmetricLoss(Method):
    """ASL for multi-label data on ``model(x)``'s C logits (module docstring). Logs the batch's
    ``subset_acc``; ``evaluate`` adds ``map`` and ``label_acc`` over the whole data."""

    def __init__(self, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05,
                 detach_focal_weight: bool = True, reduction: str = "mean"):
        super().__init__()
        self.gamma_neg = check_number(gamma_neg, "gamma_neg", min=0, hint="the negatives' focusing exponent, e.g. 4")
        self.gamma_pos = check_number(gamma_pos, "gamma_pos", min=0, hint="the positives' focusing exponent, e.g. 0")
        self.clip = check_number(clip, "clip", min=0, max=1, max_open=True,
                                 hint="the probability margin m for negatives, e.g. 0.05 (0 = none)")
        self.detach_focal_weight = check_bool(detach_focal_weight, "detach_focal_weight")
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum"))

    def _params(self) -> dict:
        return {"gamma_neg": self.gamma_neg, "gamma_pos": self.gamma_pos, "clip": self.clip,
                "detach_focal_weight": self.detach_focal_weight}

    @property
    def loss_form(self) -> LogitLoss | None:
        """Declares the per-sample form when the loss is its batch mean (``reduction="mean"``)."""
        return LogitLoss("AsymmetricLoss", asymmetric_loss, tuple(self._params().items())) if self.reduction == "mean" else None

    def loss_from_outputs(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return asymmetric_loss(logits, y, reduction=self.reduction, **self._params())

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)
        loss = self.loss_from_outputs(logits, y)
        subset = ((logits.detach() > 0) == y.bool()).all(1).float().mean()
        return loss, {"subset_acc": subset}

    @torch.no_grad()
    def evaluate(self, model, data, batch_size: int = 1024) -> dict[str, float]:
        """The loss (mean per sample, whatever the reduction) and ``multilabel_metrics`` over ``data``."""
        from .._device import model_device

        device = model_device(model)
        logits = torch.cat([model(x) for x, _ in data.loader(batch_size, shuffle=False, device=device)])
        y = data.y.to(device)
        loss = asymmetric_loss(logits, y, reduction="mean", **self._params())
        return {"loss": float(loss), **multilabel_metrics(logits, y)}
