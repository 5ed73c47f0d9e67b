"""Weight-aware distillation (WAD) under class-distribution mismatch, end to end.

The unlabelled data contain classes the labelled data do not have (label −1 in the truth). A
frozen **teacher** encoder (e.g. SimCLR-pretrained on all the images, no labels) gives every
unlabelled image a pseudo-label and a weight, then a **student** trains on the labelled images
plus the weighted pseudo-labels (``wb.methods.WeightAwareDistillation``):

* class scores s_c(x) = cosine of the teacher feature of x with its nearest labelled example of
  class c — computed with ``wb.ood.KNN(k=1)`` fitted on each class's labelled features (on the
  unit sphere the distance d to the nearest neighbour gives cos = 1 − d²/2);
* pseudo-label ŷ = argmax_c s_c;
* weight (``weights=``): ``"margin"`` — WAD's s_(1) − s_(2) (``methods.wad.margin_weights``);
  ``"none"`` — 1 for every image (plain pseudo-labelling); or a ``wb.ood`` detector (name or
  object, fitted on the labelled teacher features) — the image's rank by OOD-ness among the
  unlabelled images, w = 1 − rank / (N − 1), so the most in-distribution image weighs 1 and the
  most OOD 0 (a scale-free way to turn any detector's score into a weight; our choice, not WAD's).

The teacher is never changed; the student is trained in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import check_bool, check_int
from ..analyses.classification import predict
from ..analyses.embedding import embed
from ..methods.wad import WeightAwareDistillation, margin_weights
from ..training import fit

__all__ = ["TeacherPseudoLabels", "teacher_pseudo_labels", "WADResult", "weight_aware_distillation"]


@dataclass(frozen=True, eq=False)
class TeacherPseudoLabels:
    """What the teacher says about each unlabelled image: ``scores`` (N, C) class similarities,
    ``labels`` (N,) pseudo-labels, ``weights`` (N,) and how they were made (``weighting``)."""

    scores: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    weights: torch.Tensor = field(repr=False)
    weighting: str

    def __repr__(self) -> str:
        w = self.weights
        return (f"TeacherPseudoLabels({len(w)} images, weights {self.weighting!r}: mean {float(w.mean()):.3f}, "
                f"min {float(w.min()):.3f}, max {float(w.max()):.3f})")


def _nearest_class_cosines(z_u, z_l, y_l, n_classes: int) -> torch.Tensor:
    from .. import ood

    out = torch.full((z_u.shape[0], n_classes), float("-inf"))
    for c in range(n_classes):
        ref = z_l[y_l == c]
        if ref.shape[0] == 0:
            continue
        det = ood.KNN(k=1, normalize=True).fit_features(ref)
        dist, _ = det.kneighbors(z_u)
        out[:, c] = 1.0 - dist[:, 0].double().pow(2).float() / 2.0
    return out


def _rank_weights(scores: torch.Tensor) -> torch.Tensor:
    n = scores.shape[0]
    rank = torch.empty(n, dtype=torch.float32)
    rank[scores.argsort()] = torch.arange(n, dtype=torch.float32)
    return 1.0 - rank / max(n - 1, 1)


def teacher_pseudo_labels(teacher: nn.Module, labelled, unlabelled, *, weights="margin",
                          n_classes: int | None = None, normalize: bool = False) -> TeacherPseudoLabels:
    """Pseudo-labels and weights of ``unlabelled`` from ``teacher``'s features (see the module
    docstring). ``labelled`` holds only known classes 0..C−1. ``normalize``: divide the weights by
    their mean, so the pseudo-label term has the same overall size as with weights 1 and only the
    *relative* weights differ (WAD's margins average ≈ 0.1 on digits, which otherwise also shrinks
    the term tenfold; the official code does not normalise)."""
    from .. import ood

    if getattr(labelled, "y", None) is None or (labelled.y < 0).any():
        raise ValueError("labelled must be a Dataset of known classes (labels 0..C-1, no -1)")
    c = int(labelled.y.max()) + 1 if n_classes is None else check_int(n_classes, "n_classes", min=2)
    z_l, z_u = embed(teacher, labelled), embed(teacher, getattr(unlabelled, "x", unlabelled))
    scores = _nearest_class_cosines(z_u, z_l, labelled.y.cpu(), c)
    labels, margin = margin_weights(scores)
    if isinstance(weights, str) and weights == "margin":
        w, name = margin.clamp_min(0), "margin"
    elif isinstance(weights, str) and weights == "none":
        w, name = torch.ones(len(labels)), "none"
    else:
        det = ood.create(weights) if isinstance(weights, str) else weights
        if not isinstance(det, ood.Detector):
            raise TypeError(f"weights must be 'margin', 'none', a wb.ood detector or its name "
                            f"({', '.join(ood.available())}), got {type(weights).__name__}")
        if isinstance(weights, str) and isinstance(det, ood.KNN):  # a name: its nearest labelled image
            det.set_params(k=1)
        det.fit_features(z_l, labelled.y.cpu())
        w, name = _rank_weights(det.predict_features(z_u)), f"rank of {det.name}"
    if check_bool(normalize, "normalize") and float(w.mean()) > 0:
        w, name = w / w.mean(), name + ", mean-normalised"
    return TeacherPseudoLabels(scores, labels, w.float(), name)


@dataclass(frozen=True, eq=False)
class WADResult:
    """A weight-aware (or plain) pseudo-label distillation: ``student``, ``history``, the
    teacher's ``pseudo`` labels and weights, ``test_accuracy`` (NaN without a test set),
    ``pseudo_accuracy`` (of the pseudo-labels of known-class images, when the truth is known)
    and ``weight_auroc`` (how well the weights separate known from unseen-class images: AUROC
    with the weight as in-distribution score; NaN when the truth has no unseen class)."""

    student: nn.Module = field(repr=False)
    history: Any = field(repr=False)
    pseudo: TeacherPseudoLabels
    test_accuracy: float
    pseudo_accuracy: float
    weight_auroc: float

    def __repr__(self) -> str:
        return (f"WADResult(weights {self.pseudo.weighting!r}: test accuracy {self.test_accuracy:.4f}, "
                f"pseudo-label accuracy (known classes) {self.pseudo_accuracy:.4f}, "
                f"weight AUROC known vs unseen {self.weight_auroc:.4f})")


def weight_aware_distillation(student: nn.Module, teacher: nn.Module, labelled, unlabelled, *,
                              weights="margin", normalize: bool = False, steps: int = 1000,
                              batch_size: int = 32, mu: int = 1,
                              lambda_u: float = 1.0, augment="auto", test=None, truth=None, seed: int = 0,
                              **fit_options) -> WADResult:
    """Teacher pseudo-labels + weights (``teacher_pseudo_labels``), then the student's fit with
    ``wb.methods.WeightAwareDistillation(mu, lambda_u, augment)`` on ``labelled``. ``truth``
    (default ``unlabelled.y``; −1 = unseen class) only scores the pseudo-labels and weights."""
    from .. import ood

    pseudo = teacher_pseudo_labels(teacher, labelled, unlabelled, weights=weights, normalize=normalize,
                                   n_classes=getattr(student, "n_classes", None))
    method = WeightAwareDistillation(lambda_u=lambda_u, mu=mu, augment=augment)
    method.set_pseudo_labels(getattr(unlabelled, "x", unlabelled), pseudo.labels, pseudo.weights)
    fit_options.setdefault("progress", False)
    hist = fit(student, method, labelled, steps=steps, batch_size=batch_size, seed=seed, **fit_options)
    truth = getattr(unlabelled, "y", None) if truth is None else torch.as_tensor(truth)
    nan = float("nan")
    p_acc = auroc = nan
    if truth is not None:
        truth = truth.cpu()
        known = truth >= 0
        p_acc = float((pseudo.labels[known] == truth[known]).double().mean()) if known.any() else nan
        if known.any() and (~known).any():
            auroc = ood.metrics(-pseudo.weights[known], -pseudo.weights[~known]).auroc
    acc = predict(student, test).accuracy if test is not None else nan
    return WADResult(student, hist, pseudo, float(acc), p_acc, auroc)
