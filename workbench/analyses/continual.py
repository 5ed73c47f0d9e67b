"""Continual learning: the accuracy matrix, average accuracy and forgetting, and prototypes
drifting over sessions on one aligned map.

**The matrix.** R[t, j] = accuracy on task j's test samples after training on task t (T x T);
only the entries j ≤ t (tasks seen) enter the metrics. ``accuracy_matrices`` builds it, and
the finer session x class matrix, from the predictions after every session.

**Metrics** (``continual_metrics``), and the conventions the papers use:

* final average accuracy A_T = mean_j R[T−1, j];
* average incremental accuracy (AIA, OnPro's "Avg Acc") = mean_t mean_{j≤t} R[t, j];
* forgetting, ``convention=``
  - ``"chaudhry"`` (default; Chaudhry et al. 2018, "Riemannian Walk"): mean over the first T−1
    tasks of max_{j≤t<T−1} R[t, j] − R[T−1, j] (a task that improves at the end counts
    negative);
  - ``"prd"`` (the PRD repository): the max runs over all rows, the last included, so an
    improvement counts 0; mean over the first T−1 tasks;
  - ``"onpro"`` (Mai et al.'s toolkit, used by OnPro): the ``"prd"`` value summed over the first
    T−1 tasks and divided by T (the last task's 0 is averaged in): (T−1)/T of it;
* backward transfer BWT (Lopez-Paz & Ranzato 2017) = mean_{j<T−1} R[T−1, j] − R[j, j].

On the notes' hand case R = [[90, 0, 0], [60, 85, 0], [50, 70, 80]]: A_T = 66.67, AIA = 76.39,
forgetting 27.5 (Chaudhry), 18.33 (OnPro), BWT = −27.5.

**Drift** (``prototype_drift``): the embeddings of one probe set after every session, mapped in
2-D and aligned session to session (Procrustes, ``aligned_projections``), with every class's
prototype placed on the same map per session (the class mean of the probe embeddings, or
prototypes you pass, e.g. TEEN-calibrated ones); classes not yet seen are marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._checks import check_choice
from .embedding import aligned_projections

__all__ = ["ContinualMetrics", "continual_metrics", "AccuracyMatrices", "accuracy_matrices",
           "PrototypeDrift", "prototype_drift", "FORGETTING_CONVENTIONS"]

FORGETTING_CONVENTIONS = ("chaudhry", "prd", "onpro")


def _matrix(r) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(r, dtype=np.float64) if not isinstance(r, torch.Tensor) else r).double()
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 1:
        raise ValueError(f"the accuracy matrix must be square (T x T, row = after task t), got shape {tuple(m.shape)}")
    seen = torch.tril(torch.ones_like(m, dtype=torch.bool))
    if not bool(torch.isfinite(m[seen]).all()):
        raise ValueError("the accuracy matrix has NaN or inf on or below its diagonal (tasks already seen)")
    return m


@dataclass(frozen=True, eq=False)
class ContinualMetrics:
    """Metrics of an accuracy matrix ``matrix`` (T x T), in its units (fractions or percent)."""

    matrix: torch.Tensor = field(repr=False)
    final_accuracy: float
    average_incremental_accuracy: float
    forgetting: float
    backward_transfer: float
    convention: str
    task_forgetting: torch.Tensor = field(repr=False)

    def as_dict(self) -> dict[str, float]:
        return {"final accuracy": self.final_accuracy, "average incremental accuracy": self.average_incremental_accuracy,
                f"forgetting ({self.convention})": self.forgetting, "BWT": self.backward_transfer}

    def __repr__(self) -> str:
        return (f"ContinualMetrics({self.matrix.shape[0]} tasks: final {self.final_accuracy:.4g}, "
                f"AIA {self.average_incremental_accuracy:.4g}, forgetting ({self.convention}) {self.forgetting:.4g}, "
                f"BWT {self.backward_transfer:.4g})")


def continual_metrics(matrix, *, convention: str = "chaudhry") -> ContinualMetrics:
    """Average accuracy, forgetting and BWT of the accuracy matrix (module docstring)."""
    check_choice(convention, "forgetting convention", FORGETTING_CONVENTIONS)
    r = _matrix(matrix)
    t = r.shape[0]
    final = float(r[-1].mean())
    aia = float(np.mean([float(r[i, : i + 1].mean()) for i in range(t)]))
    if t == 1:
        nan = float("nan")
        return ContinualMetrics(r, final, aia, nan, nan, convention, torch.zeros(0, dtype=torch.float64))
    forget = []
    for j in range(t - 1):
        rows = r[j: t - 1, j] if convention == "chaudhry" else r[j:, j]
        forget.append(float(rows.max() - r[-1, j]))
    forget_t = torch.tensor(forget, dtype=torch.float64)
    f = float(forget_t.sum() / t) if convention == "onpro" else float(forget_t.mean())
    bwt = float(np.mean([float(r[-1, j] - r[j, j]) for j in range(t - 1)]))
    return ContinualMetrics(r, final, aia, f, bwt, convention, forget_t)


@dataclass(frozen=True, eq=False)
class AccuracyMatrices:
    """``per_task`` (S, T): accuracy on each task's samples after each session (NaN: none);
    ``per_class`` (S, C) the same per class; ``seen`` (S, C) bool: class trained by session s;
    ``tasks``: the classes of each task; ``classes`` (C,) the class ids of the columns."""

    per_task: torch.Tensor
    per_class: torch.Tensor = field(repr=False)
    seen: torch.Tensor = field(repr=False)
    tasks: tuple = field(repr=False)
    classes: torch.Tensor = field(repr=False)

    def metrics(self, convention: str = "chaudhry") -> ContinualMetrics:
        return continual_metrics(torch.nan_to_num(self.per_task, nan=0.0), convention=convention)

    def __repr__(self) -> str:
        return f"AccuracyMatrices({self.per_task.shape[0]} sessions x {len(self.tasks)} tasks, {self.classes.numel()} classes)"


def accuracy_matrices(predictions, y, tasks) -> AccuracyMatrices:
    """Session x task and session x class accuracies from ``predictions`` (S, N): the predicted
    class of every probe sample after each session; ``y`` (N,) true classes; ``tasks``: the
    classes introduced by each session, in order (S lists)."""
    p = torch.as_tensor(predictions).long().cpu()
    yy = torch.as_tensor(y).long().cpu()
    if p.ndim != 2 or p.shape[1] != yy.shape[0]:
        raise ValueError(f"predictions must be (sessions, N) with N = len(y) = {yy.shape[0]}, got {tuple(p.shape)}")
    tasks = tuple(tuple(int(c) for c in t) for t in tasks)
    if len(tasks) != p.shape[0]:
        raise ValueError(f"got {len(tasks)} tasks for {p.shape[0]} sessions of predictions")
    classes = torch.tensor(sorted({c for t in tasks for c in t}))
    right = (p == yy[None]).double()  # (S, N)
    per_class = torch.full((p.shape[0], classes.numel()), float("nan"), dtype=torch.float64)
    for k, c in enumerate(classes.tolist()):
        m = yy == c
        if bool(m.any()):
            per_class[:, k] = right[:, m].mean(1)
    per_task = torch.full((p.shape[0], len(tasks)), float("nan"), dtype=torch.float64)
    for j, t in enumerate(tasks):
        m = torch.isin(yy, torch.tensor(t))
        if bool(m.any()):
            per_task[:, j] = right[:, m].mean(1)
    seen = torch.zeros(p.shape[0], classes.numel(), dtype=torch.bool)
    for s in range(len(tasks)):
        for c in (c for t in tasks[: s + 1] for c in t):
            seen[s, classes.tolist().index(c)] = True
    return AccuracyMatrices(per_task, per_class, seen, tasks, classes)


@dataclass(frozen=True, eq=False)
class PrototypeDrift:
    """``coords`` (S, N, 2): the probe embeddings per session on aligned maps; ``prototypes``
    (S, C, 2): every class's prototype per session on the same maps (NaN where a session has
    none); ``seen`` (S, C) bool; ``classes`` (C,); ``labels`` (N,); ``names`` (S,)."""

    coords: torch.Tensor = field(repr=False)
    prototypes: torch.Tensor = field(repr=False)
    seen: torch.Tensor = field(repr=False)
    classes: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    names: tuple

    @property
    def n_sessions(self) -> int:
        return self.coords.shape[0]

    def displacement(self) -> torch.Tensor:
        """(S−1, C): how far each prototype moved on the map between consecutive sessions."""
        return (self.prototypes[1:] - self.prototypes[:-1]).norm(dim=2)


def prototype_drift(embeddings, labels, *, seen=None, prototypes=None, names=None, seed: int = 0) -> PrototypeDrift:
    """Prototypes of every class over sessions on one aligned map (module docstring).

    ``embeddings``: S tensors (N, D_s) of the same probe samples; ``labels`` (N,); ``seen``: (S, C)
    bool or per-session class lists (default: every class seen); ``prototypes``: per session a
    dict class -> (D_s,) vector (default: class means of the embeddings).
    """
    embs = [torch.as_tensor(e).float() for e in embeddings]
    yy = torch.as_tensor(labels).long().cpu()
    classes = torch.unique(yy[yy >= 0])
    s = len(embs)
    names = tuple(names) if names is not None else tuple(f"session {i}" for i in range(s))
    aligned = aligned_projections(embs, "pca", reference="chain", names=names, seed=seed)
    protos = torch.full((s, classes.numel(), 2), float("nan"))
    for i, e in enumerate(embs):
        vecs, rows = [], []
        for k, c in enumerate(classes.tolist()):
            if prototypes is not None:
                v = prototypes[i].get(c) if isinstance(prototypes[i], dict) else None
                if v is None:
                    continue
                vecs.append(torch.as_tensor(v).float())
            else:
                vecs.append(e[yy == c].mean(0))
            rows.append(k)
        if vecs:
            protos[i, rows] = aligned.transform(i, torch.stack(vecs))
    if seen is None:
        seen_t = torch.ones(s, classes.numel(), dtype=torch.bool)
    elif isinstance(seen, torch.Tensor):
        seen_t = seen.bool()
    else:
        seen_t = torch.tensor([[c in set(ss) for c in classes.tolist()] for ss in seen])
    if seen_t.shape != (s, classes.numel()):
        raise ValueError(f"seen must be ({s}, {classes.numel()}) or one class list per session")
    return PrototypeDrift(aligned.coords, protos, seen_t, classes, yy, names)
