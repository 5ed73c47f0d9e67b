"""Input checks shared by the calibration and conformal analyses: probabilities, logits, labels.

Everything is turned into float64 / int64 CPU tensors (calibration numbers are small sums over
many samples; float64 keeps the closed-form tests exact).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_probs", "as_logits", "as_labels", "as_scores"]


def _tensor(v, what: str) -> torch.Tensor:
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            raise TypeError(f"{what} is a numpy array of Python objects; pass a numeric array")
        v = torch.from_numpy(np.ascontiguousarray(v))
    elif isinstance(v, (list, tuple)):
        v = torch.as_tensor(np.asarray(v, dtype=np.float64))
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{what} must be a torch tensor or numpy array, got {type(v).__name__}")
    if v.dtype == torch.bool or v.dtype.is_complex:
        raise TypeError(f"{what} holds {v.dtype} values; pass real numbers")
    return v.detach().cpu()


def as_logits(logits, what: str = "logits") -> torch.Tensor:
    """(N, C) finite float64 logits, C >= 2."""
    z = _tensor(logits, what).double()
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(f"{what} must be (N, C) with N >= 1 and C >= 2 classes, got shape {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"{what} contain NaN or inf; the model diverged or the inputs are broken")
    return z


def as_probs(probs, what: str = "probs") -> torch.Tensor:
    """(N, C) float64 probabilities: non-negative rows summing to 1 (within 1e-4)."""
    p = as_logits(probs, what)
    if bool((p < 0).any()) or bool((p > 1).any()):
        raise ValueError(
            f"{what} must lie in [0, 1]; these look like logits: pass probs=logits.softmax(1) "
            "(or use the function's logits form)"
        )
    err = (p.sum(1) - 1).abs().max()
    if float(err) > 1e-4:
        raise ValueError(f"each row of {what} must sum to 1 (the worst row is off by {float(err):.3g}); "
                         "pass softmax probabilities")
    return p


def as_labels(y, n: int, n_classes: int | None = None, what: str = "y") -> torch.Tensor:
    """(n,) int64 labels in [0, n_classes)."""
    y = _tensor(y, what)
    if y.dtype.is_floating_point:
        if not bool(torch.isfinite(y).all()) or not bool(torch.equal(y, y.round())):
            raise TypeError(f"{what} holds non-integer values; pass integer class indices 0..C-1")
    y = y.long()
    if y.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},) (one label per row), got {tuple(y.shape)}")
    if bool((y < 0).any()):
        raise ValueError(f"{what} has {int((y < 0).sum())} negative (OOD, -1) labels; calibration is "
                         "measured on in-distribution samples only: drop them first (keep = y >= 0)")
    if n_classes is not None and bool((y >= n_classes).any()):
        raise ValueError(f"{what} goes up to {int(y.max())} but there are {n_classes} classes")
    return y


def as_scores(v, what: str) -> torch.Tensor:
    """(n,) finite float64 values."""
    s = _tensor(v, what).double()
    if s.ndim != 1 or s.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array, got shape {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise ValueError(f"{what} contains NaN or inf")
    return s
