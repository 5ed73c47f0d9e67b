"""FixMatch (Sohn, Berthelot, Li, Zhang, Carlini, Cubuk, Kurakin, Zhang & Raffel, NeurIPS 2020,
"FixMatch: Simplifying Semi-Supervised Learning with Consistency and Confidence").

A model labels its own unlabelled data, but only where it is confident, and learns those
pseudo-labels under a harder view of the same image. In words, for a labelled batch (x, y) of
B images and an unlabelled batch u of μB images:

* L_s = mean CE(model(weak(x)), y);
* q = softmax(model(weak(u)) / T) without gradient (T = 1), ŷ = argmax q, mask = [max q ≥ τ];
* L_u = (1 / μB) Σ_u mask · CE(model(strong(u)), ŷ) — the **mean over all μB** unlabelled
  images, the masked ones counting 0 (not divided by the number of confident ones);
* L = L_s + λ_u L_u (λ_u = 1, τ = 0.95, μ = 7 in the paper).

All three batches go through the model in **one forward pass** (batch-norm statistics over the
whole concatenation, as the official code does), and the pseudo-labels are computed in the
same (train) mode.

``teacher="ema"`` takes the pseudo-labels from an exponential moving average of the model
instead (a *mean teacher*, Tarvainen & Valpola 2017: parameters averaged with decay
min(1 − 1/(k+1), ``ema``), see ``_ema``): the confidence-thresholded, weak/strong consistency of
FixMatch with the EMA teacher of mean teacher. The paper keeps an EMA (0.999) only to evaluate.

Where this knowingly differs from the official code: augmentations are the workbench's
(``augment.ImageAugment``) tuned for 8×8 digits and never flip (the DSA authors found flips hurt
digit data): weak = a shift of up to 1 pixel; strong = up to 2 pixels, ±15° rotation, ±10 % zoom,
noise and a cutout of up to 3×3 pixels in every image — not RandAugment. For other data kinds
the weak view is the identity and the strong view the kind's default augmentation. The
unlabelled rows come from a pool or from mixed batches (``methods._semi``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_number
from .._modes import set_mode
from ._ema import EMACopy
from ._semi import UnlabelledPool
from .augment import AUGMENTATIONS, Identity, ImageAugment, get_augmentation, kind_of_batch
from .base import Method
from .cross_entropy import check_labels

TEACHERS = ("model", "ema")


def weak_augmentation(kind: str):
    """FixMatch's weak view for a data kind: for images a shift of up to 1 pixel, else none."""
    if kind == "image":
        return ImageAugment(shift=1.0, rotate=0.0, zoom=0.0, noise=0.0, erase=0.0)
    return Identity()


def strong_augmentation(kind: str):
    """The strong view: for 8×8 images ±2 px, ±15°, ±10 % zoom, noise and a ≤ 3×3 cutout always."""
    if kind == "image":
        return ImageAugment(shift=2.0, rotate=15.0, zoom=0.1, noise=0.05, erase=1.0, erase_size=0.375)
    return AUGMENTATIONS[kind]()


class _ByKind:
    """Resolve "auto" into the weak or strong augmentation of each batch's kind."""

    def __init__(self, which):
        self.which, self._cache = which, {}

    def __call__(self, x):
        kind = kind_of_batch(x)
        if kind not in self._cache:
            self._cache[kind] = self.which(kind)
        return self._cache[kind](x)


def _resolve(spec, which):
    return _ByKind(which) if spec == "auto" else get_augmentation(spec)


def fixmatch_unlabelled_loss(weak_logits, strong_logits, threshold: float, temperature: float = 1.0):
    """``(L_u, mask, confidence, pseudo)``: FixMatch's masked CE, averaged over *all* rows."""
    q = F.softmax(weak_logits.detach() / temperature, dim=-1)
    conf, pseudo = q.max(dim=-1)
    mask = (conf >= threshold).to(strong_logits.dtype)
    ce = F.cross_entropy(strong_logits, pseudo, reduction="none")
    return (mask * ce).mean(), mask, conf, pseudo


