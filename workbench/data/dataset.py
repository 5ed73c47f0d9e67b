"""The ``Dataset``: a pair of tensors (x, y) with a little metadata. No nn, no plotting."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .._checks import check_bool, check_device, check_seed

KINDS = ("points", "vector", "image", "signal")


def _as_tensor(a, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    if isinstance(a, (list, tuple)):
        try:
            a = np.asarray(a)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{what} could not be read as a numeric array: {err}") from err
    if isinstance(a, np.ndarray):
        if a.dtype.kind in "USO":  # strings or Python objects
            hint = (" (class names? map them to 0..C-1 first, e.g. names, y = np.unique(y, return_inverse=True),"
                    " and pass classes=names)") if what == "y" else ""
            raise TypeError(f"{what} holds {a.dtype} values, not numbers; pass a numeric array{hint}")
        try:
            return torch.from_numpy(np.ascontiguousarray(a))
        except TypeError as err:
            raise TypeError(f"{what} has an unsupported dtype {a.dtype}: {err}") from None
    raise TypeError(
        f"{what} must be a numpy array or a torch tensor, got {type(a).__name__}"
    )


def _guess_kind(x: torch.Tensor) -> str:
    if x.ndim == 2 and x.shape[1] == 2:
        return "points"
    if x.ndim == 4 or (x.ndim == 3 and x.shape[1] > 1 and x.shape[2] > 1 and x.shape[1] == x.shape[2]):
        return "image"
    if x.ndim == 3:
        return "signal"
    return "vector"


def _check_multilabel(y: torch.Tensor, classes) -> None:
    """(N, C) multi-label targets: C >= 1 columns of 0/1 (and one name per column if named)."""
    if y.shape[1] < 1:
        raise ValueError("multi-label y of shape (N, 0) has no classes; pass (N, C) with C >= 1")
    if not y.is_meta and y.numel() and bool(((y != 0) & (y != 1)).any()):
        raise ValueError(
            "multi-label y (shape (N, C)) must hold 0/1 indicators; class indices go in a flat (N,) y"
        )
    if classes is not None and len(classes) != y.shape[1]:
        raise ValueError(
            f"multi-label y has {y.shape[1]} columns but {len(classes)} class names were given; "
            "pass one name per column"
        )


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs ``x`` (float32, first axis = samples) and labels ``y`` (int64, ``-1`` = OOD/unknown).

    **Multi-label sets**: ``y`` may instead be an (N, C) int64 tensor of 0/1 indicators (sample
    i carries every class c with ``y[i, c] == 1``; a row of zeros is allowed, -1 is not);
    ``multilabel`` is then True and ``n_classes`` is C. Splits stratify by the label set
    (every distinct row is one stratum). Methods and analyses built for one class per sample
    (cross-entropy, OOD splits, class-coloured maps) refuse such labels; train them with
    ``wb.methods.AsymmetricLoss``, whose ``evaluate`` reports mAP and subset accuracy.

    ``kind`` says what the samples are (``"points"`` 2-D toys, ``"image"`` (N, C, H, W),
    ``"signal"`` (N, C, L), ``"vector"``); augmentations and views use it. ``y`` may be None
    for unlabelled data. ``meta`` holds facts about how the set was made (e.g. mode centres).
    """

    x: torch.Tensor
    y: torch.Tensor | None = None
    name: str = "custom"
    kind: str = "vector"
    classes: tuple[str, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        x, y = self.x, self.y
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"Dataset.x must be a torch.Tensor, got {type(x).__name__}; "
                "use Dataset.from_arrays(x, y) for numpy or lists"
            )
        if x.ndim < 2:
            raise ValueError(
                f"Dataset.x must have shape (N, features...) with at least 2 axes, got {tuple(x.shape)}; "
                "for N scalar features pass x.reshape(-1, 1)"
            )
        if x.shape[0] == 0:
            raise ValueError("the dataset is empty (x has 0 samples); pass at least one sample")
        if not x.dtype.is_floating_point:
            raise TypeError(f"Dataset.x must be floating point (float32), got {x.dtype}; pass x.float()")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")
        if not isinstance(self.name, str):
            raise TypeError(f"Dataset name must be a string, got {self.name!r}")
        if self.classes is not None and not isinstance(self.classes, tuple):
            raise TypeError(f"Dataset.classes must be a tuple of class names or None, got {type(self.classes).__name__}")
        if y is not None:
            if not isinstance(y, torch.Tensor):
                raise TypeError(f"Dataset.y must be a torch.Tensor or None, got {type(y).__name__}")
            if y.ndim not in (1, 2):
                raise ValueError(
                    f"Dataset.y must have shape (N,) (class indices) or (N, C) (multi-label 0/1), got {tuple(y.shape)}"
                )
            if y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"x has {x.shape[0]} samples but y has {y.shape[0]}; pass one label per sample"
                )
            if y.dtype != torch.int64:
                raise TypeError(f"Dataset.y must be int64 class indices, got {y.dtype}; pass y.long()")
            if y.device != x.device:
                raise ValueError(f"x is on {x.device} but y is on {y.device}; put both on one device")
            if y.ndim == 2:
                _check_multilabel(y, self.classes)
            elif self.classes is not None and y.numel() and not y.is_meta and int(y.max()) >= len(self.classes):
                raise ValueError(
                    f"the labels go up to {int(y.max())} but only {len(self.classes)} class names were "
                    f"given; pass one name per class (classes=[...] of length {int(y.max()) + 1}) or none"
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        x,
        y=None,
        *,
        name: str = "custom",
        kind: str | None = None,
        classes: Sequence[str] | None = None,
    ) -> Dataset:
        """Build a dataset from user numpy arrays or tensors, checking what it is given.

        ``x``: numeric, shape (N, ...), converted to float32. NaN/inf raise. ``y``: integer class
        indices of shape (N,) (``-1`` = unknown/OOD), an (N, C) array of 0/1 multi-label
        indicators (C >= 2), or None. Float labels are refused unless they are whole numbers, so
        a regression target is never silently truncated.
        """
        if isinstance(classes, (str, bytes)):
            raise TypeError(f"classes must be a list of class names, got the string {classes!r}; e.g. classes=['cat', 'dog']")
        xt = _as_tensor(x, "x")
        if xt.dtype == torch.bool:
            raise TypeError("x holds booleans; pass a numeric array (e.g. x.astype('float32'))")
        if xt.dtype.is_complex:
            raise TypeError(f"x must be real, got {xt.dtype}")
        if xt.ndim == 1:
            raise ValueError(
                f"x has shape {tuple(xt.shape)} (one axis); pass (N, features), e.g. x.reshape(-1, 1)"
            )
        if xt.ndim == 0 or xt.shape[0] == 0:
            raise ValueError("x is empty; pass at least one sample")
        xt = xt.to(torch.float32)
        bad = ~torch.isfinite(xt)
        if bad.any():
            rows = bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten()[:5].tolist()
            raise ValueError(
                f"x contains NaN or inf values (first bad rows: {rows}); clean or impute them first"
            )
        yt = None
        if y is not None:
            yt = _as_tensor(y, "y")
            if yt.ndim == 2 and yt.shape[1] == 1:
                raise ValueError(f"y has shape {tuple(yt.shape)}; pass a flat (N,) array, e.g. y.ravel()")
            if yt.ndim != 1 and not (yt.ndim == 2 and yt.shape[1] >= 2):
                raise ValueError(
                    f"y must have shape (N,) (class indices) or (N, C) (multi-label 0/1 indicators), "
                    f"got {tuple(yt.shape)}"
                )
            if yt.dtype.is_floating_point:
                if not torch.isfinite(yt).all():
                    raise ValueError("y contains NaN or inf; labels must be integer class indices")
                if not torch.equal(yt, yt.round()):
                    raise TypeError(
                        "y holds non-integer floats; pass integer class indices (0..C-1, -1 for OOD). "
                        "Regression targets are not supported by Dataset"
                    )
            elif yt.dtype == torch.bool:
                pass
            elif yt.dtype.is_complex:
                raise TypeError("y must be integer class indices, got complex values")
            yt = yt.to(torch.int64)
            if yt.ndim == 2:
                _check_multilabel(yt, classes)
            elif (yt < -1).any():
                raise ValueError("y has values below -1; use 0..C-1 for classes and -1 for unknown/OOD")
        return cls(
            xt,
            yt,
            name=name,
            kind=kind or _guess_kind(xt),
            classes=tuple(classes) if classes is not None else None,
        )

    # ------------------------------------------------------------------ basic facts
    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x.device

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.x.shape[1:])

    @property
    def dim(self) -> int:
        """Number of input features of one sample (product of its shape)."""
        return int(math.prod(self.x.shape[1:]))

    @property
    def flat(self) -> torch.Tensor:
        """``x`` as (N, dim): images and signals flattened."""
        return self.x.reshape(self.x.shape[0], -1)

    @property
    def multilabel(self) -> bool:
        """True when ``y`` holds (N, C) multi-label 0/1 indicators."""
        return self.y is not None and self.y.ndim == 2

    @property
    def n_classes(self) -> int:
        """Number of classes (from ``classes`` if set, else 1 + the largest label; the number of
        columns of a multi-label ``y``)."""
        if self.classes is not None:
            return len(self.classes)
        if self.y is None:
            return 0
        if self.y.ndim == 2:
            return int(self.y.shape[1])
        known = self.y[self.y >= 0]
        return int(known.max()) + 1 if known.numel() else 0

    @property
    def labelled(self) -> bool:
        return self.y is not None

    def __repr__(self) -> str:
        ys = ""
        if self.multilabel:
            ys = f", classes={self.n_classes}, multi-label"
        elif self.y is not None:
            n_ood = int((self.y == -1).sum())
            ys = f", classes={self.n_classes}" + (f", ood={n_ood}" if n_ood else "")
        return (
            f"Dataset({self.name!r}, n={len(self)}, sample shape={self.shape}, kind={self.kind!r}"
            f"{ys}, device={self.device})"
        )

    # ------------------------------------------------------------------ transforms
    def to(self, device) -> Dataset:
        """A copy of the dataset on ``device``."""
        device = check_device(device)
        return replace(
            self, x=self.x.to(device), y=None if self.y is None else self.y.to(device)
        )

    def subset(self, index) -> Dataset:
        """The samples at ``index``: integer indices (negative ones count from the end), a
        boolean mask of shape (N,), or a slice (``ds[:100]``). A single int is refused: use
        ``ds[[i]]`` for a one-sample Dataset or ``ds.x[i]`` for the tensor."""
        n = len(self)
        if isinstance(index, slice):
            index = torch.arange(n)[index]
        elif isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            raise TypeError(
                f"ds[{index}] with a single int is ambiguous; use ds[[{index}]] for a one-sample "
                f"Dataset, or ds.x[{index}] and ds.y[{index}] for the tensors"
            )
        if isinstance(index, str) or (isinstance(index, (list, tuple)) and any(isinstance(i, str) for i in index)):
            raise TypeError(f"index must hold integers or booleans, got {index!r}")
        try:
            index = torch.as_tensor(index, device=self.x.device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"index must be integer indices, a boolean mask or a slice, got {type(index).__name__}: {err}") from None
        if index.ndim != 1:
            raise ValueError(f"index must be one-dimensional (indices or a mask of shape ({n},)), got shape {tuple(index.shape)}")
        if index.numel() == 0:
            raise ValueError("the selection is empty; select at least one sample")
        if index.dtype == torch.bool:
            if index.shape != (n,):
                raise ValueError(f"a boolean mask must have shape ({n},), got {tuple(index.shape)}")
            index = index.nonzero().flatten()
        elif index.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"index must hold integers or booleans, got {index.dtype}")
        if index.numel() == 0:  # an all-False mask
            raise ValueError("the selection is empty; select at least one sample")
        bad = (index < -n) | (index >= n)
        if bool(bad.any()):
            raise ValueError(
                f"index {int(index[bad][0])} is out of range for a dataset of {n} samples; "
                f"valid indices are {-n}..{n - 1}"
            )
        return replace(
            self,
            x=self.x[index],
            y=None if self.y is None else self.y[index],
            meta=dict(self.meta),
        )

    __getitem__ = subset

    def with_labels(self, y) -> Dataset:
        """Same inputs, new labels (e.g. -1 for OOD)."""
        y = _as_tensor(y, "y").to(self.x.device)
        if y.dtype.is_floating_point:
            raise TypeError(f"labels must be integer class indices (0..C-1, -1 for OOD), got {y.dtype}; pass y.long() if they are whole numbers")
        return replace(self, y=y.to(torch.int64) if not y.dtype.is_floating_point else y)

    def split(self, frac: float = 0.8, *, seed: int = 0, stratify: bool = True) -> tuple[Dataset, Dataset]:
        """Split into (first, second) with ``frac`` of the samples in the first part.

        Stratified by label when labels exist (each class split in the same proportion; for a
        multi-label set each distinct label set is a stratum).
        """
        if isinstance(frac, bool) or not isinstance(frac, (int, float, np.floating)) or not (0.0 < frac < 1.0):
            raise ValueError(f"frac must be strictly between 0 and 1, got {frac!r}")
        check_seed(seed)
        check_bool(stratify, "stratify")
        if len(self) < 2:
            raise ValueError("cannot split a dataset with fewer than 2 samples")
        a, b = split_indices(len(self), self.y, frac, seed=seed, stratify=stratify)
        a, b = a.to(self.device), b.to(self.device)
        return (
            replace(self.subset(a), name=f"{self.name}[train]"),
            replace(self.subset(b), name=f"{self.name}[test]"),
        )

    def loader(
        self,
        batch_size: int = 256,
        *,
        shuffle: bool = True,
        seed: int | None = 0,
        drop_last: bool = False,
        device=None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """One pass over the data in batches ``(x, y)``, optionally moved to ``device``.

        Shuffling uses its own generator seeded by ``seed`` (no global RNG).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        check_bool(shuffle, "shuffle")
        check_bool(drop_last, "drop_last")
        check_seed(seed, allow_none=True)
        if device is not None:
            device = check_device(device)
        n = len(self)
        if shuffle:
            g = torch.Generator()
            if seed is not None:
                g.manual_seed(seed)
            else:
                g.seed()
            order = torch.randperm(n, generator=g).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        x, y = self.x, self.y
        if device is not None:
            x = x.to(device)
            y = None if y is None else y.to(device)
            order = order.to(device)
        stop = n - (n % batch_size) if drop_last and n >= batch_size else n
        for i in range(0, stop, batch_size):
            idx = order[i : i + batch_size]
            yield x[idx], (None if y is None else y[idx])


def split_indices(n: int, y: torch.Tensor | None, frac: float, *, seed: int, stratify: bool = True):
    """(first, second) CPU index tensors splitting ``n`` samples, ``frac`` of them first; each
    class split in the same proportion when ``stratify`` and labels ``y`` exist."""
    g = torch.Generator().manual_seed(seed)
    if stratify and y is not None:
        y = y.cpu()
        if y.ndim == 2:  # multi-label: one stratum per distinct label set
            y = torch.unique(y, dim=0, return_inverse=True)[1]
        first, second = [], []
        for c in torch.unique(y):
            idx = (y == c).nonzero().flatten()
            idx = idx[torch.randperm(idx.numel(), generator=g)]
            k = int(round(frac * idx.numel()))
            first.append(idx[:k])
            second.append(idx[k:])
        a = torch.cat(first)
        b = torch.cat(second)
        a = a[torch.randperm(a.numel(), generator=g)]
        b = b[torch.randperm(b.numel(), generator=g)]
    else:
        perm = torch.randperm(n, generator=g)
        k = int(round(frac * n))
        a, b = perm[:k], perm[k:]
    if a.numel() == 0 or b.numel() == 0:
        raise ValueError(f"frac={frac} leaves one side of the split empty for n={n}")
    return a, b


def concat(parts: Sequence[Dataset], *, name: str | None = None) -> Dataset:
    """Concatenate datasets with the same sample shape (labels required on all or none)."""
    if isinstance(parts, Dataset) or not isinstance(parts, (list, tuple)):
        raise TypeError(f"concat takes a list of Datasets, got {type(parts).__name__}; e.g. concat([a, b])")
    if not parts:
        raise ValueError("concat needs at least one dataset")
    for p in parts:
        if not isinstance(p, Dataset):
            raise TypeError(f"concat takes a list of Datasets, got a {type(p).__name__} in it")
    kinds = {p.kind for p in parts}
    if len(kinds) != 1:
        raise ValueError(f"cannot concatenate datasets of different kinds {sorted(kinds)}; make their kind= agree first")
    shapes = {p.shape for p in parts}
    if len(shapes) != 1:
        raise ValueError(f"cannot concatenate samples of different shapes: {sorted(shapes)}")
    has_y = {p.y is not None for p in parts}
    if len(has_y) != 1:
        raise ValueError("either all datasets must have labels or none")
    if parts[0].y is not None and len({tuple(p.y.shape[1:]) for p in parts}) != 1:
        raise ValueError("cannot concatenate single-label and multi-label sets, or multi-label sets "
                         "with different numbers of classes")
    x = torch.cat([p.x for p in parts])
    y = torch.cat([p.y for p in parts]) if parts[0].y is not None else None
    return Dataset(
        x, y, name=name or "+".join(p.name for p in parts), kind=parts[0].kind,
        classes=parts[0].classes, meta=dict(parts[0].meta),
    )
