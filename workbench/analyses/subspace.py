"""Low-dimensional structure a denoiser learns: its Jacobian's rank and range at low noise.

Paper: Wang, Zhang, Zhang, Chen, Ma & Qu 2024, "Diffusion Models Learn Low-Dimensional
Distributions via Subspace Clustering" (code huijieZH/Diffusion-Model-Generalizability,
``jacobian.py``).

Data on a union of K linear subspaces (``wb.data.load("subspaces")``: x0 = U_k a,
a ~ N(0, s² I_d)). The optimal denoiser (``molrg_denoiser``), in the variance-exploding view
x = x0 + σ z with σ² = (1 − ᾱ_t)/ᾱ_t, is a soft subspace-clustering step,

    E[x0 | x] = Σ_k w_k(x) · s²/(s² + σ²) · U_k U_kᵀ x,   w = softmax_k(s²‖U_kᵀ x‖² / (2σ²(s² + σ²))),

so near subspace k at small σ its Jacobian ∂x̂0/∂x is ≈ s²/(s² + σ²)·U_kU_kᵀ: rank d, its range
the subspace itself. ``jacobian_subspaces`` measures that for any denoiser: at noised
training points it computes the Jacobian of x̂0 with respect to x_t (``torch.func``: jacrev
vectorised over points), its singular values, the **numerical rank** (the smallest r with
√(Σ_{i≤r} s_i²) > ``energy``·√(Σ s_i²), the paper's code's rule with 0.99) and the largest
**principal angle** between its top-d left singular vectors (the local subspace the denoiser
projects onto) and the true subspace of the point's label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_int, check_number, check_seed
from .._device import model_device
from .._modes import eval_mode
from .diffusion import _check_ddpm


class MoLRGDenoiser(nn.Module):
    """The optimal denoiser of a mixture of equally weighted low-rank Gaussians, as a
    ``denoiser(x_t, t)`` in ``ddpm``'s parametrisation (for comparison with a trained one)."""

    def __init__(self, bases: torch.Tensor, ddpm, scale: float = 1.0):
        super().__init__()
        bases = torch.as_tensor(bases, dtype=torch.float32)
        if bases.ndim != 3:
            raise ValueError(f"bases must be (K, D, d) orthonormal bases, got shape {tuple(bases.shape)}")
        self.register_buffer("bases", bases)
        self.ddpm, self.scale = ddpm, check_number(scale, "scale", min=0, min_open=True)
        self.dim = bases.shape[1]

    def x0(self, x_t: torch.Tensor, t) -> torch.Tensor:
        a, w = self.ddpm._abar_omega(torch.as_tensor(t, device=x_t.device).expand(x_t.shape[0]))
        sig2 = (w / a)[:, None]  # (N, 1) variance-exploding σ²
        x = x_t / a.sqrt()[:, None]
        s2 = self.scale**2
        proj = torch.einsum("kDd,nD->nkd", self.bases, x)  # (N, K, d) U_kᵀ x
        logits = s2 * (proj**2).sum(-1) / (2 * sig2 * (s2 + sig2))
        wk = torch.softmax(logits, -1)  # (N, K)
        back = torch.einsum("kDd,nkd->nkD", self.bases, proj)  # U_k U_kᵀ x
        return (s2 / (s2 + sig2)) * (wk[..., None] * back).sum(1)

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        shape = x_t.shape
        flat = x_t.reshape(shape[0], -1)
        tv = torch.as_tensor(t, device=x_t.device).expand(shape[0])
        x0 = self.x0(flat, tv)
        a, w = self.ddpm._abar_omega(tv)
        eps = (flat - a.sqrt()[:, None] * x0) / w.sqrt()[:, None]
        return self.ddpm.output_from_eps(eps, flat, tv).reshape(shape)


def molrg_denoiser(data, ddpm) -> MoLRGDenoiser:
    """The optimal denoiser for a ``subspaces`` data set (its ``meta`` holds the bases and scale)."""
    meta = getattr(data, "meta", None) or {}
    if "bases" not in meta:
        raise ValueError("data must be wb.data.load('subspaces', ...) (its meta holds the subspace bases)")
    if meta.get("noise", 0.0):
        raise ValueError("the closed form holds for noise=0 (points exactly on the subspaces)")
    return MoLRGDenoiser(meta["bases"], ddpm, meta.get("scale", 1.0))


