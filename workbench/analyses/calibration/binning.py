"""Bins for calibration errors and reliability diagrams.

* ``"equal-width"``: edges ``linspace(0, 1, M + 1)``.
* ``"equal-mass"`` (adaptive): the sorted values are split into M groups of (almost) equal count
  (the first ``N mod M`` groups get one more), and each inner edge sits halfway between the last
  value of one group and the first of the next (Kumar et al.'s rule). Tied values straddling an
  edge all fall on one side, so counts can differ from N/M when values repeat.

Every bin is the half-open interval (lo, hi]: the convention of Guo et al.'s and Kumar et al.'s
code and of scikit-learn's ``calibration_curve``; a value of exactly 0 joins the first bin. Values
lying exactly on a ``linspace`` edge (0.6 is stored as 0.6000000000000001) go to whichever side
the float comparison puts them; torchmetrics uses [lo, hi) instead, so an ECE compared across
libraries must avoid edge values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..._checks import check_choice, check_int

__all__ = ["BINNINGS", "Bins", "bin_edges", "bin_stats"]

BINNINGS = ("equal-width", "equal-mass")


def bin_edges(values: torch.Tensor, n_bins: int, binning: str) -> torch.Tensor:
    """(M+1,) float64 edges from 0 to 1 for ``values`` (N,) in [0, 1]."""
    n_bins = check_int(n_bins, "n_bins", min=1)
    check_choice(binning, "binning", BINNINGS)
    if binning == "equal-width":
        return torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    v = values.double().sort().values
    n = v.numel()
    if n_bins > n:
        raise ValueError(f"equal-mass binning with n_bins={n_bins} needs at least that many values, got {n}; "
                         "pass fewer bins")
    sizes = torch.full((n_bins,), n // n_bins, dtype=torch.long)
    sizes[: n % n_bins] += 1
    ends = sizes.cumsum(0)[:-1]                      # first index of each later group
    inner = (v[ends - 1] + v[ends]) / 2              # halfway between neighbouring groups
    return torch.cat([torch.zeros(1, dtype=torch.float64), inner, torch.ones(1, dtype=torch.float64)])


@dataclass(frozen=True, eq=False)
class Bins:
    """Per-bin statistics of values against outcomes: ``edges`` (M+1,), ``counts`` (M,),
    ``mean_value`` (M,) (mean confidence / probability, NaN in empty bins), ``mean_outcome`` (M,)
    (accuracy / frequency, NaN in empty bins), ``index`` (N,) the bin of each sample."""

    edges: torch.Tensor
    counts: torch.Tensor
    mean_value: torch.Tensor
    mean_outcome: torch.Tensor
    index: torch.Tensor

    @property
    def gap(self) -> torch.Tensor:
        """|mean value - mean outcome| per bin (NaN where empty)."""
        return (self.mean_value - self.mean_outcome).abs()

    def weighted_gaps(self, norm: str = "l1") -> float:
        w = self.counts.double() / self.counts.sum()
        g = torch.nan_to_num(self.gap)
        if norm == "l1":
            return float((w * g).sum())
        if norm == "l2":
            return float((w * g.square()).sum().sqrt())
        return float(g[self.counts > 0].max())


def bin_stats(values: torch.Tensor, outcomes: torch.Tensor, edges: torch.Tensor) -> Bins:
    """Group ``values`` (N,) by the (lo, hi] bins of ``edges`` and average values and outcomes."""
    m = edges.numel() - 1
    idx = torch.searchsorted(edges[1:-1].contiguous(), values.double().contiguous(), right=False)  # (lo, hi]
    counts = torch.bincount(idx, minlength=m)
    s_v = torch.zeros(m, dtype=torch.float64).index_add_(0, idx, values.double())
    s_o = torch.zeros(m, dtype=torch.float64).index_add_(0, idx, outcomes.double())
    c = counts.double()
    nan = torch.full_like(c, float("nan"))
    return Bins(edges, counts, torch.where(counts > 0, s_v / c.clamp_min(1), nan),
                torch.where(counts > 0, s_o / c.clamp_min(1), nan), idx)
