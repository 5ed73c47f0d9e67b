"""Split-conformal prediction sets for classification: LAC and APS scores.

Papers: Vovk et al. (2005) and Papadopoulos et al. (2002) for split conformal; Sadinle, Lei &
Wasserman, "Least Ambiguous Set-Valued Classifiers with Bounded Error Levels" (JASA 2019) for
LAC; Romano, Sesia & Candès, "Classification with Valid and Adaptive Coverage" (NeurIPS 2020)
for APS; Angelopoulos & Bates, "A Gentle Introduction to Conformal Prediction" (2021).

In words: compute a nonconformity score s_i = S(x_i, y_i) on n calibration samples held out
from training; with k = ⌈(n+1)(1−α)⌉, q̂ is the k-th smallest s_i (q̂ = +∞ when k > n, so every
label is returned). The set C(x) = {y : S(x, y) ≤ q̂} covers the true label with probability at
least 1−α (and at most 1−α + 1/(n+1) for untied scores), over calibration and test draws, when
the samples are exchangeable.

* LAC: S(x, y) = 1 − p_y, so C(x) = {y : p_y ≥ 1 − q̂} (may be empty: the smallest sets).
* APS: sort the classes by p descending; S(x, y) = the probability mass of the classes ranked
  above y plus p_y (the inclusive cumulative mass; ties in p keep a stable order), or plus
  U·p_y with one U ~ U(0, 1) per sample when ``randomized`` (at calibration and test alike).
  The set keeps every class whose score is ≤ q̂ (the same rule at calibration and test; the
  "add classes until the mass reaches q̂" rule of some notebooks includes the crossing class and
  over-covers).

Differences from the reference notebooks: they take ``np.quantile(s, ceil((n+1)(1−α))/n,
method="higher")``, which returns the (k+1)-th smallest score whenever k < n (one order
statistic too conservative); here the exact k-th is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._checks import check_bool, check_choice, check_number, check_seed
from ..calibration._inputs import as_labels, as_probs, as_scores

__all__ = ["SCORES", "conformal_quantile", "class_scores", "SplitConformal", "split_conformal",
           "SetEvaluation", "evaluate_sets"]

SCORES = ("lac", "aps")


def conformal_quantile(scores, alpha: float) -> float:
    """The k-th smallest of ``scores`` (n,), k = ⌈(n+1)(1−α)⌉; +inf when k > n."""
    s = as_scores(scores, "scores")
    alpha = check_number(alpha, "alpha", min=0, max=1, min_open=True, max_open=True)
    n = s.numel()
    k = math.ceil((n + 1) * (1 - alpha) - 1e-12)  # guard (n+1)(1-α) landing a hair above an integer
    if k > n:
        return math.inf
    return float(s.sort().values[k - 1])


def class_scores(probs, score: str = "lac", *, randomized: bool = False, seed: int = 0) -> torch.Tensor:
    """(N, C) nonconformity scores S(x, y) of every label y for ``probs`` (N, C)."""
    p = as_probs(probs)
    check_choice(score, "score", SCORES)
    check_bool(randomized, "randomized")
    if score == "lac":
        if randomized:
            raise ValueError("randomized applies to score='aps' only; LAC has no randomisation")
        return 1 - p
    order = p.argsort(dim=1, descending=True, stable=True)               # (N, C) classes by rank
    sorted_p = p.gather(1, order)
    above = sorted_p.cumsum(1) - sorted_p                              # mass ranked strictly above
    if randomized:
        g = torch.Generator().manual_seed(check_seed(seed))
        u = torch.rand(p.shape[0], 1, generator=g, dtype=torch.float64)
        s_sorted = above + u * sorted_p
    else:
        s_sorted = above + sorted_p
    return torch.empty_like(p).scatter_(1, order, s_sorted)


@dataclass(frozen=True)
class SplitConformal:
    """A calibrated split-conformal classifier: threshold ``qhat`` on the ``score`` ("lac" or
    "aps"), miscoverage ``alpha``, calibration size ``n``. ``predict_sets(probs)`` -> (N, C) bool."""

    qhat: float
    alpha: float
    score: str
    n: int
    randomized: bool = False

    def predict_sets(self, probs, *, seed: int = 1) -> torch.Tensor:
        """(N, C) bool membership of each label in each prediction set (``seed``: the U draws of
        randomised APS at test time, independent of the calibration draws)."""
        return class_scores(probs, self.score, randomized=self.randomized, seed=seed) <= self.qhat

    def __repr__(self) -> str:
        r = ", randomized" if self.randomized else ""
        return (f"SplitConformal({self.score.upper()}{r}, alpha={self.alpha}, qhat={self.qhat:.4f}, "
                f"n={self.n}; coverage >= {1 - self.alpha:.3f} on exchangeable data)")


def split_conformal(probs, y, *, alpha: float = 0.1, score: str = "lac", randomized: bool = False,
                    seed: int = 0) -> SplitConformal:
    """Calibrate on held-out ``probs`` (n, C) and labels ``y`` (n,) — never on training data."""
    s = class_scores(probs, score, randomized=randomized, seed=seed)
    y = as_labels(y, s.shape[0], s.shape[1])
    q = conformal_quantile(s.gather(1, y[:, None]).squeeze(1), alpha)
    return SplitConformal(q, float(alpha), score, int(s.shape[0]), randomized)


@dataclass(frozen=True, eq=False)
class SetEvaluation:
    """Empirical ``coverage`` (fraction of sets holding the true label), ``mean_size``,
    ``empty`` (fraction of empty sets), ``sizes`` (N,) and ``covered`` (N,) per sample."""

    coverage: float
    mean_size: float
    empty: float
    sizes: torch.Tensor
    covered: torch.Tensor

    def __repr__(self) -> str:
        return (f"SetEvaluation(coverage={self.coverage:.4f}, mean size={self.mean_size:.3f}, "
                f"empty={self.empty:.4f}, n={self.sizes.numel()})")


def evaluate_sets(sets, y) -> SetEvaluation:
    """Coverage and sizes of (N, C) bool prediction ``sets`` against labels ``y`` (N,)."""
    sets = torch.as_tensor(sets).detach().cpu()
    if sets.dtype != torch.bool or sets.ndim != 2:
        raise TypeError(f"sets must be an (N, C) bool tensor (from predict_sets), got {sets.dtype} {tuple(sets.shape)}")
    y = as_labels(y, sets.shape[0], sets.shape[1])
    covered = sets.gather(1, y[:, None]).squeeze(1)
    sizes = sets.sum(1)
    return SetEvaluation(float(covered.double().mean()), float(sizes.double().mean()),
                         float((sizes == 0).double().mean()), sizes, covered)
