"""Balanced-divergence online distillation (BD-KD; Amara, Sepahvand, Meyer, Gross & Clark, "BD-KD:
Balancing the Divergences for Online Knowledge Distillation", arXiv 2212.12965).

**Online** distillation: teacher and student are trained *together*, from the same data, each
learning from the labels and from the other (deep mutual learning, DML, is the plain version:
each minimises CE + KL(other ‖ self)). BD-KD changes the divergences:

* the **student** replaces KL(p_t ‖ p_s) (forward, mode-covering) by a **sample-wise weighted
  mix of forward and reverse KL** KL(p_s ‖ p_t) (mode-seeking, sharpening), the weights driven
  by the **entropy gap** between the two predictions;
* the **teacher**'s loss uses a **reverse KL** as its regulariser towards the student.

The paper claims better accuracy *and* calibration (ECE) than other online KD methods.

**What is assumed here (no code is public; only the abstract and summaries were readable):**
the exact weighting function and the teacher's regulariser. This file implements, per sample i,

    Δ_i = H(p_s,i) − H(p_t,i)                        (entropy gap at temperature T)
    w_i = sigmoid(Δ_i / gap_scale)                   (weight of the REVERSE KL)
    L_student = CE(y, z_s) + λ_s · T² · mean_i [ (1 − w_i) KL(p_t,i ‖ p_s,i) + w_i KL(p_s,i ‖ p_t,i) ]
    L_teacher = CE(y, z_t) + λ_t · T² · mean_i KL(p_t,i ‖ p_s,i)     (teacher's own RKL)

— more reverse KL (sharpen) where the student is *less* confident than the teacher, more
forward KL (spread) where it is over-confident. The other side of every KL is under
stop-gradient (each network learns only from its own loss). ``weighting`` switches the
student's mix: ``"entropy"`` (the above), ``"forward"`` (w = 0), ``"reverse"`` (w = 1) or
``"half"`` (w = ½); with ``weighting="forward"`` and ``teacher_divergence="forward"``
(teacher: KL(p_s ‖ p_t), it learns the student's distribution) this is DML.

The teacher (a workbench classifier, deep-copied; your object is not changed) is a **trainable
submodule of the method**: ``wb.fit(student, method, data)`` optimises both, and
``method.teacher`` is the trained peer (saved in checkpoints with the method).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_number
from .base import Method
from .cross_entropy import check_labels
from .sinkd import _check_teacher

WEIGHTINGS = ("entropy", "forward", "reverse", "half")


def kl_rows(log_p, log_q) -> torch.Tensor:
    """(N,) KL(p ‖ q) per row of log-probabilities."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def entropy_rows(log_p) -> torch.Tensor:
    """(N,) entropy per row of log-probabilities."""
    return -(log_p.exp() * log_p).sum(-1)


def reverse_weight(log_ps, log_pt, weighting: str = "entropy", gap_scale: float = 1.0) -> torch.Tensor:
    """(N,) weight of the reverse KL for each sample (see the module docstring)."""
    n = log_ps.shape[0]
    if weighting == "forward":
        return log_ps.new_zeros(n)
    if weighting == "reverse":
        return log_ps.new_ones(n)
    if weighting == "half":
        return log_ps.new_full((n,), 0.5)
    gap = entropy_rows(log_ps.detach()) - entropy_rows(log_pt.detach())
    return torch.sigmoid(gap / gap_scale)


class BalancedDivergenceKD(Method):
    """Online KD with a sample-wise forward/reverse-KL mix for the student (see the docstring).

    ``teacher``: the peer network (trained alongside; deep-copied). ``temperature`` T;
    ``student_weight`` λ_s, ``teacher_weight`` λ_t; ``weighting`` and ``gap_scale``: the
    student's mix; ``teacher_divergence``: ``"reverse"`` (BD-KD: KL(p_t ‖ p_s)) or ``"forward"``
    (DML: KL(p_s ‖ p_t)). Logs ``ce``, ``teacher_ce``, ``fkl``, ``rkl``, ``w_reverse`` (mean
    weight), ``acc`` and ``teacher_acc``.
    """

    def __init__(self, teacher: nn.Module, temperature: float = 1.0, *, student_weight: float = 1.0,
                 teacher_weight: float = 1.0, weighting: str = "entropy", gap_scale: float = 1.0,
                 teacher_divergence: str = "reverse"):
        super().__init__()
        _check_teacher(teacher, "BalancedDivergenceKD")
        self.temperature = check_number(temperature, "temperature", min=0, min_open=True)
        self.student_weight = check_number(student_weight, "student_weight", min=0)
        self.teacher_weight = check_number(teacher_weight, "teacher_weight", min=0)
        self.weighting = check_choice(weighting, "weighting", WEIGHTINGS)
        self.gap_scale = check_number(gap_scale, "gap_scale", min=0, min_open=True)
        self.teacher_divergence = check_choice(teacher_divergence, "teacher_divergence", ("reverse", "forward"))
        self.teacher = copy.deepcopy(teacher)
        for p in self.teacher.parameters():
            p.requires_grad_(True)

    def loss(self, model, batch):
        x, y = batch
        zs, zt = model(x), self.teacher(x)
        check_labels(y, zs.shape[-1], "BalancedDivergenceKD")
        t = self.temperature
        log_ps, log_pt = F.log_softmax(zs / t, -1), F.log_softmax(zt / t, -1)
        # student: its own CE plus the weighted mix; the teacher's side detached
        fkl = kl_rows(log_pt.detach(), log_ps)
        rkl = kl_rows(log_ps, log_pt.detach())
        w = reverse_weight(log_ps, log_pt, self.weighting, self.gap_scale)
        ce_s = F.cross_entropy(zs, y)
        student = ce_s + self.student_weight * t * t * ((1 - w) * fkl + w * rkl).mean()
        # teacher: its own CE plus its regulariser towards the (detached) student
        if self.teacher_divergence == "reverse":
            reg = kl_rows(log_pt, log_ps.detach())
        else:
            reg = kl_rows(log_ps.detach(), log_pt)
        ce_t = F.cross_entropy(zt, y)
        teacher = ce_t + self.teacher_weight * t * t * reg.mean()
        logs = {"ce": ce_s.detach(), "teacher_ce": ce_t.detach(), "fkl": fkl.detach().mean(),
                "rkl": rkl.detach().mean(), "w_reverse": w.mean(),
                "acc": (zs.detach().argmax(1) == y).float().mean(),
                "teacher_acc": (zt.detach().argmax(1) == y).float().mean()}
        return student + teacher, logs
