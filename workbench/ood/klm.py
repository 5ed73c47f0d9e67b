"""KL-Matching, KLM (Hendrycks, Basart, Mazeika, Zou, Kwon, Mostajabi, Steinhardt & Song, "Scaling
Out-of-Distribution Detection for Real-World Settings", ICML 2022).

In words: for every class k, the template d_k is the mean softmax vector of the fitting samples
whose **predicted** class is k (no labels needed). A test sample's OOD score is the smallest
KL divergence from its softmax p to a template, min_k KL(p ‖ d_k) = Σ p log p − max_k p·log d_k.

Differences from the reference codes: OpenOOD and the paper fit the templates on ID validation
data, the ViM repository on training data: pass whichever split to ``fit``. A class never
predicted on the fitting data has no template and is left out of the minimum (OpenOOD gives it a
one-hot template whose KL is infinite: the same result). The KL is vectorised instead of one
Python call per (sample, class) pair; 0·log 0 = 0.
"""

from __future__ import annotations

import torch

from .logits import _LogitDetector

__all__ = ["KLMatching"]


class KLMatching(_LogitDetector):
    """OOD score = min_k KL(softmax(logits) ‖ d_k), d_k the mean softmax of samples predicted k.

    Fitted attributes: ``templates_`` (K, C) for the ``classes_`` (K,) that were predicted,
    ``n_features_in_``.
    """

    needs_fit_data = True

    def __init__(self):
        pass

    def _fit(self, z, y):
        super()._fit(z, y)
        p = torch.softmax(z.double(), dim=1)
        pred = p.argmax(1)
        self.classes_ = torch.unique(pred)
        onehot = (pred[:, None] == self.classes_[None, :]).double()             # (N, K)
        self.templates_ = (onehot.T @ p) / onehot.sum(0)[:, None]                # (K, C)

    def _score(self, z):
        p = torch.softmax(z.double(), dim=1)
        neg_entropy = torch.xlogy(p, p).sum(1)                                   # Σ p log p
        log_d = self.templates_.clamp_min(torch.finfo(torch.float64).tiny).log()  # (K, C); softmax means are > 0
        cross = p @ log_d.T                                                      # (N, K) Σ p log d_k
        return neg_entropy - cross.amax(1)
