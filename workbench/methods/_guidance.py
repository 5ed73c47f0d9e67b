"""The guidance protocol shared by the guided samplers (CFG, classifier and minority guidance,
a guided-distillation student).

A guide is a small ``nn.Module`` called inside the sampling loop in place of the denoiser:
``guide(denoiser, ddpm, x_t, t, y) -> output``, where ``output`` is what the denoiser would
return (ε, x0 or v, as ``ddpm.prediction`` says), so every sampler step works unchanged.
``y`` is the (N,) labels asked for, or None. A guide that holds networks (a classifier) owns
them as submodules, so the sampler's eval-mode switch covers them.
"""

from __future__ import annotations

import torch
from torch import nn


class Guidance(nn.Module):
    """Base class of guides (see the module docstring). ``evaluations`` = network calls per step."""

    evaluations: int = 1

    def forward(self, denoiser, ddpm, x_t: torch.Tensor, t: torch.Tensor, y):  # pragma: no cover
        raise NotImplementedError


def null_labels(denoiser, n: int, device) -> torch.Tensor:
    """(n,) copies of the denoiser's null (unconditional) label, ``denoiser.null_label``."""
    null = getattr(denoiser, "null_label", None)
    if null is None:
        raise TypeError(
            f"{type(denoiser).__name__} has no null label: guidance needs a class-conditional denoiser "
            "trained with label dropout, e.g. wb.models.TimeMLP(dim=2, n_classes=K) and wb.methods.ConditionalDDPM"
        )
    return torch.full((n,), int(null), device=device, dtype=torch.long)


def unconditional(denoiser, x_t, t):
    """The unconditional prediction: with the null label for a conditional denoiser, else plain."""
    if getattr(denoiser, "null_label", None) is not None:
        return denoiser(x_t, t, null_labels(denoiser, x_t.shape[0], x_t.device))
    return denoiser(x_t, t)


def labels_for(y, n: int, device) -> torch.Tensor:
    """``y`` (an int or an (n,) tensor of class labels) as an (n,) int64 tensor on ``device``."""
    if y is None:
        raise ValueError("this guide needs the labels to steer toward: pass y= (an int or one label per sample)")
    if isinstance(y, bool):
        raise TypeError(f"y must be an int class label or a tensor of them, got {y!r}")
    y = torch.as_tensor(y, device=device)
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class labels, got {y.dtype}")
    if y.ndim == 0:
        y = y.expand(n)
    if y.shape != (n,):
        raise ValueError(f"y must be one label or {n} labels (one per sample), got shape {tuple(y.shape)}")
    return y.long()
