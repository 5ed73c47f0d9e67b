"""A prototype-part network with the RBF / stable-CBC head of the robust prototype network.

Saralajew, Rana, Villmann & Shaker, "A Robust Prototype-Based Network with Interpretable RBF
Classifier Foundations" (AAAI 2025, arXiv 2412.15499); code: ``enlaight`` (shallow models) and
``deep_cbc`` (deep models). Put into the ProtoPNet frame (same trunk, add-on, 1x1 patch
prototypes, min-pooled patch distance):

* detection probability of component k: d_k = exp(−dist_k / σ_k), dist_k the **Euclidean**
  distance (square root of the squared patch distance, so the robustness bound's metric
  assumption holds) from prototype k to its nearest patch, σ_k > 0 trainable per component
  (stored as |σ| + 1e-6);
* ``head="cbc"`` (stable classification-by-components, "indefinite" reasoning removed):
  p(c|x) = Σ_k α_kc [ r_kc d_k + (1 − r_kc)(1 − d_k) ], α_kc a class-wise component prior
  (each column sums to 1) and r_kc ∈ [0, 1] the positive requiredness. Stored as one tensor of
  2K x C logits with a softmax over the 2K rows: the first K rows are α·r, the last K α·(1 − r);
  initialised to 0.6 − 0.2·N(0, 1) as in deep_cbc;
* ``head="rbf"``: p(c|x) = Σ_k w_kc d_k with w = softmax over k of K x C logits (non-negative,
  columns summing to 1): the RBF network the paper shows CBC generalises (stable CBC with
  r ≡ 1).

The outputs are class probabilities-like scores in [0, 1] (not logits); prediction is their
argmax. ``contributions`` (N, C, K) holds the per-component terms, which sum to p(c|x) exactly.
The losses (CBC margin loss, the robust loss of the paper's Theorem 1) are in
``wb.methods.CBCLoss``.

Differences from the papers' code: deep_cbc uses a PIPNet backbone whose per-location softmax
over channels is max-pooled into d (no prototype vectors); here d comes from patch distances to
learned prototypes, so the ProtoPNet push and "this looks like that" work unchanged, and the
robustness bound certifies perturbations of the *latent patches* (the trunk has no Lipschitz
bound), not of the input image. The 2 reasoning concepts per class of the shallow MNIST protocol
are 1 here.

Measured on 16x16 digits (``benchmarks/prototypes_ii_experiments.py variants``): trained from
scratch with the margin loss and the ProtoPNet stages, this network stays at chance (0.10 after
60 epochs, seed 0): at initialisation every image gives the same detections, the head's
α-weighted averages are flat, and the margin loss sits at its margin. Warm-started from a
trained ProtoPNet's trunk and prototypes it reached 0.59 after 300 steps (the ProtoPNet: 0.71).
deep_cbc starts from ImageNet-pretrained backbones; expect to need one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_choice, check_int, check_number
from ._prototype_parts import PrototypeLayer, PrototypePartNet, seeded

__all__ = ["DeepCBC", "stable_cbc", "HEADS"]

HEADS = ("cbc", "rbf")


def stable_cbc(d: torch.Tensor, alpha_r: torch.Tensor, alpha_not_r: torch.Tensor) -> torch.Tensor:
    """Per-component terms (N, C, K) of stable CBC: α r d + α (1 − r)(1 − d).

    ``d`` (N, K) detection probabilities; ``alpha_r`` and ``alpha_not_r`` (K, C)."""
    return d[:, None, :] * alpha_r.T[None] + (1 - d)[:, None, :] * alpha_not_r.T[None]


class DeepCBC(PrototypePartNet):
    """Prototype parts with an RBF detection and a stable-CBC or RBF head (module docstring).

    Parameters: as ``ProtoPNet``; ``head`` "cbc" or "rbf"; ``sigma_init`` the initial σ of every
    component (the docstring of enlaight suggests −(mean + std of the distances)/ln p0).
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
        head: str = "cbc",
        sigma_init: float = 1.0,
        seed: int | None = None,
    ):
        super().__init__()
        check_int(prototypes_per_class, "prototypes_per_class", min=1)
        check_int(prototype_dim, "prototype_dim", min=1)
        check_choice(head, "head", HEADS)
        check_number(sigma_init, "sigma_init", min=0, min_open=True, hint="the RBF width σ, e.g. 1.0")
        self.head_kind = head
        k = n_classes * prototypes_per_class
        with seeded(seed):
            channels = self._build_trunk(in_shape, n_classes, width, n_pools)
            self.branches = nn.ModuleList([
                PrototypeLayer(channels, n_classes, prototypes_per_class, prototype_dim,
                               activation="sigmoid", distance="l2", init="uniform")])
            rows = 2 * k if head == "cbc" else k
            self.reasoning = nn.Parameter(0.6 - 0.2 * torch.randn(rows, n_classes))  # (2K or K, C)
        self.sigma = nn.Parameter(torch.full((k,), float(sigma_init)))

    @property
    def prototypes(self) -> torch.Tensor:
        return self.branches[0].prototypes

    @property
    def sigmas(self) -> torch.Tensor:
        """σ_k > 0 (K,) as used: |σ| + 1e-6."""
        return self.sigma.abs() + 1e-6

    def activations(self, dmin: torch.Tensor) -> torch.Tensor:
        """Detection probabilities d_k = exp(−‖z − p_k‖ / σ_k) (N, K)."""
        return torch.exp(-torch.sqrt(dmin + 1e-12) / self.sigmas)

    def reasoning_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(α·r, α·(1 − r)), each (K, C); for the RBF head α·(1 − r) is zero."""
        w = self.reasoning.softmax(dim=0)
        k = self.n_prototypes
        if self.head_kind == "cbc":
            return w[:k], w[k:]
        return w, torch.zeros_like(w)

    def _terms(self, d: torch.Tensor) -> torch.Tensor:
        return stable_cbc(d, *self.reasoning_weights())  # (N, C, K)

    def head(self, s: torch.Tensor) -> torch.Tensor:
        return self._terms(s).sum(-1)  # (N, C) scores in [0, 1]

    def head_parameters(self) -> list[nn.Parameter]:
        return [self.reasoning]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        groups = super().parameter_groups()
        groups["prototypes"] = groups["prototypes"] + [self.sigma]  # σ trains with the prototypes
        return groups

    def contributions(self, x: torch.Tensor) -> torch.Tensor:
        return self._terms(self.features(x))
