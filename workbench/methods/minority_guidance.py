"""Minority guidance: steer sampling toward the low-density (minority) part of the data.

Paper: Um, Lee & Ye, ICLR 2024, "Don't Play Favorites: Minority Guidance for Diffusion Models"
(official code soobin-um/minority-guidance: ``construct_ms_dataset.py``, guided-diffusion's
``classifier_sample.py``).

Three steps; the first is ``wb.analyses.minority_score``, the others are here:

1. the **minority score** of each training sample: how badly the trained denoiser reconstructs
   it from one noise level (Tweedie's x̂0 at a fixed t, averaged over a few noise draws) — high
   for samples in low-density regions — binned into L quantile classes (``minority_labels``);
2. a **minority classifier**: a noise-aware classifier f(x_t, t) trained to predict the bin
   from noised samples (``wb.methods.NoisyClassification`` on the binned data);
3. the **guided sampler**: classifier guidance with that classifier toward a chosen bin —
   by default the top one (the rarest) — at scale w: ε̃ = ε̂ − w√(1 − ᾱ_t)∇log p_ψ(l̃ | x_t)
   (``MinorityGuidance``, a ``ClassifierGuidance`` with a fixed target; the official README
   samples with w = 3.5 toward bin L − 1 = 99 of 100).

Differences from the official code: see ``ClassifierGuidance`` (ε form of the guidance also
for the DDPM sampler) and ``minority_score`` (squared L2 instead of LPIPS).
"""

from __future__ import annotations

from torch import nn

from .classifier_guidance import ClassifierGuidance


class MinorityGuidance(ClassifierGuidance):
    """Classifier guidance toward minority bin ``target`` (default: the last, rarest bin of the
    classifier's ``n_classes``) at ``scale`` w; the labels ``y`` passed to the sampler are ignored."""

    def __init__(self, classifier: nn.Module, scale: float = 3.5, *, target: int | None = None):
        if target is None:
            n = getattr(classifier, "n_classes", None)
            if n is None:
                raise ValueError("pass target= (the minority bin to steer to): the classifier does not say its n_classes")
            target = int(n) - 1
        super().__init__(classifier, scale, target=target)
