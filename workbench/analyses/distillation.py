"""Teacher–student diagnostics: how much of the teacher did the student take, and where?

Definitions (all results are frozen dataclasses of detached CPU tensors / floats):

* **agreement**: the fraction of samples where teacher and student predict the same class
  (argmax of their logits); per class, grouped by the true label (or, without labels, by the
  teacher's prediction).
* **KL(teacher ‖ student)**: Σ_c p_t,c (log p_t,c − log p_s,c) per sample with
  p = softmax(logits / T), averaged over samples (and per class). T = 1 by default; KD's own
  temperature shows how well the soft targets were matched.
* **linear CKA** (Kornblith et al. 2019, "Similarity of Neural Network Representations
  Revisited"): for column-centred X (N, d1) and Y (N, d2),
  CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F). It is 1 for X against itself, invariant to orthogonal
  transforms and isotropic scaling of either side (not to arbitrary invertible maps), and
  compares representations of different widths.
* **relative representations** (Moschella et al., ICLR 2023, "Relative representations enable
  zero-shot latent space communication"): each sample is described by its cosine similarities
  to a shared set of anchor samples, r(x) = [cos(z(x), z(a_1)), ..., cos(z(x), z(a_A))]. Two
  models' relative representations of the same sample can be compared directly even when
  their absolute spaces differ by a rotation, scale or width. ``relative_similarity`` reports
  the mean cosine between the two models' r(x) and the top-1 retrieval rate (how often the
  nearest relative representation in model B of sample i's model-A one is sample i itself).
* **linear probe / k-NN accuracy** of each model's features: ``wb.analyses.linear_probe_accuracy``
  and ``knn_accuracy`` (issue 3's implementations, not duplicated here).

Training helpers that produce teachers and students (they call ``wb.fit`` on fresh models and
never change the models you pass): ``self_distillation`` (a model distilled into a fresh copy
of itself, generation after generation; Furlanello et al. 2018 "Born-Again Neural Networks")
and ``kernel_self_distillation`` (Borup & Andersen, NeurIPS 2021, "Even your Teacher Needs
Guidance": the exact closed form of self-distillation in kernel ridge regression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .embedding import embed
from .representation import knn_accuracy, linear_probe_accuracy

__all__ = [
    "Agreement", "agreement", "agreement_from_logits", "linear_cka", "relative_representation",
    "RelativeSimilarity", "relative_similarity", "TeacherStudentReport", "teacher_student_report",
    "DistillationTrajectory", "distillation_trajectory", "SelfDistillationResult",
    "self_distillation", "KernelSelfDistillation", "kernel_self_distillation", "reports_table",
    "batchnorm_recalibrated",
]


def _as_2d(z, what: str) -> torch.Tensor:
    if isinstance(z, np.ndarray):
        z = torch.from_numpy(np.ascontiguousarray(z))
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{what} must be a tensor or numpy array of shape (N, d), got {type(z).__name__}")
    if z.ndim != 2:
        raise ValueError(f"{what} must have shape (N, d), got {tuple(z.shape)}")
    z = z.detach().cpu().double()
    if not torch.isfinite(z).all():
        raise ValueError(f"{what} contains NaN or inf; check the model's features")
    return z


def _features(model_or_z, data, what: str, fn=None) -> torch.Tensor:
    """Features of ``data`` from a model (``fn`` or ``model.features``), or a given (N, d) tensor."""
    if isinstance(model_or_z, nn.Module):
        if data is None:
            raise ValueError(f"{what} is a model, so pass the data to embed")
        return embed(model_or_z, data, fn=fn)
    z = _as_2d(model_or_z, what).float()
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
    t = _as_2d(teacher_logits, "teacher_logits")
    s = _as_2d(student_logits, "student_logits")
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


# --------------------------------------------------------------------------- CKA
def linear_cka(x, y) -> float:
    """Linear CKA between two representations of the same N samples, (N, d1) and (N, d2).

    ``‖Y_cᵀ X_c‖²_F / (‖X_cᵀ X_c‖_F ‖Y_cᵀ Y_c‖_F)`` with column-centred X_c, Y_c, in float64.
    1 for identical representations (up to rotation, reflection and isotropic scale), 0 when
    every feature of one is uncorrelated with every feature of the other.
    """
    a, b = _as_2d(x, "x"), _as_2d(y, "y")
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"x has {a.shape[0]} rows but y has {b.shape[0]}; CKA compares two representations "
            "of the same samples (row i of each = sample i)"
        )
    if a.shape[0] < 2:
        raise ValueError("CKA needs at least 2 samples")
    a = a - a.mean(0)
    b = b - b.mean(0)
    # for N < d it is cheaper through the N x N Gram matrices: ‖YᵀX‖² = <XXᵀ, YYᵀ>
    if a.shape[0] < max(a.shape[1], b.shape[1]):
        ka, kb = a @ a.T, b @ b.T
        num, na, nb = (ka * kb).sum(), ka.norm(), kb.norm()
    else:
        num = (b.T @ a).pow(2).sum()
        na, nb = (a.T @ a).norm(), (b.T @ b).norm()
    if na == 0 or nb == 0:
        which = "x" if na == 0 else "y"
        raise ValueError(f"{which} is constant over the samples (all features identical), so CKA is undefined")
    return float(num / (na * nb))


# --------------------------------------------------------------------------- relative reps
def relative_representation(z, anchors) -> torch.Tensor:
    """(N, A) cosine similarities of each row of ``z`` (N, d) to each anchor (A, d)."""
    a, b = _as_2d(z, "z"), _as_2d(anchors, "anchors")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"z is {a.shape[1]}-d but the anchors are {b.shape[1]}-d; embed the anchors with the same model")
    return (F.normalize(a, dim=1) @ F.normalize(b, dim=1).T).float()


def _anchor_index(n: int, anchors, seed: int) -> torch.Tensor:
    if isinstance(anchors, (int, np.integer)) and not isinstance(anchors, bool):
        if not 1 <= anchors <= n:
            raise ValueError(f"anchors must be between 1 and the number of samples ({n}), got {anchors}")
        g = torch.Generator().manual_seed(seed)
        return torch.randperm(n, generator=g)[: int(anchors)].sort().values
    idx = torch.as_tensor(anchors).long().flatten()
    if idx.numel() == 0 or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"anchor indices must lie in [0, {n}), got {idx.tolist()[:8]}...")
    return idx


@dataclass(frozen=True, eq=False)
class RelativeSimilarity:
    """How alike two models' relative representations of the same samples are.

    ``cosine``: mean over samples of cos(r_A(x), r_B(x)); ``per_sample`` (N,) those cosines;
    ``top1``: fraction of samples whose nearest model-B relative representation (cosine) is
    their own; ``absolute_cosine``: the same mean cosine on the raw features (NaN when the
    widths differ) — the baseline that relative representations improve on; ``anchors``: the
    anchor indices used.
    """

    cosine: float
    top1: float
    absolute_cosine: float
    per_sample: torch.Tensor = field(repr=False)
    anchors: torch.Tensor = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"RelativeSimilarity(cosine={self.cosine:.4f}, top1={self.top1:.4f}, "
            f"absolute cosine={self.absolute_cosine:.4f}, anchors={self.anchors.numel()})"
        )


def relative_similarity(za, zb, *, anchors=64, seed: int = 0, center: bool = True) -> RelativeSimilarity:
    """Compare two embeddings (N, d_a), (N, d_b) of the same samples through relative reps.

    ``anchors``: how many anchor samples to draw (seeded) or their indices. ``center``: subtract
    each embedding's mean before taking cosines (Moschella et al. centre in some experiments;
    it makes post-ReLU features, which are all positive, comparable).
    """
    a, b = _as_2d(za, "za"), _as_2d(zb, "zb")
    n = a.shape[0]
    if b.shape[0] != n:
        raise ValueError(f"za has {n} rows but zb has {b.shape[0]}; pass embeddings of the same samples")
    if center:
        a, b = a - a.mean(0), b - b.mean(0)
    idx = _anchor_index(n, anchors, seed)
    ra = relative_representation(a, a[idx]).double()
    rb = relative_representation(b, b[idx]).double()
    ra_n, rb_n = F.normalize(ra, dim=1), F.normalize(rb, dim=1)
    per = (ra_n * rb_n).sum(1)
    top1 = float(((ra_n @ rb_n.T).argmax(1) == torch.arange(n)).double().mean())
    absolute = float("nan")
    if a.shape[1] == b.shape[1]:
        absolute = float((F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1).mean())
    return RelativeSimilarity(float(per.mean()), top1, absolute, per.float(), idx)


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


# --------------------------------------------------------------------------- batch-norm statistics
@torch.no_grad()
def batchnorm_recalibrated(model: nn.Module, data, *, batch_size: int | None = None) -> nn.Module:
    """A copy of ``model`` whose batch-norm running statistics are recomputed on ``data``.

    A network left at its random initialisation (a random teacher) has never updated its
    batch-norm statistics, so in eval mode it normalises with mean 0 and variance 1, which is
    not what its pre-activations on real data look like; a student trained in train mode has
    data statistics. Comparing their features fairly needs the teacher with its statistics
    measured on the data and no weight change: that is this copy. ``batch_size=None`` (default)
    measures them on the whole of ``data`` in one pass (exact mean and unbiased variance);
    a number averages the statistics of batches of that size (for data too big for one pass).
    The model you pass is not changed; a model without batch norm comes back as a copy.
    """
    import copy

    from .._device import model_device

    out = copy.deepcopy(model)
    bns = [m for m in out.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return out.eval()
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    out.train()
    for x, _ in data.loader(batch_size or len(data), shuffle=False, device=model_device(out)):
        if x.shape[0] > 1:  # batch norm needs two samples
            out(x)
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return out.eval()


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
    agreements: list = []
    if hasattr(students, "embeddings") and hasattr(students, "steps"):
        if not students.embeddings:
            raise ValueError(
                "these snapshots hold no embeddings; record them with Snapshots(every=..., embed=data)"
            )
        frames = [e.float() for e in students.embeddings]
        names = [f"step {s}" for s in students.steps]
        steps = list(students.steps)
        agreements = [None] * len(frames)
    else:
        if isinstance(students, nn.Module):
            students = {"student": students}
        if not isinstance(students, dict) or not students:
            raise TypeError(
                "students must be a SnapshotSeries (history.snapshots), a model, or a dict "
                f"name -> model/features, got {type(students).__name__}"
            )
        frames, names = [], []
        for name, s in students.items():
            frames.append(_features(s, data, f"student {name!r}", fn))
            names.append(str(name))
            ok = isinstance(teacher, nn.Module) and _is_classifier_pair(teacher, s)
            agreements.append(agreement(teacher, s, data) if ok else None)
        steps = [-1] * len(frames)
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


# --------------------------------------------------------------------------- self-distillation
@dataclass(frozen=True, eq=False)
class SelfDistillationResult:
    """Generations of self-distillation: generation 0 is the given teacher, g ≥ 1 a fresh copy
    of its architecture distilled from generation g − 1.

    ``models``: the G + 1 models (generation 0 is the teacher you passed, not a copy);
    ``histories``: the G fits; ``accuracy`` (G + 1,): accuracy on ``val``; ``agreement_previous``
    (G + 1,): agreement of each generation with the one before (NaN for 0);
    ``agreement_first``: with generation 0; ``kl_previous``: KL(previous ‖ this) at T = 1.
    """

    models: tuple[nn.Module, ...] = field(repr=False)
    histories: tuple[Any, ...] = field(repr=False)
    accuracy: torch.Tensor
    agreement_previous: torch.Tensor
    agreement_first: torch.Tensor
    kl_previous: torch.Tensor
    temperature: float
    alpha: float

    @property
    def generations(self) -> int:
        return len(self.models) - 1

    def __repr__(self) -> str:
        accs = ", ".join(f"{float(a):.4f}" for a in self.accuracy)
        return (
            f"SelfDistillationResult({self.generations} generations, T={self.temperature:g}, "
            f"alpha={self.alpha:g}; val accuracy by generation: [{accs}])"
        )


def self_distillation(
    teacher: nn.Module,
    train,
    *,
    val,
    generations: int = 3,
    temperature: float = 4.0,
    alpha: float = 0.9,
    steps: int = 1000,
    seed: int = 0,
    **fit_options,
) -> SelfDistillationResult:
    """Distil ``teacher`` into a fresh copy of its architecture, then that copy into another, ...

    Generation g ≥ 1 is built from ``teacher.config`` with ``seed = seed + g`` (a fresh random
    initialisation) and trained with ``wb.methods.KnowledgeDistillation(previous, temperature,
    alpha)`` by ``wb.fit(..., steps=steps, seed=seed + g, **fit_options)``. ``val`` (labelled)
    scores every generation. The teacher you pass is neither trained nor changed.
    """
    from .._config import build
    from ..methods.kd import KnowledgeDistillation
    from ..training import fit
    from .classification import predict

    if not isinstance(generations, int) or isinstance(generations, bool) or generations < 1:
        raise ValueError(f"generations must be a positive int, got {generations!r}")
    if not hasattr(teacher, "config"):
        raise TypeError(
            f"{type(teacher).__name__} does not record its config, so no fresh copy can be built; "
            "use a workbench model"
        )
    if getattr(val, "y", None) is None:
        raise ValueError("val must be a labelled Dataset (it scores every generation)")
    fit_options.setdefault("progress", False)
    device = next(teacher.parameters()).device
    models, hists = [teacher], []
    preds = [predict(teacher, val)]
    for g in range(1, generations + 1):
        cfg = dict(teacher.config)
        if "seed" in cfg:
            cfg["seed"] = seed + g
        student = build(type(teacher).__name__, cfg).to(device)
        method = KnowledgeDistillation(models[-1], temperature=temperature, alpha=alpha)
        hists.append(fit(student, method, train, steps=steps, seed=seed + g, **fit_options))
        models.append(student)
        preds.append(predict(student, val))
    acc = torch.tensor([p.accuracy for p in preds])
    nan = float("nan")
    agr_prev = [nan] + [agreement_from_logits(preds[i - 1].logits, preds[i].logits).agreement for i in range(1, len(preds))]
    kl_prev = [nan] + [agreement_from_logits(preds[i - 1].logits, preds[i].logits).kl for i in range(1, len(preds))]
    agr_first = [1.0] + [agreement_from_logits(preds[0].logits, preds[i].logits).agreement for i in range(1, len(preds))]
    return SelfDistillationResult(
        tuple(models), tuple(hists), acc, torch.tensor(agr_prev), torch.tensor(agr_first),
        torch.tensor(kl_prev), float(temperature), float(alpha),
    )


# --------------------------------------------------------------------------- kernel ridge closed form
@dataclass(frozen=True, eq=False)
class KernelSelfDistillation:
    """Self-distillation of kernel ridge regression, exactly (Borup & Andersen 2021).

    ``alphas`` (A,): ground-truth weights; ``train_mse`` / ``test_mse`` (A, S + 1): mean squared
    error to the (noisy) train targets and to the test targets after step τ = 0..S (τ = 0 is the
    ordinary ridge fit); ``test_pred`` (A, S + 1, M): the fits on ``x_test``;
    ``norm`` (A, S + 1): the RKHS norm of each fit (it shrinks as regularisation is amplified).
    """

    alphas: torch.Tensor
    steps: torch.Tensor
    train_mse: torch.Tensor
    test_mse: torch.Tensor
    test_pred: torch.Tensor = field(repr=False)
    norm: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor | None = field(repr=False)
    lam: float = 0.0

    def __repr__(self) -> str:
        best = ", ".join(
            f"α={float(a):g}: τ*={int(self.test_mse[i].argmin())} (MSE {float(self.test_mse[i].min()):.4g})"
            for i, a in enumerate(self.alphas)
        )
        return f"KernelSelfDistillation(λ={self.lam:g}, steps 0..{int(self.steps[-1])}; best test step {best})"


def _rbf(a: torch.Tensor, b: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.exp(-gamma * torch.cdist(a, b).pow(2))


def kernel_self_distillation(
    x,
    y,
    x_test,
    y_test=None,
    *,
    lam: float = 1e-2,
    gamma: float = 10.0,
    alphas=(0.0, 0.25, 0.5),
    steps: int = 10,
) -> KernelSelfDistillation:
    """Iterated self-distillation in kernel ridge regression with an RBF kernel, in closed form.

    Step 0 is the ridge fit f⁰ = K(K + λI)⁻¹y on (x, y); step τ refits on the targets
    α·y + (1 − α)·f^{τ−1}(x) (α = the weight of the ground truth; α = 0 is pure self-distillation,
    which amplifies the regularisation until the fit collapses to 0). With K = V diag(d) Vᵀ
    every step is exact: in the eigenbasis the fitted values are multiplied by d/(d + λ).
    ``x`` (N, p) or (N,), ``y`` (N,); ``gamma``: the RBF kernel exp(−γ‖a − b‖²).
    """
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    xt = xt[:, None] if xt.ndim == 1 else xt
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float64).flatten()
    xq = torch.as_tensor(np.asarray(x_test), dtype=torch.float64)
    xq = xq[:, None] if xq.ndim == 1 else xq
    yq = None if y_test is None else torch.as_tensor(np.asarray(y_test), dtype=torch.float64).flatten()
    if xt.shape[0] != yt.shape[0]:
        raise ValueError(f"x has {xt.shape[0]} samples but y has {yt.shape[0]}")
    if xq.shape[1] != xt.shape[1]:
        raise ValueError(f"x_test has {xq.shape[1]} features but x has {xt.shape[1]}")
    if yq is not None and yq.shape[0] != xq.shape[0]:
        raise ValueError(f"x_test has {xq.shape[0]} samples but y_test has {yq.shape[0]}")
    if not lam > 0:
        raise ValueError(f"lam (the ridge penalty) must be positive, got {lam!r}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    al = torch.as_tensor(alphas, dtype=torch.float64).flatten()
    if ((al < 0) | (al > 1)).any():
        raise ValueError(f"alphas must lie in [0, 1], got {al.tolist()}")
    k = _rbf(xt, xt, gamma)
    kq = _rbf(xq, xt, gamma)
    d, v = torch.linalg.eigh(k)
    d = d.clamp_min(0)
    y_eig = v.T @ yt                             # targets in the eigenbasis
    tr_mse, te_mse, preds, norms = [], [], [], []
    for a in al.tolist():
        target = y_eig.clone()                   # step 0 fits the labels
        rows_tr, rows_te, rows_p, rows_n = [], [], [], []
        for _ in range(steps + 1):
            coef = target / (d + lam)            # dual weights β = (K + λI)⁻¹ t, in the eigenbasis
            fit_eig = d * coef                   # = d/(d + λ) · target: the hat matrix's shrinkage
            f_train = v @ fit_eig
            f_test = kq @ (v @ coef)
            rows_tr.append(float((f_train - yt).pow(2).mean()))
            rows_te.append(float((f_test - yq).pow(2).mean()) if yq is not None else float("nan"))
            rows_p.append(f_test.float())
            rows_n.append(float(torch.sqrt((d * coef * coef).sum())))
            target = a * y_eig + (1 - a) * fit_eig
        tr_mse.append(rows_tr)
        te_mse.append(rows_te)
        preds.append(torch.stack(rows_p))
        norms.append(rows_n)
    return KernelSelfDistillation(
        alphas=al.float(), steps=torch.arange(steps + 1), train_mse=torch.tensor(tr_mse),
        test_mse=torch.tensor(te_mse), test_pred=torch.stack(preds), norm=torch.tensor(norms),
        x_test=xq.float(), y_test=None if yq is None else yq.float(), lam=float(lam),
    )
