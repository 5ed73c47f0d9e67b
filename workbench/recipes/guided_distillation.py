"""Guided distillation, first stage: a scale-conditioned student against its CFG teacher.

Paper: Meng et al. 2023, "On Distillation of Guided Diffusion Models" (``wb.methods.
GuidedDistillation``). The recipe builds the student from the teacher (``guided_student``),
trains it on the teacher's guided x̂0 at scales drawn from ``scale_range``, then at every scale
of ``scales`` — including scales between the ones seen, since the student only ever saw
random ones — compares, from the *same* noise and labels:

* samples of the teacher with classifier-free guidance (two network calls a step) and of the
  student (one call): ``guidance_sweep`` for each, with ``sample_quality`` against ``test``;
* ``x0_error``: the mean squared difference of the student's x̂0 and the teacher's guided x̂0 on
  noised test points at uniform timesteps (how well the student imitates the target);
* ``sample_gap``: the mean distance between the teacher's and the student's deterministic
  (DDIM) samples from the same x_T.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .._device import model_device
from .._modes import eval_mode
from ..analyses.guidance import GuidanceSweep, guidance_sweep
from ..methods.guided_distillation import GuidedDistillation, StudentScale, guided_student
from ..training import fit


@dataclass(frozen=True, eq=False)
class GuidedDistillationResult:
    """``teacher``/``student``: ``GuidanceSweep`` at ``scales``; ``x0_error`` (S,), ``sample_gap`` (S,);
    ``seconds`` training time; ``student_model``, ``method``."""

    scales: torch.Tensor
    teacher: GuidanceSweep
    student: GuidanceSweep
    x0_error: torch.Tensor
    sample_gap: torch.Tensor
    seconds: float
    student_model: torch.nn.Module = field(repr=False)
    method: GuidedDistillation = field(repr=False)

    def __repr__(self) -> str:
        rows = "; ".join(f"s={float(s):g}: teacher prec {t.precision:.2f}/rec {t.recall:.2f}, student prec "
                         f"{u.precision:.2f}/rec {u.recall:.2f}, gap {float(g):.3f}"
                         for s, t, u, g in zip(self.scales, self.teacher.quality, self.student.quality, self.sample_gap))
        return f"GuidedDistillationResult({rows})"


@torch.no_grad()
def _x0_error(student, method, test, scale, seed):
    ddpm, dev = method.ddpm, model_device(student)
    g = torch.Generator().manual_seed(seed)
    x0, y = test.x.to(dev), test.y.to(dev)
    t = torch.randint(0, ddpm.n_steps, (len(x0),), generator=g).to(dev)
    x_t = ddpm.add_noise(x0, torch.randn(x0.shape, generator=g).to(dev), t)
    s = torch.full((len(x0),), float(scale), device=dev)
    with eval_mode(student, method):
        pred = ddpm.predict_x0_eps(student(x_t, t, y, scale=s), x_t, t)[0]
        return float(((pred - method.target(x_t, t, y, s)) ** 2).mean())


def guided_distillation(
    teacher: torch.nn.Module,
    ddpm,
    train,
    test,
    *,
    scales: Sequence[float] = (0.0, 1.0, 1.5, 2.0, 3.0),
    scale_range=(0.0, 4.0),
    steps: int = 2000,
    n: int = 1024,
    sample_steps: int = 25,
    seed: int = 0,
    **fit_options,
) -> GuidedDistillationResult:
    """Distil ``teacher`` (class-conditional, trained with ``ConditionalDDPM`` = ``ddpm``) into a
    scale-conditioned student and compare the two at each of ``scales`` (see the module docstring)."""
    for k, v in dict(lr=1e-3, batch_size=256, schedule="cosine", progress=False).items():
        fit_options.setdefault(k, v)
    student = guided_student(teacher, seed=seed + 1)
    method = GuidedDistillation(teacher, ddpm, scale_range=scale_range)
    t0 = time.perf_counter()
    fit(student, method, train, steps=steps, seed=seed, **fit_options)
    secs = time.perf_counter() - t0
    common = dict(scales=scales, n=n, steps=sample_steps, sampler="ddim", seed=seed)
    t_sw = guidance_sweep(teacher, ddpm, test, **common)
    s_sw = guidance_sweep(student, ddpm, test, guide=StudentScale, **common)
    err = torch.tensor([_x0_error(student, method, test, s, seed) for s in scales])
    gap = (t_sw.samples - s_sw.samples).norm(dim=-1).mean(1)
    return GuidedDistillationResult(torch.tensor([float(s) for s in scales]), t_sw, s_sw, err, gap, secs, student, method)
