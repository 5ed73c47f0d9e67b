"""Pseudo-labels: how many a confidence threshold keeps, how many of those are right, and where.

A semi-supervised student trains on its own (or a teacher's) predictions for unlabelled data,
kept where the confidence max_c p_c clears a threshold τ (FixMatch: 0.95). Two numbers decide
whether that helps: the **quantity** (the fraction of unlabelled samples kept) and the
**quality** (the accuracy of the kept pseudo-labels against the true labels, which the
learner never sees). Raising τ trades the first for the second.

* ``threshold_tradeoff(confidence, labels, truth, thresholds)``: quantity and quality at each
  threshold (a ``ThresholdCurve``).
* ``pseudo_label_trace(steps, confidence, labels, features, truth)``: the same over training —
  per snapshot the confidence and pseudo-label of every unlabelled sample, its 2-D map (the
  snapshot's features, PCA, aligned between snapshots) and the trade-off curve of each snapshot
  (a ``PseudoLabelTrace``, what ``wb.widgets.PseudoLabelView`` shows).

Samples whose true label is −1 (a class the labelled data do not have) can never get a right
pseudo-label: they count as wrong in the quality. Pure functions over tensors; results are
frozen dataclasses of CPU tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .embedding import aligned_projections

__all__ = ["ThresholdCurve", "threshold_tradeoff", "PseudoLabelTrace", "pseudo_label_trace", "THRESHOLDS"]

#: the default grid of thresholds
THRESHOLDS = torch.linspace(0.0, 0.99, 100)


def _vector(v, n: int | None, what: str, dtype) -> torch.Tensor:
    t = torch.as_tensor(v).detach().cpu()
    if t.ndim != 1 or (n is not None and t.shape[0] != n):
        raise ValueError(f"{what} must have shape ({n if n is not None else 'N'},), got {tuple(t.shape)}")
    return t.to(dtype)


@dataclass(frozen=True, eq=False)
class ThresholdCurve:
    """Quantity and quality of pseudo-labels kept at each threshold.

    ``thresholds`` (K,); ``quantity`` (K,): fraction of samples with confidence ≥ τ; ``quality``
    (K,): accuracy of those kept (NaN where none is kept); ``kept`` (K,): how many;
    ``n``: number of samples; ``overall``: accuracy of all pseudo-labels (τ = 0).
    """

    thresholds: torch.Tensor
    quantity: torch.Tensor
    quality: torch.Tensor
    kept: torch.Tensor
    n: int
    overall: float

    def at(self, threshold: float) -> tuple[float, float]:
        """``(quantity, quality)`` at the grid threshold nearest ``threshold``."""
        i = int((self.thresholds - float(threshold)).abs().argmin())
        return float(self.quantity[i]), float(self.quality[i])

    def __repr__(self) -> str:
        q95 = self.at(0.95)
        return (f"ThresholdCurve({len(self.thresholds)} thresholds, n={self.n}; all pseudo-labels "
                f"{self.overall:.3f} right; at τ≈0.95: {q95[0]:.3f} kept, {q95[1]:.3f} of them right)")


def threshold_tradeoff(confidence, labels, truth, thresholds=None) -> ThresholdCurve:
    """Quantity and quality of the pseudo-labels ``labels`` (N,) with ``confidence`` (N,) in
    [0, 1], scored against ``truth`` (N,) (−1 = an unseen class, always wrong), at each of
    ``thresholds`` (default ``THRESHOLDS``)."""
    conf = _vector(confidence, None, "confidence", torch.float64)
    n = conf.shape[0]
    lab = _vector(labels, n, "labels", torch.int64)
    tru = _vector(truth, n, "truth", torch.int64)
    if n == 0:
        raise ValueError("no pseudo-labels to score")
    th = (THRESHOLDS if thresholds is None else torch.as_tensor(thresholds)).double().flatten()
    right = (lab == tru).double()
    keep = conf[None, :] >= th[:, None]  # (K, N)
    kept = keep.sum(1)
    quality = (keep.double() * right).sum(1) / kept.clamp_min(1)
    quality = torch.where(kept > 0, quality, torch.full_like(quality, float("nan")))
    return ThresholdCurve(th.float(), (kept / n).float(), quality.float(), kept, n, float(right.mean()))


@dataclass(frozen=True, eq=False)
class PseudoLabelTrace:
    """Pseudo-labels of the same N unlabelled samples at F training snapshots.

    ``steps`` (F,); ``confidence``, ``labels`` (F, N); ``truth`` (N,) (−1: unseen class);
    ``coords`` (F, N, 2): each snapshot's features mapped to 2-D (aligned between snapshots);
    ``thresholds`` (K,) with ``quantity`` and ``quality`` (F, K) the trade-off curve of every
    snapshot; ``threshold``: the threshold the learner used; ``projection``: how ``coords`` was made.
    """

    steps: torch.Tensor
    confidence: torch.Tensor
    labels: torch.Tensor
    truth: torch.Tensor
    coords: torch.Tensor
    thresholds: torch.Tensor
    quantity: torch.Tensor
    quality: torch.Tensor
    threshold: float
    projection: str
    class_names: tuple[str, ...] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    @property
    def correct(self) -> torch.Tensor:
        """(F, N) True where the pseudo-label equals the true label."""
        return self.labels == self.truth[None, :]

    def kept(self, threshold: float | None = None) -> torch.Tensor:
        """(F, N) True where the confidence clears ``threshold`` (default: the learner's)."""
        return self.confidence >= (self.threshold if threshold is None else float(threshold))

    def curve(self, frame: int) -> ThresholdCurve:
        """The ``ThresholdCurve`` of snapshot ``frame``."""
        f = int(frame) % len(self)
        kept = (self.quantity[f] * self.truth.shape[0]).round().long()
        return ThresholdCurve(self.thresholds, self.quantity[f], self.quality[f], kept, int(self.truth.shape[0]),
                              float(self.correct[f].double().mean()))

    def summary(self):
        """A pandas DataFrame, one row per snapshot: step, fraction kept at the learner's
        threshold, accuracy of the kept and of all pseudo-labels, mean confidence."""
        import pandas as pd

        keep, right = self.kept().double(), self.correct.double()
        n_keep = keep.sum(1)
        return pd.DataFrame({
            "step": self.steps.tolist(),
            "kept": (n_keep / keep.shape[1]).tolist(),
            "kept accuracy": torch.where(n_keep > 0, (keep * right).sum(1) / n_keep.clamp_min(1),
                                         torch.full_like(n_keep, float("nan"))).tolist(),
            "all accuracy": right.mean(1).tolist(),
            "mean confidence": self.confidence.double().mean(1).tolist(),
        }).set_index("step")

    def __repr__(self) -> str:
        keep = self.kept()[-1]
        right = f"{float(self.correct[-1][keep].double().mean()):.3f} of them right" if keep.any() else "none kept"
        return (f"PseudoLabelTrace({len(self)} snapshots (steps {int(self.steps[0])}…{int(self.steps[-1])}), "
                f"{self.truth.shape[0]} unlabelled samples, τ={self.threshold:g}; last: "
                f"{float(keep.double().mean()):.3f} kept, {right})")


def pseudo_label_trace(steps, confidence, labels, features=None, truth=None, *, threshold: float = 0.95,
                       coords=None, thresholds=None, projection: str = "pca", seed: int = 0,
                       class_names=None) -> PseudoLabelTrace:
    """Gather per-snapshot pseudo-labels into a ``PseudoLabelTrace``.

    ``steps``: F snapshot steps; ``confidence``, ``labels``: F tensors (N,) (or (F, N));
    ``features``: F feature tensors (N, d) mapped to aligned 2-D maps with ``projection``
    (``wb.analyses.aligned_projections``), or ``coords`` (F, N, 2) given directly; ``truth``
    (N,): the true labels (−1 = unseen class), used only to score.
    """
    conf = torch.stack([torch.as_tensor(c).detach().cpu().float() for c in confidence])
    lab = torch.stack([torch.as_tensor(c).detach().cpu().long() for c in labels])
    st = torch.as_tensor(list(steps)).long()
    f, n = conf.shape
    if lab.shape != (f, n) or st.shape != (f,):
        raise ValueError(f"steps ({tuple(st.shape)}), confidence ({f}, {n}) and labels {tuple(lab.shape)} disagree")
    if truth is None:
        raise ValueError("truth (the unlabelled samples' true labels, used only to score) is needed")
    tru = _vector(truth, n, "truth", torch.int64)
    if coords is None:
        if features is None:
            raise ValueError("pass features (F tensors (N, d)) or coords (F, N, 2) for the map")
        xy = aligned_projections(list(features), method=projection, seed=seed).coords
    else:
        xy = torch.as_tensor(coords).float()
        projection = "given"
    if xy.shape != (f, n, 2):
        raise ValueError(f"coords must be ({f}, {n}, 2), got {tuple(xy.shape)}")
    curves = [threshold_tradeoff(conf[i], lab[i], tru, thresholds) for i in range(f)]
    return PseudoLabelTrace(
        st, conf, lab, tru, xy.float(), curves[0].thresholds, torch.stack([c.quantity for c in curves]),
        torch.stack([c.quality for c in curves]), float(threshold), projection,
        tuple(class_names) if class_names is not None else None,
    )
