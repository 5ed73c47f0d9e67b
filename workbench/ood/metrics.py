"""OOD detection metrics with the FPR@95 convention named: AUROC, AUPR-in/out, FPR@95.

Scores follow the workbench convention: **larger score = more OOD**.

Two conventions for "FPR at 95% TPR" are both common in the literature and give very different
numbers on the same scores, so every result here says which one it holds:

* ``"id-positive"`` (the default; PALM, CIDER, KNN-OOD): the in-distribution set is the positive
  class. Pick the threshold that keeps 95% of the ID samples (accept as ID when
  ``score <= t``); FPR is the fraction of OOD samples that are accepted as ID there.
* ``"ood-positive"`` (OpenOOD, pytorch-ood): OOD is the positive class. Pick the threshold that
  flags 95% of the OOD samples (``score >= t``); FPR is the fraction of ID samples flagged.

Both use the same ROC rule as scikit-learn's ``roc_curve`` (and OpenOOD): among the distinct
score values, the threshold is the strictest one whose TPR is at least 95%; samples tied with the
threshold count as positives. AUROC is the same in both conventions (the probability that an OOD
sample scores higher than an ID one, ties counting one half: the Mann-Whitney statistic, equal to
scikit-learn's trapezoidal ``roc_auc_score``). AUPR-in is average precision with ID positive
(ranked by ``-score``), AUPR-out with OOD positive (ranked by ``score``), both computed as
scikit-learn's ``average_precision_score`` (step-wise, no interpolation).

PALM's own evaluation (``util/evaluations/metrics.py``) takes the 5th percentile of the ID
scores by linear interpolation and counts OOD scores strictly beyond it; with distinct scores that
equals the ROC rule here except for a sample exactly at an interpolated threshold. Golden check
(``shared/references/palm_ood.md`` §2.4): ID ~ N(2, 1), OOD ~ N(0, 1.5), 1000 each drawn with
``numpy.random.default_rng(0)`` (ID first), scored by ``-x``: AUROC 0.8595, FPR@95 ID-positive
0.392, OOD-positive 0.701.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .._checks import check_number

CONVENTIONS = ("id-positive", "ood-positive")

__all__ = [
    "CONVENTIONS",
    "OODMetrics",
    "ROCCurve",
    "metrics",
    "roc_curve",
    "rates_at",
    "threshold_at",
    "table",
]


# ----------------------------------------------------------------------------- validation
def as_scores(s, what: str) -> np.ndarray:
    """A 1-D float64 numpy array of finite scores, or a clear error."""
    if isinstance(s, torch.Tensor):
        if s.dtype == torch.bool:
            raise TypeError(f"{what} holds booleans (flags); pass the detector's continuous scores (larger = more OOD)")
        s = s.detach().cpu().double().numpy()
    elif isinstance(s, np.ndarray) or isinstance(s, (list, tuple)):
        if np.asarray(s).dtype == bool:
            raise TypeError(f"{what} holds booleans (flags); pass the detector's continuous scores (larger = more OOD)")
        try:
            s = np.asarray(s, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{what} could not be read as numbers: {err}") from err
    else:
        raise TypeError(
            f"{what} must be a 1-D torch tensor, numpy array or list of scores, got {type(s).__name__}"
        )
    if s.ndim == 2 and 1 in s.shape:
        raise ValueError(f"{what} has shape {s.shape}; pass a flat (N,) array of scores, e.g. s.ravel()")
    if s.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of scores (one per sample), got shape {s.shape}")
    if s.size == 0:
        raise ValueError(f"{what} is empty; pass at least one score")
    bad = ~np.isfinite(s)
    if bad.any():
        raise ValueError(
            f"{what} contains {int(bad.sum())} NaN or inf score(s) (first at index "
            f"{int(np.flatnonzero(bad)[0])}); check the features the detector was given"
        )
    return s


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(
            f"unknown convention {convention!r}; valid: 'id-positive' (ID is the positive class, "
            "as PALM/CIDER/KNN-OOD report) or 'ood-positive' (as OpenOOD/pytorch-ood report)"
        )
    return convention


def _check_tpr(tpr: float) -> float:
    if isinstance(tpr, bool) or not isinstance(tpr, (int, float)) or not (0.0 < float(tpr) <= 1.0):
        raise ValueError(f"tpr must be a fraction in (0, 1], e.g. 0.95, got {tpr!r}")
    return float(tpr)


# ----------------------------------------------------------------------------- core curves
def _curve(pos: np.ndarray, neg: np.ndarray):
    """ROC of "positive when value >= t" over every distinct value, strictest first.

    Returns (fpr, tpr, thresholds, tp, fp) with a leading (0, 0) point at threshold +inf,
    exactly scikit-learn's ``roc_curve(..., drop_intermediate=False)``.
    """
    v = np.concatenate([pos, neg])
    lab = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    order = np.argsort(-v, kind="mergesort")
    v, lab = v[order], lab[order]
    last = np.r_[np.flatnonzero(np.diff(v)), v.size - 1]  # last index of every distinct value
    tp = np.cumsum(lab)[last]
    fp = (last + 1) - tp
    tp = np.r_[0.0, tp]
    fp = np.r_[0.0, fp]
    thr = np.r_[np.inf, v[last]]
    return fp / neg.size, tp / pos.size, thr, tp, fp


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(pos > neg) + 1/2 P(pos == neg), from average ranks (Mann-Whitney U)."""
    v = np.concatenate([pos, neg])
    _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    r = avg_rank[inv]
    u = r[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    _, tpr, _, tp, fp = _curve(pos, neg)
    precision = tp[1:] / (tp[1:] + fp[1:])
    return float(np.sum(np.diff(tpr) * precision))


def _fpr_at(pos: np.ndarray, neg: np.ndarray, level: float) -> tuple[float, float]:
    fpr, tpr, thr, _, _ = _curve(pos, neg)
    i = int(np.argmax(tpr >= level))
    return float(fpr[i]), float(thr[i])


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class OODMetrics:
    """Detection metrics of one detector on one (ID, OOD) pair. All rates are fractions.

    ``fpr95`` is given in ``convention`` ("id-positive" unless asked otherwise);
    ``fpr95_id_positive`` and ``fpr95_ood_positive`` hold both. ``threshold`` is the score
    threshold (larger = more OOD) behind ``fpr95``: "id-positive" accepts ``score <= threshold``
    as ID, "ood-positive" flags ``score >= threshold`` as OOD.
    """

    auroc: float
    fpr95: float
    convention: str
    aupr_in: float
    aupr_out: float
    fpr95_id_positive: float
    fpr95_ood_positive: float
    threshold: float
    tpr: float
    n_id: int
    n_ood: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __repr__(self) -> str:
        at = f"FPR@{self.tpr:.0%}".replace("%", "")
        other = "ood-positive" if self.convention == "id-positive" else "id-positive"
        other_v = self.fpr95_ood_positive if other == "ood-positive" else self.fpr95_id_positive
        return (
            f"OODMetrics(AUROC {self.auroc:.4f}, {at} {self.fpr95:.4f} [{self.convention}] "
            f"({other}: {other_v:.4f}), AUPR-in {self.aupr_in:.4f}, AUPR-out {self.aupr_out:.4f}, "
            f"n_id={self.n_id}, n_ood={self.n_ood})"
        )


@dataclass(frozen=True, eq=False)
class ROCCurve:
    """A ROC curve in one convention: ``fpr``, ``tpr`` and the OOD-score ``thresholds``.

    "ood-positive": point i flags ``score >= thresholds[i]`` as OOD (TPR = OOD flagged,
    FPR = ID flagged). "id-positive": point i accepts ``score <= thresholds[i]`` as ID (TPR = ID
    kept, FPR = OOD accepted). The first point (0, 0) has an infinite threshold.
    """

    fpr: torch.Tensor
    tpr: torch.Tensor
    thresholds: torch.Tensor
    convention: str
    auroc: float

    def __repr__(self) -> str:
        return f"ROCCurve({self.convention}, {self.fpr.numel()} points, AUROC {self.auroc:.4f})"


# ----------------------------------------------------------------------------- public
def metrics(scores_id, scores_ood, *, convention: str = "id-positive", tpr: float = 0.95) -> OODMetrics:
    """AUROC, FPR@95 (in ``convention``, both kept), AUPR-in and AUPR-out of OOD scores.

    ``scores_id``: scores of in-distribution test samples; ``scores_ood``: of OOD samples; larger
    = more OOD. ``convention``: "id-positive" (default, as PALM/CIDER/KNN-OOD report) or
    "ood-positive" (as OpenOOD/pytorch-ood report). ``tpr``: the TPR level (0.95 for FPR@95).
    """
    _check_convention(convention)
    level = _check_tpr(tpr)
    s_id = as_scores(scores_id, "scores_id")
    s_ood = as_scores(scores_ood, "scores_ood")
    # id-positive: positives = ID ranked by ID-ness (-score); ood-positive: OOD ranked by score
    fpr_id, thr_id = _fpr_at(-s_id, -s_ood, level)
    fpr_ood, thr_ood = _fpr_at(s_ood, s_id, level)
    chosen = (fpr_id, -thr_id) if convention == "id-positive" else (fpr_ood, thr_ood)
    return OODMetrics(
        auroc=_auroc(s_ood, s_id),
        fpr95=chosen[0],
        convention=convention,
        aupr_in=_average_precision(-s_id, -s_ood),
        aupr_out=_average_precision(s_ood, s_id),
        fpr95_id_positive=fpr_id,
        fpr95_ood_positive=fpr_ood,
        threshold=float(chosen[1]),
        tpr=level,
        n_id=int(s_id.size),
        n_ood=int(s_ood.size),
    )


def roc_curve(scores_id, scores_ood, *, convention: str = "id-positive") -> ROCCurve:
    """The full ROC curve (every distinct score a threshold) in ``convention``.

    Equal to scikit-learn's ``roc_curve(labels, scores, drop_intermediate=False)`` with the
    positive class named by the convention (and ``-scores`` for "id-positive").
    """
    _check_convention(convention)
    s_id = as_scores(scores_id, "scores_id")
    s_ood = as_scores(scores_ood, "scores_ood")
    if convention == "id-positive":
        fpr, tpr, thr, _, _ = _curve(-s_id, -s_ood)
        thr = -thr
    else:
        fpr, tpr, thr, _, _ = _curve(s_ood, s_id)
    return ROCCurve(
        torch.as_tensor(fpr), torch.as_tensor(tpr), torch.as_tensor(thr), convention, _auroc(s_ood, s_id)
    )


def rates_at(scores_id, scores_ood, threshold: float) -> dict[str, float]:
    """What one threshold does, in both conventions. A sample is flagged OOD when
    ``score > threshold`` and accepted as ID when ``score <= threshold``.

    Returns ``id_kept`` (TPR, id-positive), ``ood_accepted`` (FPR, id-positive), ``ood_flagged``
    (TPR, ood-positive) and ``id_flagged`` (FPR, ood-positive). At a single threshold the two
    conventions are complements (``ood_flagged = 1 - ood_accepted``); FPR@95 differs between
    them because each picks its own threshold.
    """
    s_id = as_scores(scores_id, "scores_id")
    s_ood = as_scores(scores_ood, "scores_ood")
    t = check_number(threshold, "threshold", hint="an OOD-score threshold, e.g. metrics(...).threshold")
    return {
        "threshold": t,
        "id_kept": float(np.mean(s_id <= t)),
        "ood_accepted": float(np.mean(s_ood <= t)),
        "ood_flagged": float(np.mean(s_ood > t)),
        "id_flagged": float(np.mean(s_id > t)),
    }


def threshold_at(scores_id, scores_ood, *, convention: str = "id-positive", tpr: float = 0.95) -> float:
    """The threshold t for which the rule "flag OOD when score > t" (the rule of ``rates_at``)
    is the FPR@``tpr`` operating point of ``convention``.

    "id-positive": t = ``metrics(...).threshold`` (ID accepted when score <= t). "ood-positive":
    the metric flags score >= t', so t is the float just below t'. ``rates_at`` at the returned
    t reproduces ``fpr95`` of that convention exactly.
    """
    m = metrics(scores_id, scores_ood, convention=convention, tpr=tpr)
    if convention == "id-positive":
        return float(m.threshold)
    return float(np.nextafter(m.threshold, -np.inf))


def table(results: Mapping, *, convention: str | None = None):
    """A pandas DataFrame from ``{name: OODMetrics}`` or ``{(detector, ood_set): OODMetrics}``.

    Columns: auroc, fpr95 (named with its convention), fpr95 in the other convention,
    aupr_in, aupr_out, n_id, n_ood. ``convention`` re-states ``fpr95`` in the given convention
    (both are stored in every OODMetrics; default: the first entry's convention). Rows keep the
    mapping's order.
    """
    from .._optional import require

    pd = require("pandas", "OOD result tables")
    if not isinstance(results, Mapping) or not results:
        raise TypeError("table() takes a non-empty dict {name: OODMetrics} (e.g. from wb.ood.compare)")
    for key, m in results.items():
        if not isinstance(m, OODMetrics):
            raise TypeError(f"table() values must be OODMetrics (from wb.ood.metrics), got {type(m).__name__} for {key!r}")
    conv = _check_convention(convention or next(iter(results.values())).convention)
    rows, index = [], []
    for key, m in results.items():
        first = m.fpr95_id_positive if conv == "id-positive" else m.fpr95_ood_positive
        second = m.fpr95_ood_positive if conv == "id-positive" else m.fpr95_id_positive
        other = "ood-positive" if conv == "id-positive" else "id-positive"
        rows.append({
            "auroc": m.auroc,
            f"fpr95 ({conv})": first,
            f"fpr95 ({other})": second,
            "aupr_in": m.aupr_in,
            "aupr_out": m.aupr_out,
            "n_id": m.n_id,
            "n_ood": m.n_ood,
        })
        index.append(key)
    if all(isinstance(k, tuple) and len(k) == 2 for k in index):
        idx = pd.MultiIndex.from_tuples(index, names=["detector", "ood set"])
    else:
        idx = pd.Index(index, name="detector")
    return pd.DataFrame(rows, index=idx)
