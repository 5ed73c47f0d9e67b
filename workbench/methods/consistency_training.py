"""Consistency training without a teacher, with the improved techniques (iCT).

Papers: Song, Dhariwal, Chen & Sutskever 2023, "Consistency Models" (consistency training, CT);
Song & Dhariwal 2024, "Improved Techniques for Training Consistency Models" (iCT). No official
iCT code exists; details read in the paper's quotes and Kinyugo/consistency_models.

The model is a consistency function f_θ(x, σ) on the EDM / variance-exploding noise levels
x_σ = x0 + σ z, with the boundary condition built in by
f_θ(x, σ) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x, σ), c_skip = σ_d²/((σ − σ_min)² + σ_d²),
c_out = σ_d (σ − σ_min)/√(σ² + σ_d²), c_in = 1/√(σ² + σ_d²), so f(x, σ_min) = x. One loss step:

* the **discretisation curriculum**: N(k) = min(s0·2^⌊k/K'⌋, s1) + 1 Karras noise levels
  σ_i = (σ_min^{1/ρ} + i/(N−1)(σ_max^{1/ρ} − σ_min^{1/ρ}))^ρ, K' = ⌊K/(log2⌊s1/s0⌋ + 1)⌋, where k
  is this method's training-step counter and K = ``total_steps`` (s0 10, s1 1280: N = 11, 21,
  …, 1281);
* **lognormal noise sampling**: the interval i ∈ {0..N−2} with probability ∝
  erf((ln σ_{i+1} − P_mean)/(√2 P_std)) − erf((ln σ_i − P_mean)/(√2 P_std)), P_mean −1.1, P_std 2;
* the **pair** x + σ_{i+1} z and x + σ_i z with the same z (no teacher: the data point and the
  noise define both ends); the target f(x + σ_i z, σ_i) is the *current* network under
  stop-gradient (no EMA teacher in iCT);
* the **pseudo-Huber** distance d = √(‖Δ‖² + c²) − c, c = 0.00054·√(dim) (the paper's vector
  norm; Kinyugo applies it element-wise, which gives other numbers), weighted by
  λ(σ_i) = 1/(σ_{i+1} − σ_i).

Where this sits in the workbench: the network is called as ``model(s, t)`` with the state
s = c_in(σ)·x_σ and the integer t = the index of σ on the finest grid (N = s1 + 1 points; every
curriculum grid is a sub-grid of it, since s1/s0 is a power of two), so the same integer means
the same σ at every stage. The state s is what ``sample_trajectory`` carries: s_T ≈ z is unit
Gaussian like a DDPM's x_T, and ``sigma(t)`` = σ/√(σ² + σ_d²) is its noise fraction (the VP
noise level √(1 − ᾱ) when σ_d = 1). Sampling (sampler ``"consistency"``): x0 = f(x, σ) at
``steps`` trailing indices of the finest grid, re-noised with fresh noise in between.

Differences from the paper: the Fourier/positional noise embedding is the network's own
embedding of the integer index (the paper feeds c_noise = ln(σ)/4 or 250 ln σ); no dropout, so
the paper's rule that the two passes share the dropout RNG does not arise; set ``sigma_data``
to the data's standard deviation (1 for the workbench's unit-scale toys; the paper's 0.5 is
for images in [−1, 1]) and a smaller ``sigma_max`` for such data (80 is far beyond unit-scale
data); ``loss="l2"`` and ``noise="uniform"`` exist for ablations.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_int, check_number
from .base import Method
from .ddpm import StepOutput

LOSSES = ("pseudo_huber", "l2")
NOISES = ("lognormal", "uniform")


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """(n,) ascending Karras noise levels, float64."""
    i = torch.arange(n, dtype=torch.float64) / (n - 1)
    return (sigma_min ** (1 / rho) + i * (sigma_max ** (1 / rho) - sigma_min ** (1 / rho))) ** rho


def ict_curriculum(k: int, total_steps: int, s0: int = 10, s1: int = 1280) -> int:
    """N(k) = min(s0·2^⌊k/K'⌋, s1) + 1 with K' = ⌊K/(log2⌊s1/s0⌋ + 1)⌋ (at least 1)."""
    k_prime = max(1, math.floor(total_steps / (math.log2(s1 // s0) + 1)))
    return min(s0 * 2 ** (k // k_prime), s1) + 1


def lognormal_pmf(sigmas: torch.Tensor, p_mean: float = -1.1, p_std: float = 2.0) -> torch.Tensor:
    """(N−1,) probabilities of the intervals [σ_i, σ_{i+1}] under ln σ ~ N(p_mean, p_std²), normalised."""
    cdf = torch.erf((sigmas.double().log() - p_mean) / (math.sqrt(2) * p_std))
    p = cdf[1:] - cdf[:-1]
    return p / p.sum()


def pseudo_huber(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """(N,) √(‖a − b‖² + c²) − c per sample (vector norm over all but the first axis)."""
    d2 = ((a - b) ** 2).reshape(a.shape[0], -1).sum(1)
    return (d2 + c * c).sqrt() - c


class ConsistencyTraining(Method):
    """Improved consistency training (iCT) of ``model(s, t)`` from data alone (see the module docstring).

    Parameters
    ----------
    total_steps: K, the training steps the curriculum is spread over (pass ``wb.fit``'s ``steps``).
    sigma_min, sigma_max, rho, sigma_data: the noise levels and EDM scalings.
    s0, s1: the curriculum's first and last number of intervals (s1/s0 a power of two).
    p_mean, p_std: the lognormal noise sampling; ``noise="uniform"`` samples intervals uniformly.
    loss: ``"pseudo_huber"`` (c = ``huber_c``, default 0.00054·√dim) or ``"l2"``.
    curriculum: False fixes N = s1 + 1 from the start.
    """

    needs_labels = False
    SAMPLERS_ = ("consistency",)

    def __init__(
        self,
        total_steps: int,
        *,
        sigma_min: float = 0.002,
        sigma_max: float = 80.0,
        rho: float = 7.0,
        sigma_data: float = 0.5,
        s0: int = 10,
        s1: int = 1280,
        p_mean: float = -1.1,
        p_std: float = 2.0,
        loss: str = "pseudo_huber",
        huber_c: float | None = None,
        noise: str = "lognormal",
        curriculum: bool = True,
    ):
        super().__init__()
        self.total_steps = check_int(total_steps, "total_steps", min=1, hint="the number of training steps (wb.fit's steps)")
        self.sigma_min = check_number(sigma_min, "sigma_min", min=0, min_open=True)
        self.sigma_max = check_number(sigma_max, "sigma_max", min=self.sigma_min, min_open=True)
        self.rho = check_number(rho, "rho", min=0, min_open=True)
        self.sigma_data = check_number(sigma_data, "sigma_data", min=0, min_open=True, hint="the data's standard deviation")
        self.s0, self.s1 = check_int(s0, "s0", min=1), check_int(s1, "s1", min=s0)
        if (s1 // s0) * s0 != s1 or (s1 // s0) & (s1 // s0 - 1):
            raise ValueError(f"s1/s0 must be a power of two (so every grid is a sub-grid of the finest), got {s0}, {s1}")
        self.p_mean, self.p_std = float(p_mean), check_number(p_std, "p_std", min=0, min_open=True)
        self.loss_name = check_choice(loss, "loss", LOSSES)
        self.noise = check_choice(noise, "noise", NOISES)
        self.huber_c, self.curriculum = huber_c, bool(curriculum)
        self.register_buffer("grid", karras_sigmas(s1 + 1, sigma_min, sigma_max, rho).float())  # (s1+1,) ascending
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))

    # -------------------------------------------------------------- scalings
    @property
    def n_steps(self) -> int:
        return self.s1 + 1

    @property
    def prediction(self) -> str:
        return "consistency"

    def _sig(self, t) -> torch.Tensor:
        return self.grid[torch.as_tensor(t, device=self.grid.device).long()]

    def sigma(self, t) -> torch.Tensor:
        """Noise fraction σ/√(σ² + σ_d²) of the state at finest-grid index ``t`` (0 at t = −1)."""
        t = torch.as_tensor(t, device=self.grid.device)
        s = self._sig(t.clamp(min=0))
        return torch.where(t >= 0, s / (s**2 + self.sigma_data**2).sqrt(), torch.zeros_like(s))

    def f(self, model_output: torch.Tensor, x_sigma: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """c_skip(σ) x_σ + c_out(σ) F with per-sample σ."""
        s = sigma.reshape(-1, *([1] * (x_sigma.ndim - 1))).to(x_sigma.dtype)
        sd2 = self.sigma_data**2
        c_skip = sd2 / ((s - self.sigma_min) ** 2 + sd2)
        c_out = self.sigma_data * (s - self.sigma_min) / (s**2 + sd2).sqrt()
        return c_skip * x_sigma + c_out * model_output

    def _c_in(self, sigma, like):
        return (1 / (sigma**2 + self.sigma_data**2).sqrt()).reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)

    def consistency(self, model, x_sigma: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """f_θ(x_σ, σ_t) for per-sample finest-grid indices ``t``."""
        sigma = self._sig(t)
        return self.f(model(self._c_in(sigma, x_sigma) * x_sigma, t), x_sigma, sigma)

    # -------------------------------------------------------------- training
    def n_intervals_now(self) -> int:
        """N(k) − 1 at the current step (s1 without the curriculum)."""
        if not self.curriculum:
            return self.s1
        return ict_curriculum(int(self.step_count), self.total_steps, self.s0, self.s1) - 1

    def loss(self, model, batch):
        x0 = batch[0] if isinstance(batch, (tuple, list)) else batch
        n, dev = x0.shape[0], x0.device
        m = self.n_intervals_now()
        idx = torch.arange(m + 1, device=dev) * (self.s1 // m)  # (N,) finest-grid indices of this stage
        sig = self.grid[idx]
        if self.noise == "lognormal":
            i = torch.multinomial(lognormal_pmf(sig, self.p_mean, self.p_std).float(), n, replacement=True)
        else:
            i = torch.randint(0, m, (n,), device=dev)
        z = torch.randn_like(x0)
        bc = (-1, *([1] * (x0.ndim - 1)))
        s_lo, s_hi = sig[i], sig[i + 1]
        with torch.no_grad():
            target = self.consistency(model, x0 + s_lo.reshape(bc) * z, idx[i])
        pred = self.consistency(model, x0 + s_hi.reshape(bc) * z, idx[i + 1])
        weight = 1 / (s_hi - s_lo)
        if self.loss_name == "l2":
            d = ((pred - target) ** 2).reshape(n, -1).mean(1)
        else:
            c = self.huber_c if self.huber_c is not None else 0.00054 * math.sqrt(x0[0].numel())
            d = pseudo_huber(pred, target, c)
        if self.training:
            self.step_count += 1
        return (weight * d).mean(), {"n_intervals": float(m)}

    # -------------------------------------------------------------- sampling
    def timesteps(self, steps: int | None = None, spacing: str = "trailing") -> torch.Tensor:
        """Descending finest-grid indices of a ``steps``-step sampler (default 1: σ_max only),
        evenly spread in index: round((N − 1)(1 − i/steps)), i = 0..steps − 1."""
        steps = 1 if steps is None else steps
        check_int(steps, "steps", min=1, max=self.n_steps)
        check_choice(spacing, "spacing", ("trailing",))
        top = self.n_steps - 1
        return torch.tensor([round(top * (1 - i / steps)) for i in range(steps)], dtype=torch.long)

    def _to_x(self, s, t):
        sig = self._sig(t)
        return s / self._c_in(sig, s), sig

    def predict_x0_eps(self, model_output, x_t, t, prediction=None):
        """(x̂0, ε̂) from the network's output at state ``x_t`` (finest-grid index ``t``)."""
        t = torch.as_tensor(t, device=x_t.device)
        x, sig = self._to_x(x_t, t.expand(x_t.shape[0]) if t.ndim == 0 else t)
        x0 = self.f(model_output, x, sig)
        return x0, (x - x0) / sig.reshape(-1, *([1] * (x.ndim - 1)))

    def step(self, model_output, t, x_t, *, t_prev=None, sampler="consistency", eta=0.0, noise=None,
             generator=None, clip=None) -> StepOutput:
        """x̂0 = f(x_σ, σ_t), then (unless ``t_prev`` = −1) the state of x̂0 + σ_{t_prev} z."""
        check_choice(sampler, "sampler", self.SAMPLERS_)
        t_prev = -1 if t_prev is None else int(t_prev)
        x0, _ = self.predict_x0_eps(model_output, x_t, int(t))
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        if t_prev < 0:
            return StepOutput(x0, x0)
        if noise is None:
            noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        sig = self._sig(torch.full((x_t.shape[0],), t_prev, device=x_t.device))
        x = x0 + sig.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype) * noise
        return StepOutput(self._c_in(sig, x) * x, x0)

    def __repr__(self) -> str:
        return (f"ConsistencyTraining(total_steps={self.total_steps}, sigma {self.sigma_min:g}..{self.sigma_max:g}, "
                f"sigma_data={self.sigma_data:g}, N now {self.n_intervals_now() + 1}, loss={self.loss_name!r}, "
                f"noise={self.noise!r}, step {int(self.step_count)})")
