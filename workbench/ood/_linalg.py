"""Small linear-algebra helpers shared by the Gaussian detectors (float64, any device)."""

from __future__ import annotations

import torch


def pinv_sqrt(cov: torch.Tensor, rcond: float, symmetric: bool = False) -> torch.Tensor:
    """W with WᵀW = pinv(cov) for a symmetric PSD ``cov`` (d, d): diag(λ⁺^{1/2})Vᵀ, or the
    symmetric square root V diag(λ⁺^{1/2}) Vᵀ when ``symmetric``.

    Eigenvalues below ``rcond`` times the largest are treated as zero (pseudo-inverse), so dead
    feature dimensions (a ReLU unit that never fires) do not blow up the distances.
    """
    evals, evecs = torch.linalg.eigh(cov)
    top = evals.max().clamp_min(0)
    keep = evals > rcond * top if top > 0 else torch.zeros_like(evals, dtype=torch.bool)
    inv_sqrt = torch.where(keep, evals.clamp_min(torch.finfo(evals.dtype).tiny).rsqrt(), torch.zeros_like(evals))
    w = inv_sqrt[:, None] * evecs.T  # (d, d): W = diag(λ⁺^{1/2}) Vᵀ
    return evecs @ w if symmetric else w


def sq_dists(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Exact squared Euclidean distances (N, M) between rows of ``a`` and ``b`` (no matmul trick)."""
    out = []
    for i in range(0, a.shape[0], chunk):
        d = torch.cdist(a[i : i + chunk], b, compute_mode="donot_use_mm_for_euclid_dist")
        out.append(d.square())
    return torch.cat(out)


def check_rcond(rcond) -> float:
    if not isinstance(rcond, (int, float)) or isinstance(rcond, bool) or not (0 <= rcond < 1):
        raise ValueError(f"rcond must be a small non-negative number (e.g. 1e-10), got {rcond!r}")
    return float(rcond)
