"""Generative vs discriminative: a class-conditional diffusion model read as a classifier, beside an
MLP classifier of about the same size trained on the same data.

Papers: Li et al. 2023, "Your Diffusion Model is Secretly a Zero-Shot Classifier" (the diffusion
classifier, ``wb.analyses.diffusion_classify``); Zheng, Sun, Wang, Wang & Shen 2023, "Revisiting
Discriminative vs. Generative Classifiers: Theory and Implications" (the comparison: a
generative classifier needs fewer samples to approach its asymptote, the discriminative one
reaches a lower asymptotic error).

The recipe trains both (``wb.fit``), classifies ``test`` with the diffusion model (adaptive
elimination, and an accuracy-vs-evaluations curve without elimination), and reports the
discriminative model's accuracy, both parameter counts and the network evaluations the
diffusion classifier spent per test sample (the discriminative one spends 1).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .._checks import check_int
from ..analyses.classification import predict
from ..analyses.diffusion_classifier import (
    ClassifierCurve,
    DiffusionClassification,
    classifier_curve,
    diffusion_classify,
)
from ..methods.cfg import ConditionalDDPM
from ..methods.cross_entropy import CrossEntropy
from ..models import MLP, TimeMLP
from ..training import fit


def _params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def matched_mlp(in_dim: int, n_classes: int, target_params: int, depth: int = 3, seed: int = 0) -> MLP:
    """An MLP classifier with ``depth`` equal hidden layers, as wide as keeps it near ``target_params``."""
    width = 1
    while _params(MLP(in_dim, (width + 1,) * depth, n_classes)) <= target_params:
        width += 1
    return MLP(in_dim, (width,) * depth, n_classes, seed=seed)


@dataclass(frozen=True, eq=False)
class GenerativeVsDiscriminative:
    """``diffusion``: the adaptive diffusion classification of the test set; ``curve``: accuracy
    vs evaluations; ``discriminative_accuracy``; ``params``: {"diffusion", "discriminative"};
    ``seconds``: training times; ``models``: (denoiser, ddpm, classifier)."""

    diffusion: DiffusionClassification
    curve: ClassifierCurve
    discriminative_accuracy: float
    params: dict
    seconds: dict
    models: tuple = field(repr=False)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def table(self) -> dict:
        return {
            "diffusion classifier": dict(accuracy=self.diffusion.accuracy,
                                         evaluations=self.diffusion.mean_evaluations, params=self.params["diffusion"]),
            "discriminative MLP": dict(accuracy=self.discriminative_accuracy, evaluations=1.0,
                                       params=self.params["discriminative"]),
        }

    def __repr__(self) -> str:
        return (f"GenerativeVsDiscriminative(diffusion {self.diffusion.accuracy:.4f} with "
                f"{self.diffusion.mean_evaluations:.0f} evaluations/sample ({self.params['diffusion']:,} params) vs "
                f"MLP {self.discriminative_accuracy:.4f} ({self.params['discriminative']:,} params))")


def generative_vs_discriminative(
    train,
    test,
    *,
    denoiser: torch.nn.Module | None = None,
    ddpm: ConditionalDDPM | None = None,
    steps: int = 1500,
    classifier_steps: int | None = None,
    n_samples: Sequence[int] = (5, 25),
    to_keep: Sequence[int] = (2, 1),
    budgets: Sequence[int] = (1, 2, 5, 10, 25),
    batch_size: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
) -> GenerativeVsDiscriminative:
    """Train a class-conditional denoiser (``ConditionalDDPM``, default T = 50 linear, a
    ``TimeMLP(n_classes=K)``) and a size-matched MLP on ``train``; compare them on ``test``."""
    if train.y is None or test.y is None:
        raise ValueError("both train and test must be labelled")
    check_int(steps, "steps", min=1)
    K = int(train.y.max()) + 1
    dim = int(train.x[0].numel())
    ddpm = ddpm if ddpm is not None else ConditionalDDPM(50, "linear", p_uncond=0.1)
    den = denoiser if denoiser is not None else TimeMLP(dim=dim, n_classes=K, seed=seed)
    t0 = time.perf_counter()
    fit(den, ddpm, train, steps=steps, batch_size=batch_size, lr=lr, schedule="cosine", seed=seed, progress=False)
    t_den = time.perf_counter() - t0
    clf = matched_mlp(dim, K, _params(den), seed=seed)
    t0 = time.perf_counter()
    fit(clf, CrossEntropy(), train, steps=classifier_steps or steps, batch_size=batch_size, lr=lr, schedule="cosine",
        seed=seed, progress=False)
    t_clf = time.perf_counter() - t0
    disc = predict(clf, test).accuracy
    res = diffusion_classify(den, ddpm, test, n_samples=n_samples, to_keep=to_keep, n_classes=K, seed=seed)
    curve = classifier_curve(den, ddpm, test, budgets=budgets, n_classes=K, seed=seed)
    curve = ClassifierCurve(curve.n_timesteps, curve.evaluations, curve.accuracy, res)
    return GenerativeVsDiscriminative(
        res, curve, float(disc), {"diffusion": _params(den), "discriminative": _params(clf)},
        {"diffusion": t_den, "discriminative": t_clf}, (den, ddpm, clf),
        {"steps": steps, "n_samples": tuple(n_samples), "to_keep": tuple(to_keep), "seed": seed},
    )
