"""Logit-based detectors: maximum softmax probability, maximum logit and energy.

* **MSP** (Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution
  Examples in Neural Networks", ICLR 2017): ID-ness = max_c softmax(f(x)/T)_c. OOD score = its
  negative. ``temperature`` T = 1 is the paper's baseline (ODIN's temperature scaling without
  the input perturbation for T > 1).
* **MaxLogit** (Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World
  Settings", ICML 2022): ID-ness = max_c f(x)_c; OOD score = -max_c f(x)_c.
* **Energy** (Liu et al., "Energy-based Out-of-distribution Detection", NeurIPS 2020): the free
  energy E(x) = -T·logsumexp(f(x)/T) is lower for ID data; the OOD score is E(x) itself
  (= -T·logsumexp), T = 1 in the paper.

They need no training data (nothing is learned): ``fit(model)`` or ``fit_features(None)`` just
marks them ready; ``fit(model, id_train)`` / ``fit_features(logits)`` also record the number of
classes so later logits of another size are refused. They score the model's classifier head and
make no sense for a model trained without one (PALM, SupCon); a ``FeatureBank`` built with such
a method has no logits and these detectors then say so.
"""

from __future__ import annotations

import torch

from .base import Detector

__all__ = ["MSP", "MaxLogit", "Energy"]


def _check_temperature(t) -> float:
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not t > 0:
        raise ValueError(f"temperature must be a positive number, got {t!r}")
    return float(t)


class _LogitDetector(Detector):
    space = "logits"
    needs_fit_data = False

    def _fit(self, z, y) -> None:
        _check_temperature(getattr(self, "temperature", 1.0))
        if z is not None and z.shape[1] < 2:
            raise ValueError(f"{type(self).__name__} needs logits of at least 2 classes, got {z.shape[1]}")


class MSP(_LogitDetector):
    """Maximum softmax probability: score = -max softmax(logits / temperature)."""

    def __init__(self, *, temperature: float = 1.0):
        self.temperature = temperature

    def _score(self, z):
        return -torch.softmax(z.double() / _check_temperature(self.temperature), dim=1).amax(1)


class MaxLogit(_LogitDetector):
    """Maximum logit: score = -max_c logit_c."""

    def __init__(self):
        pass

    def _score(self, z):
        return -z.amax(1)


class Energy(_LogitDetector):
    """Energy: score = -temperature * logsumexp(logits / temperature) (the free energy)."""

    def __init__(self, *, temperature: float = 1.0):
        self.temperature = temperature

    def _score(self, z):
        t = _check_temperature(self.temperature)
        return -t * torch.logsumexp(z.double() / t, dim=1)
