"""Lanczos with full re-orthogonalisation, and the Ritz values of its tridiagonal matrix.

Lanczos (1950): from a unit vector q₀, ``w = H q_j - α_j q_j - β_{j-1} q_{j-1}`` with
``α_j = q_jᵀ H q_j``, ``β_j = ||w||``, ``q_{j+1} = w / β_j``. In exact arithmetic the q's are
orthonormal and ``Qᵀ H Q = T`` is tridiagonal (α on the diagonal, β beside it); in floating point
they are not, so every new vector is re-orthogonalised against all previous ones (classical
Gram-Schmidt, repeated when the pass cancelled much of it: the DGKS criterion), in float64.

Ritz values θ_i (eigenvalues of T_m) approximate H's extreme eigenvalues; for the unit Ritz
vector ``y_i = Q s_i`` the residual is ``||H y_i - θ_i y_i|| = β_m |s_{m,i}|`` (the last component
of T's eigenvector), and ``r_i² / gap_i`` bounds the error of θ_i, where gap_i is the distance
to the nearest other Ritz value. ``lanczos`` stops when, for every requested Ritz value, that
bound is ``<= tol |θ_i|`` and the value changed by at most ``10 tol |θ_i|`` since the previous
step (a check that it is not still moving fast), or at an invariant subspace (β ~ 0: the Ritz
values are then exact), or after ``max_iter`` products. The change test used to be ``<= tol``:
on the digits MLP (``benchmarks/bench_hessian.py --study``) that cost one more product in every
trained state (5 -> 6, 10 -> 11) for errors already below the tolerance (max 5e-5 at tol 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

WHICH = ("LA", "SA", "LM")


def rademacher(n: int, g: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """A seeded vector of ±1 (n,)."""
    return (torch.randint(0, 2, (n,), generator=g) * 2 - 1).to(dtype)


def tridiag_eigh(alphas, betas):
    """Eigen-decomposition (ascending) of the m x m tridiagonal matrix (α on the diagonal,
    β[:m-1] beside it), as float64 tensors. Computed with numpy: for the small matrices of
    Lanczos, torch's per-op overhead on tiny tensors cost more than the decomposition."""
    m = len(alphas)
    T = np.diag(np.asarray(alphas, dtype=np.float64))
    if m > 1:
        off = np.asarray(betas[: m - 1], dtype=np.float64)
        T += np.diag(off, 1) + np.diag(off, -1)
    w, v = np.linalg.eigh(T)
    return torch.from_numpy(w), torch.from_numpy(v)


def pick(theta, which: str, k: int):
    """Indices of the k Ritz values ``which`` asks for, in its order (``theta`` ascending)."""
    m = theta.shape[0]
    if which == "LA":
        return torch.arange(m - 1, max(m - 1 - k, -1), -1)
    if which == "SA":
        return torch.arange(min(k, m))
    return torch.argsort(torch.as_tensor(theta).abs(), descending=True)[:k]


@dataclass(frozen=True)
class Ritz:
    """The requested Ritz values after m Lanczos steps: ``values`` (k,), ``residuals`` (k,),
    ``gaps`` (k,) to the nearest other Ritz value; ``theta``/``S`` all of T's eigenpairs and
    ``sel`` the requested indices."""

    theta: torch.Tensor
    S: torch.Tensor
    sel: torch.Tensor
    values: torch.Tensor
    residuals: torch.Tensor
    gaps: torch.Tensor

    def bound_ok(self, tol: float) -> torch.Tensor:
        """Per value: the error bound ``r² / gap <= tol |θ|``."""
        return (self.residuals**2 / self.gaps.clamp_min(1e-300)) <= tol * self.values.abs().clamp_min(1e-30)


def ritz(alphas: list[float], betas: list[float], which: str, k: int) -> Ritz:
    """Ritz values of ``T_m`` (m = len(alphas)); ``betas[m-1]``, when present, is the last β (the
    residual scale; 0 when absent)."""
    theta, S = tridiag_eigh(alphas, betas)
    m = len(alphas)
    sel = pick(theta, which, k)
    th, s_last = theta.numpy(), S.numpy()[-1]
    idx = sel.numpy()
    last_beta = betas[m - 1] if len(betas) >= m else 0.0
    res = last_beta * np.abs(s_last[idx])
    if m > 1:
        d = np.abs(th[:, None] - th[None, :])
        np.fill_diagonal(d, np.inf)
        gaps = d[idx].min(1)
    else:
        gaps = np.full(len(idx), np.inf)
    return Ritz(theta, S, sel, theta[sel], torch.from_numpy(res), torch.from_numpy(gaps))


