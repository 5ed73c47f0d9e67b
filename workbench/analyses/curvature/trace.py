"""The trace of the Hessian (``hessian_trace``): Hutchinson, Hutch++, or exact.

* Hutchinson (1989): ``tr H = E[zᵀ H z]`` for Rademacher probes z; a fixed budget of
  ``n_probes`` seeded probes, the estimate is their mean and ``stderr`` the standard error of the
  mean (never a stop on a small change of the running mean, which can stop after a handful of
  probes with a large error).
* Hutch++ (Meyer, Musco, Musco & Woodruff 2021): the same budget of products in thirds —
  ``S`` random probes sketch the range, ``Q = orth(H S)``; ``tr(Qᵀ H Q)`` exactly, plus
  Hutchinson on the rest with probes projected off Q. Lower variance when a few eigenvalues
  dominate. ``stderr`` is that of the Hutchinson part.
* ``"exact"``: one product per unit vector (small models only, refused above ``max_exact``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_choice, check_int
from .lanczos import rademacher
from .operator import HessianOperator, setup
from .per_class import per_class as _per_class

TRACE_ESTIMATORS = ("hutchinson", "hutch++", "exact")


@dataclass(frozen=True, eq=False)
class HessianTrace:
    """``trace`` of the Hessian with its standard error ``stderr`` (0 for ``"exact"``).

    ``samples``: the per-probe values whose mean is the estimate (Hutchinson) or the residual
    part's samples (Hutch++); ``n_matvecs``: Hessian-vector products spent.
    """

    trace: float
    stderr: float
    samples: torch.Tensor
    estimator: str
    n_matvecs: int
    n_params: int
    hvp_mode: str
    data: str
    elapsed: float
    bn: str = "eval"  # BatchNorm statistics: "eval" (running) or "batch"

    def __repr__(self) -> str:
        rel = f" ({100 * self.stderr / abs(self.trace):.1f} %)" if self.trace else ""
        return (
            f"HessianTrace({self.trace:.5g} ± {self.stderr:.2g}{rel} by {self.estimator}, {self.n_matvecs} HVPs; "
            f"{self.n_params} parameters, data {self.data}{'; BatchNorm on batch statistics' if self.bn == 'batch' else ''}; "
            f"{self.elapsed:.2f} s)"
        )


def _exact(op: HessianOperator, chunk: int):
    P = op.dim
    diag = []
    for s in range(0, P, chunk):
        E = torch.zeros(min(chunk, P - s), P, dtype=op.dtype, device=op.device)  # (b, P) unit vectors
        E[torch.arange(E.shape[0], device=op.device), torch.arange(s, s + E.shape[0], device=op.device)] = 1
        HE = op.matmat(E, chunk=chunk)
        idx = torch.arange(E.shape[0], device=op.device)
        diag.append(HE[idx, idx + s].double().cpu())
    d = torch.cat(diag)
    return float(d.sum()), 0.0, d


def _hutchinson(op: HessianOperator, g, n_probes: int, chunk: int):
    Z = torch.stack([rademacher(op.dim, g) for _ in range(n_probes)]).to(op.dtype)  # (n, P)
    HZ = op.matmat(Z, chunk=chunk).double().cpu()
    samples = (HZ * Z.double()).sum(1)  # zᵀ H z per probe
    return float(samples.mean()), float(samples.std(unbiased=True) / math.sqrt(n_probes)), samples


def _hutch_pp(op: HessianOperator, g, n_probes: int, chunk: int):
    P = op.dim
    m = max(3, n_probes)
    s_ = m // 3
    S = torch.stack([rademacher(P, g) for _ in range(s_)]).to(op.dtype)  # (s, P)
    HS = op.matmat(S, chunk=chunk).double().cpu()
    Qm, _ = torch.linalg.qr(HS.t())  # (P, s)
    HQ = op.matmat(Qm.t().to(op.dtype), chunk=chunk).double().cpu()
    t1 = float((HQ * Qm.t()).sum())  # tr(Qᵀ H Q)
    n_g = m - 2 * s_
    G = torch.stack([rademacher(P, g) for _ in range(n_g)])
    Gp = G - (G @ Qm) @ Qm.t()  # probes projected off Q
    HG = op.matmat(Gp.to(op.dtype), chunk=chunk).double().cpu()
    samples = (HG * Gp).sum(1)
    se = float(samples.std(unbiased=True) / math.sqrt(n_g)) if n_g > 1 else float("nan")
    return t1 + float(samples.mean()), se, samples


def hessian_trace(
    model: nn.Module,
    method,
    data,
    seed: int = 0,
    *,
    n_probes: int = 64,
    estimator: str = "hutchinson",
    n_samples: int | None = None,
    params=None,
    per_class: bool = False,
    hvp_mode: str = "auto",
    chunk: int = 16,
    max_exact: int = 20_000,
    memory_mb: float = 512.0,
    batch_size: int | None = None,
    bn: str = "eval",
):
    """Trace of the Hessian: Hutchinson with ``n_probes`` seeded Rademacher probes (a fixed
    budget; ``stderr`` = std / sqrt(n)), ``"hutch++"`` (the same budget of products split in
    thirds), or ``"exact"`` (one product per parameter, refused above ``max_exact``).
    ``chunk``: directions per engine call."""
    if per_class:
        return _per_class(hessian_trace, model, method, data, n_samples, seed, n_probes=n_probes,
                          estimator=estimator, params=params, hvp_mode=hvp_mode, chunk=chunk,
                          max_exact=max_exact, memory_mb=memory_mb, batch_size=batch_size, bn=bn)
    t0 = time.perf_counter()
    check_choice(estimator, "estimator", TRACE_ESTIMATORS)
    n_probes = check_int(n_probes, "n_probes", minimum=2, example=64)  # the standard error needs two
    chunk = check_int(chunk, "chunk", example=16)
    max_exact = check_int(max_exact, "max_exact")
    method, x, y, info = setup(model, method, data, n_samples, seed, bn=bn)
    op = HessianOperator(model, method, x, y, params=params, hvp_mode=hvp_mode, memory_mb=memory_mb,
                         batch_size=batch_size, bn=bn)
    g = torch.Generator().manual_seed(int(seed))
    if estimator == "exact":
        if op.dim > max_exact:
            raise ValueError(
                f"the exact trace needs one product per parameter ({op.dim}); above max_exact={max_exact} "
                "use estimator='hutchinson' or 'hutch++', or raise max_exact"
            )
        tr, se, samples = _exact(op, chunk)
    elif estimator == "hutchinson":
        tr, se, samples = _hutchinson(op, g, n_probes, chunk)
    else:
        tr, se, samples = _hutch_pp(op, g, n_probes, chunk)
    op.release()
    return HessianTrace(
        trace=tr, stderr=se, samples=samples.float(), estimator=estimator, n_matvecs=op.n_matvecs,
        n_params=op.dim, hvp_mode=op.mode, data=str(info), elapsed=time.perf_counter() - t0, bn=bn,
    )
