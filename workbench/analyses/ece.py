"""Top-label expected calibration error (ECE) — a small helper for dataset distillation.

ECE = Σ_m (|B_m| / n) · |mean confidence in B_m − accuracy in B_m| over ``n_bins`` equal-width
bins of the top-label confidence max_c p_c, each bin (lo, hi] (the convention of Guo et al.'s and
Kumar et al.'s code; a confidence of exactly 0 joins the first bin). Also the mean and standard
deviation of the maximum logit ("Rethinking Data Distillation: Do Not Overlook Calibration"
finds them more concentrated for networks trained on distilled data).

This module is deliberately small and self-contained: the calibration module of issue 15
(``wb.analyses`` calibration, with equal-mass bins, classwise ECE, reliability diagrams and
temperature scaling) supersedes it; the dataset-distillation recipes import only
``top_label_ece`` and ``Calibration`` from here, so swapping in that module is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["top_label_ece", "Calibration", "calibration_of_logits"]


def _float64(v) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().double().flatten()
    return torch.as_tensor(np.asarray(v, dtype=np.float64)).flatten()


def top_label_ece(confidence, correct, n_bins: int = 10) -> float:
    """ECE of top-label ``confidence`` (N,) in [0, 1] against ``correct`` (N,) (bool or 0/1)."""
    conf = _float64(confidence)
    ok = _float64(correct)
    if conf.shape != ok.shape or conf.numel() == 0:
        raise ValueError(f"confidence and correct must be non-empty and the same length, got {conf.shape} and {ok.shape}")
    if (conf < 0).any() or (conf > 1).any():
        raise ValueError("confidences must lie in [0, 1] (pass max softmax probabilities)")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # bin m holds (edges[m], edges[m+1]]; searchsorted(left) on the inner edges does exactly that
    idx = torch.searchsorted(edges[1:-1].contiguous(), conf, right=False)
    torch.bincount(idx, minlength=n_bins).double()
    s_conf = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, conf)
    s_ok = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, ok)
    return float((s_conf - s_ok).abs().sum() / conf.numel())


@dataclass(frozen=True)
class Calibration:
    """Accuracy, ECE (``n_bins`` bins) and the max-logit mean and std of a classifier's logits."""

    accuracy: float
    ece: float
    max_logit_mean: float
    max_logit_std: float
    n_bins: int = 10

    def __repr__(self) -> str:
        return (f"Calibration(accuracy={self.accuracy:.4f}, ECE={self.ece:.4f} ({self.n_bins} bins), "
                f"max logit {self.max_logit_mean:.2f} ± {self.max_logit_std:.2f})")


def calibration_of_logits(logits, y, n_bins: int = 10) -> Calibration:
    """``Calibration`` of (N, C) logits against labels (N,)."""
    z = torch.as_tensor(logits).detach().double().cpu()
    y = torch.as_tensor(y).detach().long().cpu()
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"logits must be (N, C) and y (N,), got {tuple(z.shape)} and {tuple(y.shape)}")
    conf, pred = z.softmax(1).max(1)
    ok = pred == y
    mx = z.max(1).values
    return Calibration(float(ok.double().mean()), top_label_ece(conf, ok, n_bins), float(mx.mean()),
                       float(mx.std()) if len(mx) > 1 else 0.0, n_bins)
