"""Projection heads shared by the embedding methods (SupCon, PALM).

A method that owns a projection head needs the size of ``model.features(x)`` to build it.
Give it as ``feature_dim=`` or let ``setup(model)`` read ``model.feature_dim`` (or run one
probe batch) before the optimiser is built. ``setup`` records the size in ``config`` so a
checkpoint rebuilds the same head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_seed

HEADS = ("mlp", "linear", None)


def build_head(kind, in_dim: int, out_dim: int, hidden: int | None, seed: int | None) -> nn.Module:
    """``"mlp"``: Linear(in, hidden) -> ReLU -> Linear(hidden, out) (hidden defaults to in, as
    in SupCon's and PALM's official heads); ``"linear"``; ``None``: identity (out = in)."""
    from ..models import _SeededInit

    with _SeededInit(seed):
        if kind == "mlp":
            h = int(hidden or in_dim)
            return nn.Sequential(nn.Linear(in_dim, h), nn.ReLU(), nn.Linear(h, out_dim))
        if kind == "linear":
            return nn.Linear(in_dim, out_dim)
    return nn.Identity()


def check_head_kind(head):
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; valid: 'mlp', 'linear' or None (no head)")


class HeadMixin:
    """Gives a method ``setup(model)``, ``embed(model, x)`` and a lazily sized head."""

    head_kind: str | None
    dim: int | None
    feature_dim: int | None

    def _init_head(self, head, dim, feature_dim, head_hidden, seed):
        check_head_kind(head)
        if feature_dim is not None and (not isinstance(feature_dim, int) or feature_dim < 1):
            raise ValueError(f"feature_dim must be a positive int or None, got {feature_dim!r}")
        if dim is not None and (not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be a positive int or None, got {dim!r}")
        if head_hidden is not None and (isinstance(head_hidden, bool) or not isinstance(head_hidden, int) or head_hidden < 1):
            raise ValueError(f"head_hidden must be a positive int or None (= the feature size), got {head_hidden!r}")
        check_seed(seed, allow_none=True)
        if head is None and dim is not None and feature_dim is not None and dim != feature_dim:
            raise ValueError(
                f"with head=None the embedding is the features themselves, so dim ({dim}) must "
                f"equal feature_dim ({feature_dim}); drop dim= or pass a head"
            )
        self.head_kind, self.head_hidden, self._head_seed = head, head_hidden, seed
        self.feature_dim = feature_dim
        self.dim = dim if dim is not None else (feature_dim if head is None else 128)
        self.proj = None
        if feature_dim is not None:
            self.proj = build_head(head, feature_dim, self.dim, head_hidden, seed)

    @staticmethod
    def _model_feature_dim(model, x=None) -> int:
        d = getattr(model, "feature_dim", None)
        if isinstance(d, int):
            return d
        if x is None:
            raise ValueError(
                f"{type(model).__name__} has no integer feature_dim attribute; pass "
                "feature_dim=<size of model.features(x)> to the method"
            )
        with torch.no_grad():
            return int(model.features(x[:1]).reshape(1, -1).shape[1])

    def setup(self, model, data=None):
        """Build the projection head for ``model`` (idempotent; returns self).

        Call it before ``wb.fit`` when ``feature_dim`` was not given, so the head's parameters
        exist when the optimiser is built. ``data``: an optional Dataset used to probe the
        feature size when the model has no ``feature_dim``.
        """
        x = None
        if data is not None:
            x = data.x[:1] if hasattr(data, "x") else data[:1]
        d = self._model_feature_dim(model, x)
        if self.proj is not None:
            if self.feature_dim != d:
                raise ValueError(
                    f"this {type(self).__name__} was built for {self.feature_dim}-d features but the "
                    f"model gives {d}; build a new method with feature_dim={d}"
                )
            return self
        if self.head_kind is None and self.dim != d:
            raise ValueError(
                f"with head=None the embedding is the features themselves, so dim must be {d}, "
                f"got {self.dim}"
            )
        self.feature_dim = d
        self.proj = build_head(self.head_kind, d, self.dim, self.head_hidden, self._head_seed)
        from .._device import model_device

        self.proj.to(model_device(model))
        if hasattr(self, "config"):
            self.config["feature_dim"] = d
        return self

    def _ready(self, model, x):
        """Make sure the head exists; refuses to create trainable parameters mid-training."""
        if self.proj is not None:
            return
        d = self._model_feature_dim(model, x)
        if self.training and self.head_kind is not None:
            name = type(self).__name__
            raise ValueError(
                f"{name}'s projection head needs the size of model.features(x) before training so "
                f"that the optimiser sees its parameters: build it with {name}(..., feature_dim={d}) "
                f"or call method.setup(model) before wb.fit"
            )
        self.setup(model, None if isinstance(getattr(model, "feature_dim", None), int) else x)

    def embed(self, model, x) -> torch.Tensor:
        """The method's embedding: L2-normalised ``head(model.features(x))``, shape (N, dim)."""
        self._ready(model, x)
        h = model.features(x)
        return F.normalize(self.proj(h.reshape(h.shape[0], -1)), dim=1)
