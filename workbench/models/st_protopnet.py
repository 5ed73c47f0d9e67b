"""ST-ProtoPNet: "Learning Support and Trivial Prototypes for Interpretable Image Classification".

Wang, Liu, Chen, Frazer & Carneiro, ICCV 2023; official code cwangrun/ST-ProtoPNet (read at
935aaa1). Two branches share the trunk. Each branch has its own add-on (Conv1x1 -> **Tanh** ->
Conv1x1 -> **Tanh**), its own C·K prototypes and its own bias-free last layer (init +1 / −0.5):

* the **trivial** branch learns prototypes far from the decision boundary (as ProtoPNet's);
* the **support** branch learns prototypes near the boundary (by analogy with the support
  vectors of an SVM): its loss pulls even the farthest cross-class pair of prototypes together.

Similarity in the logits: the projection ⟨z, p/‖p‖⟩ of a latent patch on the unit prototype,
max-pooled over the map (so the "distance" for the nearest patch and for the push is its
negative). Logits = W_trv s_trv + W_spt s_spt; ``contributions`` (N, C, P_trv + P_spt) holds
both branches' terms and sums to the logits. The prototypes are kept at unit length:
``wb.methods.STProtoPNetLoss`` renormalises them before each training step (the official code
does it after each step; every quantity uses p/‖p‖, so outputs are the same) and the push
stores the L2-normalised latent patch (``push_``).

Differences from the official code: the workbench ``conv_trunk`` from scratch instead of a
pretrained backbone; the cropped-image variant only (the ``full/`` variant's cosine logits are
not offered).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_int
from ._prototype_parts import PrototypeLayer, PrototypePartNet, seeded
from .protopnet import class_connection_weights

__all__ = ["STProtoPNet"]

BRANCHES = ("trivial", "support")


class STProtoPNet(PrototypePartNet):
    """Support and trivial prototypes on one trunk (see the module docstring).

    Parameters as ``ProtoPNet``; ``prototypes_per_class`` K is per branch (official K = 5,
    D = 64 on cropped CUB).
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (1, 16, 16),
        n_classes: int = 10,
        *,
        prototypes_per_class: int = 3,
        prototype_dim: int = 32,
        width: int = 32,
        n_pools: int = 2,
        incorrect_weight: float = -0.5,
        seed: int | None = None,
    ):
        super().__init__()
        check_int(prototypes_per_class, "prototypes_per_class", min=1)
        check_int(prototype_dim, "prototype_dim", min=1)
        p = n_classes * prototypes_per_class
        with seeded(seed):
            channels = self._build_trunk(in_shape, n_classes, width, n_pools)
            self.branches = nn.ModuleList([
                PrototypeLayer(channels, n_classes, prototypes_per_class, prototype_dim,
                               activation="tanh", distance="projection", init="unit")
                for _ in BRANCHES])
            self.last_layers = nn.ModuleList([nn.Linear(p, n_classes, bias=False) for _ in BRANCHES])
        with torch.no_grad():
            for layer, b in zip(self.last_layers, self.branches):
                layer.weight.copy_(class_connection_weights(b.prototype_class, n_classes, incorrect_weight))

    def branch(self, name: str) -> int:
        if name not in BRANCHES:
            raise ValueError(f"unknown branch {name!r}; valid: {', '.join(BRANCHES)}")
        return BRANCHES.index(name)

    def activations(self, dmin: torch.Tensor) -> torch.Tensor:
        return -dmin  # the max-pooled projection ⟨z, p/‖p‖⟩

    def branch_logits(self, s: torch.Tensor) -> list[torch.Tensor]:
        """Per branch, its logits (N, C) from the concatenated activations ``s`` (N, P)."""
        return [layer(s[:, sl]) for layer, sl in zip(self.last_layers, self.branch_slices())]

    def head(self, s: torch.Tensor) -> torch.Tensor:
        trv, spt = self.branch_logits(s)
        return trv + spt

    def head_parameters(self) -> list[nn.Parameter]:
        return [layer.weight for layer in self.last_layers]

    def class_weights(self) -> torch.Tensor:
        """Both last layers side by side (C, P_trv + P_spt): contribution = activation × weight."""
        return torch.cat([layer.weight for layer in self.last_layers], dim=1)

    def contributions(self, x: torch.Tensor) -> torch.Tensor:
        s = self.features(x)  # (N, P)
        return s[:, None, :] * self.class_weights()[None, :, :]

    @torch.no_grad()
    def renormalize_(self) -> STProtoPNet:
        """Put every prototype back on the unit sphere (done before each training step)."""
        for b in self.branches:
            b.prototypes.div_(b.prototypes.norm(dim=1, keepdim=True).clamp_min(1e-12))
        return self

    @torch.no_grad()
    def push_(self, projection) -> STProtoPNet:
        """The push of ST-ProtoPNet stores the L2-normalised latent patch."""
        super().push_(projection)
        return self.renormalize_()
