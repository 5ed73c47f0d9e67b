"""ST-ProtoPNet's objective: trivial and support prototypes, trained on alternating batches.

Wang et al., "Learning Support and Trivial Prototypes for Interpretable Image Classification"
(ICCV 2023); official code cwangrun/ST-ProtoPNet at 935aaa1 (cropped-image settings). For a
branch b (``trivial`` or ``support``) with unit prototypes P_c (K x D) per class:

* CE_b: cross-entropy of the branch's own logits W_b s_b;
* clst_b = mean_i max_{j of class y_i} cos_ij and sep_b = mean_i max_{j not of y_i} cos_ij, cos
  the cosine between a latent patch and a prototype, max-pooled over the map;
* orth_b = Σ_c ‖P_c P_cᵀ − I‖₁ (entrywise), TesNet's orthogonality term;
* discrimination (trivial) = mean_{c≠c′} max_{k,l} ⟨p_ck, p_c′l⟩: push the closest cross-class
  pair apart; closeness (support) = −mean_{c≠c′} min_{k,l} ⟨p_ck, p_c′l⟩: pull even the farthest
  cross-class pair together, i.e. towards the decision boundary;
* l1_b: Σ |W_b| over wrong-class connections.

Batches alternate (official): even steps minimise
CE_trv − 0.8·clst_trv + 0.08·sep_trv + 1e-3·orth_trv + 1·discr + 1e-4·l1_trv, odd steps
CE_spt − 0.8·clst_spt + 0.48·sep_spt + 1e-3·orth_spt + 1·close + 1e-4·l1_spt. Prediction uses
the sum of both branches' logits. Before every training step the prototypes are put back on the
unit sphere (the official code renormalises after each step; all terms use p/‖p‖, so only the
optimiser's state sees the difference). In eval mode the loss is the mean of both branches'
losses on the same batch.

The step counter is a buffer, so a checkpoint resumes on the right branch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_number
from .base import Method
from .cross_entropy import check_labels
from .protopnet import wrong_class_l1

__all__ = ["STProtoPNetLoss", "closeness", "discrimination", "orthogonality"]


def _cross_class(p: torch.Tensor, prototype_class: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(C, C, K, K) inner products between unit prototypes of every class pair, and C."""
    c = int(prototype_class.max()) + 1
    k = p.shape[0] // c
    blocks = p.reshape(c, k, -1)  # contiguous blocks: prototype j of class j // K
    return torch.einsum("akd,bld->abkl", blocks, blocks), c


def closeness(p: torch.Tensor, prototype_class: torch.Tensor) -> torch.Tensor:
    """−mean over class pairs c ≠ c′ of min_{k,l} ⟨p_ck, p_c′l⟩ (unit prototypes ``p`` (P, D))."""
    g, c = _cross_class(p, prototype_class)
    off = ~torch.eye(c, dtype=torch.bool, device=p.device)
    return -g.flatten(2).min(dim=2).values[off].mean()


def discrimination(p: torch.Tensor, prototype_class: torch.Tensor) -> torch.Tensor:
    """mean over class pairs c ≠ c′ of max_{k,l} ⟨p_ck, p_c′l⟩."""
    g, c = _cross_class(p, prototype_class)
    off = ~torch.eye(c, dtype=torch.bool, device=p.device)
    return g.flatten(2).max(dim=2).values[off].mean()


def orthogonality(p: torch.Tensor, prototype_class: torch.Tensor) -> torch.Tensor:
    """Σ_c ‖P_c P_cᵀ − I‖₁ over the classes' (K, D) blocks of unit prototypes."""
    g, c = _cross_class(p, prototype_class)
    idx = torch.arange(c, device=p.device)
    own = g[idx, idx]  # (C, K, K)
    eye = torch.eye(own.shape[-1], device=p.device, dtype=p.dtype)
    return (own - eye).abs().sum()


class STProtoPNetLoss(Method):
    """The alternating trivial / support objective (see the module docstring).

    Logs ``acc`` (summed logits), ``branch`` (0 trivial, 1 support), ``ce``, ``clst``, ``sep``,
    ``orth`` and ``proto`` (discrimination or closeness).
    """

    def __init__(self, *, cluster: float = 0.8, separation_trivial: float = 0.08,
                 separation_support: float = 0.48, orth: float = 1e-3, discrimination: float = 1.0,
                 closeness: float = 1.0, l1: float = 1e-4):
        super().__init__()
        for name, v in (("cluster", cluster), ("separation_trivial", separation_trivial),
                        ("separation_support", separation_support), ("orth", orth),
                        ("discrimination", discrimination), ("closeness", closeness), ("l1", l1)):
            check_number(v, name, min=0, hint="a non-negative coefficient")
        self.w_clst, self.w_orth, self.w_l1 = float(cluster), float(orth), float(l1)
        self.w_sep = (float(separation_trivial), float(separation_support))
        self.w_proto = (float(discrimination), float(closeness))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _logits(model, b: int, z):
        proj = torch.einsum("ndhw,pd->nphw", z, model.branches[b].unit_prototypes())
        return model.last_layers[b](proj.flatten(2).max(dim=2).values)  # (N, C)

    def _branch_loss(self, model, b: int, z, y):
        branch = model.branches[b]
        pc = branch.prototype_class
        p = branch.unit_prototypes()  # (P_b, D)
        logits = self._logits(model, b, z)
        cos = torch.einsum("ndhw,pd->nphw", F.normalize(z, dim=1), p).flatten(2).max(dim=2).values
        own = y[:, None] == pc[None, :]
        ninf = torch.finfo(cos.dtype).min
        clst = cos.masked_fill(~own, ninf).max(dim=1).values.mean()
        sep = cos.masked_fill(own, ninf).max(dim=1).values.mean()
        orth = orthogonality(p, pc)
        proto = discrimination(p, pc) if b == 0 else closeness(p, pc)
        l1 = wrong_class_l1(model.last_layers[b].weight, pc)
        ce = F.cross_entropy(logits, y)
        loss = (ce - self.w_clst * clst + self.w_sep[b] * sep + self.w_orth * orth
                + self.w_proto[b] * proto + self.w_l1 * l1)
        parts = {"ce": ce, "clst": clst, "sep": sep, "orth": orth, "proto": proto}
        return loss, logits, parts

    def loss(self, model, batch):
        x, y = batch
        if type(model).__name__ != "STProtoPNet":
            raise TypeError(f"STProtoPNetLoss trains wb.models.STProtoPNet, got {type(model).__name__}")
        check_labels(y, model.n_classes, "STProtoPNetLoss")
        if self.training:
            model.renormalize_()
        zs = model.latents(x)
        if self.training:
            b = int(self.step) % 2
            loss, logits, parts = self._branch_loss(model, b, zs[b], y)
            self.step += 1
            with torch.no_grad():
                logits = logits.detach() + self._logits(model, 1 - b, zs[1 - b].detach())
        else:
            b = -1
            outs = [self._branch_loss(model, i, zs[i], y) for i in (0, 1)]
            loss = (outs[0][0] + outs[1][0]) / 2
            logits = outs[0][1] + outs[1][1]
            parts = {k: (outs[0][2][k] + outs[1][2][k]) / 2 for k in outs[0][2]}
        with torch.no_grad():
            logs = {"acc": (logits.argmax(1) == y).float().mean(), "branch": float(b),
                    **{k: v.detach() for k, v in parts.items()}}
        return loss, logs
