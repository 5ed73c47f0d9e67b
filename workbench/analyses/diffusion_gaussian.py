"""The Gaussian score approximation: closed-form denoisers to set beside a learned one.

Paper: Wang & Vastola 2024, "The Unreasonable Effectiveness of Gaussian Score Approximation for
Diffusion Models and its Applications". For much of the reverse process (high noise) a trained
diffusion model's score is close to the score of a Gaussian fitted to the data.

In the DDPM (variance-preserving) convention, if the data are N(μ, Σ) then
x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε is N(√ᾱ_t μ, ᾱ_t Σ + (1 − ᾱ_t) I), so the exact score is
∇log p_t(x) = −(ᾱ_t Σ + (1 − ᾱ_t) I)⁻¹ (x − √ᾱ_t μ), and the ideal ε-predictor is
ε̂ = −√(1 − ᾱ_t) ∇log p_t(x). For a mixture Σ_k w_k N(μ_k, Σ_k) the score is the
responsibility-weighted sum of the components' scores (responsibilities from the noised
components' densities). With one component per training point and zero covariance this is the
"delta mixture" score of a model that memorises the training set. (The paper works in EDM's
x + σε convention; x_t/√ᾱ_t = x0 + σε with σ² = (1 − ᾱ_t)/ᾱ_t maps one onto the other.)

* ``gaussian_score(data, ddpm, kind="gaussian" | "mixture" | "empirical")`` builds a
  ``GaussianScoreModel``: an ``nn.Module`` (buffers only) called like the learned denoiser,
  ``model(x_t, t)``, returning what ``ddpm`` expects (ε, x0 or v). It works with
  ``sample_trajectory`` and ``score_field`` like any denoiser.
* ``score_error(denoiser, reference, ddpm, data, t=...)``: mean squared difference of the two
  ε-predictions at x_t = noised held-out data, per timestep, absolute and relative to the
  learned ε̂'s mean square. (ε units: σ_t² × the squared score difference.)

Covariances are handled through their eigendecomposition, so the inverse and log-determinant
at every t cost O(D) per component after a one-off O(D³).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_int, check_number, check_seed
from .._device import model_device
from .._modes import eval_mode
from .diffusion import _check_ddpm, ddpm_device

KINDS = ("gaussian", "mixture", "empirical")


class GaussianScoreModel(nn.Module):
    """Closed-form denoiser of a Gaussian mixture under a DDPM schedule (see the module docstring).

    Buffers: ``means`` (K, D), ``evals`` (K, D) and ``evecs`` (K, D, D) of the covariances (or
    ``evecs`` empty for isotropic zero covariance), ``log_weights`` (K,), the schedule's
    ``alphas_cumprod``. ``sample_shape`` is one sample's shape.
    """

    def __init__(self, means, covs, weights, ddpm, *, sample_shape=None, kind: str = "mixture"):
        super().__init__()
        _check_ddpm(ddpm)
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.ndim != 2 or means.shape[0] == 0:
            raise ValueError(f"means must be (K, D) with K >= 1, got {tuple(means.shape)}")
        if not bool(torch.isfinite(means).all()):
            raise ValueError("means contain NaN or inf")
        K, D = means.shape
        w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
        if w.shape != (K,) or not bool(torch.isfinite(w).all()) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {K} finite non-negative numbers with a positive sum")
        if covs is None:
            evals = torch.zeros(K, D, dtype=torch.float64)
            evecs = torch.zeros(0)
        else:
            covs = torch.as_tensor(covs, dtype=torch.float64)
            if covs.shape != (K, D, D):
                raise ValueError(f"covs must be (K, D, D) = ({K}, {D}, {D}), got {tuple(covs.shape)}")
            if not bool(torch.isfinite(covs).all()):
                raise ValueError("covs contain NaN or inf")
            if not torch.allclose(covs, covs.transpose(1, 2), rtol=1e-6, atol=1e-9):
                raise ValueError("covs must be symmetric covariance matrices")
            evals, evecs = torch.linalg.eigh((covs + covs.transpose(1, 2)) / 2)
            floor = -1e-9 * evals.abs().amax(1, keepdim=True).clamp(min=1.0)
            if bool((evals < floor).any()):
                raise ValueError(
                    f"covs must be positive semi-definite; component(s) "
                    f"{(evals < floor).any(1).nonzero().flatten().tolist()} have a negative eigenvalue "
                    f"(min {float(evals.min()):.3g})"
                )
            evals = evals.clamp(min=0)  # round-off below zero only (checked above)
        self.kind = kind
        self.prediction = ddpm.prediction
        self.sample_shape = tuple(sample_shape) if sample_shape is not None else (D,)
        self.dim = D
        self.register_buffer("means", means.float())
        self.register_buffer("evals", evals.float())
        self.register_buffer("evecs", evecs.float())
        self.register_buffer("log_weights", (w / w.sum()).log().float())
        self.register_buffer("alphas_cumprod", ddpm.alphas_cumprod.detach().float().cpu().clone())
        self.register_buffer("one_minus", ddpm.one_minus_alphas_cumprod.detach().float().cpu().clone())

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def eps(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """The ideal ε̂ at (x_t, t): −√(1 − ᾱ_t) ∇log p_t(x_t)."""
        n = x_t.shape[0]
        x = x_t.reshape(n, -1).float()
        if x.shape[1] != self.dim:
            raise ValueError(f"this Gaussian model has dimension {self.dim}, got samples with {x.shape[1]} values")
        t = torch.as_tensor(t, device=x.device)
        t = t.expand(n) if t.ndim == 0 else t
        a = self.alphas_cumprod[t.long()].float()[:, None]  # (N, 1)
        s2 = self.one_minus[t.long()].float()[:, None]  # 1 - ᾱ_t, stored without cancellation
        if not self.evecs.numel():  # zero covariance: isotropic components, O(N K D) via matmuls
            sa = a.sqrt()
            d2 = (x**2).sum(1, keepdim=True) - 2 * sa * (x @ self.means.T) + a * (self.means**2).sum(1)[None]
            resp = torch.softmax(self.log_weights[None] - 0.5 * d2 / s2, dim=1)  # (N, K)
            cinv_r = (x - sa * (resp @ self.means)) / s2
        else:
            r = x[:, None, :] - a.sqrt()[:, None, :] * self.means[None]  # (N, K, D)
            y = torch.einsum("kde,nkd->nke", self.evecs, r)  # coordinates in each eigenbasis
            var = a[:, None, :] * self.evals[None] + s2[:, None, :]  # (N, K, D)
            z = y / var  # C⁻¹ r in the eigenbasis
            if self.n_components > 1:
                logp = self.log_weights[None] - 0.5 * ((y * z).sum(-1) + var.log().sum(-1))  # (N, K)
                z = torch.softmax(logp, dim=1)[:, :, None] * z
            cinv_r = torch.einsum("kde,nke->nd", self.evecs, z)
        eps = s2.sqrt() * cinv_r  # ε̂ = −σ · score = σ C⁻¹ (x − √ᾱ μ)
        return eps.reshape(x_t.shape).to(x_t.dtype)

    def score(self, x_t: torch.Tensor, t) -> torch.Tensor:
        t_ = torch.as_tensor(t, device=x_t.device)
        w = self.one_minus[t_.long()]
        sig = w.sqrt().reshape(-1, *([1] * (x_t.ndim - 1))) if w.ndim else w.sqrt()
        return -self.eps(x_t, t) / sig

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        eps = self.eps(x_t, t)
        if self.prediction == "epsilon":
            return eps
        n = x_t.shape[0]
        t = torch.as_tensor(t, device=x_t.device)
        t = t.expand(n) if t.ndim == 0 else t
        shape = (n, *([1] * (x_t.ndim - 1)))
        a = self.alphas_cumprod[t.long()].reshape(shape).to(x_t.dtype)
        w = self.one_minus[t.long()].reshape(shape).to(x_t.dtype)
        x0 = (x_t - w.sqrt() * eps) / a.sqrt()
        if self.prediction == "x0":
            return x0
        return a.sqrt() * eps - w.sqrt() * x0

    def __repr__(self) -> str:
        return f"GaussianScoreModel({self.kind}, components={self.n_components}, dim={self.dim}, prediction={self.prediction!r})"


def gaussian_score(
    data,
    ddpm,
    kind: str = "gaussian",
    *,
    n_components: int | None = None,
    max_points: int = 5000,
    reg: float = 1e-6,
    seed: int = 0,
) -> GaussianScoreModel:
    """A closed-form denoiser fitted to ``data`` (a Dataset or an (N, ...) tensor).

    ``kind``: ``"gaussian"`` (one Gaussian: the data's mean and covariance), ``"mixture"``
    (one component per label with the labels' moments when ``n_components`` is None and the data
    are labelled; else a scikit-learn GaussianMixture with ``n_components``, seeded), or
    ``"empirical"`` (the training points themselves, at most ``max_points`` of them, chosen with
    ``seed``: the memorising "delta mixture"). ``reg`` is added to covariance diagonals.
    """
    _check_ddpm(ddpm)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    reg = check_number(reg, "reg", min=0, hint="a small ridge added to covariance diagonals, e.g. 1e-6")
    check_int(max_points, "max_points", min=1)
    check_seed(seed)
    x = _data_points(data)
    if kind != "empirical" and len(x) < 2:
        raise ValueError(f"kind={kind!r} estimates a covariance and needs at least 2 points, got {len(x)}")
    shape = tuple(x.shape[1:])
    flat = x.detach().cpu().double().reshape(len(x), -1)
    D = flat.shape[1]
    eye = torch.eye(D, dtype=torch.float64)

    def moments(z):
        mu = z.mean(0)
        c = z - mu
        return mu, c.T @ c / max(1, len(z) - 1) + reg * eye

    if kind == "gaussian":
        mu, cov = moments(flat)
        return GaussianScoreModel(mu[None], cov[None], torch.ones(1), ddpm, sample_shape=shape, kind=kind)
    if kind == "empirical":
        g = torch.Generator().manual_seed(seed)
        pts = flat if len(flat) <= max_points else flat[torch.randperm(len(flat), generator=g)[:max_points]]
        return GaussianScoreModel(pts, None, torch.ones(len(pts)), ddpm, sample_shape=shape, kind=kind)
    y = getattr(data, "y", None)
    if n_components is None:
        if y is None:
            raise ValueError("kind='mixture' on unlabelled data needs n_components=K")
        labels = sorted(int(v) for v in torch.unique(y) if v >= 0)
        if not labels:
            raise ValueError("every label is -1 (OOD/unknown); pass labelled data or n_components=K")
        yc = y.cpu()
        small = [c for c in labels if int((yc == c).sum()) < 2]
        if small:
            raise ValueError(
                f"class(es) {small} have fewer than 2 samples, so their covariance is undefined; "
                "drop them or pass n_components=K for a fitted mixture"
            )
        parts = [moments(flat[yc == c]) for c in labels]
        w = torch.tensor([float((yc == c).sum()) for c in labels])
        return GaussianScoreModel(
            torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]), w, ddpm,
            sample_shape=shape, kind="mixture",
        )
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ValueError(f"n_components must be a positive int, got {n_components!r}")
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(n_components, covariance_type="full", reg_covar=max(reg, 1e-6), random_state=seed)
    gm.fit(flat.numpy())
    return GaussianScoreModel(
        torch.as_tensor(gm.means_), torch.as_tensor(gm.covariances_), torch.as_tensor(gm.weights_), ddpm,
        sample_shape=shape, kind="mixture",
    )


def _data_points(data) -> torch.Tensor:
    """``data.x`` (or the tensor itself): (N, ...) finite, at least one sample."""
    x = getattr(data, "x", data)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"data must be a wb.data.Dataset or a tensor, got {type(data).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"data must have shape (N, ...) with N >= 1, got {tuple(x.shape)}; for N scalars pass x[:, None]")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("data contain NaN or inf values; clean them first")
    return x


@dataclass(frozen=True, eq=False)
class ScoreError:
    """Per timestep: ``mse`` = mean over samples and coordinates of (ε̂_learned − ε̂_reference)²,
    ``relative`` = that divided by the mean of ε̂_learned²; ``timesteps``, ``sigmas`` (K,)."""

    timesteps: torch.Tensor
    sigmas: torch.Tensor
    mse: torch.Tensor
    relative: torch.Tensor
    name: str

    def __repr__(self) -> str:
        lo, hi = int(self.sigmas.argmin()), int(self.sigmas.argmax())
        return (
            f"ScoreError({self.name!r}, {len(self.timesteps)} timesteps; relative error "
            f"{float(self.relative[hi]):.3g} at sigma {float(self.sigmas[hi]):.3g}, "
            f"{float(self.relative[lo]):.3g} at sigma {float(self.sigmas[lo]):.3g})"
        )


@torch.no_grad()
def score_error(
    denoiser: nn.Module,
    reference: nn.Module,
    ddpm,
    data,
    *,
    t=None,
    n: int = 1024,
    name: str | None = None,
    seed: int = 0,
) -> ScoreError:
    """How far ``reference``'s ε̂ (e.g. a ``GaussianScoreModel``) is from ``denoiser``'s, over t.

    Both are evaluated at the same points x_t = add_noise(x0, ε, t) with x0 drawn from ``data``
    (held-out data, ideally) and ε from a generator seeded by ``seed``. ``t``: timesteps
    (default 24 spread evenly in noise level). Neither model is changed.
    """
    _check_ddpm(ddpm)
    for what, net in (("denoiser", denoiser), ("reference", reference)):
        if not isinstance(net, nn.Module):
            raise TypeError(f"{what} must be an nn.Module denoiser(x_t, t), got {type(net).__name__}")
    check_int(n, "n", min=1, hint="the number of noised points per timestep")
    check_seed(seed)
    x = _data_points(data)
    dev = model_device(denoiser)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(x), (n,), generator=g)
    x0 = x[idx].detach().float().cpu()
    noise = torch.randn(x0.shape, generator=g)
    if t is None:
        sig = ddpm.sigmas.detach().cpu()
        targets = torch.linspace(float(sig[0]), float(sig[-1]), 24)
        t = sorted({int((sig - s).abs().argmin()) for s in targets})
    ts = torch.as_tensor(t).reshape(-1)
    if ts.dtype.is_floating_point or ts.dtype == torch.bool or ts.numel() == 0:
        raise TypeError(f"t must be integer timesteps in 0..{ddpm.n_steps - 1}, got {t!r}")
    ts = ts.long()
    if (ts < 0).any() or (ts >= ddpm.n_steps).any():
        raise ValueError(f"timesteps must lie in 0..{ddpm.n_steps - 1}")
    mse, rel = [], []
    with eval_mode(denoiser, reference, ddpm):
        for tt in ts.tolist():
            x_t = ddpm.add_noise(x0.to(ddpm_device(ddpm)), noise.to(ddpm_device(ddpm)), tt).to(dev)
            tv = torch.full((n,), tt, dtype=torch.long, device=dev)
            _, e1 = ddpm.predict_x0_eps(denoiser(x_t, tv), x_t, tt)
            rdev = model_device(reference)
            _, e2 = ddpm.predict_x0_eps(reference(x_t.to(rdev), tv.to(rdev)).to(dev), x_t, tt)
            d = ((e1 - e2) ** 2).mean()
            mse.append(float(d))
            rel.append(float(d / (e1**2).mean().clamp(min=1e-12)))
    sigmas = ddpm.sigma(ts.to(ddpm_device(ddpm))).float().cpu()
    nm = name or getattr(reference, "kind", type(reference).__name__)
    return ScoreError(ts, sigmas, torch.tensor(mse), torch.tensor(rel), nm)
