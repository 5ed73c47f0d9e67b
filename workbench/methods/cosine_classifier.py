"""A cosine classifier: cross-entropy on T·cos(embedding, class weight).

The base-session objective of TEEN (Wang et al., NeurIPS 2023; official code: CEC/TEEN's
``temperature * F.linear(F.normalize(x), F.normalize(fc.weight))``, T = 16 on CIFAR, 32 on CUB
and mini-ImageNet) and of most few-shot class-incremental methods. The embedding is a linear
projection of ``model.features`` (``head="linear"``, 128-d by default: the notes found that a
ReLU'd embedding makes the new classes' prototypes nearly collinear on digits), L2-normalised;
the class weights W (C, d) are the method's parameters.

    loss = CE(T · normalise(head(features(x))) · normalise(W)ᵀ, y)

``embed(model, x)`` gives the unit embedding in which prototypes (class means) are compared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_number
from ._heads import HeadMixin
from .base import Method
from .cross_entropy import check_labels

__all__ = ["CosineClassifier"]


class CosineClassifier(HeadMixin, Method):
    """CE on temperature-scaled cosines to learned class weights (see the module docstring).

    Parameters: ``n_classes``; ``temperature`` T (16); ``head`` ("linear", "mlp" or None) and
    ``dim`` of the embedding; ``feature_dim`` (None: sized by ``setup(model)``, which ``wb.fit``
    calls). Logs ``acc``.
    """

    def __init__(self, n_classes: int, *, temperature: float = 16.0, head: str | None = "linear",
                 dim: int | None = 128, head_hidden: int | None = None, feature_dim: int | None = None,
                 seed: int | None = 0):
        super().__init__()
        check_int(n_classes, "n_classes", min=2)
        check_number(temperature, "temperature", min=0, min_open=True, hint="TEEN uses 16 (CIFAR) or 32")
        if head is None and feature_dim is None:
            raise ValueError("with head=None the class weights live in feature space: pass feature_dim=")
        self.n_classes, self.temperature = n_classes, float(temperature)
        self._init_head(head, dim if head is not None else feature_dim, feature_dim, head_hidden, seed)
        g = torch.Generator().manual_seed(0 if seed is None else seed)
        self.weight = nn.Parameter(torch.randn(n_classes, self.dim, generator=g) / self.dim ** 0.5)

    def logits(self, model, x: torch.Tensor) -> torch.Tensor:
        return self.temperature * self.embed(model, x) @ F.normalize(self.weight, dim=1).T

    def loss(self, model, batch):
        x, y = batch
        check_labels(y, self.n_classes, "CosineClassifier")
        self._ready(model, x)
        logits = self.logits(model, x)
        return F.cross_entropy(logits, y), {"acc": (logits.detach().argmax(1) == y).float().mean()}

    @torch.no_grad()
    def evaluate(self, model, data, batch_size: int = 1024) -> dict[str, float]:
        from .supcon import _mean_logs

        return _mean_logs(self, model, data, batch_size)
