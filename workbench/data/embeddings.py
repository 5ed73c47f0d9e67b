"""``Embeddings``: features computed elsewhere (or by ``wb.analyses.embed``), with what is known
about their rows: labels, the input images, ids, logits and free-form metadata.

    emb = wb.data.Embeddings(z, labels=y)              # z: (N, d) array or tensor
    emb = wb.analyses.embed(model, data)               # the same type, from a model
    emb.save("emb.npz"); emb = wb.data.Embeddings.load("emb.npz")
    emb = wb.data.Embeddings.load("features.npy", labels="labels.npy")   # memory-mapped

Every features-only analysis and view takes one directly: projections, representation metrics,
prototype maps (k-means prototypes when no prototype method was trained), few-shot evaluation,
OOD detectors (``fit(emb)``, ``predict(emb)``, ``fit_features``), CKA, ``EmbeddingView``,
``PrototypeView`` and the OOD lens.

**Why a tensor subclass.** ``wb.analyses.embed`` has always returned an (N, d) tensor and a lot of
code (the user's and the workbench's) uses it as one: ``z.shape``, ``z @ w``, ``z.numpy()``,
``torch.cat``. An ``Embeddings`` *is* that tensor (``isinstance(emb, torch.Tensor)``, same
storage: nothing is copied, a memory-mapped file stays on disk) carrying its rows' labels,
images, ids and metadata as read-only attributes. Operations on it return plain tensors
(``__torch_function__`` is disabled), so ``emb[idx]`` or ``emb * 2`` never pretend to keep
labels that may no longer match their rows; ``subset`` / ``split_rows`` keep them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import check_seed
from ._labels import encode_labels

__all__ = ["Embeddings", "images_of", "is_embeddings"]

_FORMAT = "workbench-embeddings/1"


def _rows_tensor(a, what: str, n: int | None = None) -> torch.Tensor:
    """``a`` as a CPU-or-device tensor sharing memory with it (numpy arrays, also read-only or
    memory-mapped, are not copied)."""
    if isinstance(a, torch.Tensor):
        t = a.detach()
    elif isinstance(a, np.ndarray):
        if a.dtype == object or a.dtype.kind in "USV":
            raise TypeError(f"{what} holds {a.dtype} values; pass a numeric array")
        if not a.flags.writeable:
            import warnings

            with warnings.catch_warnings():  # nothing here writes to it
                warnings.simplefilter("ignore", UserWarning)
                t = torch.from_numpy(a)
        else:
            t = torch.from_numpy(a)
    elif isinstance(a, (list, tuple)):
        t = torch.as_tensor(np.asarray(a))
    else:
        raise TypeError(f"{what} must be a numpy array or a torch tensor, got {type(a).__name__}")
    if n is not None and (t.ndim == 0 or t.shape[0] != n):
        raise ValueError(f"{what} must have one row per embedding ({n}), got shape {tuple(t.shape)}")
    return t


def _check_finite(z: torch.Tensor, what: str) -> None:
    """NaN/inf check in row blocks of ~16 MB (never a full-size temporary)."""
    rows = max(1, (16 * 2**20) // max(1, z.shape[1] * z.element_size()))
    for i in range(0, z.shape[0], rows):
        block = z[i : i + rows]
        bad = ~torch.isfinite(block)
        if bool(bad.any()):
            first = (bad.any(1).nonzero().flatten()[:5] + i).tolist()
            raise ValueError(f"{what} contains NaN or inf values (first bad rows: {first}); clean them first")


class Embeddings(torch.Tensor):
    """(N, d) features plus what is known about their rows (see the module docstring).

    Parameters
    ----------
    z: (N, d) numpy array (memory-mapped ones are used in place) or tensor; integer arrays are
        converted to float32. NaN/inf raise.
    labels: (N,) class indices (``-1`` = unknown/OOD) or class names (strings: numbered in
        sorted order, the names kept in ``meta["classes"]``), or None.
    images: (N, ...) the inputs the rows came from (for thumbnails and galleries), or None.
    ids: (N,) ids (ints or strings) of the rows, or None.
    meta: a dict of JSON values (where the features came from: model, data, layer...).
    logits: (N, C) a classifier's outputs for the same rows (used by MSP/MaxLogit/Energy), or None.
    classes: the class names (stored as ``meta["classes"]``).
    """

    __torch_function__ = torch._C._disabled_torch_function_impl

    @staticmethod
    def __new__(cls, z, labels=None, images=None, ids=None, meta=None, *, logits=None, classes=None):
        t = _rows_tensor(z, "z")
        if t.ndim == 1:
            raise ValueError(f"z has shape {tuple(t.shape)}; pass (N, d) features, e.g. z.reshape(-1, 1)")
        if t.ndim != 2:
            raise ValueError(
                f"z must be (N, d) features, got shape {tuple(t.shape)}; flatten each row first "
                "(z.reshape(len(z), -1)) or pool feature maps"
            )
        if t.shape[0] == 0:
            raise ValueError("z is empty; pass at least one row")
        if t.dtype == torch.bool or t.dtype.is_complex:
            raise TypeError(f"z holds {t.dtype} values; pass real-valued (N, d) features")
        if not t.dtype.is_floating_point:
            t = t.float()
        _check_finite(t, "z")
        n = int(t.shape[0])
        meta = dict(meta or {})
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as err:
            raise TypeError(f"meta must hold JSON values only (str, numbers, lists, dicts): {err}") from None
        y = None
        if labels is not None:
            y, names = encode_labels(labels, "labels", classes=classes)
            if y.shape[0] != n:
                raise ValueError(f"labels has {y.shape[0]} entries for {n} embeddings; pass one label per row")
            if names is not None:
                classes = names
        if classes is not None:
            if isinstance(classes, (str, bytes)):
                raise TypeError(f"classes must be a list of class names, got the string {classes!r}")
            classes = [str(c) for c in classes]
            if y is not None and y.numel() and int(y.max()) >= len(classes):
                raise ValueError(f"the labels go up to {int(y.max())} but {len(classes)} class names were given")
            meta["classes"] = classes
        obj = torch.Tensor._make_subclass(cls, t, False)
        obj._wb_labels = y
        obj._wb_images = None if images is None else _rows_tensor(images, "images", n)
        obj._wb_ids = None if ids is None else _ids(ids, n)
        obj._wb_logits = None
        if logits is not None:
            lg = _rows_tensor(logits, "logits", n)
            if lg.ndim != 2 or not lg.dtype.is_floating_point:
                raise ValueError(f"logits must be (N, C) floating point, got shape {tuple(lg.shape)} {lg.dtype}")
            obj._wb_logits = lg
        obj._wb_meta = meta
        return obj

    def __init__(self, *args, **kwargs):  # everything happens in __new__
        pass

    # ------------------------------------------------------------------ what the rows carry
    @property
    def labels(self) -> torch.Tensor | None:
        """(N,) int64 class indices (``-1`` = unknown/OOD), or None."""
        return self._wb_labels

    y = labels  # the name a Dataset uses, so code reading ``data.y`` works on both

    @property
    def images(self) -> torch.Tensor | None:
        """(N, ...) inputs of the rows (thumbnails), or None."""
        return self._wb_images

    @property
    def ids(self) -> np.ndarray | None:
        """(N,) ids of the rows (numpy ints or strings), or None."""
        return self._wb_ids

    @property
    def logits(self) -> torch.Tensor | None:
        """(N, C) classifier outputs of the rows, or None."""
        return self._wb_logits

    @property
    def meta(self) -> dict[str, Any]:
        return self._wb_meta

    @property
    def classes(self) -> tuple[str, ...] | None:
        """Class names (``meta["classes"]``), or None."""
        c = self._wb_meta.get("classes")
        return None if c is None else tuple(c)

    @property
    def tensor(self) -> torch.Tensor:
        """The features as a plain (N, d) tensor (same storage)."""
        return self.as_subclass(torch.Tensor)

    # ------------------------------------------------------------------ selections
    def _with(self, z, index=None, **changes) -> Embeddings:
        def pick(v):
            if v is None or index is None:
                return v
            return v[index.cpu().numpy()] if isinstance(v, np.ndarray) else v[index.to(v.device)]

        fields = {
            "labels": pick(self._wb_labels), "images": pick(self._wb_images), "ids": pick(self._wb_ids),
            "logits": pick(self._wb_logits), "meta": dict(self._wb_meta),
        }
        fields.update(changes)
        classes = fields["meta"].pop("classes", None)
        return Embeddings(z, fields["labels"], fields["images"], fields["ids"], fields["meta"],
                          logits=fields["logits"], classes=classes)

    def subset(self, index) -> Embeddings:
        """The rows at ``index`` (indices, a boolean mask or a slice), with their labels, images,
        ids and logits. (Plain indexing ``emb[i]`` gives a plain tensor.)"""
        n = self.shape[0]
        if isinstance(index, slice):
            index = torch.arange(n)[index]
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            if index.shape != (n,):
                raise ValueError(f"a boolean mask must have shape ({n},), got {tuple(index.shape)}")
            index = index.nonzero().flatten()
        if index.ndim != 1 or index.numel() == 0:
            raise ValueError("index must select at least one row (indices, a mask or a slice)")
        if bool(((index < -n) | (index >= n)).any()):
            raise ValueError(f"index out of range for {n} rows")
        index = index % n
        return self._with(self.tensor[index.to(self.device)], index)

    def with_labels(self, labels, classes=None) -> Embeddings:
        """Same rows, new labels (e.g. -1 for OOD)."""
        meta = dict(self._wb_meta)
        if classes is not None:
            meta["classes"] = list(classes)
        return self._with(self.tensor, labels=labels, meta=meta)

    def split_rows(self, frac: float = 0.8, *, seed: int = 0, stratify: bool = True) -> tuple[Embeddings, Embeddings]:
        """(first, second) with ``frac`` of the rows first, each class split alike (stratified).
        (Named so because ``Tensor.split`` already means chunks of a tensor.)"""
        from .dataset import split_indices

        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 < frac < 1.0:
            raise ValueError(f"frac must be strictly between 0 and 1, got {frac!r}")
        check_seed(seed)
        a, b = split_indices(self.shape[0], self._wb_labels, frac, seed=seed, stratify=stratify)
        return self.subset(a), self.subset(b)

    # ------------------------------------------------------------------ files
    def save(self, path, *, images: bool = True) -> Path:
        """Write everything to one ``.npz`` file (numpy arrays and a JSON header; no pickle).
        ``images=False`` leaves the images out (smaller file)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(
                f"Embeddings.save writes one .npz file, got {path.name!r}; for a bare features file "
                "use np.save('features.npy', emb.numpy())"
            )
        arrays = {"z": self.tensor.detach().cpu().numpy()}
        for key, v in (("labels", self._wb_labels), ("logits", self._wb_logits),
                       ("images", self._wb_images if images else None)):
            if v is not None:
                arrays[key] = v.detach().cpu().numpy()
        if self._wb_ids is not None:
            arrays["ids"] = self._wb_ids
        header = {"format": _FORMAT, "meta": self._wb_meta}
        arrays["__workbench__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        try:
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path, labels=None, *, images=None, ids=None, meta=None, classes=None, mmap: bool = True) -> Embeddings:
        """Embeddings from a file: an ``.npz`` written by ``save`` (everything comes back), or any
        features file ``wb.data.from_files`` reads (``.npy`` memory-mapped, ``.npz``, ``.pt``,
        ``.csv``, ``.parquet``), with ``labels=`` as a second file, an array, or a column/key name."""
        from .files import read_features

        return read_features(cls, path, labels=labels, images=images, ids=ids, meta=meta, classes=classes, mmap=mmap)

    # ------------------------------------------------------------------ python protocol
    def __repr__(self, *, tensor_contents=None) -> str:
        n, d = self.shape
        parts = [f"{n} x {d} {str(self.dtype).removeprefix('torch.')}"]
        if self.device.type != "cpu":
            parts.append(str(self.device))
        if self._wb_labels is not None:
            known = self._wb_labels[self._wb_labels >= 0]
            n_cls = len(self.classes) if self.classes else (int(known.max()) + 1 if known.numel() else 0)
            unk = int((self._wb_labels < 0).sum())
            if not known.numel():
                parts.append(f"labels: all {unk} unknown (-1)")
            else:
                parts.append(f"labels: {n_cls} classes" + (f", {unk} unknown (-1)" if unk else ""))
        if self._wb_images is not None:
            parts.append(f"images {tuple(self._wb_images.shape[1:])}")
        if self._wb_logits is not None:
            parts.append(f"logits {self._wb_logits.shape[1]}")
        if self._wb_ids is not None:
            parts.append("ids")
        keys = [k for k in self._wb_meta if k != "classes"]
        if keys:
            parts.append("meta: " + ", ".join(keys[:5]))
        return f"Embeddings({'; '.join(parts)})"

    def __reduce_ex__(self, protocol):
        return (_rebuild, (self.tensor.detach().clone(), self._wb_labels, self._wb_images, self._wb_ids,
                           self._wb_meta, self._wb_logits))

    def __deepcopy__(self, memo):
        import copy

        c = lambda v: None if v is None else copy.deepcopy(v, memo)  # noqa: E731
        return _rebuild(self.tensor.clone(), c(self._wb_labels), c(self._wb_images), c(self._wb_ids),
                        c(self._wb_meta), c(self._wb_logits))


def _rebuild(z, labels, images, ids, meta, logits) -> Embeddings:
    meta = dict(meta or {})
    classes = meta.pop("classes", None)
    return Embeddings(z, labels, images, ids, meta, logits=logits, classes=classes)


def _ids(ids, n: int) -> np.ndarray:
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    a = np.asarray(ids)
    if a.dtype == object:
        a = np.asarray([str(v) for v in a.tolist()])
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"ids must be (N,) = ({n},), got shape {a.shape}")
    if a.dtype.kind not in "iuU":
        raise TypeError(f"ids must be integers or strings, got {a.dtype}")
    return a


def is_embeddings(obj) -> bool:
    return isinstance(obj, Embeddings)


def images_of(data) -> torch.Tensor | None:
    """The images behind a data set or embeddings, for thumbnails: ``Embeddings.images``, or
    ``Dataset.x`` when its kind is "image"; None otherwise."""
    if isinstance(data, Embeddings):
        return data.images
    x = getattr(data, "x", None)
    if x is not None and getattr(data, "kind", None) == "image":
        return x
    return None
