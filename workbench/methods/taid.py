"""Temporally adaptive interpolated distillation (TAID; "TAID: Temporally Adaptive Interpolated
Distillation for Efficient Knowledge Transfer in Language Models"; official code SakanaAI/TAID,
read at commit a062892).

A small student cannot follow a large teacher at once. TAID's target starts at the student's own
(detached) prediction and moves towards the teacher's over training:

    p_t = softmax( (1 − t) · sg(z_s) + t · z_t )          (interpolate **logits**, then softmax)
    L   = − Σ_y p_t(y) log softmax(z_s)(y)                 (cross-entropy; = KL(p_t ‖ p_s) + H(p_t))

— not a mixture of the two probability vectors (which gives a different target; see the tests).
No temperature; in the reported runs no hard-label term (``distil_ratio`` = 1), here
``label_weight`` (0 by default) adds (the weight times) CE with the labels if you want one.

The schedule of t (called after the loss of step k, so step k uses the t left by step k − 1):
the first call only stores the loss; afterwards r = (L_prev − L)/(L_prev + 1e-15) is the relative
improvement, m ← β m + (1 − β) r its momentum, δ = α · sigmoid(m) · (1 − t), and

    t ← min(t_end, max(t_linear(k), t + δ)),   t_linear(k) = t_start + (t_end − t_start) · k / K,

so t never falls behind the linear schedule and jumps ahead while the loss falls fast. Defaults
t_start 0.4, t_end 1, α = 5e-4, β = 0.99 (the code's). With K ≲ 4000 steps and α = 5e-4 the
adaptive part never binds (δ ≈ 1.5e-4 per step vs the linear (t_end − t_start)/K): for runs of
~1000 steps pass α ≈ 5e-3, as the reference notes advise.

Where this knowingly differs from the official code: the loss is averaged over the batch (the
code averages over tokens); the state (t, m, the previous loss, the step) lives in buffers,
on the model's device (the code creates them on "cuda"). The step counter advances only on
training calls.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_number
from .base import Method
from .cross_entropy import check_labels
from .kd import freeze
from .sinkd import _check_teacher


def taid_target(student_logits, teacher_logits, t: float) -> torch.Tensor:
    """softmax((1 − t)·sg(z_s) + t·z_t): TAID's interpolated target distribution."""
    return F.softmax((1.0 - t) * student_logits.detach() + t * teacher_logits, dim=-1)


class TAID(Method):
    """TAID: cross-entropy against ``softmax((1 − t)·sg(z_s) + t·z_t)``, t adaptive (see above).

    ``teacher``: a trained classifier (frozen copy). ``total_steps``: K, the steps of the fit
    (the linear floor reaches ``t_end`` there). ``t_start``, ``t_end``, ``alpha`` (α), ``beta``
    (β): the schedule. ``label_weight``: weight of an extra CE with the labels (0: none; then no
    labels are needed). Logs ``t``, ``kl`` (KL(p_t ‖ p_s)), ``agree`` and ``acc``.
    """

    def __init__(self, teacher: nn.Module, total_steps: int, *, t_start: float = 0.4, t_end: float = 1.0,
                 alpha: float = 5e-4, beta: float = 0.99, label_weight: float = 0.0):
        super().__init__()
        _check_teacher(teacher, "TAID")
        self.total_steps = check_int(total_steps, "total_steps", min=1, hint="the number of training steps")
        self.t_start = check_number(t_start, "t_start", min=0, max=1)
        self.t_end = check_number(t_end, "t_end", min=0, max=1)
        if self.t_end < self.t_start:
            raise ValueError(f"t_end ({t_end}) must be >= t_start ({t_start})")
        self.alpha = check_number(alpha, "alpha", min=0)
        self.beta = check_number(beta, "beta", min=0, max=1)
        self.label_weight = check_number(label_weight, "label_weight", min=0)
        self.needs_labels = self.label_weight > 0
        self.teacher = freeze(copy.deepcopy(teacher))
        self.register_buffer("t", torch.tensor(self.t_start, dtype=torch.float64))
        self.register_buffer("momentum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("prev_loss", torch.tensor(float("nan"), dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def update_t(self, loss_value: float) -> float:
        """Advance the schedule after a step whose loss was ``loss_value``; returns the new t."""
        k = int(self.step)
        if math.isnan(float(self.prev_loss)):
            self.prev_loss.fill_(loss_value)
        else:
            prev = float(self.prev_loss)
            r = (prev - loss_value) / (prev + 1e-15)
            m = self.beta * float(self.momentum) + (1 - self.beta) * r
            t = float(self.t)
            delta = self.alpha * (1.0 / (1.0 + math.exp(-m))) * (1.0 - t)
            t_lin = self.t_start + (self.t_end - self.t_start) * k / self.total_steps
            self.t.fill_(min(self.t_end, max(t_lin, t + delta)))
            self.momentum.fill_(m)
            self.prev_loss.fill_(loss_value)
        self.step += 1
        return float(self.t)

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)
        with torch.no_grad():
            t_logits = self.teacher(x)
        t = float(self.t)
        target = taid_target(logits, t_logits, t)
        log_ps = F.log_softmax(logits, dim=-1)
        loss = -(target * log_ps).sum(-1).mean()
        kl = (target * (target.clamp_min(1e-30).log() - log_ps.detach())).sum(-1).mean()
        logs = {"t": t, "kl": kl, "agree": (logits.detach().argmax(1) == t_logits.argmax(1)).float().mean()}
        if self.label_weight > 0:
            check_labels(y, logits.shape[-1], "TAID")
            loss = loss + self.label_weight * F.cross_entropy(logits, y)
        if y is not None and (y >= 0).all():
            logs["acc"] = (logits.detach().argmax(1) == y).float().mean()
        if self.training:
            self.update_t(float(loss.detach()))
        return loss, logs
