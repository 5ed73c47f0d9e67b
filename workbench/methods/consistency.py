"""Consistency distillation of a trained DDPM teacher into a one- or few-step student.

Papers: Song, Dhariwal, Chen & Sutskever 2023, "Consistency Models" (consistency distillation,
CD); Song & Dhariwal 2023, "Improved Techniques for Training Consistency Models" (no EMA
target, pseudo-Huber distance); Luo et al. 2023, "Latent Consistency Models" (CD in the
discrete DDPM/VP parametrisation with a DDIM teacher step, as here).

The idea, in words: the teacher's probability-flow ODE (DDIM with η = 0) carries every noisy
point x_t to a clean sample. A consistency function f(x_t, t) maps every point of one ODE path
to the path's clean end, so one evaluation at pure noise is a sample. It is learned by making
f agree at adjacent points of the teacher's paths:

* timesteps t_N > … > t_1 (``n_intervals`` of them, "trailing" spacing over the teacher's
  schedule) and t_0 = −1, the clean end, where f(x, −1) = x (the boundary condition, exact by
  construction);
* draw n ~ U{0..N−1}, x0 from the data and ε; x_hi = √ᾱ x0 + √(1 − ᾱ) ε at t_hi = t_{n+1};
* one DDIM (η = 0) step of the frozen teacher from x_hi to t_lo = t_n gives x_lo
  (at t_lo = −1 this is the teacher's x̂0);
* loss = d(f_θ(x_hi, t_hi), stop-grad f_θ⁻(x_lo, t_lo)), with f_θ⁻ the same student under
  no-grad (``ema=0``, the improved-CT choice) or an exponential moving average of it
  (``ema=0.95``, the original CD choice); d is the squared error (``"l2"``) or the
  pseudo-Huber distance √(‖a − b‖² + c²) − c (``"huber"``).

``target="ode"`` replaces the bootstrap by the exact consistency target: before the first
step the teacher's DDIM path (``ode_steps`` steps plus the grid's timesteps) is run from
``bank_size`` seeded noises, and the student regresses every path's endpoint from the path's
state at a random grid timestep, loss = d(f_θ(x_{t_n}, t_n), endpoint). This is Luhman &
Luhman's (2021) distillation of the ODE map, extended from t = T to every grid time. It is
data-free (a batch only says how many pairs to draw and where) and needs no bootstrapping
through the N levels, so it converges in the few thousand CPU steps a notebook has; the
bootstrap loss propagates the boundary one level at a time and, measured here on the 5×5
grid, had not resolved any mode after 2000–6000 steps (see the issue-5 report).

f_θ(x, t) is the student network's x̂0 at (x, t), read through ``student_prediction``
(default: the teacher's parametrisation, so ``student = copy.deepcopy(teacher)`` starts as the
teacher's one-step denoiser). For one-step sampling from pure noise use ``"v"`` or ``"x0"``: with
ε-prediction, x̂0 = (x_T − √(1 − ᾱ_T) ε̂)/√ᾱ_T amplifies the student's ε error by 1/√ᾱ_T
(≈ 150 for T = 1000 linear), which a small network cannot beat.

Sampling (``sample_trajectory(student, cd, steps=k)``, sampler ``"consistency"``): k
timesteps from the teacher's schedule ("trailing"); x ← x_T; at each: x̂0 = f(x, t), then
re-noise x̂0 to the next timestep with fresh noise (the multistep consistency sampler).

Why CD and not DMD here: CD is one network and one loss, so it trains with the ordinary
``wb.fit`` loop at the cost of three forward passes per step; DMD needs a second ("fake score")
network trained online on a faster time scale, which on this CPU ran 2–5× slower per step and
was sensitive to the learning rate (diverged at lr 1e-3 in the reference notes).

Where this differs from the papers: discrete DDPM timesteps (no Karras σ grid), the boundary at
t = −1 instead of c_skip/c_out skip-scalings, a fixed number of intervals (no N(k) curriculum),
uniform weighting over intervals; the EMA target (``ema`` > 0) is kept outside ``state_dict``;
the ``"ode"`` target is not in the consistency papers (see above).
"""

from __future__ import annotations

import torch
from torch import nn

from ._few_step import FewStepSampler, teacher_ode
from .base import Method
from .ddpm import DDPM, PREDICTIONS

LOSSES = ("l2", "huber")
TARGETS = ("bootstrap", "ode")


