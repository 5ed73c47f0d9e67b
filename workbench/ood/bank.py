"""``FeatureBank``: every representation an OOD detector needs, computed once per data set.

Trying ten detectors on one model should cost one pass over each data set, not ten. A bank
wraps a model (and optionally the method that trained it) and, for each data set it is asked
about, runs one no-grad pass in evaluation mode and keeps

* ``backbone``: ``model.features(x)``, shape (N, d): what Mahalanobis, SSD, KNN, NECO and
  WDiscOOD score (PALM's official evaluation also scores the backbone, not the head);
* ``logits``: ``model.head(features)``, shape (N, C): what MSP, MaxLogit and Energy score;
* ``embedding``: the method's L2-normalised embedding ``method.embed(model, x)`` (e.g. PALM's
  head output on the unit sphere), shape (N, e): what PrototypeScore scores.

The cache is keyed by the data set object (``wb.data.Dataset`` is compared by identity) and by
a fingerprint of the model's and method's parameters and buffers (each tensor's storage and
in-place version counter). Training the model further, loading other weights or changing the
data tensors in place makes the bank recompute on the next request; nothing stale is served.

Logits are computed when the model has ``head`` and no embedding method was given. A model
trained by an embedding method (PALM, SupCon: methods with ``embed``) has an untrained linear
head, so its logits would be noise: the bank then leaves them out (pass ``logits=True`` to
compute them anyway) and logit detectors say so instead of scoring noise.

The model and method are never modified: both are put in eval mode for the pass and restored.
Features are kept on the CPU as float32 tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._device import model_device
from .._modes import eval_mode
from ..data.dataset import Dataset

SPACES = ("backbone", "logits", "embedding")

__all__ = ["FeatureBank", "Features", "SPACES", "MissingFeaturesError", "as_dataset"]


class MissingFeaturesError(ValueError):
    """A detector asked a bank for a feature space it does not hold (logits, embedding)."""


def as_dataset(data, what: str = "data") -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, torch.Tensor):
        if not data.dtype.is_floating_point:
            raise TypeError(f"{what} holds {data.dtype} values; pass float inputs (x.float())")
        return Dataset(data)
    raise TypeError(
        f"{what} must be a wb.data.Dataset or a tensor of inputs, got {type(data).__name__}; "
        "wrap arrays with wb.data.Dataset.from_arrays(x, y)"
    )


@dataclass(frozen=True, eq=False)
class Features:
    """The representations of one data set: (N, d) ``backbone``, (N, C) ``logits`` or None,
    (N, e) ``embedding`` or None, labels ``y`` (N,) or None. CPU float32 tensors."""

    backbone: torch.Tensor
    logits: torch.Tensor | None
    embedding: torch.Tensor | None
    y: torch.Tensor | None
    name: str = ""

    def __len__(self) -> int:
        return int(self.backbone.shape[0])

    def get(self, space: str) -> torch.Tensor:
        """The features of one space ("backbone", "logits" or "embedding"), or a clear error."""
        if space not in SPACES:
            raise ValueError(f"unknown feature space {space!r}; valid: {', '.join(SPACES)}")
        out = getattr(self, space)
        if out is None:
            if space == "logits":
                raise MissingFeaturesError(
                    "these features have no logits: the bank was built for a model trained by an "
                    "embedding method (its linear head is untrained) or a model without head(z). "
                    "Use a feature-space detector (Mahalanobis, SSD, KNN, ...) or build the bank "
                    "with FeatureBank(model, logits=True) to score the head anyway"
                )
            raise MissingFeaturesError(
                "these features have no embedding: build the bank with the method that defines it, "
                "e.g. wb.ood.FeatureBank(model, method=palm), or pass embed=fn(model, x)"
            )
        return out

    def __repr__(self) -> str:
        parts = [f"backbone {tuple(self.backbone.shape)}"]
        if self.logits is not None:
            parts.append(f"logits {tuple(self.logits.shape)}")
        if self.embedding is not None:
            parts.append(f"embedding {tuple(self.embedding.shape)}")
        name = f"{self.name!r}, " if self.name else ""
        return f"Features({name}{', '.join(parts)})"


def _fingerprint(*modules) -> tuple:
    out = []
    for m in modules:
        if m is None:
            continue
        for t in list(m.parameters()) + list(m.buffers()):
            out.append((t.data_ptr(), t._version, tuple(t.shape)))
    return tuple(out)


class FeatureBank:
    """Cached features of ``model`` (and ``method``'s embedding) for any number of data sets.

    ``bank.features(data)`` -> ``Features`` (computed on the first request, then cached);
    every detector's ``fit``/``predict`` accepts a bank in place of a model. ``n_passes``
    counts the passes over data actually run (to see the cache working).

    Parameters
    ----------
    model: the network; needs ``features(x)`` (classifiers also ``head(z)``).
    method: optional method with ``embed(model, x)`` (PALM, SupCon): adds ``embedding``.
    embed: optional ``fn(model, x) -> (N, e)`` used instead of ``method.embed`` (L2-normalised
        here if it is not already).
    logits: None (auto: when the model has ``head`` and no embedding method/function is given),
        True or False.
    batch_size: samples per forward pass.
    """

    def __init__(self, model: nn.Module, method=None, *, embed=None, logits: bool | None = None,
                 batch_size: int = 1024):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
        if not callable(getattr(model, "features", None)):
            raise TypeError(
                f"{type(model).__name__} has no features(x); OOD detectors need a model that exposes "
                "its representation (wb.models classifiers do)"
            )
        if method is not None and embed is None and not callable(getattr(method, "embed", None)):
            raise TypeError(
                f"{type(method).__name__} has no embed(model, x); pass a method that defines an "
                "embedding (e.g. wb.methods.PALM) or embed=fn(model, x)"
            )
        if embed is not None and not callable(embed):
            raise TypeError("embed must be a function fn(model, x) -> (N, e) tensor")
        if logits is not None and not isinstance(logits, bool):
            raise TypeError(f"logits must be None (auto), True or False, got {logits!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        has_head = callable(getattr(model, "head", None))
        if logits is None:
            logits = has_head and method is None and embed is None
        elif logits and not has_head:
            raise ValueError(f"{type(model).__name__} has no head(z), so there are no logits; pass logits=False")
        self.model = model
        self.method = method
        self.embed_fn = embed if embed is not None else (method.embed if method is not None else None)
        self.with_logits = bool(logits)
        self.batch_size = batch_size
        self.n_passes = 0
        self._cache: dict[int, tuple] = {}

    # ------------------------------------------------------------------ public
    def features(self, data) -> Features:
        """The ``Features`` of ``data`` (a Dataset or an input tensor), computed once."""
        ds = as_dataset(data)
        key = id(ds)
        fp = (_fingerprint(self.model, self.method if isinstance(self.method, nn.Module) else None),
              ds.x.data_ptr(), ds.x._version)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is ds and hit[1] == fp:
            return hit[2]
        feats = self._compute(ds)
        self._cache[key] = (ds, fp, feats)
        return feats

    def clear(self) -> None:
        """Forget every cached data set."""
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        spaces = ["backbone"] + (["logits"] if self.with_logits else []) + (
            ["embedding"] if self.embed_fn is not None else [])
        return (f"FeatureBank({type(self.model).__name__}, spaces={spaces}, cached data sets={len(self)}, "
                f"passes={self.n_passes})")

    # ------------------------------------------------------------------ internals
    @torch.no_grad()
    def _compute(self, ds: Dataset) -> Features:
        model, method = self.model, self.method
        device = model_device(model)
        if ds.device.type != "cpu" and ds.device != device:
            raise ValueError(f"the model is on {device} but the data is on {ds.device}; move one of them")
        back, logit, emb = [], [], []
        with eval_mode(model, method):
            for x, _ in ds.loader(self.batch_size, shuffle=False, device=device):
                h = model.features(x)
                h = h.reshape(h.shape[0], -1)
                back.append(h.detach().float().cpu())
                if self.with_logits:
                    logit.append(model.head(h).detach().float().cpu())
                if self.embed_fn is not None:
                    e = self.embed_fn(model, x)
                    e = F.normalize(e.reshape(e.shape[0], -1).float(), dim=1)
                    emb.append(e.detach().cpu())
        self.n_passes += 1
        return Features(
            backbone=torch.cat(back),
            logits=torch.cat(logit) if logit else None,
            embedding=torch.cat(emb) if emb else None,
            y=None if ds.y is None else ds.y.detach().cpu(),
            name=ds.name,
        )
