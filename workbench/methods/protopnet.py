"""ProtoPNet's objective: cross-entropy + cluster − separation + L1 on wrong-class connections.

Chen et al., "This Looks Like That" (NeurIPS 2019); official ``train_and_test.py`` at 81bf2b7.
For a batch with labels y and the model's min patch distances d (N, P) (``model.min_distances``):

* CE: cross-entropy of the logits W s;
* Clst = mean over the batch of min_{j of class y_i} d_ij (pull some patch of every image
  close to a prototype of its class);
* Sep = mean over the batch of min_{j not of class y_i} d_ij (push every patch away from the
  other classes' prototypes);
* L1 = Σ |W_cj| over the connections of prototype j to the classes c it does not belong to;

    loss = 1·CE + 0.8·Clst − 0.08·Sep + 1e-4·L1     (the official coefficients)

The loss is the same in every stage; what changes is which parameters train
(``model.stage("warm" | "joint" | "last")``, run by ``wb.recipes.train_protopnet``). In the
last-layer stage only W has a gradient, so the objective is CE + 1e-4·L1 over W, the paper's
convex step.

Differences from the official code:
* the masked minima are computed with the entries outside the mask set to +inf; the official
  code takes max_dist − max((max_dist − d)·mask) with max_dist = D·h·w, which equals this
  whenever d ≤ max_dist (true while latents and prototypes stay in [0, 1]^D) and is wrong
  beyond; the min-of-masked-product form returns 0 (the ProtGNN bug the notes mention);
* only the class-specific variant exists (the official non-class-specific branch crashes);
* ``STProtoPNet`` and ``DeepCBC`` have their own objectives (``wb.methods.STProtoPNetLoss``,
  ``wb.methods.CBCLoss``); this one refuses them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from .base import Method
from .cross_entropy import check_labels

__all__ = ["ProtoPNetLoss", "cluster_separation", "wrong_class_l1"]


def cluster_separation(dmin: torch.Tensor, y: torch.Tensor, prototype_class: torch.Tensor):
    """(Clst, Sep): batch means of the min distance to an own-class / other-class prototype.

    ``dmin`` (N, P) min patch distances, ``y`` (N,), ``prototype_class`` (P,)."""
    own = y[:, None] == prototype_class[None, :]  # (N, P)
    inf = torch.finfo(dmin.dtype).max
    clst = dmin.masked_fill(~own, inf).min(dim=1).values.mean()
    sep = dmin.masked_fill(own, inf).min(dim=1).values.mean()
    return clst, sep


def wrong_class_l1(weight: torch.Tensor, prototype_class: torch.Tensor) -> torch.Tensor:
    """Σ |W_cj| over the classes c that prototype j does not belong to; ``weight`` (C, P)."""
    c = torch.arange(weight.shape[0], device=weight.device)
    wrong = c[:, None] != prototype_class[None, :]
    return (weight.abs() * wrong).sum()


class ProtoPNetLoss(Method):
    """CE + ``cluster``·Clst − ``separation``·Sep + ``l1``·L1 (official 1 / 0.8 / 0.08 / 1e-4).

    Logs ``acc``, ``ce``, ``clst``, ``sep`` and ``l1``.
    """

    def __init__(self, *, cross_entropy: float = 1.0, cluster: float = 0.8, separation: float = 0.08,
                 l1: float = 1e-4):
        super().__init__()
        for name, v in (("cross_entropy", cross_entropy), ("cluster", cluster), ("separation", separation),
                        ("l1", l1)):
            check_number(v, name, min=0, hint="a non-negative coefficient")
        self.w_ce, self.w_clst, self.w_sep, self.w_l1 = float(cross_entropy), float(cluster), float(separation), float(l1)

    @staticmethod
    def _check_model(model):
        for attr in ("min_distances", "activations", "head", "prototype_class", "head_parameters"):
            if not hasattr(model, attr):
                raise TypeError(
                    f"ProtoPNetLoss trains prototype-part networks (wb.models.ProtoPNet); "
                    f"{type(model).__name__} has no {attr}"
                )
        own = {"STProtoPNet": "STProtoPNetLoss", "DeepCBC": "CBCLoss"}.get(type(model).__name__)
        if own is not None:
            raise TypeError(f"{type(model).__name__} has its own objective: use wb.methods.{own}()")

    def loss(self, model, batch):
        x, y = batch
        self._check_model(model)
        dmin = model.min_distances(x)  # (N, P)
        out = model.head(model.activations(dmin))  # (N, C)
        check_labels(y, out.shape[1], "ProtoPNetLoss")
        ce = F.cross_entropy(out, y)
        pc = model.prototype_class
        clst, sep = cluster_separation(dmin, y, pc)
        w = torch.cat(list(model.head_parameters()), dim=1)  # (C, P)
        l1 = wrong_class_l1(w, pc)
        loss = self.w_ce * ce + self.w_clst * clst - self.w_sep * sep + self.w_l1 * l1
        with torch.no_grad():
            logs = {"acc": (out.argmax(1) == y).float().mean(), "ce": ce.detach(), "clst": clst.detach(),
                    "sep": sep.detach(), "l1": l1.detach()}
        return loss, logs
