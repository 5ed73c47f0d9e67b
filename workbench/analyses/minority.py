"""The minority score of Um, Lee & Ye (ICLR 2024, "Don't Play Favorites: Minority Guidance for
Diffusion Models"; official code soobin-um/minority-guidance, ``construct_ms_dataset.py``).

For each clean sample x0: noise it to one fixed timestep t, x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, read
the denoiser's Tweedie estimate x̂0 = E[x0 | x_t], and measure how far it lands from x0; the
score is the mean distance over ``n_draws`` noise draws. Samples in low-density regions are
reconstructed badly (the posterior mean is pulled toward the common modes), so a high score
means a minority sample. ``minority_labels`` bins the scores into L quantile classes
(bin L − 1 = the highest scores), the labels a minority classifier is trained on
(``wb.methods.NoisyClassification``) before ``wb.methods.MinorityGuidance`` steers sampling.

Defaults follow the official code: t at 60 of 100 respaced steps (the fraction 0.605 of the
schedule: ``t_fraction``), 5 draws, L = 100 bins in the paper (fewer suit a toy set).
Differences: the squared L2 distance ‖x0 − x̂0‖² (summed over features) replaces LPIPS, and x̂0
is not clipped unless ``clip`` is given (the official code clips to [−1, 1] by default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from .._checks import check_int, check_number, check_seed
from .._device import model_device
from .._modes import eval_mode
from .diffusion import _check_ddpm


@dataclass(frozen=True, eq=False)
class MinorityScores:
    """``score`` (N,) the minority score of each sample; ``labels`` (N,) its quantile bin
    (0 = most typical, ``n_bins`` − 1 = rarest); ``thresholds`` (n_bins − 1,) the bin edges;
    ``t`` the timestep used; ``n_draws`` noise draws per sample."""

    score: torch.Tensor
    labels: torch.Tensor
    thresholds: torch.Tensor
    t: int
    n_draws: int

    @property
    def n_bins(self) -> int:
        return len(self.thresholds) + 1

    def dataset(self, data):
        """``data`` with its labels replaced by the minority bins (to train the minority classifier)."""
        return replace(data, y=self.labels.to(data.x.device), classes=tuple(f"bin {i}" for i in range(self.n_bins)),
                       name=f"{data.name} [minority bins]")

    def __repr__(self) -> str:
        q = torch.quantile(self.score, torch.tensor([0.1, 0.5, 0.9]))
        return (f"MinorityScores(n={len(self.score)}, t={self.t}, {self.n_draws} draws, {self.n_bins} bins; "
                f"score 10/50/90% {q[0]:.3g}/{q[1]:.3g}/{q[2]:.3g})")


def minority_labels(score: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantile bins of ``score``: (labels (N,), thresholds (n_bins − 1,)); a score equal to a
    threshold goes to the lower bin (the official ≤ q_i rule)."""
    check_int(n_bins, "n_bins", min=2)
    score = torch.as_tensor(score).double()
    q = torch.quantile(score, torch.arange(1, n_bins, dtype=torch.float64) / n_bins)
    return torch.bucketize(score, q, right=False), q.float()


@torch.no_grad()
def minority_score(
    denoiser: nn.Module,
    ddpm,
    data,
    *,
    t: int | None = None,
    t_fraction: float = 0.605,
    n_draws: int = 5,
    n_bins: int = 10,
    clip: float | None = None,
    seed: int = 0,
    batch_size: int = 4096,
) -> MinorityScores:
    """Minority scores of ``data``'s samples under ``denoiser`` (see the module docstring).

    ``t``: the timestep (default ``round(t_fraction · (T − 1))``); a class-conditional denoiser is
    evaluated unconditionally. Noise comes from a private generator seeded by ``seed``.
    """
    from ..methods._guidance import unconditional

    _check_ddpm(ddpm)
    x = getattr(data, "x", data)
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise TypeError("data must be a Dataset or an (N, ...) tensor of clean samples")
    check_int(n_draws, "n_draws", min=1)
    check_seed(seed)
    if t is None:
        t = round(check_number(t_fraction, "t_fraction", min=0, max=1) * (ddpm.n_steps - 1))
    t = check_int(t, "t", min=0, max=ddpm.n_steps - 1)
    dev = model_device(denoiser)
    g = torch.Generator(device=dev).manual_seed(seed)
    out = []
    with eval_mode(denoiser, ddpm):
        for i in range(0, len(x), batch_size):
            x0 = x[i:i + batch_size].to(dev).float()
            tv = torch.full((len(x0),), t, device=dev)
            acc = torch.zeros(len(x0), device=dev)
            for _ in range(n_draws):
                noise = torch.randn(x0.shape, generator=g, device=dev)
                x_t = ddpm.add_noise(x0, noise, t)
                x0_hat = ddpm.predict_x0_eps(unconditional(denoiser, x_t, tv), x_t, tv)[0]
                if clip is not None:
                    x0_hat = x0_hat.clamp(-clip, clip)
                acc += ((x0 - x0_hat) ** 2).reshape(len(x0), -1).sum(1)
            out.append(acc / n_draws)
    score = torch.cat(out).float().cpu()
    labels, thr = minority_labels(score, n_bins)
    return MinorityScores(score, labels, thr, t, n_draws)
