"""Conformal risk control (Angelopoulos, Bates, Fisch, Lei & Schuster, "Conformal Risk Control",
ICLR 2024 / arXiv 2208.02814).

Given a family of set predictors indexed by λ (larger λ = larger, more conservative sets) and a
loss L_i(λ) ∈ [0, B] that is non-increasing in λ for every calibration sample, choose

    λ̂ = inf { λ : (n/(n+1))·R̂_n(λ) + B/(n+1) ≤ α },   R̂_n(λ) = mean_i L_i(λ),

which guarantees E[L_{n+1}(λ̂)] ≤ α. With the miscoverage loss 1[y ∉ C_λ(x)] it reduces to split
conformal prediction.

Differences from the reference code (conformal-risk ``get_lhat``): there the loss table runs from
small to large loss and the λ just before the bound first reaches α is returned, with the index
clipped at 0, so "no λ is safe" and "every λ is safe" both return the first λ, and bound = α
counts as a failure. Here the grid runs in the paper's direction (λ ascending, loss
non-increasing), the infimum of the safe λ is returned (bound = α is safe, as in the paper), and
when no λ on the grid is safe the most conservative one (the last) is returned with
``feasible=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..._checks import check_number
from ..calibration._inputs import _tensor

__all__ = ["RiskControl", "conformal_risk_control"]


@dataclass(frozen=True, eq=False)
class RiskControl:
    """``lam`` (λ̂), its ``index`` in the grid, ``alpha``, bound ``B``, calibration size ``n``,
    ``feasible`` (some λ on the grid met the bound), and per-λ ``lambdas``, ``risk`` R̂_n and
    ``bound`` (n/(n+1))·R̂_n + B/(n+1)."""

    lam: float
    index: int
    alpha: float
    B: float
    n: int
    feasible: bool
    lambdas: torch.Tensor
    risk: torch.Tensor
    bound: torch.Tensor

    def __repr__(self) -> str:
        warn = "" if self.feasible else "; no λ on the grid met the bound: the most conservative is returned"
        return (f"RiskControl(lambda={self.lam:.4g}, alpha={self.alpha}, B={self.B}, n={self.n}, "
                f"calibration risk {float(self.risk[self.index]):.4f}{warn})")


def conformal_risk_control(losses, lambdas, *, alpha: float, B: float = 1.0) -> RiskControl:
    """λ̂ from a calibration loss table ``losses`` (n, L): row i is L_i(λ) on the ascending grid
    ``lambdas`` (L,), each row non-increasing, values in [0, B]."""
    loss = _tensor(losses, "losses").double()
    lam = _tensor(lambdas, "lambdas").double().flatten()
    alpha = check_number(alpha, "alpha", min=0, min_open=True)
    B = check_number(B, "B", min=0, min_open=True)
    if loss.ndim != 2 or loss.shape[0] == 0 or loss.shape[1] != lam.numel():
        raise ValueError(f"losses must be (n, L) with L = len(lambdas) = {lam.numel()}, got {tuple(loss.shape)}")
    if not bool(torch.isfinite(loss).all()) or bool((loss < 0).any()) or bool((loss > B).any()):
        raise ValueError(f"losses must be finite and in [0, B] = [0, {B}]; pass the loss bound as B=")
    if lam.numel() > 1 and not bool((lam.diff() > 0).all()):
        raise ValueError("lambdas must be strictly increasing (larger λ = larger sets)")
    if loss.shape[1] > 1 and bool((loss.diff(dim=1) > 1e-12).any()):
        raise ValueError("each row of losses must be non-increasing in λ (larger sets never lose more); "
                         "reverse the columns if your grid runs the other way")
    n = loss.shape[0]
    risk = loss.mean(0)                                   # (L,)
    bound = n / (n + 1) * risk + B / (n + 1)
    ok = (bound <= alpha + 1e-12).nonzero().flatten()
    feasible = ok.numel() > 0
    i = int(ok[0]) if feasible else lam.numel() - 1
    return RiskControl(float(lam[i]), i, alpha, B, n, feasible, lam, risk, bound)
