"""ProtoPNet: "This Looks Like That: Deep Learning for Interpretable Image Recognition".

Chen, Li, Tao, Barnett, Su & Rudin, NeurIPS 2019; the official code is cfchen-duke/ProtoPNet
(read at 81bf2b7). A model, not a method: the prototypes are part of the forward pass (the
logits are computed *from* them), so they are parameters of the network, trained by the
optimiser like the trunk; ``wb.methods.ProtoPNetLoss`` is the objective and
``wb.recipes.train_protopnet`` runs the three stages.

Forward pass, as the official code computes it:

* trunk (``conv_trunk``, trained from scratch here; the paper uses ImageNet VGG/ResNet) -> the
  add-on Conv1x1 -> ReLU -> Conv1x1 -> **Sigmoid** ("regular" add-on), so each latent patch z
  lies in [0, 1]^D;
* P = C·K prototypes of shape D x 1 x 1, started as U[0, 1); prototype j belongs to class j // K;
* d_j = min over the h x w patches of ‖z − p_j‖² (squared, no square root, clamped at 0);
* similarity s_j = log((d_j + 1) / (d_j + ε)), ε = 1e-4 (9.2103 at d = 0, → 0 as d grows);
  ``activation="linear"`` gives s_j = −d_j instead;
* logits = W s with W (C, P) **without bias**, initialised to +1 for a prototype's own class
  and −0.5 for every other class.

``features(x)`` is s (N, P) and ``head(s)`` = W s, so every analysis that reads
``model.features`` works on the similarity layer. ``contributions(x)`` (N, C, P) holds
s_j · W_cj: summed over j it is exactly the logit of class c ("this looks like that, because
...": each term is one prototype's evidence).

Differences from the official code: the trunk is the workbench's small ``conv_trunk`` trained
from scratch (the notes' CPU reproduction) instead of a pretrained VGG/ResNet; patch
distances are computed with one einsum instead of three convolutions (same formula and
clamp); pruning (official ``prune.py``) is not offered.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_choice, check_int, check_number
from ._prototype_parts import PrototypeLayer, PrototypePartNet, seeded

__all__ = ["ProtoPNet", "log_similarity", "class_connection_weights"]

ACTIVATIONS = ("log", "linear")


def log_similarity(d: torch.Tensor, epsilon: float = 1e-4) -> torch.Tensor:
    """ProtoPNet's similarity of a squared distance: log((d + 1) / (d + ε))."""
    return torch.log((d + 1) / (d + epsilon))


def class_connection_weights(prototype_class: torch.Tensor, n_classes: int,
                             incorrect: float = -0.5) -> torch.Tensor:
    """(C, P): +1 where prototype j belongs to class c, ``incorrect`` elsewhere."""
    own = prototype_class[None, :] == torch.arange(n_classes, device=prototype_class.device)[:, None]
    return torch.where(own, 1.0, float(incorrect))


class ProtoPNet(PrototypePartNet):
    """ProtoPNet on ``conv_trunk`` (see the module docstring).

    Parameters
    ----------
    in_shape: (C, H, W) of the images (e.g. (1, 16, 16) for digits upscaled by 2).
    n_classes: C. prototypes_per_class: K (official CUB setting 10; 3 on digits).
    prototype_dim: D (128 on CUB; 32 on digits). width, n_pools: the trunk's size.
    activation: ``"log"`` (official default) or ``"linear"``. epsilon: ε of the log similarity.
    incorrect_weight: the initial last-layer weight of other classes' prototypes (−0.5).
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
        activation: str = "log",
        epsilon: float = 1e-4,
        incorrect_weight: float = -0.5,
        seed: int | None = None,
    ):
        super().__init__()
        check_int(prototypes_per_class, "prototypes_per_class", min=1)
        check_int(prototype_dim, "prototype_dim", min=1)
        check_choice(activation, "activation", ACTIVATIONS)
        check_number(epsilon, "epsilon", min=0, min_open=True, hint="ProtoPNet uses 1e-4")
        check_number(incorrect_weight, "incorrect_weight", hint="ProtoPNet uses -0.5")
        self.activation, self.epsilon = activation, float(epsilon)
        with seeded(seed):
            channels = self._build_trunk(in_shape, n_classes, width, n_pools)
            self.branches = nn.ModuleList([
                PrototypeLayer(channels, n_classes, prototypes_per_class, prototype_dim,
                               activation="sigmoid", distance="l2", init="uniform")])
            self.last_layer = nn.Linear(n_classes * prototypes_per_class, n_classes, bias=False)
        with torch.no_grad():
            self.last_layer.weight.copy_(class_connection_weights(self.prototype_class, n_classes, incorrect_weight))

    @property
    def prototypes(self) -> torch.Tensor:
        """The prototype vectors (P, D) (the parameter itself)."""
        return self.branches[0].prototypes

    def activations(self, dmin: torch.Tensor) -> torch.Tensor:
        if self.activation == "log":
            return log_similarity(dmin, self.epsilon)
        return -dmin

    def head(self, s: torch.Tensor) -> torch.Tensor:
        return self.last_layer(s)

    def head_parameters(self) -> list[nn.Parameter]:
        return [self.last_layer.weight]

    def class_weights(self) -> torch.Tensor:
        """The last layer W (C, P): contribution = similarity × weight."""
        return self.last_layer.weight

    def contributions(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, P): similarity × last-layer weight; sums over P to the logits."""
        s = self.features(x)  # (N, P)
        return s[:, None, :] * self.last_layer.weight[None, :, :]
