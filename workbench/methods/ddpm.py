"""DDPM training objective, noise schedules, and the DDPM / DDIM reverse step.

Papers: Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models" (DDPM); Song, Meng &
Ermon 2021, "Denoising Diffusion Implicit Models" (DDIM); Nichol & Dhariwal 2021 (the cosine
schedule and the 1000/T scaling of the linear one); Salimans & Ho 2022 (v-prediction).

The equations, in words (ᾱ_t = ∏_{s≤t} (1 − β_s), timesteps t = 0..T−1, ᾱ_{−1} = 1):

* **forward / add_noise**: x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · ε, with ε ~ N(0, I). The noise level
  of x_t, in units of the data, is σ_t = √(1 − ᾱ_t) (``ddpm.sigmas``).
* **loss**: t ~ U{0..T−1}, ε ~ N(0, I); the denoiser ``model(x_t, t)`` predicts ε (default),
  x0, or v = √ᾱ_t ε − √(1 − ᾱ_t) x0; the loss is the mean squared error to that target.
* **predicted clean sample**: x̂0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t (and the matching conversions
  for x0- and v-prediction, ``predict_x0_eps``).
* **DDPM step** t → t' (t' = t − 1, or the next of a strided set): with ᾱ' = ᾱ_{t'} and the
  respaced β = 1 − ᾱ_t/ᾱ', the posterior mean is
  √ᾱ' β/(1 − ᾱ_t) · x̂0 + √(1 − β) (1 − ᾱ')/(1 − ᾱ_t) · x_t, and its variance is β (1 − ᾱ')/(1 − ᾱ_t)
  ("fixed_small", the default, as diffusers) or β ("fixed_large", as the original code for
  toy data). No noise is added on the last step (t' = −1).
* **DDIM step** t → t': x_{t'} = √ᾱ' x̂0 + √(1 − ᾱ' − s²) ε̂ + s z with
  s = η √((1 − ᾱ')/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ'). η = 0 is deterministic (the probability-flow ODE
  discretised); η = 1 on the full set of timesteps *is* the DDPM step with fixed_small.

Schedules (registered buffers ``betas``, ``alphas_cumprod`` and ``one_minus_alphas_cumprod``,
computed in float64 and stored as float32, so ``.to(device)`` and ``state_dict()`` carry them;
1 − ᾱ_t is stored rather than computed in float32, where it loses ~3 digits at small t):

* ``"linear"``: β from ``beta_start`` to ``beta_end``. Left as None they are 1e-4·1000/T and
  0.02·1000/T (Nichol & Dhariwal's scaling), which at T = 1000 are DDPM's (and diffusers')
  1e-4 → 0.02, and keep ᾱ_{T−1} near zero for short chains (unscaled, T = 100 would end at
  ᾱ ≈ 0.37: not pure noise); the default end is capped at 0.999 for T < 50. The toy schedule of the hallucination paper's code is
  ``DDPM(1000, "linear", beta_start=1e-3, beta_end=0.2, variance="fixed_large")``.
* ``"cosine"``: ᾱ(s) = cos²(((s + 0.008)/1.008)·π/2), β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999)
  (diffusers' ``squaredcos_cap_v2``). Its last β is 0.999, so the first reverse step from
  t = T − 1 multiplies an ε-predictor's error by about √(ᾱ_{T−2}/ᾱ_{T−1}) ≈ 30: an
  under-trained ε-model then throws samples far outside the data (seen here with 200 training
  steps on moons). Use ``prediction="v"``, ``clip=`` when sampling, or the linear schedule for
  short toy runs.

Timestep spacing for strided sampling (``timesteps(steps, spacing)``): "trailing" (default;
round(arange(T, 0, −T/n)) − 1, always starts at T − 1), "leading" (k·⌊T/n⌋, diffusers'
default) and "linspace".

Where this knowingly differs from diffusers' DDPMScheduler / DDIMScheduler
(``benchmarks/check_diffusers.py`` measures the agreement):

* All coefficients use the stored 1 − ᾱ_t and β_t (respaced: β = (ω_t − ω')/ᾱ' with
  ω = 1 − ᾱ at low noise, 1 − ᾱ_t/ᾱ' at high noise); diffusers forms 1 − ᾱ_t and 1 − ᾱ_t/ᾱ_{t−1} in float32, with cancellation at
  small t. The two agree to float32 rounding at large t and to ~1e-4–1e-3 at t ≤ 10, where
  ours is the closer to a float64 evaluation (the check prints both errors).
* The previous timestep is the next entry of the timestep list (−1 after the last), for every
  spacing; diffusers' DDIM uses t − ⌊T/n⌋, which differs for "linspace" spacing.
* x̂0 is not clipped unless ``clip=`` is given (diffusers clips to [−1, 1] by default).
* With "fixed_large", no noise is added on the last step of a strided chain (diffusers adds β).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import check_number
from .base import Method

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon", "x0", "v")
VARIANCES = ("fixed_small", "fixed_large")
SAMPLERS = ("ddpm", "ddim")
SPACINGS = ("trailing", "leading", "linspace")


def make_betas(n_steps: int, schedule: str = "cosine", beta_start=None, beta_end=None) -> torch.Tensor:
    """The (T,) float64 β schedule named ``schedule`` (see the module docstring)."""
    if schedule == "linear":
        scale = 1000.0 / n_steps
        b0 = 1e-4 * scale if beta_start is None else float(beta_start)
        b1 = min(0.02 * scale, 0.999) if beta_end is None else float(beta_end)
        if not 0.0 < b0 <= b1 < 1.0:
            raise ValueError(
                f"linear schedule needs 0 < beta_start <= beta_end < 1, got {b0} and {b1}; "
                "pass smaller values (T=1000 usually uses 1e-4 and 0.02)"
            )
        return torch.linspace(b0, b1, n_steps, dtype=torch.float64)
    if schedule == "cosine":
        if beta_start is not None or beta_end is not None:
            raise ValueError("beta_start/beta_end only apply to schedule='linear'")

        def abar(s):
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

        return torch.tensor(
            [min(1 - abar((i + 1) / n_steps) / abar(i / n_steps), 0.999) for i in range(n_steps)],
            dtype=torch.float64,
        )
    raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")


@dataclass(frozen=True)
class StepOutput:
    """One reverse step: ``prev`` = x_{t'}, ``x0`` = the x̂0 it was built from."""

    prev: torch.Tensor
    x0: torch.Tensor


class DDPM(Method):
    """Denoising diffusion: the training loss for a denoiser ``model(x_t, t)`` and the sampler steps.

    Parameters
    ----------
    n_steps: T, the number of diffusion timesteps (t = 0..T−1).
    schedule: ``"cosine"`` or ``"linear"`` (``beta_start``/``beta_end`` override the linear ends).
    prediction: what the denoiser outputs: ``"epsilon"`` (default), ``"x0"`` or ``"v"``.
    variance: the DDPM step's variance, ``"fixed_small"`` (posterior β̃, default) or ``"fixed_large"`` (β).

    Data are used as they come: the schedules assume roughly unit-scale data (the built-in 2-D
    toys are; scale images in [0, 1] to [−1, 1] first, e.g. ``x * 2 - 1``).
    ``needs_labels`` is False: labels, if any, are ignored.
    """

    needs_labels = False

    def __init__(
        self,
        n_steps: int = 100,
        schedule: str = "cosine",
        *,
        prediction: str = "epsilon",
        variance: str = "fixed_small",
        beta_start: float | None = None,
        beta_end: float | None = None,
    ):
        super().__init__()
        if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 2:
            raise ValueError(f"n_steps must be an int >= 2, got {n_steps!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; valid: {', '.join(PREDICTIONS)}")
        if variance not in VARIANCES:
            raise ValueError(f"unknown variance {variance!r}; valid: {', '.join(VARIANCES)}")
        for name, v in (("beta_start", beta_start), ("beta_end", beta_end)):
            if v is not None:
                check_number(v, name, hint="a noise variance of the linear schedule, e.g. 1e-4 (start) or 0.02 (end)")
        self.n_steps, self.schedule = n_steps, schedule
        self.prediction, self.variance = prediction, variance
        betas = make_betas(n_steps, schedule, beta_start, beta_end)
        abar = torch.cumprod(1.0 - betas, 0)
        self.register_buffer("betas", betas.float())
        self.register_buffer("alphas_cumprod", abar.float())
        # 1 - ᾱ_t = 1 - ∏(1 - β_s), computed without cancellation: -expm1(Σ log1p(-β_s))
        self.register_buffer("one_minus_alphas_cumprod", (-torch.expm1(torch.cumsum(torch.log1p(-betas), 0))).float())

    # ------------------------------------------------------------------ schedule views
    @property
    def sigmas(self) -> torch.Tensor:
        """(T,) noise level √(1 − ᾱ_t) of x_t, in units of the (unit-scale) data."""
        return self.one_minus_alphas_cumprod.sqrt()

    def abar(self, t) -> torch.Tensor:
        """ᾱ_t for int or tensor ``t``; ᾱ_{−1} = 1 (the clean end of the chain)."""
        return self._abar_omega(t)[0]

    def _abar_omega(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(ᾱ_t, 1 − ᾱ_t) for int or tensor ``t``, with (1, 0) at t = −1."""
        if isinstance(t, int):
            if t < 0:
                one = torch.ones((), device=self.alphas_cumprod.device)
                return one, torch.zeros_like(one)
            return self.alphas_cumprod[t], self.one_minus_alphas_cumprod[t]
        t = torch.as_tensor(t, device=self.alphas_cumprod.device)
        tc = t.clamp(min=0)
        pos = t >= 0
        a = torch.where(pos, self.alphas_cumprod[tc], torch.ones((), device=t.device))
        w = torch.where(pos, self.one_minus_alphas_cumprod[tc], torch.zeros((), device=t.device))
        return a, w

    def sigma(self, t) -> torch.Tensor:
        """Noise level √(1 − ᾱ_t) (0 at t = −1)."""
        return self._abar_omega(t)[1].sqrt()

    def timestep_for_sigma(self, sigma: float) -> int:
        """The largest t whose noise level √(1 − ᾱ_t) is at most ``sigma`` (−1 if none)."""
        below = (self.sigmas <= sigma).nonzero()
        return int(below.max()) if len(below) else -1

    def timesteps(self, steps: int | None = None, spacing: str = "trailing") -> torch.Tensor:
        """Descending (steps,) int64 timesteps of a sampling run (all T when ``steps`` is None)."""
        T = self.n_steps
        steps = T if steps is None else steps
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= T:
            raise ValueError(f"steps must be an int in 1..{T} (the schedule's n_steps), got {steps!r}")
        if spacing not in SPACINGS:
            raise ValueError(f"unknown spacing {spacing!r}; valid: {', '.join(SPACINGS)}")
        if spacing == "trailing":
            ts = torch.round(torch.arange(T, 0, -T / steps, dtype=torch.float64)) - 1
        elif spacing == "leading":
            ts = (torch.arange(steps, dtype=torch.float64) * (T // steps)).flip(0)
        else:
            ts = torch.round(torch.linspace(0, T - 1, steps, dtype=torch.float64)).flip(0)
        return ts.long()

    # ------------------------------------------------------------------ forward process
    def _bcast(self, v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.reshape(v.shape + (1,) * (like.ndim - v.ndim)).to(like.dtype)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """x_t = √ᾱ_t x0 + √(1 − ᾱ_t) noise; ``t`` an int or an (N,) tensor."""
        if noise.shape != x0.shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)} but x0 has {tuple(x0.shape)}; pass matching shapes")
        a, w = (self._bcast(v, x0) for v in self._abar_omega(t))
        return a.sqrt() * x0 + w.sqrt() * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
        """What the denoiser should output at x_t = add_noise(x0, noise, t)."""
        if self.prediction == "epsilon":
            return noise
        if self.prediction == "x0":
            return x0
        a, w = (self._bcast(v, x0) for v in self._abar_omega(t))
        return a.sqrt() * noise - w.sqrt() * x0

    def predict_x0_eps(
        self, model_output: torch.Tensor, x_t: torch.Tensor, t, prediction: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x̂0, ε̂) from the denoiser's output at (x_t, t), whatever it predicts
        (``prediction`` overrides this method's, e.g. for a student parametrised differently)."""
        prediction = self.prediction if prediction is None else prediction
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; valid: {', '.join(PREDICTIONS)}")
        a, w = (self._bcast(v, x_t) for v in self._abar_omega(t))
        sa, s1 = a.sqrt(), w.sqrt()
        if prediction == "epsilon":
            eps = model_output
            x0 = (x_t - s1 * eps) / sa
        elif prediction == "x0":
            x0 = model_output
            eps = (x_t - sa * x0) / s1
        else:  # v
            x0 = sa * x_t - s1 * model_output
            eps = s1 * x_t + sa * model_output
        return x0, eps

    def output_from_eps(self, eps: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        """The denoiser output this method expects, given ε̂ at (x_t, t) (for analytic denoisers)."""
        if self.prediction == "epsilon":
            return eps
        a, w = (self._bcast(v, x_t) for v in self._abar_omega(t))
        sa, s1 = a.sqrt(), w.sqrt()
        x0 = (x_t - s1 * eps) / sa
        if self.prediction == "x0":
            return x0
        return sa * eps - s1 * x0

    # ------------------------------------------------------------------ training
    def loss(self, model, batch):
        x0 = batch[0] if isinstance(batch, (tuple, list)) else batch
        t = torch.randint(0, self.n_steps, (x0.shape[0],), device=x0.device)
        return self.denoising_loss(model, x0, t).mean(), {}

    def denoising_loss(self, model, x0: torch.Tensor, t: torch.Tensor, *cond) -> torch.Tensor:
        """(N,) per-sample squared error of ``model(x_t, t, *cond)`` to its target at the given
        timesteps, with fresh noise (``cond``: e.g. labels for a conditional denoiser). The DDPM
        loss is its mean over t ~ U{0..T−1}; other methods pick t themselves (a curriculum)."""
        if not x0.dtype.is_floating_point:
            raise TypeError(f"{type(self).__name__} needs floating-point samples, got {x0.dtype}")
        noise = torch.randn_like(x0)
        x_t = self.add_noise(x0, noise, t)
        out = model(x_t, t, *cond)
        if out.shape != x0.shape:
            raise ValueError(
                f"the denoiser returned shape {tuple(out.shape)} for inputs of shape {tuple(x0.shape)}; "
                "it must return the same shape (e.g. wb.models.TimeMLP(dim=...))"
            )
        return F.mse_loss(out, self.target(x0, noise, t), reduction="none").reshape(x0.shape[0], -1).mean(1)

    # ------------------------------------------------------------------ sampling
    def step(
        self,
        model_output: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        *,
        t_prev: int | None = None,
        sampler: str = "ddpm",
        eta: float = 0.0,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        clip: float | None = None,
    ) -> StepOutput:
        """One reverse step from x_t (timestep ``t``) to timestep ``t_prev`` (default t − 1; −1 = clean).

        ``sampler``: ``"ddpm"`` (ancestral, respaced when t − t_prev > 1) or ``"ddim"`` (``eta``
        scales its noise: 0 deterministic, 1 ancestral). Fresh noise is ``noise`` if given, else
        drawn from ``generator``; none is drawn when the step adds none. ``clip`` clamps x̂0 to
        [−clip, clip]. Returns ``StepOutput(prev, x0)``.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
        t = int(t)
        t_prev = t - 1 if t_prev is None else int(t_prev)
        if not 0 <= t < self.n_steps or not -1 <= t_prev < t:
            raise ValueError(
                f"need 0 <= t < {self.n_steps} and -1 <= t_prev < t, got t={t}, t_prev={t_prev}"
            )
        if not eta >= 0:
            raise ValueError(f"eta must be >= 0, got {eta!r}")
        x0, eps = self.predict_x0_eps(model_output, x_t, t)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        a_t, w_t = self._abar_omega(t)
        a_p, w_p = self._abar_omega(t_prev)
        # the (respaced) β of this step, 1 − ᾱ_t/ᾱ' = (ω_t − ω')/ᾱ' with ω = 1 − ᾱ: the first form
        # cancels in float32 where ᾱ is near 1 (small t), the second where ω is (large t)
        if t_prev == t - 1:
            beta = self.betas[t]
        else:
            beta = torch.where(w_p < 0.5, (w_t - w_p) / a_p, 1 - a_t / a_p)
        if sampler == "ddpm":
            mean = (a_p.sqrt() * beta / w_t) * x0 + ((1 - beta).sqrt() * w_p / w_t) * x_t
            if t_prev < 0:
                return StepOutput(mean, x0)
            var = beta * w_p / w_t if self.variance == "fixed_small" else beta
            std = var.clamp(min=1e-20).sqrt()
        else:
            std = eta * (w_p / w_t).sqrt() * beta.sqrt()
            mean = a_p.sqrt() * x0 + (w_p - std**2).clamp(min=0).sqrt() * eps
            if eta == 0 or t_prev < 0:
                return StepOutput(mean, x0)
        if noise is None:
            noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        return StepOutput(mean + std.to(x_t.dtype) * noise, x0)

    def __repr__(self) -> str:
        return (
            f"DDPM(n_steps={self.n_steps}, schedule={self.schedule!r}, prediction={self.prediction!r}, "
            f"variance={self.variance!r}, sigma range {float(self.sigmas[0]):.3g}..{float(self.sigmas[-1]):.3g})"
        )
