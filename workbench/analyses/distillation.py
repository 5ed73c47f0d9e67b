"""Teacher–student diagnostics: how much of the teacher did the student take, and where?

Definitions (all results are frozen dataclasses of detached CPU tensors / floats):

* **agreement**: the fraction of samples where teacher and student predict the same class
  (argmax of their logits); per class, grouped by the true label (or, without labels, by the
  teacher's prediction).
* **KL(teacher ‖ student)**: Σ_c p_t,c (log p_t,c − log p_s,c) per sample with
  p = softmax(logits / T), averaged over samples (and per class). T = 1 by default; KD's own
  temperature shows how well the soft targets were matched.
* **representation similarity**: linear CKA and relative representations of the two models'
  features (``workbench.analyses.similarity``, where they are defined).
* **linear probe / k-NN accuracy** of each model's features: ``wb.analyses.linear_probe_accuracy``
  and ``knn_accuracy`` (``workbench.analyses.representation``).

``teacher_student_report`` gathers all of them for one pair, ``reports_table`` lays several
reports side by side, and ``distillation_trajectory`` follows students (training snapshots or
named models) against the teacher on aligned 2-D maps.

Related modules: ``workbench.analyses.batchnorm`` (a random teacher's batch-norm statistics
measured on the data), ``workbench.analyses.kernel_distillation`` (the closed form of
self-distillation in kernel ridge regression) and ``workbench.recipes`` (self-distillation
generations, which train models and so are a recipe, not an analysis).
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .embedding import _as_items, embed
from .representation import knn_accuracy, linear_probe_accuracy
from .similarity import RelativeSimilarity, as_matrix, linear_cka, relative_similarity

__all__ = [
    "Agreement", "agreement", "agreement_from_logits", "TeacherStudentReport",
    "teacher_student_report", "reports_table", "DistillationTrajectory", "distillation_trajectory",
]


def _features(model_or_z, data, what: str, fn=None) -> torch.Tensor:
    """Features of ``data`` from a model (``fn`` or ``model.features``), or a given (N, d) tensor."""
    if isinstance(model_or_z, nn.Module):
        if data is None:
            raise ValueError(f"{what} is a model, so pass the data to embed")
        return embed(model_or_z, data, fn=fn)
    z = as_matrix(model_or_z, what).float()
    if data is not None and z.shape[0] != len(data):
        raise ValueError(f"{what} has {z.shape[0]} rows but the data has {len(data)} samples")
    return z


# --------------------------------------------------------------------------- agreement and KL
@dataclass(frozen=True, eq=False)
class Agreement:
    """Teacher–student agreement and KL, overall and per class (see the module docstring).

    ``per_class_*`` tensors are (C,), indexed by class; ``grouped_by`` says whether classes are
    the true labels (``"label"``) or the teacher's predictions (``"teacher"``, no labels given).
    Accuracies are NaN without labels. ``disagree`` (N,) marks the samples where they differ.
    """

    agreement: float
    kl: float
    temperature: float
    per_class_agreement: torch.Tensor
    per_class_kl: torch.Tensor
    per_class_count: torch.Tensor
    teacher_accuracy: float
    student_accuracy: float
    per_class_teacher_accuracy: torch.Tensor
    per_class_student_accuracy: torch.Tensor
    grouped_by: str
    disagree: torch.Tensor = field(repr=False)
    class_names: tuple[str, ...] | None = field(default=None, repr=False)

    @property
    def n_classes(self) -> int:
        return int(self.per_class_agreement.shape[0])

    def __repr__(self) -> str:
        acc = ""
        if not math.isnan(self.teacher_accuracy):
            acc = f", teacher acc={self.teacher_accuracy:.4f}, student acc={self.student_accuracy:.4f}"
        worst = int(torch.nan_to_num(self.per_class_agreement, nan=2.0).argmin())
        return (
            f"Agreement(agreement={self.agreement:.4f}, KL(T={self.temperature:g})={self.kl:.4g}{acc}; "
            f"lowest agreement: class {worst} ({float(self.per_class_agreement[worst]):.3f}); "
            f"n={int(self.per_class_count.sum())}, grouped by {self.grouped_by})"
        )


def agreement_from_logits(teacher_logits, student_logits, y=None, *, temperature: float = 1.0,
                          class_names=None) -> Agreement:
    """``Agreement`` from (N, C) teacher and student logits (and optional labels (N,), -1 skipped
    in the per-class and accuracy figures)."""
    t = as_matrix(teacher_logits, "teacher_logits")
    s = as_matrix(student_logits, "student_logits")
    if t.shape != s.shape:
        raise ValueError(
            f"teacher logits {tuple(t.shape)} and student logits {tuple(s.shape)} differ; both "
            "models must predict the same classes for the same samples"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    n, c = t.shape
    log_pt = F.log_softmax(t / temperature, dim=1)
    log_ps = F.log_softmax(s / temperature, dim=1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(1)  # (N,)
    pt, ps = t.argmax(1), s.argmax(1)
    same = (pt == ps).double()
    if y is not None:
        y = torch.as_tensor(y).detach().cpu().long()
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},), got {tuple(y.shape)}")
        if (y >= c).any():
            raise ValueError(
                f"labels go up to {int(y.max())} but the logits have {c} classes; pass the labels "
                "of the data the logits were computed on"
            )
        group, grouped_by = y, "label"
    else:
        group, grouped_by = pt, "teacher"
    keep = group >= 0
    g = group[keep]
    count = torch.bincount(g, minlength=c).double()

    def per_class(v):
        tot = torch.zeros(c, dtype=torch.float64).index_add_(0, g, v[keep])
        return torch.where(count > 0, tot / count.clamp_min(1), torch.full_like(tot, float("nan")))

    if y is not None:
        t_ok, s_ok = (pt == y).double(), (ps == y).double()
        t_acc = float(t_ok[keep].mean()) if keep.any() else float("nan")
        s_acc = float(s_ok[keep].mean()) if keep.any() else float("nan")
        pc_t, pc_s = per_class(t_ok).float(), per_class(s_ok).float()
    else:
        t_acc = s_acc = float("nan")
        pc_t = pc_s = torch.full((c,), float("nan"))
    return Agreement(
        agreement=float(same.mean()), kl=float(kl.mean()), temperature=float(temperature),
        per_class_agreement=per_class(same).float(), per_class_kl=per_class(kl).float(),
        per_class_count=count.long(), teacher_accuracy=t_acc, student_accuracy=s_acc,
        per_class_teacher_accuracy=pc_t, per_class_student_accuracy=pc_s, grouped_by=grouped_by,
        disagree=(pt != ps), class_names=tuple(class_names) if class_names is not None else None,
    )


def agreement(teacher: nn.Module, student: nn.Module, data, *, temperature: float = 1.0,
              batch_size: int = 1024) -> Agreement:
    """Agreement and KL(teacher ‖ student) of two classifiers over ``data`` (models untouched)."""
    from .classification import predict

    pt = predict(teacher, data, batch_size=batch_size)
    ps = predict(student, data, batch_size=batch_size)
    return agreement_from_logits(pt.logits, ps.logits, pt.y, temperature=temperature,
                                 class_names=getattr(data, "classes", None))


# --------------------------------------------------------------------------- one report
@dataclass(frozen=True, eq=False)
class TeacherStudentReport:
    """Every teacher–student diagnostic for one pair (floats; NaN where not applicable).

    ``agreement``: the ``Agreement`` on the test set (None when not computed); ``cka``: linear
    CKA of the test features; ``relative``: the ``RelativeSimilarity`` of the test features;
    ``*_probe`` / ``*_knn``: linear-probe and k-NN accuracy of each model's features (fitted on
    train, scored on test).
    """

    cka: float
    relative: RelativeSimilarity
    teacher_probe: float
    student_probe: float
    teacher_knn: float
    student_knn: float
    agreement: Agreement | None = None

    def to_dict(self) -> dict[str, float]:
        nan = float("nan")
        a = self.agreement
        return {
            "teacher_acc": a.teacher_accuracy if a else nan,
            "student_acc": a.student_accuracy if a else nan,
            "agreement": a.agreement if a else nan,
            "kl": a.kl if a else nan,
            "cka": self.cka,
            "relative_cosine": self.relative.cosine,
            "teacher_probe": self.teacher_probe,
            "student_probe": self.student_probe,
            "teacher_knn": self.teacher_knn,
            "student_knn": self.student_knn,
        }

    def __repr__(self) -> str:
        parts = []
        if self.agreement is not None:
            a = self.agreement
            parts.append(
                f"acc teacher/student={a.teacher_accuracy:.4f}/{a.student_accuracy:.4f}, "
                f"agreement={a.agreement:.4f}, KL={a.kl:.4g}"
            )
        parts.append(f"CKA={self.cka:.4f}, relative cosine={self.relative.cosine:.4f}")
        parts.append(f"probe teacher/student={self.teacher_probe:.4f}/{self.student_probe:.4f}")
        parts.append(f"kNN teacher/student={self.teacher_knn:.4f}/{self.student_knn:.4f}")
        return "TeacherStudentReport(" + "; ".join(parts) + ")"


def _is_classifier_pair(teacher, student) -> bool:
    return (
        isinstance(teacher, nn.Module) and isinstance(student, nn.Module)
        and getattr(teacher, "n_classes", None) is not None
        and getattr(teacher, "n_classes", None) == getattr(student, "n_classes", None)
    )


def teacher_student_report(
    teacher: nn.Module,
    student: nn.Module,
    train,
    test,
    *,
    predictions: bool | str = "auto",
    temperature: float = 1.0,
    anchors: int = 64,
    k: int = 20,
    fn=None,
    seed: int = 0,
) -> TeacherStudentReport:
    """All diagnostics for a teacher and a student: agreement and KL of their predictions on
    ``test`` (``predictions``: True, False, or "auto" = when both are classifiers with the same
    classes; pass False for random teachers, whose classifier heads mean nothing), linear CKA and
    relative-representation similarity of their test features, and linear-probe / k-NN
    accuracies of each model's features (fitted on ``train``, scored on ``test``).
    ``fn(model, x)``: the representation (default ``model.features``). Models are not changed.
    """
    if train.y is None or test.y is None:
        raise ValueError("teacher_student_report needs labelled train and test sets (for the probes)")
    zt_tr, zt_te = embed(teacher, train, fn=fn), embed(teacher, test, fn=fn)
    zs_tr, zs_te = embed(student, train, fn=fn), embed(student, test, fn=fn)
    if predictions == "auto":
        predictions = _is_classifier_pair(teacher, student)
    agr = agreement(teacher, student, test, temperature=temperature) if predictions else None
    return TeacherStudentReport(
        cka=linear_cka(zt_te, zs_te),
        relative=relative_similarity(zt_te, zs_te, anchors=min(anchors, len(test)), seed=seed),
        teacher_probe=linear_probe_accuracy(zt_tr, train.y, zt_te, test.y, seed=seed),
        student_probe=linear_probe_accuracy(zs_tr, train.y, zs_te, test.y, seed=seed),
        teacher_knn=knn_accuracy(zt_tr, train.y, zt_te, test.y, k=k),
        student_knn=knn_accuracy(zs_tr, train.y, zs_te, test.y, k=k),
        agreement=agr,
    )


def reports_table(reports: dict):
    """A pandas DataFrame, one row per named report (``TeacherStudentReport`` or dict)."""
    import pandas as pd

    rows = {name: (r.to_dict() if hasattr(r, "to_dict") else dict(r)) for name, r in reports.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- trajectories
@dataclass(frozen=True, eq=False)
class DistillationTrajectory:
    """Students (frames: training snapshots, or named models) seen against one teacher.

    ``teacher_coords`` (N, 2) and ``coords`` (F, N, 2): 2-D maps of the teacher's and each
    frame's features of the same N samples, aligned (Procrustes) so frames and teacher share a
    frame of reference; ``labels`` (N,); ``names`` (F,) and ``steps`` (F,) (−1 for named models);
    ``probe`` / ``knn`` (F,): accuracy of each frame's features under a linear probe / k-NN
    (fitted on a seeded stratified half of the samples, scored on the other half), and
    ``teacher_probe`` / ``teacher_knn`` the same for the teacher; ``cka`` (F,): linear CKA of
    each frame with the teacher; ``agreements``: per frame, an ``Agreement`` with the teacher
    (None where the frame is not a classifier model).
    """

    names: tuple[str, ...]
    steps: torch.Tensor
    teacher_coords: torch.Tensor
    coords: torch.Tensor
    labels: torch.Tensor | None
    probe: torch.Tensor
    knn: torch.Tensor
    cka: torch.Tensor
    teacher_probe: float
    teacher_knn: float
    projection: str
    agreements: tuple[Any, ...] = field(default=(), repr=False)
    class_names: tuple[str, ...] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        last = len(self) - 1
        return (
            f"DistillationTrajectory({len(self)} frames ({self.names[0]} … {self.names[-1]}), "
            f"{self.coords.shape[1]} points, {self.projection}; probe teacher={self.teacher_probe:.3f}, "
            f"student {float(self.probe[0]):.3f} → {float(self.probe[last]):.3f}; "
            f"CKA to teacher {float(self.cka[0]):.3f} → {float(self.cka[last]):.3f})"
        )


def _split_half(y: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded, stratified 50/50 split of indices by label."""
    g = torch.Generator().manual_seed(seed)
    first, second = [], []
    for c in torch.unique(y):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        h = idx.numel() // 2
        first.append(idx[:h])
        second.append(idx[h:])
    return torch.cat(first).sort().values, torch.cat(second).sort().values


