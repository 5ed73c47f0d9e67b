"""Self-distillation in kernel ridge regression, in closed form (Borup & Andersen, NeurIPS 2021,
"Even your Teacher Needs Guidance: Ground-Truth Targets Dampen Regularization Imposed by
Self-Distillation").

Step 0 is the ridge fit f⁰ = K(K + λI)⁻¹y on (x, y); step τ refits on the targets
α·y + (1 − α)·f^{τ−1}(x), where α is the weight of the ground truth (α = 0 is pure
self-distillation). With the eigendecomposition K = V diag(d) Vᵀ, the hat matrix
K(K + λI)⁻¹ = V diag(d/(d + λ)) Vᵀ, so every step multiplies the targets' coordinates in the
eigenbasis by d/(d + λ): pure self-distillation amplifies the regularisation step after step
(the fit shrinks to 0), while α > 0 keeps pulling the fit back towards the labels and converges
to a fixed point. No training: each step is exact, for every α at once, from one ``eigh``.

The paper's kernel is general; here it is the RBF kernel exp(−γ‖a − b‖²).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["KernelSelfDistillation", "kernel_self_distillation"]


@dataclass(frozen=True, eq=False)
class KernelSelfDistillation:
    """Self-distillation of kernel ridge regression, exactly (Borup & Andersen 2021).

    ``alphas`` (A,): ground-truth weights; ``train_mse`` / ``test_mse`` (A, S + 1): mean squared
    error to the (noisy) train targets and to the test targets after step τ = 0..S (τ = 0 is the
    ordinary ridge fit); ``test_pred`` (A, S + 1, M): the fits on ``x_test``;
    ``norm`` (A, S + 1): the RKHS norm of each fit (it shrinks as regularisation is amplified).
    """

    alphas: torch.Tensor
    steps: torch.Tensor
    train_mse: torch.Tensor
    test_mse: torch.Tensor
    test_pred: torch.Tensor = field(repr=False)
    norm: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor | None = field(repr=False)
    lam: float = 0.0

    def __repr__(self) -> str:
        best = ", ".join(
            f"α={float(a):g}: τ*={int(self.test_mse[i].argmin())} (MSE {float(self.test_mse[i].min()):.4g})"
            for i, a in enumerate(self.alphas)
        )
        return f"KernelSelfDistillation(λ={self.lam:g}, steps 0..{int(self.steps[-1])}; best test step {best})"


def _rbf(a: torch.Tensor, b: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.exp(-gamma * torch.cdist(a, b).pow(2))


def _f64(v) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().double()
    return torch.as_tensor(np.asarray(v), dtype=torch.float64)


def _column(v, what: str) -> torch.Tensor:
    """A finite float64 tensor of one value per sample (N,)."""
    t = _f64(v).flatten()
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains NaN or inf")
    return t


def _points(v, what: str) -> torch.Tensor:
    """Finite float64 inputs (N, p); a 1-D array is N points of one feature."""
    t = _f64(v)
    t = t[:, None] if t.ndim == 1 else t
    if t.ndim != 2:
        raise ValueError(f"{what} must have shape (N,) or (N, p), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains NaN or inf")
    return t


def _check(x, y, x_test, y_test, lam, gamma, alphas, steps):
    xt, yt, xq = _points(x, "x"), _column(y, "y"), _points(x_test, "x_test")
    yq = None if y_test is None else _column(y_test, "y_test")
    if xt.shape[0] != yt.shape[0]:
        raise ValueError(f"x has {xt.shape[0]} samples but y has {yt.shape[0]}")
    if xq.shape[1] != xt.shape[1]:
        raise ValueError(f"x_test has {xq.shape[1]} features but x has {xt.shape[1]}")
    if yq is not None and yq.shape[0] != xq.shape[0]:
        raise ValueError(f"x_test has {xq.shape[0]} samples but y_test has {yq.shape[0]}")
    if not lam > 0:
        raise ValueError(f"lam (the ridge penalty) must be positive, got {lam!r}")
    if not gamma > 0:
        raise ValueError(f"gamma (the RBF kernel's inverse width) must be positive, got {gamma!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    al = torch.as_tensor(alphas, dtype=torch.float64).flatten()
    if al.numel() == 0 or ((al < 0) | (al > 1)).any():
        raise ValueError(f"alphas must be one or more weights in [0, 1], got {al.tolist()}")
    return xt, yt, xq, yq, al


def kernel_self_distillation(
    x,
    y,
    x_test,
    y_test=None,
    *,
    lam: float = 1e-2,
    gamma: float = 10.0,
    alphas=(0.0, 0.25, 0.5),
    steps: int = 10,
) -> KernelSelfDistillation:
    """Iterated self-distillation in kernel ridge regression with an RBF kernel, in closed form.

    Step 0 is the ridge fit f⁰ = K(K + λI)⁻¹y on (x, y); step τ refits on the targets
    α·y + (1 − α)·f^{τ−1}(x) (α = the weight of the ground truth; α = 0 is pure self-distillation,
    which amplifies the regularisation until the fit collapses to 0). With K = V diag(d) Vᵀ
    every step is exact: in the eigenbasis the fitted values are multiplied by d/(d + λ).
    ``x`` (N, p) or (N,), ``y`` (N,); ``gamma``: the RBF kernel exp(−γ‖a − b‖²).
    """
    xt, yt, xq, yq, al = _check(x, y, x_test, y_test, lam, gamma, alphas, steps)
    d, v = torch.linalg.eigh(_rbf(xt, xt, gamma))  # K = V diag(d) Vᵀ
    d = d.clamp_min(0)
    kq = _rbf(xq, xt, gamma)                        # (M, N)
    runs = [_iterate(d, v, kq, yt, yq, a, lam, steps) for a in al.tolist()]
    return KernelSelfDistillation(
        alphas=al.float(), steps=torch.arange(steps + 1),
        train_mse=torch.tensor([r[0] for r in runs]), test_mse=torch.tensor([r[1] for r in runs]),
        test_pred=torch.stack([r[2] for r in runs]), norm=torch.tensor([r[3] for r in runs]),
        x_test=xq.float(), y_test=None if yq is None else yq.float(), lam=float(lam),
    )


def _iterate(d, v, kq, yt, yq, alpha: float, lam: float, steps: int):
    """Steps 0..``steps`` for one α: train MSEs, test MSEs, test predictions (S + 1, M), RKHS
    norms."""
    y_eig = v.T @ yt                    # (N,) targets in the eigenbasis
    target = y_eig                      # step 0 fits the labels
    train_mse, test_mse, preds, norms = [], [], [], []
    for _ in range(steps + 1):
        coef = target / (d + lam)       # dual weights β = (K + λI)⁻¹ t, in the eigenbasis
        fit_eig = d * coef              # = d/(d + λ) · target: the hat matrix's shrinkage
        f_test = kq @ (v @ coef)        # (M,)
        train_mse.append(float((v @ fit_eig - yt).pow(2).mean()))
        test_mse.append(float((f_test - yq).pow(2).mean()) if yq is not None else float("nan"))
        preds.append(f_test.float())
        norms.append(float(torch.sqrt((d * coef * coef).sum())))
        target = alpha * y_eig + (1 - alpha) * fit_eig
    return train_mse, test_mse, torch.stack(preds), norms
