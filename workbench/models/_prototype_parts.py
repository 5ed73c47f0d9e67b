"""The frame shared by the prototype-part networks (ProtoPNet, ST-ProtoPNet, deep CBC).

A prototype-part network is: a convolutional ``trunk`` (keeps an h x w map) -> one or more
*branches*, each an add-on (1x1 conv -> act -> 1x1 conv -> act, giving D-dimensional latent
patches z) with P = C·K learned 1x1 prototypes, prototype j belonging to class j // K
(contiguous blocks, ProtoPNet's convention) -> a patch distance map (N, P, h, w) -> a global
min-pool -> a per-prototype activation -> a head that is a sum of per-prototype contributions.

What every such network offers (the analyses and views rely on nothing else):

* ``trunk(x)``, ``branches`` (each a ``PrototypeLayer``: ``latent(h)``, ``distances(z)``,
  ``prototypes``, ``prototype_class``), ``prototype_class`` (all branches concatenated);
* ``distance_maps(x)`` (N, P, h, w): what "nearest patch" means (lower = closer);
* ``features(x)`` (N, P): the prototype activations (the interpretable layer); ``head(s)``;
* ``contributions(x)`` (N, C, P): per-prototype terms whose sum over P is ``model(x)`` exactly;
* ``cell_boxes`` (h, w, 4): the input box each map cell sees (receptive field);
* ``parameter_groups()`` (features / add_on / prototypes / last_layer) and ``stage(name)``, a
  context manager that makes only that stage's groups trainable and restores every
  ``requires_grad`` flag afterwards;
* ``push_(projection)``: overwrite the prototypes with the latent patches an analysis found
  (``wb.analyses.project_prototypes``), the one place the prototypes are set by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from .._checks import check_choice, check_int
from . import Classifier, _SeededInit
from .conv_trunk import cell_boxes, check_image_input, conv_trunk, receptive_field, trunk_channels

ADD_ON_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
DISTANCES = ("l2", "projection")
STAGES = {
    "warm": ("add_on", "prototypes"),
    "joint": ("features", "add_on", "prototypes"),
    "last": ("last_layer",),
    "all": ("features", "add_on", "prototypes", "last_layer"),
}


def squared_distances(z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """‖z_hw − p_j‖² for latent maps ``z`` (N, D, h, w) and prototypes ``p`` (P, D), as
    ProtoPNet computes it: ‖z‖² − 2 z·p + ‖p‖², clamped at 0. Returns (N, P, h, w)."""
    zz = (z * z).sum(1, keepdim=True)  # (N, 1, h, w)
    zp = torch.einsum("ndhw,pd->nphw", z, p)
    pp = (p * p).sum(1)[None, :, None, None]
    return torch.relu(zz - 2 * zp + pp)


class PrototypeLayer(nn.Module):
    """Add-on + P = C·K 1x1 prototypes of dimension D on top of trunk maps with ``in_channels``.

    ``distance="l2"``: squared Euclidean patch distance (ProtoPNet, CBC);
    ``"projection"``: −⟨z, p/‖p‖⟩ (ST-ProtoPNet; "closer" = larger projection).
    ``init="uniform"``: U[0, 1) prototypes (ProtoPNet); ``"unit"``: U[0, 1) rows normalised.
    """

    def __init__(self, in_channels: int, n_classes: int, per_class: int, dim: int, *,
                 activation: str = "sigmoid", distance: str = "l2", init: str = "uniform"):
        super().__init__()
        check_choice(activation, "add-on activation", tuple(ADD_ON_ACTIVATIONS))
        check_choice(distance, "distance", DISTANCES)
        check_choice(init, "prototype init", ("uniform", "unit"))
        act = ADD_ON_ACTIVATIONS[activation]
        self.distance, self.per_class, self.n_classes = distance, per_class, n_classes
        self.add_on = nn.Sequential(nn.Conv2d(in_channels, dim, 1), act(), nn.Conv2d(dim, dim, 1), act())
        p = torch.rand(n_classes * per_class, dim)
        if init == "unit":
            p = p / p.norm(dim=1, keepdim=True)
        self.prototypes = nn.Parameter(p)  # (P, D)
        self.register_buffer("prototype_class", torch.arange(n_classes).repeat_interleave(per_class))

    @property
    def n_prototypes(self) -> int:
        return self.prototypes.shape[0]

    def latent(self, h: torch.Tensor) -> torch.Tensor:
        return self.add_on(h)  # (N, D, h, w)

    def unit_prototypes(self) -> torch.Tensor:
        return self.prototypes / self.prototypes.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """(N, P, h, w) patch distances (lower = closer)."""
        if self.distance == "l2":
            return squared_distances(z, self.prototypes)
        return -torch.einsum("ndhw,pd->nphw", z, self.unit_prototypes())


class PrototypePartNet(Classifier):
    """Base of the prototype-part networks (see the module docstring). Subclasses build
    ``self.branches`` and the head, and define ``activations``, ``head`` and ``contributions``."""

    trunk: nn.Sequential
    branches: nn.ModuleList

    def _build_trunk(self, in_shape: Sequence[int], n_classes: int, width: int, n_pools: int) -> int:
        self.in_shape = tuple(int(s) for s in in_shape)
        if len(self.in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W) for images, got {self.in_shape}")
        check_int(n_classes, "n_classes", min=2)
        self.n_classes = n_classes
        self.trunk = conv_trunk(self.in_shape[0], width, n_pools)
        geo = receptive_field(self.trunk, self.in_shape[1:])
        if geo["rows"]["out"] < 1 or geo["cols"]["out"] < 1:
            raise ValueError(f"{n_pools} pools leave no map for {self.in_shape[1:]} images; lower n_pools")
        self.register_buffer("cell_boxes", cell_boxes(geo, self.in_shape[1:]), persistent=False)
        return trunk_channels(width, n_pools)

    # ------------------------------------------------------------------ facts
    @property
    def prototype_class(self) -> torch.Tensor:
        return torch.cat([b.prototype_class for b in self.branches])  # (P,)

    @property
    def n_prototypes(self) -> int:
        return sum(b.n_prototypes for b in self.branches)

    @property
    def feature_dim(self) -> int:
        return self.n_prototypes

    @property
    def map_size(self) -> tuple[int, int]:
        return tuple(self.cell_boxes.shape[:2])

    def branch_slices(self) -> list[slice]:
        """Which columns of the concatenated (.., P) outputs belong to each branch."""
        out, i = [], 0
        for b in self.branches:
            out.append(slice(i, i + b.n_prototypes))
            i += b.n_prototypes
        return out

    # ------------------------------------------------------------------ forward pieces
    def trunk_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(check_image_input(x, self.in_shape, type(self).__name__))  # (N, F, h, w)

    def latents(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per branch, the latent patch maps (N, D, h, w)."""
        h = self.trunk_maps(x)
        return [b.latent(h) for b in self.branches]

    def distance_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(N, P, h, w) patch distances, all branches concatenated (lower = closer)."""
        return torch.cat([b.distances(z) for b, z in zip(self.branches, self.latents(x))], dim=1)

    def min_distances(self, x: torch.Tensor) -> torch.Tensor:
        """(N, P): each prototype's distance to its nearest patch of the image (global min-pool)."""
        return self.distance_maps(x).flatten(2).min(dim=2).values

    def activations(self, dmin: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, P) prototype activations (the interpretable layer the head reads)."""
        return self.activations(self.min_distances(x))

    def contributions(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ training stages
    def head_parameters(self) -> list[nn.Parameter]:  # pragma: no cover - abstract
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The four groups the training stages switch: features, add_on, prototypes, last_layer."""
        return {
            "features": list(self.trunk.parameters()),
            "add_on": [p for b in self.branches for p in b.add_on.parameters()],
            "prototypes": [b.prototypes for b in self.branches],
            "last_layer": list(self.head_parameters()),
        }

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Only the groups of stage ``name`` (``warm``, ``joint``, ``last``, ``all``) require
        gradients inside the block; every parameter's flag is restored afterwards."""
        check_choice(name, "stage", tuple(STAGES))
        groups = self.parameter_groups()
        flags = [(p, p.requires_grad) for p in self.parameters()]
        try:
            for g, params in groups.items():
                for p in params:
                    p.requires_grad_(g in STAGES[name])
            yield
        finally:
            for p, f in flags:
                p.requires_grad_(f)

    @torch.no_grad()
    def push_(self, projection) -> PrototypePartNet:
        """Overwrite every prototype with the latent patch ``projection.vectors`` (P, D) holds
        (a ``wb.analyses.project_prototypes`` result for this model). Returns self."""
        vec = projection.vectors
        if tuple(vec.shape) != (self.n_prototypes, self.branches[0].prototypes.shape[1]):
            raise ValueError(
                f"the projection holds {tuple(vec.shape)} vectors but this model has "
                f"{self.n_prototypes} prototypes of dimension {self.branches[0].prototypes.shape[1]}"
            )
        for b, sl in zip(self.branches, self.branch_slices()):
            b.prototypes.copy_(vec[sl].to(b.prototypes))
        return self


def seeded(seed: int | None):
    """The models' seeded-initialisation context (re-exported for the subclasses)."""
    return _SeededInit(seed)
