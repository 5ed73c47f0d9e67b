"""Timestep curriculum vs uniform timestep sampling, at an equal number of training steps.

Paper: Kim, Go, Kwon & Kim, ICLR 2025, "Denoising Task Difficulty-based Curriculum for Training
Diffusion Models" (``wb.methods.DifficultyCurriculum``). The recipe trains one fresh denoiser
per schedule and seed (uniform t; the curriculum easy → hard; by default also the reverse,
hard → easy, as the control), each for the same ``steps``, and measures

* the held-out denoising loss in ``n_bins`` timestep bins (fixed noise, the same for every
  run), to see where each schedule's model is good — the paper's premise is that the low-t
  (hard) bins converge slowest;
* the quality of ``n`` samples (``sample_quality`` against ``test``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .._checks import check_int
from .._device import model_device
from .._modes import eval_mode
from ..analyses.diffusion import sample_trajectory
from ..analyses.diffusion_quality import SampleQuality, sample_quality
from ..methods.curriculum import DifficultyCurriculum
from ..methods.ddpm import DDPM
from ..training import fit

DEFAULT_SCHEDULES = {
    "uniform": None,
    "easy→hard": dict(direction="easy_to_hard"),
    "hard→easy": dict(direction="hard_to_easy"),
}


@torch.no_grad()
def loss_by_timestep(denoiser, ddpm: DDPM, data, *, n_bins: int = 10, seed: int = 0) -> torch.Tensor:
    """(n_bins,) mean held-out denoising loss over ``data`` in equal timestep bins (t uniform within
    a bin), with noise and timesteps from a generator seeded by ``seed``."""
    dev = model_device(denoiser)
    g = torch.Generator().manual_seed(seed)
    x0 = data.x.to(dev)
    edges = torch.linspace(0, ddpm.n_steps, n_bins + 1).round().long()
    out = torch.zeros(n_bins)
    with eval_mode(denoiser, ddpm):
        for b in range(n_bins):
            t = torch.randint(int(edges[b]), int(edges[b + 1]), (len(x0),), generator=g).to(dev)
            noise = torch.randn(x0.shape, generator=g).to(dev)
            x_t = ddpm.add_noise(x0, noise, t)
            out[b] = ((denoiser(x_t, t) - ddpm.target(x0, noise, t)) ** 2).mean().cpu()
    return out


@dataclass(frozen=True, eq=False)
class CurriculumComparison:
    """Per schedule name: ``quality`` (a ``SampleQuality`` per seed), ``loss_by_t`` (seeds, n_bins),
    ``final_loss`` (seeds,) the last 100 steps' mean training loss, ``stage`` (seeds,) the stage
    reached; ``bin_edges`` (n_bins + 1,) timesteps; ``seconds`` per run."""

    names: tuple[str, ...]
    quality: dict
    loss_by_t: dict
    stage: dict
    bin_edges: torch.Tensor
    steps: int
    seconds: dict

    def mean(self, key: str = "energy") -> dict:
        """Mean of one ``SampleQuality`` field over seeds, per schedule."""
        return {n: float(torch.tensor([getattr(q, key) for q in self.quality[n]]).mean()) for n in self.names}

    def __repr__(self) -> str:
        e, p = self.mean("energy"), self.mean("precision")
        rows = "; ".join(f"{n}: energy {e[n]:.4f}, precision {p[n]:.3f}" for n in self.names)
        return f"CurriculumComparison({self.steps} steps, {len(next(iter(self.quality.values())))} seed(s); {rows})"


def curriculum_comparison(
    make_denoiser: Callable[[int], torch.nn.Module],
    ddpm: DDPM,
    train,
    test,
    *,
    steps: int = 2000,
    schedules: dict | None = None,
    seeds: Sequence[int] = (0,),
    n: int = 2000,
    sample_steps: int | None = None,
    n_bins: int = 10,
    **fit_options,
) -> CurriculumComparison:
    """Train ``make_denoiser(seed)`` once per schedule and seed for ``steps`` steps and compare.

    ``schedules``: name -> None (uniform t, plain ``ddpm``) or ``DifficultyCurriculum`` options
    (default: uniform, easy→hard, hard→easy). ``fit_options`` go to ``wb.fit`` (lr, batch_size...).
    """
    check_int(steps, "steps", min=1)
    schedules = DEFAULT_SCHEDULES if schedules is None else schedules
    fit_options.setdefault("progress", False)
    quality: dict[str, list[SampleQuality]] = {k: [] for k in schedules}
    by_t, stage, secs = {k: [] for k in schedules}, {k: [] for k in schedules}, {}
    for name, opts in schedules.items():
        for seed in seeds:
            den = make_denoiser(seed)
            method = ddpm if opts is None else DifficultyCurriculum(ddpm, **opts)
            t0 = time.perf_counter()
            fit(den, method, train, steps=steps, seed=seed, **fit_options)
            secs[(name, seed)] = time.perf_counter() - t0
            by_t[name].append(loss_by_timestep(den, ddpm, test, n_bins=n_bins, seed=1234))
            stage[name].append(float(getattr(method, "stage", torch.tensor(0))))
            tr = sample_trajectory(den, ddpm, n=n, steps=sample_steps, seed=seed, record_every=None)
            quality[name].append(sample_quality(tr, test, seed=seed))
    edges = torch.linspace(0, ddpm.n_steps, n_bins + 1).round().long()
    return CurriculumComparison(tuple(schedules), {k: tuple(v) for k, v in quality.items()},
                                {k: torch.stack(v) for k, v in by_t.items()},
                                {k: torch.tensor(v) for k, v in stage.items()}, edges, steps, secs)