class FixMatch(UnlabelledPool, Method):
    """FixMatch: ``CE(weak labelled) + λ_u · mean(mask · CE(strong unlabelled, pseudo-label))``.

    Parameters
    ----------
    threshold: τ, the confidence a pseudo-label needs (0.95).
    lambda_u: weight of the unlabelled term (1).
    mu: unlabelled rows per labelled row drawn from the pool (7; see ``set_unlabelled``).
    temperature: of the softmax that gives the pseudo-labels (1).
    weak, strong: augmentations (``"auto"``: per data kind, see the module docstring; a name,
        an augmentation object or a callable as in ``workbench.methods.augment``).
    teacher: ``"model"`` (the paper: the model labels its own weak views) or ``"ema"`` (an EMA
        copy of the model does, decay ``ema``).
    Logs ``ls``, ``lu``, ``mask`` (fraction of unlabelled rows above τ), ``confidence`` (their
    mean max-probability) and ``acc`` (labelled rows).
    """

    def __init__(self, threshold: float = 0.95, *, lambda_u: float = 1.0, mu: int = 7,
                 temperature: float = 1.0, weak="auto", strong="auto", teacher: str = "model",
                 ema: float = 0.999):
        super().__init__()
        self.threshold = check_number(threshold, "threshold", min=0, max=1, hint="FixMatch uses 0.95")
        self.lambda_u = check_number(lambda_u, "lambda_u", min=0)
        self.temperature = check_number(temperature, "temperature", min=0, min_open=True)
        self.teacher_kind = check_choice(teacher, "teacher", TEACHERS)
        self.ema = check_number(ema, "ema", min=0, max=1, max_open=True)
        self.weak = _resolve(weak, weak_augmentation)
        self.strong = _resolve(strong, strong_augmentation)
        self._init_pool(mu)
        self._ema = EMACopy(self.ema)

    @property
    def teacher(self):
        """The EMA copy (``teacher="ema"``, after the first training step), else None."""
        return self._ema.module

    def _teacher_logits(self, model, xu_weak):
        teacher = self._ema.update(model) if self.training else (self._ema.module or model)
        with torch.no_grad(), set_mode(teacher, training=self.training):
            return teacher(xu_weak)

    def loss(self, model, batch):
        xl, yl, xu, _ = self._split(batch, "FixMatch")
        b, m = xl.shape[0], xu.shape[0]
        wl, wu, su = self.weak(xl), self.weak(xu), self.strong(xu)
        logits = model(torch.cat([wl, wu, su]))  # one forward: BN statistics over all rows
        ll, lw, ls_ = logits[:b], logits[b:b + m], logits[b + m:]
        zero = logits.new_zeros(())
        if b:
            check_labels(yl, logits.shape[-1], "FixMatch")
        sup = F.cross_entropy(ll, yl) if b else zero
        if m:
            weak_logits = self._teacher_logits(model, wu) if self.teacher_kind == "ema" else lw
            unsup, mask, conf, _ = fixmatch_unlabelled_loss(weak_logits, ls_, self.threshold, self.temperature)
            rate, mean_conf = mask.mean(), conf.mean()
        else:
            unsup, rate, mean_conf = zero, zero, zero
        loss = sup + self.lambda_u * unsup
        acc = (ll.detach().argmax(1) == yl).float().mean() if b else zero
        return loss, {"ls": sup.detach(), "lu": unsup.detach(), "mask": rate, "confidence": mean_conf, "acc": acc}

    @torch.no_grad()
    def pseudo_labels(self, model, x) -> tuple[torch.Tensor, torch.Tensor]:
        """``(confidence, label)`` (N,) each that the pseudo-labeller (the model, or the EMA
        teacher once it exists) gives the un-augmented inputs ``x`` now (eval mode)."""
        net = self._ema.module if (self.teacher_kind == "ema" and self._ema.module is not None) else model
        with set_mode(net, training=False):
            q = F.softmax(net(x) / self.temperature, dim=-1)
        conf, label = q.max(dim=-1)
        return conf, label