def _basis(V0: torch.Tensor, max_iter: int, device) -> torch.Tensor:
    """(R, m+1, P) float64 storage for R Lanczos bases, each starting at its normalised row of V0."""
    V0 = V0.to(device, torch.float64)
    Q = torch.empty(V0.shape[0], max_iter + 1, V0.shape[1], dtype=torch.float64, device=device)
    Q[:, 0] = V0 / V0.norm(dim=1, keepdim=True)
    return Q


def _step(Q: torch.Tensor, j: int, w: torch.Tensor, alphas: list[float], betas: list[float]) -> bool:
    """One Lanczos step given ``w = H q_j`` (P,): appends α_j and β_j, writes ``Q[j + 1]``
    (re-orthogonalised against ``Q[: j + 1]``). Returns True at a breakdown (β ~ 0, then 0.0
    is appended and nothing written)."""
    a = float(torch.dot(w, Q[j]))
    alphas.append(a)
    w = w - a * Q[j]
    if j > 0:
        w -= betas[j - 1] * Q[j - 1]
    B = Q[: j + 1]
    before = float(torch.dot(w, w)) ** 0.5
    w -= B.t() @ (B @ w)
    b = float(torch.dot(w, w)) ** 0.5
    if b < 0.7071 * before:  # DGKS: much cancelled, orthogonalise again
        w -= B.t() @ (B @ w)
        b = float(torch.dot(w, w)) ** 0.5
    if b <= 1e-10 * max(max(abs(x) for x in alphas), 1e-30):
        betas.append(0.0)
        return True
    betas.append(b)
    Q[j + 1] = w / b
    return False


def lanczos_runs(matmat, V0: torch.Tensor, steps: int, *, device=None):
    """Independent Lanczos runs from the rows of ``V0`` (R, P), ``steps`` steps each (or to a
    breakdown), in lockstep: every step asks ``matmat`` (float64 (r, P) -> (r, P)) for the
    products of all runs still going at once, so an engine can batch them. The same recurrences
    as ``lanczos``, run by run. Returns [(alphas, betas)] per run."""
    Q = _basis(V0, steps, device)  # (R, m+1, P)
    runs: list[tuple[list[float], list[float]]] = [([], []) for _ in range(V0.shape[0])]
    active = list(range(V0.shape[0]))
    for j in range(steps):
        if not active:
            break
        W = matmat(Q[active, j])  # (r, P)
        active = [r for i, r in enumerate(active) if not _step(Q[r], j, W[i], *runs[r])]
    return runs


def lanczos(matvec, v0: torch.Tensor, max_iter: int, *, k: int = 1, which: str = "LA",
            tol: float | None = None, min_iter: int = 2, device=None):
    """Lanczos with full re-orthogonalisation from ``v0`` (P,), ``matvec``: float64 (P,) -> (P,).

    Returns ``(alphas, betas, Q (m, P), converged, breakdown)``; with ``tol`` None it runs
    ``max_iter`` steps (or to a breakdown).
    """
    Q = _basis(v0[None], max_iter, device)[0]  # (m+1, P)
    alphas: list[float] = []
    betas: list[float] = []
    prev = None
    converged = breakdown = False
    for j in range(max_iter):
        if _step(Q, j, matvec(Q[j]), alphas, betas):
            breakdown = True  # invariant subspace: the Ritz values are exact
            break
        if tol is not None and j + 1 >= max(min_iter, k):
            r = ritz(alphas, betas, which, k)
            th = r.values.numpy()  # (k,) in numpy: tiny arrays, no per-op torch overhead
            scale = tol * np.maximum(np.abs(th), 1e-30)
            ok_bound = bool(np.all(r.residuals.numpy() ** 2 / np.maximum(r.gaps.numpy(), 1e-300) <= scale))
            ok_change = prev is not None and bool(np.all(np.abs(th - prev) <= 10 * scale))
            prev = th.copy()
            if ok_bound and ok_change:
                converged = True
                break
    m = len(alphas)
    return alphas, betas, Q[:m], converged, breakdown