def numerical_rank(singular_values: torch.Tensor, energy: float = 0.99) -> torch.Tensor:
    """Smallest r with √(Σ_{i≤r} s_i²) > energy·√(Σ s_i²), along the last axis (descending s)."""
    e = singular_values.double() ** 2
    cum = e.cumsum(-1).sqrt()
    total = e.sum(-1, keepdim=True).sqrt()
    return (cum <= energy * total).sum(-1) + 1


@dataclass(frozen=True, eq=False)
class SubspaceRecovery:
    """Jacobian structure of a denoiser at noised points (CPU).

    ``singular_values`` (S, P, D) at the S ``timesteps`` (noise levels ``sigmas``) for P points;
    ``rank`` (S, P) numerical rank; ``angle`` (S, P) largest principal angle in degrees between
    the top-d range and the point's true subspace (NaN without bases); ``d`` the true dimension.
    """

    singular_values: torch.Tensor
    rank: torch.Tensor
    angle: torch.Tensor
    timesteps: torch.Tensor
    sigmas: torch.Tensor
    d: int | None
    energy: float
    name: str = "learned"

    def summary(self) -> dict[str, torch.Tensor]:
        """Per timestep: median rank and median angle."""
        return {"rank": self.rank.double().median(1).values, "angle": self.angle.median(1).values}

    def __repr__(self) -> str:
        s = self.summary()
        rows = ", ".join(f"σ {float(g):.3f}: rank {int(r)}, angle {float(a):.1f}°"
                         for g, r, a in zip(self.sigmas, s["rank"], s["angle"]))
        return f"SubspaceRecovery({self.name}, true d={self.d}; {rows})"


def jacobian_subspaces(
    denoiser: nn.Module,
    ddpm,
    data,
    timesteps: Sequence[int],
    *,
    n_points: int = 64,
    energy: float = 0.99,
    seed: int = 0,
    name: str = "learned",
) -> SubspaceRecovery:
    """Rank and range of ∂x̂0/∂x_t at ``n_points`` of ``data`` noised to each timestep (see the module docstring).

    ``data``: a ``subspaces`` data set (or any labelled vectors; without ``meta["bases"]`` the
    angles are NaN). The denoiser's weights and modes are left as they were.
    """
    from ..methods._guidance import unconditional

    _check_ddpm(ddpm)
    check_int(n_points, "n_points", min=1)
    check_number(energy, "energy", min=0, max=1, min_open=True, max_open=True)
    check_seed(seed)
    ts = [check_int(int(t), "timesteps", min=0, max=ddpm.n_steps - 1) for t in timesteps]
    x = getattr(data, "x", data)
    meta = getattr(data, "meta", None) or {}
    bases, y = meta.get("bases"), getattr(data, "y", None)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=g)[:n_points]
    dev = model_device(denoiser)
    x0 = x[idx].reshape(len(idx), -1).float().to(dev)
    shape = x.shape[1:]
    svs, angles = [], []
    with eval_mode(denoiser, ddpm):
        for t in ts:
            noise = torch.randn(x0.shape, generator=g).to(dev)
            x_t = ddpm.add_noise(x0, noise, t)
            tv = torch.tensor([t], device=dev)

            def f(v, tv=tv):
                xt = v.reshape(1, *shape)
                return ddpm.predict_x0_eps(unconditional(denoiser, xt, tv), xt, tv)[0].reshape(-1)

            J = torch.func.vmap(torch.func.jacrev(f))(x_t).detach()  # (P, D, D): ∂x̂0/∂x_t
            U, S, _ = torch.linalg.svd(J.double())
            svs.append(S.float().cpu())
            if bases is not None and y is not None:
                d = bases.shape[-1]
                Ub = bases.to(dev).double()[y[idx].to(dev)]  # (P, D, d)
                cos = torch.linalg.svdvals(Ub.transpose(1, 2) @ U[:, :, :d]).clamp(max=1.0)  # (P, d)
                angles.append(torch.rad2deg(torch.arccos(cos.min(-1).values)).float().cpu())
            else:
                angles.append(torch.full((len(idx),), float("nan")))
    S = torch.stack(svs)
    sig = torch.tensor([float(ddpm.sigma(t)) for t in ts])
    return SubspaceRecovery(S, numerical_rank(S, energy), torch.stack(angles), torch.tensor(ts), sig,
                            None if bases is None else int(bases.shape[-1]), float(energy), name)
