"""What the few-step students on a DDPM teacher share: the sampler interface and the teacher's ODE.

``FewStepSampler`` is the DDPM-like interface ``sample_trajectory`` drives for a student that
predicts the clean sample in one call (a consistency or DMD student): its timesteps come from
the teacher's schedule, and a step is x̂0 = f(x_t, t) followed by re-noising x̂0 to the next
timestep with fresh noise (the multistep consistency sampler; DMD2's backward simulation uses
the same re-noising). The class using it sets ``ddpm``, ``student_prediction`` and
``SAMPLERS_``.

``teacher_ode`` runs the teacher's deterministic DDIM (η = 0) from given noise and keeps the
states at chosen timesteps and the endpoints (consistency distillation's ODE bank, DMD1's
regression pairs).
"""

from __future__ import annotations

import torch

from ._guidance import unconditional
from .ddpm import StepOutput


class FewStepSampler:
    """Mixin: the sampler interface of a one-call-per-step student on ``self.ddpm``'s schedule."""

    SAMPLERS_ = ("consistency",)

    @property
    def n_steps(self) -> int:
        return self.ddpm.n_steps

    @property
    def prediction(self) -> str:
        return self.student_prediction

    def sigma(self, t):
        return self.ddpm.sigma(t)

    def timesteps(self, steps: int | None = None, spacing: str = "trailing") -> torch.Tensor:
        """Student sampling timesteps: ``steps`` (default 1) from the teacher's schedule."""
        return self.ddpm.timesteps(1 if steps is None else steps, spacing)

    def predict_x0_eps(self, model_output, x_t, t, prediction=None):
        return self.ddpm.predict_x0_eps(model_output, x_t, t, prediction or self.student_prediction)

    def output_from_eps(self, eps, x_t, t):
        x0 = self.ddpm.predict_x0_eps(eps, x_t, t, "epsilon")[0]
        if self.student_prediction == "x0":
            return x0
        if self.student_prediction == "epsilon":
            return eps
        a, w = (self.ddpm._bcast(v, x_t) for v in self.ddpm._abar_omega(t))
        return a.sqrt() * eps - w.sqrt() * x0

    def step(self, model_output, t, x_t, *, t_prev=None, sampler=None, eta=0.0, noise=None,
             generator=None, clip=None) -> StepOutput:
        """Few-step sampling: x̂0 = f(x_t, t), then re-noise it to ``t_prev`` (−1: done)."""
        sampler = self.SAMPLERS_[0] if sampler is None else sampler
        if sampler not in self.SAMPLERS_:
            raise ValueError(f"unknown sampler {sampler!r} for {type(self).__name__}; valid: {', '.join(self.SAMPLERS_)}")
        t = int(t)
        t_prev = -1 if t_prev is None else int(t_prev)
        x0, _ = self.predict_x0_eps(model_output, x_t, t)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        if t_prev < 0:
            return StepOutput(x0, x0)
        if noise is None:
            noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        return StepOutput(self.ddpm.add_noise(x0, noise, t_prev), x0)


@torch.no_grad()
def teacher_ode(teacher, ddpm, x: torch.Tensor, ode_steps: int, record=()) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic DDIM of ``teacher`` from the states ``x`` at t = T−1 over the ``ode_steps``
    trailing timesteps plus ``record``; returns (states at ``record`` (R, N, ...), endpoints (N, ...)).
    A class-conditional teacher runs unconditionally (its null label)."""
    record = [int(t) for t in record]
    ts = sorted(set(ddpm.timesteps(ode_steps, "trailing").tolist()) | set(record), reverse=True)
    slot = {t: i for i, t in enumerate(record)}
    states = torch.empty((len(record), *x.shape), device=x.device, dtype=x.dtype)
    for i, t in enumerate(ts):
        if t in slot:
            states[slot[t]] = x
        tp = ts[i + 1] if i + 1 < len(ts) else -1
        tv = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        x = ddpm.step(unconditional(teacher, x, tv), t, x, t_prev=tp, sampler="ddim").prev
    return states, x
