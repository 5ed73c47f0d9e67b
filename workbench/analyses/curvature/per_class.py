"""Curvature per class: the same quantity for the mean loss over each class's samples.

As in "Escaping Saddle Points for Effective Generalization on Class-Imbalanced Data" (Rangwani
et al. 2022), which compares the Hessian spectra of head and tail classes; the whole-data value
is returned beside them (``overall``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .operator import setup


@dataclass(frozen=True, eq=False)
class PerClass:
    """A curvature result for the whole data (``overall``) and for each class's samples.

    ``classes``: the labels; ``results[i]``: the result for ``classes[i]``; ``res[c]`` looks a
    class up. ``value(name)`` gathers one scalar field, e.g. ``value("trace")``.
    """

    classes: tuple[int, ...]
    results: tuple
    overall: object

    def __getitem__(self, c):
        if int(c) not in self.classes:
            raise KeyError(f"no class {c!r}; classes: {list(self.classes)}")
        return self.results[self.classes.index(int(c))]

    def value(self, name: str) -> torch.Tensor:
        vals = []
        for r in self.results:
            v = getattr(r, name)
            vals.append(float(v[0]) if isinstance(v, torch.Tensor) else float(v))
        return torch.tensor(vals)

    def __repr__(self) -> str:
        lines = [f"PerClass({len(self.classes)} classes; overall: {self.overall!r}"]
        for c, r in zip(self.classes, self.results):
            lines.append(f"  class {c}: {r!r}")
        return "\n".join(lines) + ")"


def per_class(fn: Callable, model, method, data, n_samples, seed, **kw) -> PerClass:
    """``fn`` on all the data and on each class's samples (labels >= 0)."""
    _, x, y, _ = setup(model, method, data, None, seed)
    if y is None:
        raise ValueError("per_class=True needs labelled data; pass a labelled wb.data.Dataset")
    classes = sorted(int(c) for c in torch.unique(y) if int(c) >= 0)
    overall = fn(model, method, data, n_samples=n_samples, seed=seed, **kw)
    results = []
    for c in classes:
        idx = (y == c).nonzero().flatten()
        results.append(fn(model, method, (x[idx], y[idx]), n_samples=n_samples, seed=seed, **kw))
    return PerClass(tuple(classes), tuple(results), overall)