def _frames(teacher, students, data, fn) -> tuple[list[str], list[int], list[torch.Tensor], list]:
    """``(names, steps, features (N, d) each, agreements with the teacher)`` of the frames that
    ``distillation_trajectory``'s ``students`` stands for."""
    if hasattr(students, "embeddings") and hasattr(students, "steps"):  # a SnapshotSeries
        embeddings, names = _as_items(students)
        return names, list(students.steps), [e.float() for e in embeddings], [None] * len(names)
    if isinstance(students, nn.Module):
        students = {"student": students}
    if not isinstance(students, dict) or not students:
        raise TypeError(
            "students must be a SnapshotSeries (history.snapshots), a model, or a dict "
            f"name -> model/features, got {type(students).__name__}"
        )
    frames, agreements = [], []
    for name, s in students.items():
        frames.append(_features(s, data, f"student {name!r}", fn))
        ok = isinstance(teacher, nn.Module) and _is_classifier_pair(teacher, s)
        agreements.append(agreement(teacher, s, data) if ok else None)
    return [str(n) for n in students], [-1] * len(frames), frames, agreements


def distillation_trajectory(
    teacher,
    students,
    data,
    *,
    projection: str = "pca",
    k: int = 20,
    fn=None,
    seed: int = 0,
) -> DistillationTrajectory:
    """Follow students against a teacher on ``data`` (labelled; e.g. the test split).

    ``teacher``: a model or its (N, d) features of ``data``. ``students``: a ``SnapshotSeries``
    (``history.snapshots`` of a fit that ran ``Snapshots(every=k, embed=data)``; frames are its
    steps), a model, or a dict name → model / (N, d) features. Every frame is projected
    (``projection``: "pca", "umap" or "tsne") and aligned to the teacher's map by Procrustes
    (``wb.analyses.aligned_projections``); probe and k-NN accuracies use a seeded stratified
    half of ``data`` to fit and the other half to score, so they are comparable across frames
    but not identical to a train/test probe. Models are not changed.
    """
    from .embedding import aligned_projections

    if getattr(data, "y", None) is None:
        raise ValueError("distillation_trajectory needs labelled data (the probes use the labels)")
    y = data.y.detach().cpu()
    zt = _features(teacher, data, "teacher", fn)
    names, steps, frames, agreements = _frames(teacher, students, data, fn)
    for name, z in zip(names, frames):
        if z.shape[0] != zt.shape[0]:
            raise ValueError(f"frame {name!r} has {z.shape[0]} rows but the teacher has {zt.shape[0]}")
    maps = aligned_projections([zt, *frames], projection, align="procrustes", reference="first", seed=seed)
    a, b = _split_half(y, seed)

    def scores(z):
        return (linear_probe_accuracy(z[a], y[a], z[b], y[b], seed=seed),
                knn_accuracy(z[a], y[a], z[b], y[b], k=k))

    t_probe, t_knn = scores(zt)
    per = [scores(z) for z in frames]
    return DistillationTrajectory(
        names=tuple(names),
        steps=torch.as_tensor(steps, dtype=torch.long),
        teacher_coords=maps.coords[0],
        coords=maps.coords[1:],
        labels=y,
        probe=torch.tensor([p for p, _ in per], dtype=torch.float32),
        knn=torch.tensor([q for _, q in per], dtype=torch.float32),
        cka=torch.tensor([linear_cka(zt, z) for z in frames], dtype=torch.float32),
        teacher_probe=t_probe,
        teacher_knn=t_knn,
        projection=projection,
        agreements=tuple(agreements),
        class_names=getattr(data, "classes", None),
    )


