"""Dual-head knowledge distillation (DHKD; "Dual-Head Knowledge Distillation: Enhancing Logits
Utilization with an Auxiliary Head"; official code penghui-yang/DHKD, read at commit 7976c69).

A binary, per-logit KL between teacher and student logits carries "logit-level" information
that softmax-KL throws away (softmax is blind to a constant added to every logit), but applied
to the student's one linear classifier together with cross-entropy it collapses that classifier.
DHKD gives the student a **second head** on the same features: the main head learns from the
labels only, the auxiliary head from the teacher only, and both train the shared backbone.

    L = γ · CE(y, main(h)) + α · L_BKL-Norm(aux(h), z_t),        h = model.features(x)

    L_BKL-Norm(z_s, z_t) = (T² / N) Σ_i Σ_c KL( Bern(½) ‖ Bern(σ((z_s,ic − z_t,ic) / T)) )

which is minimised at z_s = z_t exactly (a per-logit *difference* loss: adding 5 to every
teacher logit changes it, see the tests). Sigmoids are clamped to [1e-8, 1 − 1e-8] as in the
code. Predictions use the main head only (the model's own ``head``); the auxiliary head lives
in the method (``method.aux``), built on ``model.features`` by ``setup`` (``fit`` calls it).

Optional **gradient alignment** (the code's ``--ga``, PCGrad-style): with g_CE and g_KD the
gradients of the two terms over all trained parameters, if g_KD · g_CE < 0 then
g_KD ← g_KD − (g_KD · g_CE / ‖g_CE‖²) g_CE; the step uses g_CE + g_KD. Only the KD gradient is
projected. Here it is done inside ``loss`` with two ``torch.autograd.grad`` calls, and the
returned loss is a surrogate whose value is L and whose gradient is the aligned sum.

Defaults are the code's CIFAR-100 setting: γ = 1, α = 1, T = 2, a linear auxiliary head
(``aux="mlp"`` gives Linear(d, ``aux_hidden``) → ReLU → Linear(·, C) instead of the code's
``--nonlinear`` head, which adds dropout 0.1 and batch norm). ``binary_kl`` is the plain
BinaryKL the repository defines but its training script does not use.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_bool, check_choice, check_number
from ._heads import HeadMixin
from .base import Method
from .cross_entropy import check_labels
from .kd import freeze
from .sinkd import _check_teacher

_EPS = 1e-8


def binary_kl_norm(student_logits, teacher_logits, temperature: float = 2.0) -> torch.Tensor:
    """(T²/N) Σ KL(Bern(½) ‖ Bern(σ((z_s − z_t)/T))) over (N, C) logits."""
    q = torch.sigmoid((student_logits - teacher_logits) / temperature).clamp(_EPS, 1 - _EPS)
    kl = -0.5 * torch.log(2 * q) - 0.5 * torch.log(2 * (1 - q))
    return kl.sum() * temperature**2 / student_logits.shape[0]


def binary_kl(student_logits, teacher_logits, temperature: float = 2.0) -> torch.Tensor:
    """(T²/N) Σ KL(Bern(σ(z_t/T)) ‖ Bern(σ(z_s/T))) over (N, C) logits."""
    pt = torch.sigmoid(teacher_logits / temperature).clamp(_EPS, 1 - _EPS)
    ps = torch.sigmoid(student_logits / temperature).clamp(_EPS, 1 - _EPS)
    kl = pt * torch.log(pt / ps) + (1 - pt) * torch.log((1 - pt) / (1 - ps))
    return kl.sum() * temperature**2 / student_logits.shape[0]


def align_gradient(g_ce: torch.Tensor, g_kd: torch.Tensor) -> torch.Tensor:
    """g_KD with its component against g_CE removed when they conflict (flat tensors)."""
    dot = torch.dot(g_kd, g_ce)
    if dot < 0:
        return g_kd - dot / g_ce.pow(2).sum().clamp_min(1e-30) * g_ce
    return g_kd


class DualHeadKD(HeadMixin, Method):
    """DHKD: ``γ·CE(y, main head) + α·BinaryKL-Norm(aux head, teacher)``, optional alignment.

    ``teacher``: a trained workbench classifier (frozen copy). ``aux``: ``"linear"`` (default) or
    ``"mlp"``; ``feature_dim``: size of ``model.features`` (None: ``setup`` reads it). Logs
    ``ce``, ``bkl`` (the BinaryKL-Norm term), ``acc`` (main head), ``aux_agree`` (auxiliary head
    vs teacher argmax) and, with alignment, ``conflict`` (1 when the gradients disagreed).
    """

    def __init__(self, teacher: nn.Module, temperature: float = 2.0, *, gamma: float = 1.0, alpha: float = 1.0,
                 aux: str = "linear", aux_hidden: int | None = None, feature_dim: int | None = None,
                 gradient_alignment: bool = False, seed: int | None = 0):
        super().__init__()
        _check_teacher(teacher, "DualHeadKD")
        n_classes = getattr(teacher, "n_classes", None)
        if not isinstance(n_classes, int):
            raise TypeError(f"teacher {type(teacher).__name__} has no integer n_classes")
        self.temperature = check_number(temperature, "temperature", min=0, min_open=True)
        self.gamma = check_number(gamma, "gamma", min=0)
        self.alpha = check_number(alpha, "alpha", min=0)
        self.gradient_alignment = check_bool(gradient_alignment, "gradient_alignment")
        check_choice(aux, "aux", ("linear", "mlp"))
        self._init_head(aux, n_classes, feature_dim, aux_hidden, seed)
        self.teacher = freeze(copy.deepcopy(teacher))

    @property
    def aux(self) -> nn.Module | None:
        """The auxiliary head (None until ``setup``)."""
        return self.proj

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def loss(self, model, batch):
        x, y = batch
        self._ready(model, x)
        h = model.features(x)
        main = model.head(h)
        side = self.proj(h.reshape(h.shape[0], -1))
        check_labels(y, main.shape[-1], "DualHeadKD")
        with torch.no_grad():
            t_logits = self.teacher(x)
        ce = self.gamma * F.cross_entropy(main, y)
        bkl = self.alpha * binary_kl_norm(side, t_logits, self.temperature)
        logs = {"ce": ce.detach(), "bkl": bkl.detach(), "acc": (main.detach().argmax(1) == y).float().mean(),
                "aux_agree": (side.detach().argmax(1) == t_logits.argmax(1)).float().mean()}
        loss = ce + bkl
        if self.gradient_alignment and self.training and torch.is_grad_enabled():
            loss, logs["conflict"] = self._aligned(model, ce, bkl)
        return loss, logs

    def _aligned(self, model, ce, bkl):
        params = [p for p in [*model.parameters(), *self.proj.parameters()] if p.requires_grad]
        g1 = torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True)
        g2 = torch.autograd.grad(bkl, params, retain_graph=True, allow_unused=True)
        flat = [torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(gs, params)])
                for gs in (g1, g2)]
        conflict = float(torch.dot(flat[0], flat[1]) < 0)
        total = flat[0] + align_gradient(flat[0], flat[1])
        # surrogate: value ce + bkl, gradient `total`
        parts, i = [], 0
        for p in params:
            parts.append((total[i:i + p.numel()].view_as(p) * p).sum())
            i += p.numel()
        lin = torch.stack(parts).sum()
        return (ce + bkl).detach() + lin - lin.detach(), conflict
