"""Clustering accuracy for generalised category discovery (GCD), with Hungarian matching.

Vaze, Han, Vedaldi & Zisserman, "Generalized Category Discovery" (CVPR 2022); official
``project_utils/cluster_and_log_utils.py`` (sgvaze/generalized-category-discovery at 831a645).
The evaluation is transductive: it scores the cluster ids predicted for the *unlabelled*
training samples against their true classes. Old classes are those with labelled examples;
``old_classes`` names them (the official code instead requires them re-indexed to 0..C_old−1).

The count matrix w[k, c] (samples of class c in cluster k) is matched one-to-one by the
Hungarian algorithm (``scipy.optimize.linear_sum_assignment`` on max(w) − w); unmatched
clusters count as errors, so predicting too many clusters is penalised. Conventions:

* ``"v2"`` (the official metric since the README's update, used here by default): **one** match
  over all samples and classes; All = matched-correct / N, Old = matched-correct among samples
  of old classes / their number, New likewise;
* ``"v1"`` (legacy, NCD style): separate matches on the old subset and on the new subset;
  All = (n_old·Old + n_new·New) / N. One cluster can then count for an old and a new class at
  once, so v1 is optimistic. The official scripts pass ``['v1', 'v2']`` and select checkpoints
  with the first (v1) while reporting v2: pass one convention and report it;
* ``"v2b"`` (ProtoGCD): the same single match as v2, then the mean of per-class accuracies
  (All over every class, Old over old classes, New over new ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import check_choice

__all__ = ["GCDAccuracy", "cluster_accuracy", "hungarian_match", "CONVENTIONS"]

CONVENTIONS = ("v2", "v1", "v2b")


def _as_int_array(a, name: str) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat (N,) array, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise TypeError(f"{name} must hold integer ids, got non-integer values")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def hungarian_match(y_true, y_pred) -> dict[int, int]:
    """The one-to-one map cluster id -> class that maximises the matched count."""
    from scipy.optimize import linear_sum_assignment

    t, p = _as_int_array(y_true, "y_true"), _as_int_array(y_pred, "y_pred")
    classes, t_idx = np.unique(t, return_inverse=True)
    clusters, p_idx = np.unique(p, return_inverse=True)
    w = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(w, (p_idx, t_idx), 1)
    rows, cols = linear_sum_assignment(w.max() - w)
    return {int(clusters[r]): int(classes[c]) for r, c in zip(rows, cols)}


@dataclass(frozen=True, eq=False)
class GCDAccuracy:
    """``all``, ``old``, ``new`` (fractions; NaN when a part is empty) under ``convention``;
    ``mapping``: cluster -> class of the (single, for v2/v2b) match; counts of samples."""

    all: float
    old: float
    new: float
    convention: str
    n_old: int
    n_new: int
    n_clusters: int
    mapping: dict = field(repr=False, default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {"All": self.all, "Old": self.old, "New": self.new}

    def __repr__(self) -> str:
        return (f"GCDAccuracy({self.convention}: All {self.all:.4f}, Old {self.old:.4f}, New {self.new:.4f}; "
                f"{self.n_old} old + {self.n_new} new samples, {self.n_clusters} clusters)")


def _frac(a: np.ndarray) -> float:
    return float(a.mean()) if a.size else float("nan")


def cluster_accuracy(y_true, y_pred, old_classes, *, convention: str = "v2") -> GCDAccuracy:
    """GCD accuracy of cluster ids ``y_pred`` against classes ``y_true`` (module docstring).

    ``old_classes``: the labelled classes (a list of class ids); every other class is new.
    """
    check_choice(convention, "convention", CONVENTIONS)
    t, p = _as_int_array(y_true, "y_true"), _as_int_array(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.shape[0]} and {p.shape[0]}")
    if t.size == 0:
        raise ValueError("nothing to score: y_true is empty")
    if isinstance(old_classes, (int, np.integer)) or old_classes is None:
        raise TypeError(f"old_classes must be a list of class ids (the labelled classes), got {old_classes!r}")
    old = np.isin(t, _as_int_array(np.asarray(list(old_classes)), "old_classes"))
    n_clusters = int(np.unique(p).size)
    if convention == "v1":
        accs = []
        for m in (old, ~old):
            if m.any():
                mp = hungarian_match(t[m], p[m])
                accs.append(_frac(np.array([mp.get(int(k), -1) for k in p[m]]) == t[m]))
            else:
                accs.append(float("nan"))
        o, n = accs
        parts = [(old.sum(), o), ((~old).sum(), n)]
        a = sum(c * v for c, v in parts if c) / t.size
        return GCDAccuracy(a, o, n, "v1", int(old.sum()), int((~old).sum()), n_clusters, {})
    mapping = hungarian_match(t, p)
    right = np.array([mapping.get(int(k), -1) for k in p]) == t
    if convention == "v2":
        return GCDAccuracy(_frac(right), _frac(right[old]), _frac(right[~old]), "v2",
                           int(old.sum()), int((~old).sum()), n_clusters, mapping)
    per_class = {int(c): _frac(right[t == c]) for c in np.unique(t)}
    old_set = {int(c) for c in np.unique(t[old])}

    def mean(keys):
        vals = [per_class[c] for c in keys]
        return float(np.mean(vals)) if vals else float("nan")

    return GCDAccuracy(mean(per_class), mean(old_set), mean(set(per_class) - old_set), "v2b",
                       int(old.sum()), int((~old).sum()), n_clusters, mapping)
