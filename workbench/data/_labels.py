"""Class labels from whatever a user has: integers, whole-number floats, or strings.

``encode_labels(values)`` returns int64 labels (``-1`` = unknown) and, for strings, the class
names in a stable order (sorted), so the same set of names always gives the same numbering,
whichever order the files or rows came in. Missing values (``None``, NaN, ``""``) become -1.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

__all__ = ["encode_labels"]


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and v == "")


def encode_labels(values, what: str = "labels", *, classes=None) -> tuple[torch.Tensor, tuple[str, ...] | None]:
    """``(y, classes)``: int64 labels (N,) and the class names when the labels were strings.

    ``classes``: a fixed list of names to number the strings by (a name not in it is an error);
    default: the sorted distinct names. Integer labels keep their values (``-1`` = unknown);
    floats must be whole numbers.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, (list, tuple)):
        if any(isinstance(v, (str, bytes)) for v in values):
            values = np.asarray([None if _is_missing(v) else str(v) for v in values], dtype=object)
        else:
            try:
                values = np.asarray(values)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{what} could not be read as an array: {err}") from None
    if not isinstance(values, np.ndarray):
        raise TypeError(f"{what} must be an array, tensor or list of class labels, got {type(values).__name__}")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"{what} must be one label per sample, shape (N,), got {values.shape}")
    if values.dtype.kind in "USO":
        return _from_strings(values, what, classes)
    if values.dtype.kind == "b":
        return torch.from_numpy(values.astype(np.int64)), None
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise ValueError(f"{what} has {bad} NaN or inf values; use -1 for unknown samples")
        if not np.array_equal(values, np.round(values)):
            raise TypeError(f"{what} holds non-integer numbers; pass class indices (0..C-1, -1 = unknown) or names")
    elif values.dtype.kind not in "iu":
        raise TypeError(f"{what} holds {values.dtype} values; pass integer class indices or class names")
    y = torch.from_numpy(values.astype(np.int64))
    if y.numel() and int(y.min()) < -1:
        raise ValueError(f"{what} has values below -1; use 0..C-1 for classes and -1 for unknown/OOD")
    if classes is not None:
        return y, tuple(str(c) for c in classes)
    return y, None


def _from_strings(values: np.ndarray, what: str, classes) -> tuple[torch.Tensor, tuple[str, ...]]:
    items = [None if _is_missing(v) else (v.decode() if isinstance(v, bytes) else v) for v in values.tolist()]
    bad = [v for v in items if v is not None and not isinstance(v, (str, numbers.Integral))]
    if bad:
        raise TypeError(f"{what} mixes names with {type(bad[0]).__name__} values; pass one kind of label")
    names = sorted({str(v) for v in items if v is not None})
    if classes is not None:
        classes = tuple(str(c) for c in classes)
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise ValueError(f"{what} has names not in classes: {unknown[:5]}; classes are {list(classes)}")
        names = list(classes)
    index = {n: i for i, n in enumerate(names)}
    y = torch.tensor([-1 if v is None else index[str(v)] for v in items], dtype=torch.int64)
    return y, tuple(names)
