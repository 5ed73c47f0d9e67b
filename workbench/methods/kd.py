"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural
Network"): a student is trained on a frozen teacher's temperature-softened predictions plus the
ordinary hard labels.

The loss, in words: with student logits z_s, teacher logits z_t, temperature T and weight α,

    L = (1 − α) · CE(y, softmax(z_s))  +  α · T² · KL( softmax(z_t / T) ‖ softmax(z_s / T) )

* **α weights the distillation (soft) term**, 1 − α the hard-label cross-entropy. This is the
  convention of mdistiller's KD defaults (T = 4, CE weight 0.1, KD weight 0.9) and of
  RepDistiller's README example (-r 0.1 for CE, -a 0.9 for KD), so ``alpha=0.9`` means
  "90 % distillation". torchdistill's ``KDLoss`` names the weights the other way round (its
  ``alpha`` multiplies the hard-label term and ``beta = 1 − alpha`` the soft one):
  ``KnowledgeDistillation(alpha=a)`` here equals torchdistill's ``KDLoss(alpha=1 − a, beta=a)``.
  Hinton et al. describe a weighted average of the two terms without fixing a name.
* The KL is summed over classes and averaged over the batch ("batchmean", the mathematically
  correct mean KL per sample, as torchdistill and RepDistiller compute it).
* The T² factor keeps the soft term's gradients the same size as the hard term's when T
  changes (the gradient of the soft term scales as 1/T²).
* ``alpha=1`` is pure distillation: no labels are needed (``needs_labels`` is then False), so a
  student can learn from an unlabelled transfer set. ``alpha=0`` is plain cross-entropy.

The teacher lives inside the method (``method.teacher``), so checkpoints save its weights and
its config (the ``teacher`` constructor argument, a workbench model) records how to rebuild it.
It is a **frozen copy**: the model you pass is deep-copied, the copy's parameters get
``requires_grad=False`` (``fit`` optimises every parameter with ``requires_grad`` in model and
method, so the teacher is never trained) and it stays in eval mode even when ``fit`` calls
``method.train()`` (dropout off, batch-norm statistics frozen). Your own teacher object is not
changed, not moved and not frozen.

Where this knowingly differs from the references: nothing in the loss; the teacher's forward
runs under ``torch.no_grad()`` on every batch (no cached logits), and the logs add the batch
agreement between teacher and student argmax predictions.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .base import Method
from .cross_entropy import check_labels


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor | None,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, ce, kd)`` of Hinton KD for (B, C) logits; see the module docstring.

    ``kd`` already includes the T² factor; ``loss = (1 − alpha)·ce + alpha·kd``. With
    ``alpha == 1`` ``y`` may be None (``ce`` is then returned as 0).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ; the student needs as many classes as the teacher"
        )
    t = float(temperature)
    log_p_s = F.log_softmax(student_logits / t, dim=-1)
    log_p_t = F.log_softmax(teacher_logits / t, dim=-1)
    # KL(p_t || p_s) summed over classes, averaged over the batch ("batchmean"), times T²
    kd = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (t * t)
    if alpha < 1.0:
        if y is None:
            raise ValueError("the hard-label term (alpha < 1) needs labels; pass y or use alpha=1.0")
        ce = F.cross_entropy(student_logits, y)
    else:
        ce = student_logits.new_zeros(())
    loss = (1.0 - alpha) * ce + alpha * kd if alpha < 1.0 else kd
    return loss, ce, kd


class KnowledgeDistillation(Method):
    """Hinton KD: ``(1 − alpha)·CE(y, student) + alpha·T²·KL(teacher_T ‖ student_T)``.

    ``teacher``: a trained classifier (a workbench model, e.g. ``wb.models.MLP``) whose
    ``teacher(x)`` gives logits with as many classes as the student's. It is deep-copied and
    frozen (see the module docstring); ``method.teacher`` is that copy. ``temperature`` (T > 0)
    softens both distributions; ``alpha`` in [0, 1] is the weight of the **distillation** term
    (0.9 = mdistiller's default: 90 % KD, 10 % cross-entropy). Logs ``ce``, ``kd`` (with its T²),
    ``acc`` (when labels exist) and ``agree`` (fraction of the batch where student and teacher
    predict the same class).
    """

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.9):
        super().__init__()
        if not isinstance(teacher, nn.Module):
            raise TypeError(
                f"teacher must be a trained model (an nn.Module), got {type(teacher).__name__}; "
                "e.g. KnowledgeDistillation(teacher=trained_mlp)"
            )
        if not hasattr(teacher, "config"):
            raise TypeError(
                f"teacher {type(teacher).__name__} does not record its config, so checkpoints could "
                "not rebuild it; use a workbench model (wb.models.MLP, ConvNet, ...)"
            )
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ValueError(
                f"alpha (the weight of the distillation term) must be in [0, 1], got {alpha!r}"
            )
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.needs_labels = self.alpha < 1.0
        self.teacher = freeze(copy.deepcopy(teacher))

    # the teacher never leaves eval mode, whatever fit asks of the method
    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.teacher(x)

    def loss(self, model, batch):
        x, y = batch
        logits = model(x)
        if logits.ndim != 2:
            raise ValueError(
                f"KnowledgeDistillation needs (N, classes) logits from the student, got shape "
                f"{tuple(logits.shape)}"
            )
        t_logits = self.teacher_logits(x)
        if y is not None and self.alpha < 1.0:
            check_labels(y, logits.shape[-1], "KnowledgeDistillation")
        loss, ce, kd = kd_loss(logits, t_logits, y if self.alpha < 1.0 else None,
                               temperature=self.temperature, alpha=self.alpha)
        pred = logits.detach().argmax(1)
        logs = {"ce": ce.detach(), "kd": kd.detach(), "agree": (pred == t_logits.argmax(1)).float().mean()}
        if y is not None:
            logs["acc"] = (pred == y).float().mean()
        return loss, logs


def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` (and drop any ``.grad``) on every parameter and put the module in
    eval mode, in place."""
    for p in module.parameters():
        p.requires_grad_(False)
        p.grad = None
    return module.eval()
