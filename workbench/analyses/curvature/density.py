"""The Hessian's eigenvalue density by stochastic Lanczos quadrature (``spectral_density``).

Ghorbani, Krishnan & Xiao, "An Investigation into Neural Net Optimization via Hessian Eigenvalue
Density" (ICML 2019); Lin, Saad & Yang, "Approximating spectral densities of large matrices"
(SIAM Review 2016). Per run: Lanczos (``lanczos.py``) from a normalised Rademacher vector v for
m steps (the runs go in lockstep, ``lanczos_runs``, so every step's products form one block for
engines that batch directions); the nodes are the eigenvalues θ_j of T_m (``torch.linalg.eigh``, T is symmetric), the
weights the squared first components of its eigenvectors, so ``Σ_j w_j f(θ_j) ≈ vᵀ f(H) v / vᵀv``.
The density is the Gaussian-smoothed average of the runs' weighted nodes (it integrates to 1).
PyHessian 0.1's ``density()`` calls ``torch.eig`` and fails on torch >= 2.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_int, check_number
from .lanczos import lanczos_runs, rademacher, tridiag_eigh
from .operator import HessianOperator, setup
from .per_class import per_class as _per_class


@dataclass(frozen=True, eq=False)
class SpectralDensity:
    """Stochastic Lanczos quadrature: ``nodes`` and ``weights`` (runs, m); each run's weights
    sum to 1. ``density(grid, sigma)`` gives the Gaussian-smoothed eigenvalue density."""

    nodes: torch.Tensor
    weights: torch.Tensor
    n_params: int
    steps: int
    hvp_mode: str
    data: str
    elapsed: float
    bn: str = "eval"  # BatchNorm statistics: "eval" (running) or "batch"

    def density(self, grid=None, sigma: float | None = None, n_grid: int = 512):
        """(grid, density) tensors; ``sigma`` defaults to 2 % of the spectrum's range."""
        lo, hi = float(self.nodes.min()), float(self.nodes.max())
        width = max(hi - lo, 1e-12)
        if sigma is None:
            sigma = 0.02 * width
        sigma = check_number(sigma, "sigma")
        n_grid = check_int(n_grid, "n_grid", minimum=2)
        if grid is None:
            grid = torch.linspace(lo - 3 * sigma, hi + 3 * sigma, n_grid, dtype=torch.float64)
        grid = torch.as_tensor(grid, dtype=torch.float64)
        nodes = self.nodes.double().reshape(-1)
        w = self.weights.double().reshape(-1) / self.nodes.shape[0]
        k = torch.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        return grid.float(), (k @ w).float()

    def __repr__(self) -> str:
        return (
            f"SpectralDensity({self.nodes.shape[0]} runs x {self.nodes.shape[1]} Lanczos steps; eigenvalues in "
            f"[{float(self.nodes.min()):.4g}, {float(self.nodes.max()):.4g}]; {self.n_params} parameters, "
            f"data {self.data}; {self.elapsed:.2f} s)"
        )


def spectral_density(
    model: nn.Module,
    method,
    data,
    seed: int = 0,
    *,
    n_runs: int = 4,
    steps: int = 60,
    n_samples: int | None = None,
    params=None,
    per_class: bool = False,
    hvp_mode: str = "auto",
    memory_mb: float = 512.0,
    batch_size: int | None = None,
    bn: str = "eval",
):
    """Eigenvalue density of the Hessian by stochastic Lanczos quadrature (``n_runs`` seeded
    Rademacher starts, ``steps`` Lanczos steps each, full re-orthogonalisation)."""
    if per_class:
        return _per_class(spectral_density, model, method, data, n_samples, seed, n_runs=n_runs, steps=steps,
                          params=params, hvp_mode=hvp_mode, memory_mb=memory_mb, batch_size=batch_size, bn=bn)
    t0 = time.perf_counter()
    n_runs = check_int(n_runs, "n_runs", example=4)
    steps = check_int(steps, "steps", example=60)
    method, x, y, info = setup(model, method, data, n_samples, seed, bn=bn)
    op = HessianOperator(model, method, x, y, params=params, hvp_mode=hvp_mode, memory_mb=memory_mb,
                         batch_size=batch_size, bn=bn)
    m = min(steps, op.dim)
    g = torch.Generator().manual_seed(int(seed))
    V0 = torch.stack([rademacher(op.dim, g) for _ in range(n_runs)])  # (runs, P)
    runs = lanczos_runs(lambda Q: op.matmat(Q.to(op.dtype)).double(), V0, m, device=op.device)
    nodes, weights = [], []
    for alphas, betas in runs:
        theta, S = tridiag_eigh(alphas, betas)
        th = torch.full((m,), float("nan"), dtype=torch.float64)
        w = torch.zeros(m, dtype=torch.float64)
        th[: len(theta)] = theta
        w[: len(theta)] = S[0] ** 2
        th[len(theta):] = theta[-1]  # after a breakdown: zero-weight copies of the last node
        nodes.append(th)
        weights.append(w)
    op.release()
    return SpectralDensity(
        nodes=torch.stack(nodes).float(), weights=torch.stack(weights).float(), n_params=op.dim, steps=m,
        hvp_mode=op.mode, data=str(info), elapsed=time.perf_counter() - t0, bn=bn,
    )
