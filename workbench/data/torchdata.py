"""``from_torch``: a ``wb.data.Dataset`` from a ``torch.utils.data.Dataset`` or ``DataLoader``.

    ds = wb.data.from_torch(my_dataset)                     # every sample
    ds = wb.data.from_torch(my_dataset, n=2000, seed=0)     # a seeded random subset
    ds = wb.data.from_torch(loader, n=5000)                 # the loader's first 5000 samples
    ds = wb.data.from_torch(hf_style, x="pixel_values", y="label")

What is read from each sample or batch:

* a tuple/list ``(x, y, ...)``: ``x`` and ``y`` (further items ignored); a lone tensor: ``x``,
  unlabelled;
* a dict: the keys named by ``x=`` / ``y=``, else the first present of ``x, image, images,
  pixel_values, input, inputs, data, features`` and ``y, label, labels, target, targets``.
  ``ds.meta["keys"]`` records which were read; an unknown key lists the ones there are.

Inputs may be tensors, numpy arrays or PIL images (turned into (C, H, W) floats in [0, 1], as
torchvision's ``ToTensor`` does); uint8 tensors are divided by 255 likewise (``meta["scaled"]``).
Labels may be ints, tensors or strings (numbered in sorted order, names in ``classes``); a
dataset's own ``classes`` attribute (torchvision's convention) names integer labels.

Samples are written into one preallocated tensor as they arrive, never collected twice; with
``out="x.npy"`` they go to a memory-mapped file instead (for sets larger than RAM). A map-style
dataset with ``n`` draws a random subset (seeded, sorted indices); a DataLoader or iterable
dataset is read in its own order and stops after ``n`` samples.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .._checks import check_int, check_seed
from ._labels import encode_labels
from .dataset import Dataset, _guess_kind

__all__ = ["from_torch", "X_NAMES", "Y_NAMES"]

X_NAMES = ("x", "image", "images", "pixel_values", "input", "inputs", "data", "features")
Y_NAMES = ("y", "label", "labels", "target", "targets")


def _pick(item, key, names, what: str):
    if key is not None:
        if key not in item:
            raise KeyError(f"the samples are dicts with keys {list(item)}; there is no {what} key {key!r}")
        return key
    found = next((k for k in names if k in item), None)
    if found is None and what == "input":
        raise KeyError(
            f"the samples are dicts with keys {list(item)}; none is a known input name ({', '.join(names)}): "
            "pass x='name' (and y='name' for the labels)"
        )
    return found


class _Reader:
    """Turns samples (or batches) into (x, y) arrays and remembers how."""

    def __init__(self, x_key, y_key):
        self.x_key, self.y_key = x_key, y_key
        self.keys: dict[str, str | int | None] | None = None
        self.scaled = False

    def split(self, item):
        if isinstance(item, Mapping):
            xk = _pick(item, self.x_key, X_NAMES, "input")
            yk = _pick(item, self.y_key, Y_NAMES, "label")
            self.keys = self.keys or {"x": xk, "y": yk}
            return item[xk], (item[yk] if yk is not None else None)
        if self.x_key is not None or self.y_key is not None:
            if isinstance(item, (tuple, list)) and isinstance(self.x_key, int):
                return item[self.x_key], (item[self.y_key] if self.y_key is not None else None)
            raise TypeError(
                f"x= / y= name dict keys (or tuple positions), but the samples are {type(item).__name__}s"
            )
        if isinstance(item, (tuple, list)):
            if not item:
                raise ValueError("a sample is an empty tuple")
            self.keys = self.keys or {"x": 0, "y": 1 if len(item) > 1 else None}
            return item[0], (item[1] if len(item) > 1 else None)
        self.keys = self.keys or {"x": "sample", "y": None}
        return item, None

    def inputs(self, x, batched: bool) -> torch.Tensor:
        if _is_pil(x):
            x = _pil_array(x)
        elif batched and isinstance(x, (list, tuple)) and x and _is_pil(x[0]):
            x = np.stack([_pil_array(i) for i in x])
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        elif isinstance(x, numbers.Real) and not isinstance(x, bool):
            x = torch.tensor([float(x)])
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"an input is a {type(x).__name__}; expected a tensor, numpy array or PIL image")
        x = x.detach()
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
            self.scaled = True
        elif not x.dtype.is_floating_point:
            if x.dtype == torch.bool or x.dtype.is_complex:
                raise TypeError(f"inputs of dtype {x.dtype} are not supported; pass real numbers")
            x = x.float()
        return x.float().cpu()


def _is_pil(x) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "mode") and hasattr(x, "size")


def _pil_array(im) -> np.ndarray:
    a = np.asarray(im)
    a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else (65535.0 if a.dtype == np.uint16 else 1.0))
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (C, H, W)


def _labels_list(y, batched: bool) -> list:
    if y is None:
        return []
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu()
        return y.reshape(-1).tolist() if batched else [y.reshape(-1)[0].item() if y.numel() == 1 else _bad_label(y)]
    if isinstance(y, np.ndarray):
        return y.reshape(-1).tolist() if batched else [y.item() if y.size == 1 else _bad_label(y)]
    if batched and isinstance(y, (list, tuple)):
        return list(y)
    return [y]


def _bad_label(y):
    raise ValueError(f"a label has shape {tuple(y.shape)}; expected one class per sample (an int or a name)")


def from_torch(source, n: int | None = None, seed: int = 0, *, x=None, y=None, name: str | None = None,
               kind: str | None = None, classes=None, out=None) -> Dataset:
    """A ``wb.data.Dataset`` from a torch ``Dataset`` (map-style or iterable) or ``DataLoader``.

    ``n``: how many samples (default all; a map-style dataset gives a random subset seeded by
    ``seed``, a loader or iterable its first ``n``). ``x`` / ``y``: the dict keys (or tuple
    positions) holding inputs and labels, when the defaults don't find them. ``classes``: the
    class names. ``out``: a ``.npy`` path to write the inputs to (memory-mapped) instead of RAM.
    See the module docstring for what is read.
    """
    from torch.utils.data import DataLoader, IterableDataset

    check_int(n, "n", min=1) if n is not None else None
    check_seed(seed)
    if out is not None and not str(out).endswith(".npy"):
        raise ValueError(f"out must be a path ending in .npy, got {out!r}")
    reader = _Reader(x, y)
    if isinstance(source, (torch.Tensor, np.ndarray, str, bytes, Mapping)):
        raise TypeError(
            f"from_torch takes a torch.utils.data.Dataset or DataLoader, got {type(source).__name__}; "
            "for arrays use wb.data.Dataset.from_arrays(x, y)"
        )
    if isinstance(source, DataLoader):
        batched = source.batch_size is not None or source.batch_sampler is not None
        total = None
        try:
            total = len(source.dataset) if not isinstance(source.dataset, IterableDataset) else None
        except TypeError:
            total = None
        items, what = iter(source), "DataLoader"
        if total is not None and n is not None:
            total = min(total, n)
    elif hasattr(source, "__getitem__") and hasattr(source, "__len__") and not isinstance(source, IterableDataset):
        size = len(source)
        if size == 0:
            raise ValueError("the dataset is empty")
        if n is not None and n < size:
            g = torch.Generator().manual_seed(seed)
            idx = torch.randperm(size, generator=g)[:n].sort().values.tolist()
        else:
            idx = range(size)
        total, batched, what = len(idx), False, type(source).__name__
        items = (source[i] for i in idx)
    elif hasattr(source, "__iter__"):
        items, batched, total, what = iter(source), False, n, type(source).__name__
    else:
        raise TypeError(
            f"from_torch takes a torch.utils.data.Dataset or DataLoader, got {type(source).__name__}; "
            "for arrays use wb.data.Dataset.from_arrays(x, y)"
        )
    xs, ys = _fill(items, reader, batched, n, total, out)
    y_t, names = (None, None)
    if ys:
        if len(ys) != xs.shape[0]:
            raise ValueError(f"some samples have labels and some do not ({len(ys)} labels for {xs.shape[0]} samples)")
        given = classes if classes is not None else _dataset_classes(source, ys)
        y_t, names = encode_labels(ys, "the labels", classes=given)
    meta = {"source": what, "keys": reader.keys, "n": int(xs.shape[0])}
    if reader.scaled:
        meta["scaled"] = 1 / 255
    return Dataset(xs, y_t, name=name or what, kind=kind or _guess_kind(xs), classes=names, meta=meta)


def _dataset_classes(source, ys):
    """torchvision's ``classes`` attribute, for integer labels that index it."""
    ds = getattr(source, "dataset", source)
    c = getattr(ds, "classes", None)
    if not isinstance(c, (list, tuple)) or not c or any(isinstance(v, str) for v in ys):
        return None
    ints = [v for v in ys if v is not None]
    if ints and all(isinstance(v, numbers.Integral) for v in ints) and max(ints) < len(c):
        return [str(v) for v in c]
    return None


