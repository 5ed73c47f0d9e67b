"""PrototypeScore: how close a sample's embedding comes to the learned prototypes.

PALM (Lu et al., "Learning with Mixture of Prototypes for Out-of-Distribution Detection",
ICLR 2024) models every class as a mixture of von Mises-Fisher components whose mean directions
are the prototypes p_j (unit vectors), and trains the embedding z (the L2-normalised head output)
to sit near its own class's prototypes. The natural OOD score is then how far a sample is from
**every** prototype:

* ``kind="max_cosine"`` (default): score = −max_j z·p_j (−1 on a prototype, 0 when orthogonal
  to all of them, up to 1 opposite to all);
* ``kind="logsumexp"``: score = −τ·logsumexp_j(z·p_j / τ), the negative log-density of an
  equal-weight vMF mixture with concentration 1/τ, up to a constant (τ = ``temperature``, PALM's
  0.1 by default).

Nobody scores PALM this way in the paper or its code: the official evaluation uses SSD+ on the
backbone features (``wb.ood.SSD``) and OpenOOD uses class-conditional Mahalanobis. This detector
is the workbench's addition, for comparing against them.

It needs no training data: the prototypes are read from a PALM method (``method.prototypes``
(Kt, d), ``method.proto_class`` (Kt,)) or given as a tensor. Embeddings come from
``method.embed(model, x)`` or a function ``embed(model, x)``, through a ``FeatureBank`` built
with that method (its "embedding" space).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..data.embeddings import Embeddings
from .bank import FeatureBank
from .base import Detector, check_features

__all__ = ["PrototypeScore"]

KINDS = ("max_cosine", "logsumexp")


class PrototypeScore(Detector):
    """OOD score from the cosine similarity of the embedding to the nearest prototype.

    Parameters
    ----------
    method: a trained method with ``prototypes`` (and ``proto_class``, ``embed``), e.g.
        ``wb.methods.PALM``; or None when ``prototypes`` (and ``embed``) are given.
    prototypes: (K, d) tensor of prototype directions (normalised here), instead of ``method``.
    embed: ``fn(model, x) -> (N, d)`` computing embeddings, instead of ``method.embed``.
    proto_class: optional (K,) class of every prototype (used by ``assign``).
    kind: "max_cosine" (default) or "logsumexp".
    temperature: τ for "logsumexp".

    Fitted attributes: ``prototypes_`` (K, d) unit rows (a copy taken at fit time),
    ``proto_class_`` (K,) or None, ``n_features_in_``.
    """

    space = "embedding"
    needs_fit_data = False

    def __init__(self, method=None, *, prototypes=None, embed=None, proto_class=None,
                 kind: str = "max_cosine", temperature: float = 0.1):
        self.method = method
        self.prototypes = prototypes
        self.embed = embed
        self.proto_class = proto_class
        self.kind = kind
        self.temperature = temperature

    # the embedding comes from this detector's method / embed function
    def _bank(self, source):
        if isinstance(source, FeatureBank):
            return source
        if isinstance(source, torch.nn.Module):
            if self.method is None and self.embed is None:
                raise ValueError(
                    "PrototypeScore needs embeddings: give it the method (PrototypeScore(palm)) or "
                    "embed=fn(model, x), or pass a FeatureBank built with the method"
                )
            return FeatureBank(source, self.method, embed=self.embed, logits=False)
        return super()._bank(source)

    def _features_of(self, source, data):
        feats = super()._features_of(source, data)
        if isinstance(data, Embeddings) and feats.embedding is None:
            # precomputed embeddings have one space: the prototypes are compared with the rows
            feats = dataclasses.replace(feats, embedding=feats.backbone)
        return feats

    def _read_prototypes(self):
        if self.prototypes is not None:
            p, cls = self.prototypes, self.proto_class
        elif self.method is not None:
            p = getattr(self.method, "prototypes", None)
            if p is None:
                raise ValueError(
                    f"{type(self.method).__name__} has no prototypes attribute; pass a PALM method or "
                    "prototypes=<(K, d) tensor>"
                )
            cls = self.proto_class if self.proto_class is not None else getattr(self.method, "proto_class", None)
        else:
            raise ValueError("PrototypeScore needs a method with prototypes or prototypes=<(K, d) tensor>")
        p = check_features(torch.as_tensor(p), "prototypes").double()
        if bool((p.norm(dim=1) == 0).any()):
            raise ValueError("a prototype is the zero vector; prototypes must be directions (non-zero rows)")
        if cls is not None:
            cls = torch.as_tensor(cls).detach().to(torch.int64).cpu()
            if cls.shape != (p.shape[0],):
                raise ValueError(f"proto_class must have shape ({p.shape[0]},), got {tuple(cls.shape)}")
        return F.normalize(p.detach(), dim=1), cls

    def _fit(self, z, y):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")
        p, cls = self._read_prototypes()
        if z is not None and z.shape[1] != p.shape[1]:
            raise ValueError(
                f"the embeddings are {z.shape[1]}-dimensional but the prototypes are {p.shape[1]}-dimensional; "
                "score the method's embedding space (FeatureBank(model, method=palm))"
            )
        dev = z.device if z is not None else torch.device("cpu")
        self.prototypes_ = p.to(dev)
        self.proto_class_ = cls
        self.n_features_in_ = int(p.shape[1])
        self.device_ = dev

    def similarities(self, z) -> torch.Tensor:
        """Cosine similarities (N, K) of embeddings ``z`` to every prototype."""
        self._check_fitted()
        z = check_features(z).to(self.prototypes_.device)
        if z.shape[1] != self.n_features_in_:
            raise ValueError(f"the prototypes are {self.n_features_in_}-d, got {z.shape[1]}-d embeddings")
        return (F.normalize(z.double(), dim=1) @ self.prototypes_.T).float().cpu()

    def assign(self, z) -> dict:
        """Nearest prototype of each embedding: ``index`` (N,), ``cosine`` (N,) and ``cls`` (N,)
        (the prototype's class, or None when ``proto_class`` is unknown)."""
        sim = self.similarities(z)
        cos, idx = sim.max(1)
        cls = self.proto_class_[idx] if self.proto_class_ is not None else None
        return {"index": idx, "cosine": cos, "cls": cls}

    def _score(self, z):
        sim = F.normalize(z.double(), dim=1) @ self.prototypes_.T
        if self.kind == "max_cosine":
            return -sim.amax(1)
        t = float(self.temperature)
        return -t * torch.logsumexp(sim / t, dim=1)
