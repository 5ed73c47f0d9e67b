"""A denoising-task-difficulty curriculum over timesteps for DDPM training.

Paper: Kim, Go, Kwon & Kim, ICLR 2025 (arXiv 2403.10348), "Denoising Task Difficulty-based
Curriculum for Training Diffusion Models". No official code was found; this follows the
paper's description as read in its abstract, a review and a third-party reimplementation.

Premise: denoising at *low* noise (small t) converges slowest — the task is "harder" there —
so train easy → hard:

* the timesteps [0, T) are split into N uniform **clusters** C_i = [(i−1)T/N, iT/N);
* stage n = 1..N samples t uniformly from the union of the n easiest clusters, i.e.
  t ∈ [T − nT/N, T) for ``direction="easy_to_hard"`` (``"hard_to_easy"`` gives [0, nT/N), the
  direction one reimplementation used; both are offered to compare);
* **pacing**: ``"adaptive"`` advances to the next stage when the smoothed training loss (an
  exponential moving average with rate ``smoothing``, restarted at each stage) has not reached a
  new minimum for ``patience`` steps; ``"fixed"`` advances every ``stage_steps`` steps. After
  stage N every timestep is in play: ordinary uniform DDPM training.

The per-sample loss is ``ddpm``'s (``DDPM.denoising_loss``); sample with that DDPM.
The stage counter and pacing state are buffers that change only while the method is in
training mode (``wb.fit`` switches it), so evaluation never advances the curriculum.

Unverified (see the reference notes): the paper's N (10 or 20) and its patience τ and smoothing;
the defaults here (N = 20, τ = 200 steps, EMA 0.98) are ours, chosen for CPU-sized runs.
"""

from __future__ import annotations

import torch

from .._checks import check_choice, check_int, check_number
from .base import Method
from .ddpm import DDPM

DIRECTIONS = ("easy_to_hard", "hard_to_easy")
PACINGS = ("adaptive", "fixed")


class DifficultyCurriculum(Method):
    """Train a denoiser with ``ddpm``'s loss, timesteps unlocked cluster by cluster (see the module docstring)."""

    needs_labels = False

    def __init__(
        self,
        ddpm: DDPM,
        *,
        n_clusters: int = 20,
        direction: str = "easy_to_hard",
        pacing: str = "adaptive",
        patience: int = 200,
        stage_steps: int = 100,
        smoothing: float = 0.98,
    ):
        super().__init__()
        if not isinstance(ddpm, DDPM):
            raise TypeError(f"ddpm must be a wb.methods.DDPM, got {type(ddpm).__name__}")
        self.ddpm = ddpm
        self.n_clusters = check_int(n_clusters, "n_clusters", min=1, max=ddpm.n_steps)
        self.direction = check_choice(direction, "direction", DIRECTIONS)
        self.pacing = check_choice(pacing, "pacing", PACINGS)
        self.patience = check_int(patience, "patience", min=1)
        self.stage_steps = check_int(stage_steps, "stage_steps", min=1)
        self.smoothing = check_number(smoothing, "smoothing", min=0, max=1, max_open=True)
        self.register_buffer("stage", torch.ones((), dtype=torch.long))  # 1..N
        self.register_buffer("stage_step", torch.zeros((), dtype=torch.long))
        self.register_buffer("since_best", torch.zeros((), dtype=torch.long))
        self.register_buffer("ema", torch.full((), float("nan")))
        self.register_buffer("best", torch.full((), float("inf")))

    def t_range(self, stage: int | None = None) -> tuple[int, int]:
        """[low, high) of the timesteps sampled at ``stage`` (default the current one)."""
        n = int(self.stage) if stage is None else check_int(stage, "stage", min=1, max=self.n_clusters)
        T, N = self.ddpm.n_steps, self.n_clusters
        width = round(n * T / N)
        return (T - width, T) if self.direction == "easy_to_hard" else (0, width)

    def loss(self, model, batch):
        x0 = batch[0] if isinstance(batch, (tuple, list)) else batch
        lo, hi = self.t_range()
        t = torch.randint(lo, hi, (x0.shape[0],), device=x0.device)
        loss = self.ddpm.denoising_loss(model, x0, t).mean()
        logs = {"stage": float(self.stage), "t_low": float(lo), "t_high": float(hi)}
        if self.training:
            self._pace(loss.detach())
        return loss, logs

    @torch.no_grad()
    def _pace(self, loss: torch.Tensor) -> None:
        if int(self.stage) >= self.n_clusters:
            return
        self.stage_step += 1
        if self.pacing == "fixed":
            if int(self.stage_step) >= self.stage_steps:
                self._advance()
            return
        v = loss.to(self.ema.dtype)
        self.ema.copy_(v if torch.isnan(self.ema) else self.smoothing * self.ema + (1 - self.smoothing) * v)
        if self.ema < self.best:
            self.best.copy_(self.ema)
            self.since_best.zero_()
        else:
            self.since_best += 1
            if int(self.since_best) >= self.patience:
                self._advance()

    def _advance(self) -> None:
        self.stage += 1
        self.stage_step.zero_()
        self.since_best.zero_()
        self.ema.fill_(float("nan"))
        self.best.fill_(float("inf"))

    def __repr__(self) -> str:
        lo, hi = self.t_range()
        return (f"DifficultyCurriculum({self.direction}, {self.n_clusters} clusters, {self.pacing} pacing, "
                f"stage {int(self.stage)}/{self.n_clusters}: t in [{lo}, {hi}) of T={self.ddpm.n_steps})")
