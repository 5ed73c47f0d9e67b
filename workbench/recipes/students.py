"""Few-step students of one diffusion teacher on the same quality table.

Trains, from one frozen teacher (a ``DDPM`` denoiser), the students the workbench has:

* ``"cd"``: consistency distillation (``ConsistencyDistillation``, ODE-endpoint target);
* ``"ct"``: improved consistency training (``ConsistencyTraining``, no teacher at all: it
  learns from the data, the teacher only sets the comparison);
* ``"dmd"``: distribution matching distillation (``DMD``, with DMD v1's regression loss);
* ``"dmd-<f>"``: DMD with an f-divergence weighting, e.g. ``"dmd-js"``;

and scores every student at 1, 2 and 4 steps, and the teacher with DDIM at the same step counts
and with its full ancestral sampler, by ``sample_quality`` against held-out data (energy
distance, MMD, k-NN precision/recall, mode coverage for data with known modes).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .._config import build
from .._device import model_device
from ..analyses.diffusion import sample_trajectory
from ..analyses.diffusion_quality import SampleQuality, sample_quality
from ..methods.consistency import ConsistencyDistillation
from ..methods.consistency_training import ConsistencyTraining
from ..methods.dmd import DIVERGENCES, DMD
from ..training import fit


@dataclass(frozen=True, eq=False)
class StudentTable:
    """``quality``: row name ("teacher DDIM-2", "dmd 1-step", ...) -> ``SampleQuality``;
    ``seconds``: training time per student; ``students``: name -> (model, method)."""

    quality: dict
    seconds: dict
    students: dict = field(repr=False)
    steps: int = 0

    def rows(self, key: str = "energy") -> dict:
        return {k: getattr(q, key) for k, q in self.quality.items()}

    def __repr__(self) -> str:
        e = ", ".join(f"{k}: {q.energy:.4f}" for k, q in self.quality.items())
        return f"StudentTable({self.steps} training steps each; energy distance: {e})"


def _fresh(teacher, seed):
    cfg = dict(teacher.config)
    cfg["seed"] = seed
    return build(type(teacher).__name__, cfg).to(model_device(teacher))


def _student(name, teacher, ddpm, steps, data_std, seed):
    if name == "cd":
        return ConsistencyDistillation(teacher, ddpm, n_intervals=20, student_prediction="x0", target="ode",
                                       bank_size=8192, seed=seed)
    if name == "ct":
        return ConsistencyTraining(steps, sigma_max=40.0, sigma_data=data_std)
    if name == "dmd" or (name.startswith("dmd-") and name[4:] in DIVERGENCES):
        return DMD(teacher, ddpm, divergence=name[4:] if "-" in name else "rkl", n_pairs=4096, seed=seed)
    raise ValueError(f"unknown student {name!r}; valid: cd, ct, dmd, dmd-<f> with f in {DIVERGENCES}")


def student_table(
    teacher: torch.nn.Module,
    ddpm,
    train,
    test,
    *,
    students: Sequence[str] = ("cd", "ct", "dmd"),
    steps: int = 3000,
    eval_steps: Sequence[int] = (1, 2, 4),
    n: int = 2000,
    seed: int = 0,
    **fit_options,
) -> StudentTable:
    """Train each student from a fresh copy of the teacher's architecture (``teacher.config``,
    seed + 1) for ``steps`` steps and score all of them with the teacher (see the module docstring).
    ``fit_options`` go to ``wb.fit`` (default lr 1e-3, batch 512, cosine schedule)."""
    for k, v in dict(lr=1e-3, batch_size=512, schedule="cosine", progress=False).items():
        fit_options.setdefault(k, v)
    quality: dict[str, SampleQuality] = {}
    for k in eval_steps:
        tr = sample_trajectory(teacher, ddpm, n=n, sampler="ddim", steps=k, seed=seed + 1, record_every=None)
        quality[f"teacher DDIM-{k}"] = sample_quality(tr, test, seed=seed)
    tr = sample_trajectory(teacher, ddpm, n=n, sampler="ddpm", seed=seed + 1, record_every=None)
    quality[f"teacher DDPM-{ddpm.n_steps}"] = sample_quality(tr, test, seed=seed)
    data_std = float(train.x.std())
    made, secs = {}, {}
    for name in students:
        model = _fresh(teacher, seed + 1)
        method = _student(name, teacher, ddpm, steps, data_std, seed)
        t0 = time.perf_counter()
        fit(model, method, train, steps=steps, seed=seed, **fit_options)
        secs[name] = time.perf_counter() - t0
        made[name] = (model, method)
        for k in eval_steps:
            tr = sample_trajectory(model, method, n=n, steps=k, seed=seed + 1, record_every=None)
            quality[f"{name} {k}-step"] = sample_quality(tr, test, seed=seed)
    return StudentTable(quality, secs, made, steps)
