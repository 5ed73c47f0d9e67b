"""mixup (Zhang, Cissé, Dauphin & Lopez-Paz, "mixup: Beyond Empirical Risk Minimization",
ICLR 2018).

In words: train on convex combinations of pairs of samples and of their labels. For a batch,
draw one λ ~ Beta(α, α) and a random permutation π of the batch, and minimise the
cross-entropy of the mixed input against both labels with the same weights:

    x̃ = λ x + (1 − λ) x_π,      L = λ · CE(f(x̃), y) + (1 − λ) · CE(f(x̃), y_π).

(Linear in the target, so this equals the cross-entropy against the mixed one-hot target.)
The model is pushed to behave linearly between training samples, which widens the margins
and softens the decision boundaries (see ``wb.recipes.compare_boundaries`` on the 2-D toys)
and usually lowers over-confidence. α → 0 gives back plain cross-entropy; α = 1 (λ uniform) is
the default of the official CIFAR-10 code (``facebookresearch/mixup-cifar10``).

As in the official code: one λ per batch, the partner of each sample is the same batch
permuted, and the logged training accuracy is λ·acc(y) + (1 − λ)·acc(y_π) on the mixed batch.

Differences, stated: λ and π are drawn from torch's global generator (``wb.fit`` forks and seeds
it), not numpy's. In eval mode (``evaluate``, analyses) the loss is the plain cross-entropy of
the clean inputs (nothing is mixed), and the accuracy is the clean one. The loss is not a
function of ``model(x)`` alone, so no ``loss_from_outputs`` is declared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from .base import Method
from .cross_entropy import check_labels


def mixup_loss(model, x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor):
    """``(loss, logits)`` of mixup for a given λ and permutation (module docstring)."""
    mixed = lam * x + (1 - lam) * x[perm]
    logits = model(mixed)
    check_labels(y, logits.shape[-1], "Mixup")
    loss = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    return loss, logits


class Mixup(Method):
    """Cross-entropy on mixed pairs of samples (module docstring). Logs ``acc`` and ``lam``."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = check_number(alpha, "alpha", min=0,
                                  hint="the Beta(alpha, alpha) parameter of the mixing weight; 1.0 draws it uniformly, 0 = no mixing")

    def sample(self, n: int, device) -> tuple[float, torch.Tensor]:
        """One λ ~ Beta(α, α) (1 when α = 0) and a random permutation of ``n`` samples."""
        if self.alpha > 0:
            a = torch.tensor(self.alpha, dtype=torch.float64)
            lam = float(torch.distributions.Beta(a, a).sample())
        else:
            lam = 1.0
        return lam, torch.randperm(n, device=device)

    def loss(self, model, batch):
        x, y = batch
        if y is not None and y.ndim != 1:
            raise ValueError(f"Mixup takes one integer label per sample, got labels of shape {tuple(y.shape)}")
        if not self.training:
            logits = model(x)
            check_labels(y, logits.shape[-1], "Mixup")
            return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}
        check_labels(y, None, "Mixup")  # before drawing λ: a bad batch raises without touching the RNG
        lam, perm = self.sample(x.shape[0], x.device)
        loss, logits = mixup_loss(model, x, y, lam, perm)
        pred = logits.detach().argmax(1)
        acc = lam * (pred == y).float().mean() + (1 - lam) * (pred == y[perm]).float().mean()
        return loss, {"acc": acc, "lam": torch.tensor(lam)}