class ConsistencyDistillation(FewStepSampler, Method):
    """Train a student denoiser ``model(x_t, t)`` to jump along a frozen DDPM teacher's ODE paths.

    Parameters
    ----------
    teacher: the trained denoiser (frozen: evaluated under no-grad, never updated).
    ddpm: the ``DDPM`` the teacher was trained with (schedule and parametrisation).
    n_intervals: N, the number of teacher-ODE intervals on the consistency grid.
    student_prediction: how to read the student's output (``"epsilon"``, ``"x0"``, ``"v"``;
        default the teacher's).
    ema: decay of the target network (0 = the current student under stop-grad).
    loss: ``"l2"`` or ``"huber"`` (``huber_c`` default 0.00054·√D).
    target: ``"bootstrap"`` (consistency distillation proper) or ``"ode"`` (regress the endpoints
        of a bank of ``bank_size`` teacher DDIM paths of ``ode_steps`` steps (default min(100, T)),
        drawn with ``seed``).
    """

    needs_labels = False

    def __init__(
        self,
        teacher: nn.Module,
        ddpm: DDPM,
        *,
        n_intervals: int = 50,
        student_prediction: str | None = None,
        ema: float = 0.0,
        loss: str = "l2",
        huber_c: float | None = None,
        target: str = "bootstrap",
        bank_size: int = 16384,
        ode_steps: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        if not isinstance(teacher, nn.Module):
            raise TypeError(f"teacher must be a trained denoiser (nn.Module), got {type(teacher).__name__}")
        if not isinstance(ddpm, DDPM):
            raise TypeError(f"ddpm must be the wb.methods.DDPM the teacher was trained with, got {type(ddpm).__name__}")
        if not isinstance(n_intervals, int) or not 1 <= n_intervals <= ddpm.n_steps:
            raise ValueError(f"n_intervals must be an int in 1..{ddpm.n_steps}, got {n_intervals!r}")
        student_prediction = ddpm.prediction if student_prediction is None else student_prediction
        if student_prediction not in PREDICTIONS:
            raise ValueError(f"unknown student_prediction {student_prediction!r}; valid: {', '.join(PREDICTIONS)}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}; valid: {', '.join(TARGETS)}")
        if not isinstance(bank_size, int) or bank_size < 1:
            raise ValueError(f"bank_size must be a positive int, got {bank_size!r}")
        ode_steps = min(100, ddpm.n_steps) if ode_steps is None else ode_steps
        if not isinstance(ode_steps, int) or not 1 <= ode_steps <= ddpm.n_steps:
            raise ValueError(f"ode_steps must be an int in 1..{ddpm.n_steps}, got {ode_steps!r}")
        self.teacher = teacher
        self.ddpm = ddpm
        self.n_intervals = n_intervals
        self.student_prediction = student_prediction
        self.ema = float(ema)
        self.loss_name = loss
        self.huber_c = huber_c
        self.target, self.bank_size, self.ode_steps, self.seed = target, bank_size, ode_steps, int(seed)
        self.register_buffer("bank_states", torch.zeros(0), persistent=False)  # (N, B, *shape) after the first loss
        self.register_buffer("bank_end", torch.zeros(0), persistent=False)  # (B, *shape)
        grid = torch.cat([ddpm.timesteps(n_intervals, "trailing"), torch.tensor([-1])])
        self.register_buffer("grid", grid)  # (N+1,) descending, ends at -1
        self._target: dict[str, torch.Tensor] | None = None

    # -------------------------------------------------------------- training
    def _f(self, model, x, t, params=None):
        out = model(x, t) if params is None else torch.func.functional_call(model, params, (x, t))
        x0, _ = self.ddpm.predict_x0_eps(out, x, t, self.student_prediction)
        return x0

    def _distance(self, a, b):
        d2 = ((a - b) ** 2).reshape(a.shape[0], -1)
        if self.loss_name == "l2":
            return d2.mean()
        c = self.huber_c if self.huber_c is not None else 0.00054 * d2.shape[1] ** 0.5
        return ((d2.sum(1) + c * c).sqrt() - c).mean()

    def _target_params(self, model):
        if self.ema == 0.0:
            return None
        cur = {k: v.detach() for k, v in model.named_parameters()}
        if self._target is None or self._target.keys() != cur.keys():
            self._target = {k: v.clone() for k, v in cur.items()}
        elif self.training:
            with torch.no_grad():
                for k, v in cur.items():
                    self._target[k].mul_(self.ema).add_(v, alpha=1 - self.ema)
        return self._target

    @torch.no_grad()
    def build_bank(self, shape, device) -> None:
        """Run the teacher's DDIM (η = 0, ``ode_steps`` steps plus the grid's timesteps) from
        ``bank_size`` seeded noises; keep the states at the grid's timesteps and the endpoints."""
        g = torch.Generator(device=device).manual_seed(self.seed)
        x = torch.randn((self.bank_size, *shape), generator=g, device=device)
        self.bank_states, self.bank_end = teacher_ode(self.teacher, self.ddpm, x, self.ode_steps, self.grid[:-1].tolist())

    def _ode_loss(self, model, x0):
        n, dev = x0.shape[0], x0.device
        if self.bank_end.numel() == 0 or self.bank_end.shape[1:] != x0.shape[1:] or self.bank_end.device != dev:
            self.build_bank(tuple(x0.shape[1:]), dev)
        idx = torch.randint(0, self.bank_size, (n,), device=dev)
        k = torch.randint(0, self.n_intervals, (n,), device=dev)
        pred = self._f(model, self.bank_states[k, idx], self.grid.to(dev)[k])
        return self._distance(pred, self.bank_end[idx]), {}

    def loss(self, model, batch):
        x0 = batch[0] if isinstance(batch, (tuple, list)) else batch
        if self.target == "ode":
            return self._ode_loss(model, x0)
        n = x0.shape[0]
        dev = x0.device
        grid = self.grid.to(dev)
        k = torch.randint(0, self.n_intervals, (n,), device=dev)
        t_hi, t_lo = grid[k], grid[k + 1]
        noise = torch.randn_like(x0)
        x_hi = self.ddpm.add_noise(x0, noise, t_hi)
        with torch.no_grad():
            t_x0, t_eps = self.ddpm.predict_x0_eps(self.teacher(x_hi, t_hi), x_hi, t_hi)
            x_lo = self.ddpm.add_noise(t_x0, t_eps, t_lo)  # DDIM (eta = 0) teacher step: √ᾱ x̂0 + √(1−ᾱ) ε̂
            clean = (t_lo < 0).reshape(-1, *([1] * (x0.ndim - 1)))
            target = self._f(model, x_lo, t_lo.clamp(min=0), self._target_params(model))
            target = torch.where(clean, x_lo, target)
        pred = self._f(model, x_hi, t_hi)
        loss = self._distance(pred, target)
        with torch.no_grad():
            teacher_gap = ((pred - t_x0) ** 2).mean()
        return loss, {"mse_to_teacher_x0": teacher_gap}
