"""Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017).

One scalar T > 0 divides every logit, p = softmax(ℓ / T); T is chosen to minimise the NLL of
held-out in-distribution **validation** logits (the network is frozen; never fit T on the test
set). Argmax and accuracy do not change.

Differences from the reference code (gpleiss/temperature_scaling): there T is a raw parameter
initialised at 1.5 and optimised by LBFGS(lr=0.01, max_iter=50..200), which can stop far from
the optimum and does not keep T positive. Here t = log T is optimised (T > 0 by construction)
from t = 0 with LBFGS and a strong-Wolfe line search in float64, and the final gradient is
recorded. NLL is convex in β = 1/T, so the optimum is global.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..._checks import check_int
from ._inputs import as_labels, as_logits

__all__ = ["TemperatureScaling", "fit_temperature"]


@dataclass(frozen=True)
class TemperatureScaling:
    """A fitted temperature: ``temperature``, validation NLL before (T = 1) and after, the final
    gradient dNLL/dlogT and the number of validation samples. ``scale(logits)`` applies it."""

    temperature: float
    nll_before: float
    nll_after: float
    grad: float
    n: int

    def scale(self, logits) -> torch.Tensor:
        """``logits / T`` (float64 CPU)."""
        return as_logits(logits) / self.temperature

    def probs(self, logits) -> torch.Tensor:
        return self.scale(logits).softmax(1)

    def __repr__(self) -> str:
        return (f"TemperatureScaling(T={self.temperature:.4f}; validation NLL {self.nll_before:.4f} -> "
                f"{self.nll_after:.4f}, n={self.n})")


def fit_temperature(logits, y, *, max_iter: int = 100) -> TemperatureScaling:
    """Fit T on validation ``logits`` (N, C) and labels ``y`` (N,) by minimising the NLL over
    log T (LBFGS, strong-Wolfe line search, float64)."""
    z = as_logits(logits)
    y = as_labels(y, z.shape[0], z.shape[1])
    max_iter = check_int(max_iter, "max_iter", min=1)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * torch.exp(-log_t), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        before = float(torch.nn.functional.cross_entropy(z, y))
        opt.step(closure)
        after = closure()
    return TemperatureScaling(float(log_t.detach().exp()), before, float(after.detach()),
                              float(log_t.grad), int(z.shape[0]))
