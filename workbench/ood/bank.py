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

The model and method are never modified: both are put in eval mode for the pass and every
submodule's mode is restored (``workbench._modes.eval_mode``). Features are kept on the CPU as
float32 tensors.

**Data that does not fit in memory.** Each feature space is allocated once and filled batch by
batch (no list of batches concatenated at the end, which would need twice the memory). With
``memory="2GB"`` (a budget for one data set's features, all spaces together) larger features go
to memory-mapped files (temporary ones, deleted when the features are freed); with
``path="folder"`` they always go to ``.npy`` files there, kept (``Features.files``). Such
features are torch tensors reading from the file: detectors fit and score them in row blocks
(``Detector.predict_features``, ``Mahalanobis``, ``KNN``), and the pages read are dropped from the
process after each block (``workbench._stream``), so the resident memory stays near the budget
however many rows there are.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._device import model_device
from .._modes import eval_mode
from .._stream import RowWriter, parse_bytes, row_chunks
from ..data.dataset import Dataset
from ..data.embeddings import Embeddings

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
    (N, e) ``embedding`` or None, labels ``y`` (N,) or None. CPU float32 tensors (possibly
    reading from memory-mapped files: ``on_disk``; ``files`` names the kept ones)."""

    backbone: torch.Tensor
    logits: torch.Tensor | None
    embedding: torch.Tensor | None
    y: torch.Tensor | None
    name: str = ""
    on_disk: bool = False
    files: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.backbone.shape[0])

    @classmethod
    def of(cls, emb: Embeddings) -> Features:
        """The features of precomputed ``Embeddings``: ``backbone`` = the embeddings (shared, not
        copied), ``logits`` = ``emb.logits`` (or None), no method embedding; its labels."""
        return cls(backbone=emb.tensor, logits=emb.logits, embedding=None, y=emb.labels,
                   name=str(emb.meta.get("data", "embeddings")))

    def get(self, space: str) -> torch.Tensor:
        """The features of one space ("backbone", "logits" or "embedding"), or a clear error."""
        if space not in SPACES:
            raise ValueError(f"unknown feature space {space!r}; valid: {', '.join(SPACES)}")
        out = getattr(self, space)
        if out is None:
            if space == "logits":
                raise MissingFeaturesError(
                    "these features have no logits: the bank was built for a model trained by an "
                    "embedding method (its linear head is untrained) or a model without head(z), or "
                    "they are wb.data.Embeddings made without logits=. "
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
        disk = ", memory-mapped" if self.on_disk else ""
        return f"Features({name}{', '.join(parts)}{disk})"


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
    memory: None (features in RAM) or a budget (bytes, or a string such as ``"2GB"``): a data
        set whose features (all spaces) need more goes to temporary memory-mapped files.
    path: a folder: features always go to memory-mapped ``.npy`` files there, which are kept
        (``features(data).files``; reopen with ``np.load(f, mmap_mode="r")``).
    """

    def __init__(self, model: nn.Module | None, method=None, *, embed=None, logits: bool | None = None,
                 batch_size: int = 1024, memory=None, path=None):
        if model is None:  # a bank of precomputed wb.data.Embeddings only
            if method is not None or embed is not None:
                raise ValueError("a bank without a model serves precomputed Embeddings; it takes no method/embed")
            self.model, self.method, self.embed_fn = None, None, None
            self.with_logits, self.batch_size, self.n_passes, self._cache = bool(logits), batch_size, 0, {}
            self.memory, self.path = None, None
            return
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
        self.memory = None if memory is None else parse_bytes(memory)
        if path is not None and not isinstance(path, (str, Path)):
            raise TypeError(f"path must be a folder (str or pathlib.Path) or None, got {type(path).__name__}")
        self.path = None if path is None else Path(path)
        self.n_passes = 0
        self._cache: dict[int, tuple] = {}

    # ------------------------------------------------------------------ public
    def features(self, data) -> Features:
        """The ``Features`` of ``data`` (a Dataset or an input tensor), computed once; precomputed
        ``wb.data.Embeddings`` are taken as they are (no model needed)."""
        if isinstance(data, Embeddings):
            return Features.of(data)
        if self.model is None:
            raise TypeError(
                f"this bank has no model, so it serves precomputed wb.data.Embeddings only; got "
                f"{type(data).__name__}: pass Embeddings, or build FeatureBank(model)"
            )
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
        if self.model is None:
            return "FeatureBank(precomputed Embeddings)"
        return (f"FeatureBank({type(self.model).__name__}, spaces={spaces}, cached data sets={len(self)}, "
                f"passes={self.n_passes})")

    # ------------------------------------------------------------------ internals
    @torch.no_grad()
    def _compute(self, ds: Dataset) -> Features:
        model, method = self.model, self.method
        device = model_device(model)
        if ds.device.type != "cpu" and ds.device != device:
            raise ValueError(f"the model is on {device} but the data is on {ds.device}; move one of them")
        writers: dict[str, RowWriter] = {}
        with eval_mode(model, method):
            for i, x in row_chunks(ds.x, self.batch_size):
                x = x.to(device)
                h = model.features(x)
                h = h.reshape(h.shape[0], -1)
                rows = {"backbone": h}
                if self.with_logits:
                    rows["logits"] = model.head(h)
                if self.embed_fn is not None:
                    e = self.embed_fn(model, x)
                    rows["embedding"] = F.normalize(e.reshape(e.shape[0], -1).float(), dim=1)
                if not writers:
                    writers = self._writers(ds, {k: v.shape[1] for k, v in rows.items()})
                for k, v in rows.items():
                    writers[k].write(i, v)
        self.n_passes += 1
        out = {k: w.result() for k, w in writers.items()}
        return Features(
            backbone=out["backbone"],
            logits=out.get("logits"),
            embedding=out.get("embedding"),
            y=None if ds.y is None else ds.y.detach().cpu(),
            name=ds.name,
            on_disk=any(w.on_disk for w in writers.values()),
            files={k: str(w.file) for k, w in writers.items() if w.file is not None},
        )

    def _writers(self, ds: Dataset, dims: dict[str, int]) -> dict[str, RowWriter]:
        """One output per feature space: kept files under ``path``, temporary files when the
        features exceed ``memory``, else RAM."""
        n = len(ds)
        if self.path is not None:
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", ds.name or "data")[:60]
            token = secrets.token_hex(3)
            return {k: RowWriter(n, file=self.path / f"{stem}-{token}.{k}.npy") for k in dims}
        to_disk = self.memory is not None and 4 * n * sum(dims.values()) > self.memory
        return {k: RowWriter(n, memory=0 if to_disk else None) for k in dims}