# --------------------------------------------------------------------------- names that moved
# Older code (and runs saved with older versions, whose result classes are named by module path)
# reach these through this module. Analyses moved within ``analyses`` are forwarded quietly;
# what moved to ``workbench.recipes`` (it trains models) warns, and is imported only when asked
# for, so ``analyses`` never imports ``training`` or ``recipes``.
_MOVED = {
    "relative_representation": ("workbench.analyses.similarity", False),
    "kernel_self_distillation": ("workbench.analyses.kernel_distillation", False),
    "KernelSelfDistillation": ("workbench.analyses.kernel_distillation", False),
    "batchnorm_recalibrated": ("workbench.analyses.batchnorm", False),
    "self_distillation": ("workbench.recipes", True),
    "SelfDistillationResult": ("workbench.recipes", True),
}


def moved(name: str, where: str):
    """The object ``name`` that moved out of module ``where`` (a FutureWarning when it moved to
    ``workbench.recipes``); ``AttributeError`` for any other name."""
    if name not in _MOVED:
        raise AttributeError(f"module {where!r} has no attribute {name!r}")
    module, warn = _MOVED[name]
    if warn:
        warnings.warn(
            f"{where}.{name} moved to wb.recipes.{name} (it trains models: a recipe, not an "
            f"analysis); use wb.recipes.{name}. The old name will be removed in a later version.",
            FutureWarning,
            stacklevel=3,
        )
    return getattr(importlib.import_module(module), name)


def __getattr__(name: str):
    return moved(name, __name__)
