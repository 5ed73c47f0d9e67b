"""Extreme Hessian eigenvalues by Lanczos (``hessian_eigs``).

Lanczos with full re-orthogonalisation (``lanczos.py``) on the Hessian operator. Unlike power
iteration (PyHessian) it returns the algebraically largest eigenvalues (``which="LA"``; ``"SA"``
smallest, ``"LM"`` largest magnitude), reports each value's residual ``||H v - θ v||``, and does
not stop on a small change of a slowly converging estimate: it also needs the error bound
``r² / gap`` below the tolerance.

Start vector (``start``): ``"gradient"`` is the normalised loss gradient plus 0.3 x a seeded random
unit vector — a warm start, since trained networks' gradients lie mostly in the top Hessian
eigenspace (Gur-Ari, Roberts & Dyer 2018) and the random part keeps every direction in the start;
``"random"`` a seeded Gaussian vector; ``"auto"`` the gradient except for ``"SA"``. Measured on
the digits MLP (``benchmarks/bench_hessian.py --study``, tol 1e-4): trained 300 / 1500 steps the
gradient start needs 5 products where a random start needs 6-8; at initialisation, where the top
of the spectrum is a near-degenerate cluster (λ2/λ1 = 0.976) and the gradient is nearly orthogonal
to the top eigenvector (overlap ~0.005), 26-29 where a random start needs 20-27.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_choice, check_int, check_number
from .lanczos import WHICH, lanczos, ritz
from .operator import HessianOperator, setup
from .per_class import per_class as _per_class

STARTS = ("auto", "random", "gradient")


@dataclass(frozen=True, eq=False)
class HessianEigs:
    """Extreme Hessian eigenvalues by Lanczos.

    ``eigenvalues`` (k,) in the order of ``which`` (``"LA"``: largest first); ``residuals`` (k,):
    ``||H v - λ v||`` for the unit Ritz vectors (Lanczos estimate); ``converged_each`` (k,) and
    ``converged`` (all); ``iterations`` = Lanczos steps = Hessian-vector products;
    ``eigenvectors``: dicts name -> tensor (CPU) or None; ``eigenvector(i)`` returns one.
    """

    eigenvalues: torch.Tensor
    residuals: torch.Tensor
    converged_each: torch.Tensor
    converged: bool
    iterations: int
    which: str
    tol: float
    n_params: int
    hvp_mode: str
    data: str
    elapsed: float
    eigenvectors: tuple[dict[str, torch.Tensor], ...] | None = None
    bn: str = "eval"  # BatchNorm statistics: "eval" (running) or "batch"

    @property
    def top(self) -> float:
        return float(self.eigenvalues[0])

    def eigenvector(self, i: int = 0) -> dict[str, torch.Tensor]:
        if self.eigenvectors is None:
            raise ValueError("eigenvectors were not kept; call hessian_eigs(..., return_vectors=True)")
        return self.eigenvectors[i]

    def __repr__(self) -> str:
        ev = ", ".join(f"{float(e):.5g}" for e in self.eigenvalues)
        rr = ", ".join(f"{float(r):.1e}" for r in self.residuals)
        return (
            f"HessianEigs(which={self.which!r}: [{ev}]; residuals [{rr}]; converged={self.converged} "
            f"after {self.iterations} Lanczos steps; {self.n_params} parameters, data {self.data}; "
            f"{self.hvp_mode} HVPs{', BatchNorm on batch statistics' if self.bn == 'batch' else ''}, {self.elapsed:.2f} s)"
        )


def start_vector(op: HessianOperator, start: str, which: str, seed: int) -> torch.Tensor:
    """The Lanczos start (P,) in float64 (see the module docstring)."""
    g = torch.Generator().manual_seed(int(seed))
    v0 = torch.randn(op.dim, generator=g, dtype=torch.float64)
    if start == "gradient" or (start == "auto" and which != "SA"):
        gr = op.gradient().double().cpu()
        gn = float(torch.dot(gr, gr)) ** 0.5
        if gn > 0 and math.isfinite(gn):
            v0 = gr / gn + 0.3 * v0 / float(torch.dot(v0, v0)) ** 0.5
    return v0


def hessian_eigs(
    model: nn.Module,
    method,
    data,
    k: int = 5,
    *,
    which: str = "LA",
    tol: float = 1e-4,
    max_iter: int = 100,
    seed: int = 0,
    n_samples: int | None = None,
    params=None,
    per_class: bool = False,
    hvp_mode: str = "auto",
    return_vectors: bool = True,
    start: str = "auto",
    memory_mb: float = 512.0,
    batch_size: int | None = None,
    bn: str = "eval",
):
    """Top-``k`` Hessian eigenvalues (``which="LA"``; ``"SA"`` smallest, ``"LM"`` by magnitude).

    Lanczos with full re-orthogonalisation; stops when the Ritz values are stable to ``tol``
    (relative) and their error bound is below it, or after ``max_iter`` products (then
    ``converged=False``). ``start``: ``"random"``, ``"gradient"`` or ``"auto"`` (see the module
    docstring). ``params``: names or a predicate to restrict the Hessian to some parameters (the
    rest stay fixed). ``per_class=True``: a ``PerClass`` of results, one per label.
    """
    if per_class:
        return _per_class(hessian_eigs, model, method, data, n_samples, seed, k=k, which=which, tol=tol,
                          max_iter=max_iter, params=params, hvp_mode=hvp_mode, start=start,
                          return_vectors=return_vectors, memory_mb=memory_mb, batch_size=batch_size, bn=bn)
    t0 = time.perf_counter()
    k = check_int(k, "k", example=5)
    check_choice(which, "which", WHICH, "largest, smallest, largest magnitude")
    tol = check_number(tol, "tol", below=1.0)
    check_choice(start, "start", STARTS)
    check_int(max_iter, "max_iter")
    method, x, y, info = setup(model, method, data, n_samples, seed, bn=bn)
    op = HessianOperator(model, method, x, y, params=params, hvp_mode=hvp_mode, memory_mb=memory_mb,
                         batch_size=batch_size, bn=bn)
    if k > op.dim:
        raise ValueError(f"k={k} exceeds the number of parameters ({op.dim}); pass k <= {op.dim}")
    max_iter = check_int(max_iter, "max_iter", minimum=k)
    v0 = start_vector(op, start, which, seed)
    alphas, betas, Q, converged, breakdown = lanczos(
        lambda q: op.matvec(q.to(op.dtype)).double(), v0, min(max_iter, op.dim), k=k, which=which, tol=tol,
        device=op.device)
    r = ritz(alphas, betas, which, k)
    res, conv_each = r.residuals, r.bound_ok(tol)
    if breakdown:  # an invariant subspace: the Ritz values are exact
        res, conv_each = torch.zeros_like(res), torch.ones_like(conv_each)
    vecs = None
    if return_vectors:
        V = r.S[:, r.sel].t().to(Q.device) @ Q  # (k, P)
        vecs = tuple({kk: t.to(op.dtype).cpu() for kk, t in op.unflat(V[i]).items()} for i in range(len(r.sel)))
    op.release()
    return HessianEigs(
        eigenvalues=r.values.float(), residuals=res.float(), converged_each=conv_each.cpu(),
        converged=bool(converged or breakdown), iterations=len(alphas), which=which, tol=float(tol),
        n_params=op.dim, hvp_mode=op.mode, data=str(info), elapsed=time.perf_counter() - t0, eigenvectors=vecs, bn=bn,
    )