def _fill(items, reader: _Reader, batched: bool, n, total, out):
    """Read samples into one preallocated (N, ...) tensor (or a growing list of blocks when
    the total is unknown); returns (x, labels list)."""
    buf = None
    blocks: list[torch.Tensor] = []
    ys: list = []
    count = 0
    for item in items:
        xb, yb = reader.split(item)
        xb = reader.inputs(xb, batched)
        if not batched:
            xb = xb[None]
        if n is not None:
            xb = xb[: n - count]
        labels = _labels_list(yb, batched)[: xb.shape[0]]
        if yb is not None and len(labels) != xb.shape[0]:
            raise ValueError(f"a batch has {xb.shape[0]} inputs but {len(labels)} labels")
        if total is not None:
            if buf is None:
                buf = _allocate((total, *xb.shape[1:]), out)
            elif tuple(xb.shape[1:]) != tuple(buf.shape[1:]):
                raise ValueError(
                    f"samples have different shapes: {tuple(buf.shape[1:])} and {tuple(xb.shape[1:])}; "
                    "resize them to one shape in the dataset's transform"
                )
            buf[count : count + xb.shape[0]] = xb
        else:
            if blocks and tuple(xb.shape[1:]) != tuple(blocks[0].shape[1:]):
                raise ValueError(f"samples have different shapes: {tuple(blocks[0].shape[1:])} and {tuple(xb.shape[1:])}")
            blocks.append(xb)
        ys += labels
        count += xb.shape[0]
        if n is not None and count >= n:
            break
    if count == 0:
        raise ValueError("the dataset yielded no samples")
    if buf is not None:
        return buf[:count], ys
    x = torch.cat(blocks)
    if out is not None:
        mm = _allocate(tuple(x.shape), out)
        mm[:] = x
        x = mm
    return x, ys


def _allocate(shape, out) -> torch.Tensor:
    if out is None:
        return torch.empty(shape, dtype=torch.float32)
    from numpy.lib.format import open_memmap

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return torch.from_numpy(open_memmap(str(out), mode="w+", dtype=np.float32, shape=tuple(shape)))
