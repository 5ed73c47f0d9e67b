"""Data: built-in sets (no download), splits, OOD splits, user arrays, torch datasets, files and
precomputed embeddings. Tensors in, tensors out."""

from __future__ import annotations

import inspect
import numbers
from dataclasses import replace

import torch

from .._checks import check_number, check_seed
from .builtin import BUILTIN
from .dataset import Dataset, concat
from .embeddings import Embeddings, images_of
from .files import from_files
from .resize import resize
from .torchdata import from_torch

NAMES = tuple(BUILTIN)

__all__ = ["Dataset", "load", "ood_split", "concat", "resize", "NAMES", "Embeddings", "from_files",
           "from_torch", "images_of"]


def load(name: str, n: int | None = None, seed: int = 0, **options) -> Dataset:
    """Load a built-in data set by name.

    ``name``: one of moons, circles, gaussians8, gaussian_grid, swiss_roll, spirals,
    checkerboard (2-D toys), subspaces (a union of low-dimensional subspaces), sequences
    (categorical Markov-chain sequences), digits (sklearn's 8x8 images), mnist1d (1-D signals),
    multi_digits (a multi-label set: 8x16 images holding one or two digits, (N, 10) 0/1 labels).
    ``n``: number of samples (toys default 2000, digits all 1797, mnist1d 5000).
    ``options``: generator-specific keywords (e.g. ``noise=`` or ``k=`` for gaussian_grid).
    """
    if not isinstance(name, str) or name not in BUILTIN:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"n must be a positive int (number of samples), got {n!r}")
    check_seed(seed)
    fn = BUILTIN[name]
    params = inspect.signature(fn).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        valid = [p for p in params if p not in ("n", "seed")]
        raise ValueError(f"unknown option(s) {unknown} for {name!r}; valid options: {valid}")
    kwargs = dict(options, seed=seed)
    if n is not None:
        kwargs["n"] = n
    return fn(**kwargs)


def ood_split(
    ds,
    ood_classes,
    *,
    frac: float = 0.8,
    seed: int = 0,
):
    """Split a labelled set into (ID train, ID test, OOD test) by holding out ``ood_classes``.

    ``ds``: a ``Dataset`` or labelled ``Embeddings`` (the parts are then Embeddings too).
    ID labels are renumbered 0..C_id-1 in their original order (``meta["label_map"]`` maps
    new -> original); every OOD sample gets label -1 (its original label is kept in
    ``meta["original_labels"]``). ``frac`` of the ID samples go to ID train (stratified).
    """
    if isinstance(ds, Embeddings):
        return _ood_split_embeddings(ds, ood_classes, frac=frac, seed=seed)
    if not isinstance(ds, Dataset):
        raise TypeError(
            f"ood_split takes a wb.data.Dataset or wb.data.Embeddings, got {type(ds).__name__}; wrap arrays "
            "with wb.data.Dataset.from_arrays(x, y)"
        )
    if ds.y is not None and ds.multilabel:
        raise ValueError("ood_split holds out whole classes of a single-label set; this set is "
                         "multi-label (y of shape (N, C)), where a sample can carry several classes")
    ood, id_classes, is_ood, remap = _ood_plan(ds.y, ood_classes, frac, seed)
    id_part = ds.subset(~is_ood)
    id_part = replace(
        id_part,
        y=remap[id_part.y],
        classes=tuple(ds.classes[c] for c in id_classes) if ds.classes else None,
        meta={**ds.meta, "label_map": id_classes},
    )
    train, test = id_part.split(frac, seed=seed)
    ood_part = ds.subset(is_ood)
    ood_part = replace(
        ood_part,
        y=torch.full_like(ood_part.y, -1),
        name=f"{ds.name}[ood {ood}]",
        classes=train.classes,
        meta={**ds.meta, "original_labels": ood_part.y.clone(), "ood_classes": ood},
    )
    return (
        replace(train, name=f"{ds.name}[id train]"),
        replace(test, name=f"{ds.name}[id test]"),
        ood_part,
    )


def _ood_plan(y, ood_classes, frac, seed):
    """(held-out classes, ID classes, (N,) OOD mask, label remap) after checking the arguments."""
    if y is None:
        raise ValueError("ood_split needs a labelled dataset (its labels are None)")
    check_number(frac, "frac", min=0, max=1, min_open=True, max_open=True,
                 hint="the share of the in-distribution samples that goes to ID train, e.g. 0.8")
    check_seed(seed)
    ood = _class_list(ood_classes)
    present = sorted(int(c) for c in torch.unique(y) if int(c) >= 0)
    missing = [c for c in ood if c not in present]
    if missing:
        raise ValueError(f"ood_classes {missing} do not occur in the labels; classes present: {present}")
    id_classes = [c for c in present if c not in ood]
    if not id_classes:
        raise ValueError("every class was held out; keep at least one in-distribution class")
    is_ood = torch.isin(y, torch.tensor(ood, device=y.device)) | (y < 0)
    remap = torch.full((max(present) + 1,), -1, dtype=torch.int64, device=y.device)
    remap[torch.tensor(id_classes, device=y.device)] = torch.arange(len(id_classes), device=y.device)
    return ood, id_classes, is_ood, remap


def _ood_split_embeddings(emb: Embeddings, ood_classes, *, frac: float, seed: int):
    ood, id_classes, is_ood, remap = _ood_plan(emb.labels, ood_classes, frac, seed)
    names = emb.classes
    id_names = [names[c] for c in id_classes] if names else None
    id_part = emb.subset(~is_ood)
    id_part = id_part._with(id_part.tensor, index=None, labels=remap[id_part.labels],
                            meta={**{k: v for k, v in emb.meta.items() if k != "classes"},
                                  "label_map": id_classes, **({"classes": id_names} if id_names else {})})
    train, test = id_part.split_rows(frac, seed=seed)
    ood_part = emb.subset(is_ood)
    ood_part = ood_part._with(ood_part.tensor, index=None, labels=torch.full_like(ood_part.labels, -1),
                              meta={**{k: v for k, v in emb.meta.items() if k != "classes"},
                                    "original_labels": ood_part.labels.tolist(), "ood_classes": ood,
                                    **({"classes": id_names} if id_names else {})})
    return train, test, ood_part


def _class_list(ood_classes) -> list[int]:
    """``ood_classes`` (an int, or a list / tuple / array / tensor of ints) as a sorted list."""
    hint = "pass the class labels to hold out, e.g. ood_classes=[8, 9]"
    if isinstance(ood_classes, torch.Tensor):
        ood_classes = ood_classes.tolist()
    elif hasattr(ood_classes, "tolist") and not isinstance(ood_classes, str):  # numpy
        ood_classes = ood_classes.tolist()
    if isinstance(ood_classes, numbers.Integral) and not isinstance(ood_classes, bool):
        ood_classes = [ood_classes]
    if isinstance(ood_classes, (str, bytes)) or not isinstance(ood_classes, (list, tuple, set, range)):
        raise TypeError(f"ood_classes must be an int or a list of ints, got {ood_classes!r}; {hint}")
    out = set()
    for c in ood_classes:
        if isinstance(c, bool) or not isinstance(c, numbers.Integral):
            raise TypeError(f"ood_classes must hold integer class labels, got {c!r}; {hint}")
        out.add(int(c))
    if not out:
        raise ValueError(f"ood_classes is empty; {hint}")
    return sorted(out)
