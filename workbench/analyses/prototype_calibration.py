"""Training-free prototype calibration for few-shot class-incremental learning (TEEN).

Wang, Zhou, Ye & Zhan, "Few-Shot Class-Incremental Learning via Training-Free Prototype
Calibration" (NeurIPS 2023); official ``soft_calibration`` (wangkiw/TEEN at 2ba5165). A new
class seen through a few shots gets the class mean p of their features as its prototype; those
means are biased toward the base classes they resemble (new samples are often classified as
base). TEEN moves each new prototype toward the base prototypes it is similar to:

    p̂ = p / ‖p‖,  w = softmax_j(τ·⟨p̂, b_j⟩) over the unit base prototypes b_j,
    Δ = normalise(Σ_j w_j b_j),  p′ = (1 − α)·p̂ + α·Δ

(τ = ``temperature``, the code's ``softmax_t``, 16; α = ``alpha``, its ``shift_weight``, 0.5 by
default, 0.1 in the CIFAR script). p′ is not renormalised (cosine logits ignore its norm). Only
the base prototypes are used, never earlier sessions' new ones. The base prototypes themselves
are the class means of the base training features (``replace_base_fc``).

``class_means`` and ``cosine_predict`` are the plain nearest-prototype classifier used before
and after calibration.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number

__all__ = ["teen_calibrate", "class_means", "cosine_predict"]


def teen_calibrate(new: torch.Tensor, base: torch.Tensor, *, temperature: float = 16.0,
                   alpha: float = 0.5) -> torch.Tensor:
    """TEEN-calibrated prototypes (M, D) of the new-class means ``new`` (M, D), from the base
    prototypes ``base`` (B, D) (module docstring)."""
    check_number(temperature, "temperature", min=0, min_open=True, hint="TEEN's softmax_t, 16")
    check_number(alpha, "alpha", min=0, max=1, hint="TEEN's shift_weight, 0.5 (0.1 on CIFAR)")
    new, base = torch.as_tensor(new).float(), torch.as_tensor(base).float()
    if new.ndim != 2 or base.ndim != 2 or new.shape[1] != base.shape[1]:
        raise ValueError(f"new (M, D) and base (B, D) must share D, got {tuple(new.shape)} and {tuple(base.shape)}")
    p = F.normalize(new, dim=1)
    b = F.normalize(base, dim=1)
    w = (temperature * p @ b.T).softmax(dim=1)  # (M, B)
    delta = F.normalize(w @ b, dim=1)
    return (1 - alpha) * p + alpha * delta


def class_means(z: torch.Tensor, y: torch.Tensor, classes) -> torch.Tensor:
    """(C, D): the mean of ``z`` over the samples of each class in ``classes`` (in that order)."""
    z, y = torch.as_tensor(z).float(), torch.as_tensor(y).long()
    out = []
    for c in classes:
        m = y == int(c)
        if not bool(m.any()):
            raise ValueError(f"class {c} has no sample to average")
        out.append(z[m].mean(0))
    return torch.stack(out)


def cosine_predict(z: torch.Tensor, prototypes: torch.Tensor, classes=None) -> torch.Tensor:
    """The class of the prototype with the largest cosine to each row of ``z`` (N,); ``classes``
    maps prototype rows to class ids (default 0..P−1)."""
    idx = (F.normalize(torch.as_tensor(z).float(), dim=1) @ F.normalize(prototypes.float(), dim=1).T).argmax(1)
    return idx if classes is None else torch.as_tensor(list(classes)).long()[idx]
