"""Classifier guidance from a noise-aware classifier.

Paper: Dhariwal & Nichol 2021, "Diffusion Models Beat GANs on Image Synthesis" (code:
openai/guided-diffusion, ``classifier_train.py``, ``gaussian_diffusion.py``).

* **The classifier** (``NoisyClassification``, a training objective): a classifier
  f(x_t, t) -> logits that also receives the timestep (``wb.models.TimeClassifier``), trained
  with cross-entropy on noised samples x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, t ~ U{0..T−1} (the
  official ``noised=True`` with the uniform schedule sampler). Its accuracy falls toward the
  class prior as t grows (the labels are no longer visible in the noise).
* **Guided prediction** (``ClassifierGuidance(classifier, scale)``): with g = ∇_{x_t} log
  softmax(f(x_t, t))_y at the *current* x_t, the noise prediction is shifted to
  ε̃ = ε̂ − s·√(1 − ᾱ_t)·g, i.e. the score ∇log p(x_t) + s·∇log p(y|x_t). For the exact
  p(y|x_t), s = 1 turns the unconditional ε into the conditional one (Bayes), and scale s
  equals classifier-free guidance at the same scale (tested on a closed-form case).

Differences from the official code: guided-diffusion's DDPM sampler shifts the *mean* by
Σ_t·s·g (``condition_mean``) and its DDIM sampler shifts ε (``condition_score``, as here). We
use the ε (score) form for every sampler, so the DDPM step shifts the mean by
β_t/√α_t·s·g instead of β̃_t·s·g; the two agree to O(β) away from t = 0 (at t = 0, β̃ = 0 and the
official DDPM step applies no guidance at all). The classifier always sees the original
timestep index (our strided samplers pass it unchanged, so the respacing pitfall of the
official ``SpacedDiffusion`` cannot occur). The official recipe anneals lr 3e-4 linearly and
uses weight decay 0.05; pass those to ``wb.fit`` if wanted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_number
from ._guidance import Guidance, labels_for, unconditional
from .base import Method
from .ddpm import DDPM


class NoisyClassification(Method):
    """Cross-entropy of ``classifier(x_t, t)`` on samples noised at uniform random timesteps of ``ddpm``."""

    def __init__(self, ddpm: DDPM):
        super().__init__()
        if not isinstance(ddpm, DDPM):
            raise TypeError(f"ddpm must be the wb.methods.DDPM whose noise the classifier will see, got {type(ddpm).__name__}")
        self.ddpm = ddpm

    def loss(self, model, batch):
        if not isinstance(batch, (tuple, list)) or batch[1] is None:
            raise ValueError("NoisyClassification needs labels: pass a labelled Dataset (x, y)")
        x0, y = batch
        keep = y >= 0
        x0, y = x0[keep], y[keep]
        t = torch.randint(0, self.ddpm.n_steps, (x0.shape[0],), device=x0.device)
        logits = model(self.ddpm.add_noise(x0, torch.randn_like(x0), t), t)
        return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}


def classifier_log_prob_grad(classifier: nn.Module, x_t: torch.Tensor, t, y: torch.Tensor):
    """(log p(y|x_t), ∇_{x_t} log p(y|x_t)) from the classifier's softmax, per sample."""
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        logp = torch.log_softmax(classifier(x, t), dim=-1).gather(1, y[:, None]).squeeze(1)
        (g,) = torch.autograd.grad(logp.sum(), x)
    return logp.detach(), g


class ClassifierGuidance(Guidance):
    """Steer any denoiser with ``classifier(x_t, t)``'s gradient toward labels ``y`` (or a fixed
    ``target`` class for every sample) at ``scale`` s (see the module docstring).

    A class-conditional denoiser is evaluated unconditionally (its null label).
    """

    def __init__(self, classifier: nn.Module, scale: float = 1.0, *, target: int | None = None):
        super().__init__()
        if not isinstance(classifier, nn.Module):
            raise TypeError(f"classifier must be a noise-aware nn.Module called as classifier(x_t, t), got {type(classifier).__name__}")
        self.classifier = classifier
        self.scale = check_number(scale, "scale", hint="the guidance scale, e.g. 1.0 (0 = no guidance)")
        self.target = target

    def forward(self, denoiser, ddpm, x_t, t, y):
        y = labels_for(self.target if self.target is not None else y, x_t.shape[0], x_t.device)
        out = unconditional(denoiser, x_t, t)
        if self.scale == 0:
            return out
        _, eps = ddpm.predict_x0_eps(out, x_t, t)
        _, g = classifier_log_prob_grad(self.classifier, x_t, t, y)
        sigma = ddpm.sigma(t).reshape(-1, *([1] * (x_t.ndim - 1))).to(x_t.dtype)
        return ddpm.output_from_eps(eps - self.scale * sigma * g, x_t, t)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}" + (f", target={self.target}" if self.target is not None else "")
