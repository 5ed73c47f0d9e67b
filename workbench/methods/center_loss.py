"""Center loss: cross-entropy plus a pull of each feature toward its class centre.

Paper: Wen et al., "A Discriminative Feature Learning Approach for Deep Face Recognition"
(ECCV 2016). With features h_i = model.features(x_i) and one centre c_y per class,

    L = CE(model(x), y) + λ · 1/2 · mean_i ‖h_i - c_{y_i}‖²

The centres are not trained by the optimiser: as in the paper (Algorithm 1), after each
training step's loss every centre moves toward the mean of its class's features in the batch,
c_j <- c_j - α·Δc_j with Δc_j = Σ_{i: y_i = j} (c_j - h_i) / (1 + n_j) (n_j = samples of class j
in the batch; classes absent from the batch do not move). The centres are a registered buffer
``centers`` (C, d), created at the first batch (zeros, as in the paper) when ``feature_dim``
is not given, and updated only in training mode.

Differences from the paper and common ports:
* the paper sums the centre term over the mini-batch; here it is averaged over the batch (so λ
  does not depend on the batch size). The paper's λ = 0.003 with summed terms corresponds to
  λ ≈ 0.003·B here; the default λ = 0.1 suits the workbench's small models.
* popular PyTorch ports make the centres an ``nn.Parameter`` with their own SGD learning rate;
  here the paper's explicit update with rate α (``alpha``, 0.5) is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_int, check_number
from .base import Method
from .cross_entropy import check_labels


class CenterLoss(Method):
    """Cross-entropy + λ/2 · mean squared distance of features to their class centre.

    Logs ``acc`` (batch accuracy), ``ce`` and ``center`` (the mean squared distance).
    """

    def __init__(self, n_classes: int = 10, *, weight: float = 0.1, alpha: float = 0.5,
                 feature_dim: int | None = None, label_smoothing: float = 0.0):
        super().__init__()
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"n_classes must be a positive int, got {n_classes!r}")
        check_number(weight, "weight (λ)", min=0, hint="the weight of the centre term, e.g. 0.1")
        if feature_dim is not None:
            check_int(feature_dim, "feature_dim", min=1, hint="the size of model.features(x), or None to infer it")
        check_number(alpha, "alpha (centre update rate)", min=0, max=1, min_open=True)
        check_number(label_smoothing, "label_smoothing", min=0, max=1, max_open=True)
        self.n_classes, self.weight, self.alpha = n_classes, float(weight), float(alpha)
        self.label_smoothing = float(label_smoothing)
        self.feature_dim = feature_dim
        if feature_dim is not None:
            self.register_buffer("centers", torch.zeros(n_classes, feature_dim))
        else:
            self.register_buffer("centers", None)

    def _ensure_centers(self, h: torch.Tensor):
        if self.centers is None:
            self.register_buffer("centers", torch.zeros(self.n_classes, h.shape[1], device=h.device))
            self.feature_dim = h.shape[1]
            if hasattr(self, "config"):
                self.config["feature_dim"] = h.shape[1]
        elif self.centers.shape[1] != h.shape[1]:
            raise ValueError(
                f"the centres are {self.centers.shape[1]}-d but the model's features are {h.shape[1]}-d; "
                f"build CenterLoss(feature_dim={h.shape[1]})"
            )

    def loss(self, model, batch):
        x, y = batch
        h = model.features(x)
        h = h.reshape(h.shape[0], -1)
        logits = model.head(h)
        check_labels(y, logits.shape[-1], "CenterLoss")
        if logits.shape[-1] != self.n_classes:
            raise ValueError(
                f"the model predicts {logits.shape[-1]} classes but CenterLoss was built for "
                f"{self.n_classes}; pass n_classes={logits.shape[-1]}"
            )
        self._ensure_centers(h)
        ce = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        c = self.centers[y]  # (B, d)
        center = 0.5 * ((h - c) ** 2).sum(1).mean()
        loss = ce + self.weight * center
        if self.training:
            with torch.no_grad():
                diff = torch.zeros_like(self.centers).index_add_(0, y, (self.centers[y] - h.detach()))
                count = torch.bincount(y, minlength=self.n_classes).to(h.dtype)
                self.centers.sub_(self.alpha * diff / (1 + count)[:, None])
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss, {"acc": acc, "ce": ce.detach(), "center": 2 * center.detach()}
