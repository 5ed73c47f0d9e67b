"""Mean teacher (Tarvainen & Valpola, NeurIPS 2017, "Mean teachers are better role models:
Weight-averaged consistency targets improve semi-supervised deep learning results").

The teacher is an exponential moving average of the student's weights (θ' ← a θ' + (1 − a) θ,
a = min(1 − 1/(k + 1), a_max), parameters only; see ``_ema``); student and teacher see
**independently augmented** copies of the same batch, and the student is pulled towards the
teacher's predictions on every sample, labelled or not. In words, for a batch of B rows of
which some are labelled:

    L = Σ_labelled CE(student(aug(x)), y) / B
        + w(e) · Σ_rows ‖softmax(student(aug(x))) − softmax(teacher(aug'(x)))‖² / (C · B)

with the teacher's output under stop-gradient, C classes, and the consistency weight ramped up
over the first epochs, w(e) = w_max · exp(−5 (1 − e/E_r)²) for e ≤ E_r (then w_max). The CE is
divided by the **whole** batch B (the official code's normalisation), not by the labelled count.

Defaults follow the official PyTorch CIFAR-10 experiment (``pytorch/`` of CuriousAI/mean-teacher):
a_max = 0.99 (their 4000-label run; 0.97 with 1000 labels), w_max = 100 with the /C
normalisation, E_r = 5 epochs. The teacher runs in the mode the method is in (train mode while
training, as in the official code) and keeps its own batch-norm statistics.

Where this knowingly differs: the official model has two heads (CE on one, consistency on the
other, tied by a logit-distance cost of 0.01); this is the single-head variant the paper
describes first. "Epochs" are ``epoch_steps`` training steps (pass the steps of one epoch).
Augmentation: ``augment="auto"`` is the workbench's per-kind default (for digits a small shift,
rotation, zoom, noise and cutout). Unlabelled rows come from a pool or from mixed batches
(``methods._semi``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_int, check_number
from .._modes import set_mode
from ._ema import EMACopy
from ._semi import UnlabelledPool
from .augment import get_augmentation
from .base import Method
from .cross_entropy import check_labels


def sigmoid_rampup(epoch: float, rampup_epochs: float) -> float:
    """exp(−5 (1 − e/E_r)²) for e in [0, E_r], 1 after (1 when E_r = 0)."""
    if rampup_epochs <= 0:
        return 1.0
    p = min(max(epoch, 0.0), rampup_epochs) / rampup_epochs
    return math.exp(-5.0 * (1.0 - p) ** 2)


def softmax_mse(student_logits, teacher_logits) -> torch.Tensor:
    """Σ ‖softmax(z_s) − softmax(z_t)‖² / (C · B) (teacher under stop-gradient)."""
    b, c = student_logits.shape
    d = F.softmax(student_logits, -1) - F.softmax(teacher_logits.detach(), -1)
    return (d * d).sum() / (c * b)


class MeanTeacher(UnlabelledPool, Method):
    """Mean teacher: CE on labelled rows (/B) + ramped-up consistency with an EMA teacher.

    Parameters
    ----------
    ema: a_max, the EMA decay's ceiling (0.99).
    consistency: w_max, the consistency weight after the ramp-up (100 with the /C normalisation).
    rampup_epochs: E_r (5); ``epoch_steps``: training steps per epoch (for ``fit(..., epochs=E,
        batch_size=B)``: ``len(train) // B``).
    augment: the augmentation of both copies (independent draws); see ``methods.augment``.
    mu: unlabelled rows per labelled row when drawing from a pool (``set_unlabelled``).
    Logs ``ce``, ``consistency`` (unweighted), ``weight`` (w(e)) and ``acc`` (labelled rows);
    ``method.teacher`` is the EMA model (after the first training step).
    """

    def __init__(self, ema: float = 0.99, *, consistency: float = 100.0, rampup_epochs: float = 5.0,
                 epoch_steps: int = 100, augment="auto", mu: int = 3):
        super().__init__()
        self.ema = check_number(ema, "ema", min=0, max=1, max_open=True)
        self.consistency = check_number(consistency, "consistency", min=0)
        self.rampup_epochs = check_number(rampup_epochs, "rampup_epochs", min=0)
        self.epoch_steps = check_int(epoch_steps, "epoch_steps", min=1,
                                     hint="training steps per epoch, e.g. len(train) // batch_size")
        self.augment = get_augmentation(augment)
        self._init_pool(mu)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self._ema = EMACopy(self.ema)

    @property
    def teacher(self):
        return self._ema.module

    def weight(self, step: int | None = None) -> float:
        """w(e) at training step ``step`` (default: the method's own counter)."""
        s = int(self.step) if step is None else int(step)
        return self.consistency * sigmoid_rampup(s / self.epoch_steps, self.rampup_epochs)

    def loss(self, model, batch):
        xl, yl, xu, _ = self._split(batch, "MeanTeacher")
        b = xl.shape[0]
        x = torch.cat([xl, xu])
        zs = model(self.augment(x))
        teacher = self._ema.update(model) if self.training else (self._ema.module or model)
        with torch.no_grad(), set_mode(teacher, training=self.training):
            zt = teacher(self.augment(x))
        n = x.shape[0]
        if b:
            check_labels(yl, zs.shape[-1], "MeanTeacher")
            ce = F.cross_entropy(zs[:b], yl, reduction="sum") / n
            acc = (zs[:b].detach().argmax(1) == yl).float().mean()
        else:
            ce = acc = zs.new_zeros(())
        cons = softmax_mse(zs, zt)
        w = self.weight()
        if self.training:
            self.step += 1
        return ce + w * cons, {"ce": ce.detach(), "consistency": cons.detach(), "weight": w, "acc": acc}

    @torch.no_grad()
    def pseudo_labels(self, model, x) -> tuple[torch.Tensor, torch.Tensor]:
        """``(confidence, label)`` of the teacher (the model before the first step) on ``x``."""
        net = self._ema.module or model
        with set_mode(net, training=False):
            conf, label = F.softmax(net(x), -1).max(-1)
        return conf, label
