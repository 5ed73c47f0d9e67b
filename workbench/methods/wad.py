"""Weight-aware distillation under class-distribution mismatch (WAD; "Semi-Supervised Learning
via Weight-aware Distillation under Class Distribution Mismatch", ICCV 2023; official code in
RUC-DWBI-ML/research, ``WAD-master/``).

The unlabelled data contain classes the labelled data do not. A plain pseudo-labeller assigns
every unknown image to *some* known class, and the student learns those wrong labels. WAD lets
a teacher's representation decide how much each unlabelled image may teach:

* **teacher scores** (the official code, CSI-style): the teacher is a contrastive encoder
  (SimCLR); every labelled image's feature is kept (L2-normalised), and for an unlabelled x the
  score of class c is its cosine with the *nearest labelled example of c*,
  s_c(x) = max_{j ∈ L_c} cos(f(x), f(x_j)) (summed over the shifted views when the teacher uses
  shifting transforms; one view here). Pseudo-label ŷ = argmax_c s_c.
* **weight** w(x) = s_(1) − s_(2), the margin between the two best class scores (written
  s_(1)·(1 − s_(2)/s_(1)) in the code, which divides by s_(1) ≈ 0; computed directly here). An
  image of an unknown class sits near no labelled example, its class scores are alike, and its
  weight is ≈ 0; no threshold, no softmax.
* **student loss**: CE(labelled) + λ · mean_u [w(u) · CE(student(u), ŷ(u))].

``class_similarities`` and ``margin_weights`` compute the teacher side on features (pure
functions); ``WeightAwareDistillation`` is the student's loss, given the unlabelled inputs with
their pseudo-labels and weights (``set_pseudo_labels``). ``wb.recipes.weight_aware_distillation``
runs the whole pipeline (teacher features, weights — from this margin or from any ``wb.ood``
detector — and the student's training). With every weight 1 the loss is plain pseudo-labelling.

Where this knowingly differs from the official code (RUC-DWBI-ML/research, ``WAD-master``):
no shifting transforms and no rounds (the code moves the α·|U| unlabelled samples the student
agrees with most into the labelled set after each of 5 rounds, α decaying polynomially from 0.1);
the student optimiser and augmentations are the workbench's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from ._semi import UnlabelledPool
from .augment import get_augmentation
from .base import Method
from .cross_entropy import check_labels


def class_similarities(z, z_ref, y_ref, n_classes: int) -> torch.Tensor:
    """(N, C): for each row of ``z`` (N, d) the cosine with its nearest row of ``z_ref`` (M, d)
    of each class (``y_ref`` (M,) in 0..C−1); −inf for a class without reference rows."""
    if z.ndim != 2 or z_ref.ndim != 2 or z.shape[1] != z_ref.shape[1]:
        raise ValueError(f"z {tuple(z.shape)} and z_ref {tuple(z_ref.shape)} must be (N, d) and (M, d)")
    y_ref = torch.as_tensor(y_ref, device=z_ref.device).long()
    if y_ref.shape != (z_ref.shape[0],) or (y_ref < 0).any() or (y_ref >= n_classes).any():
        raise ValueError(f"y_ref must hold one class in 0..{n_classes - 1} per reference row")
    cos = F.normalize(z.float(), dim=1) @ F.normalize(z_ref.float(), dim=1).T  # (N, M)
    out = cos.new_full((z.shape[0], n_classes), float("-inf"))
    return out.scatter_reduce(1, y_ref.to(cos.device)[None].expand_as(cos), cos, reduce="amax")


def margin_weights(scores) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pseudo_label, weight)`` from class scores (N, C): argmax and s_(1) − s_(2)."""
    scores = torch.as_tensor(scores)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (N, C) with C >= 2, got {tuple(scores.shape)}")
    top = scores.topk(2, dim=1).values
    return scores.argmax(1), (top[:, 0] - top[:, 1])


class WeightAwareDistillation(UnlabelledPool, Method):
    """Student loss of WAD: ``CE(labelled) + λ · mean_u w(u) · CE(student(u), ŷ(u))``.

    Call ``set_pseudo_labels(x_u, labels, weights)`` before ``wb.fit(student, method, labelled)``:
    every step draws ``mu × B`` unlabelled rows (with their pseudo-labels and weights) beside the
    B labelled ones. ``lambda_u`` weighs the unlabelled term; ``augment`` applies to both.
    Logs ``ce``, ``pl`` (the weighted pseudo-label term), ``weight`` (mean weight drawn), ``acc``.
    """

    def __init__(self, *, lambda_u: float = 1.0, mu: int = 1, augment="auto"):
        super().__init__()
        self.lambda_u = check_number(lambda_u, "lambda_u", min=0)
        self.augment = get_augmentation(augment)
        self._init_pool(mu)

    def set_pseudo_labels(self, data, labels, weights=None) -> None:
        """The unlabelled inputs with their pseudo-labels (N,) and weights (N,) (default 1)."""
        x = getattr(data, "x", data)
        labels = torch.as_tensor(labels).long()
        w = torch.ones(labels.shape[0]) if weights is None else torch.as_tensor(weights).float()
        if labels.ndim != 1 or w.shape != labels.shape:
            raise ValueError(f"labels and weights must be (N,), got {tuple(labels.shape)} and {tuple(w.shape)}")
        if (w < 0).any() or not torch.isfinite(w).all():
            raise ValueError("weights must be finite and non-negative")
        self.set_unlabelled(x, target=labels, weight=w)

    def loss(self, model, batch):
        if not self.has_pool:
            raise ValueError("WeightAwareDistillation needs method.set_pseudo_labels(x_u, labels, weights) first")
        xl, yl, xu, idx = self._split(batch, "WeightAwareDistillation")
        b = xl.shape[0]
        logits = model(self.augment(torch.cat([xl, xu])))
        check_labels(yl, logits.shape[-1], "WeightAwareDistillation")
        ce = F.cross_entropy(logits[:b], yl)
        target, w = self.pool_target[idx].to(xl.device), self.pool_weight[idx].to(logits.dtype)
        pl = (w * F.cross_entropy(logits[b:], target, reduction="none")).mean()
        acc = (logits[:b].detach().argmax(1) == yl).float().mean()
        return ce + self.lambda_u * pl, {"ce": ce.detach(), "pl": pl.detach(), "weight": w.mean(), "acc": acc}
