"""``ood_map``: everything the OOD lens shows, as one frozen result (no plotting here).

One 2-D map of the ID test points and every OOD set, the scores of every detector of a
``Comparison`` for each point, and, when the bank's method has prototypes (PALM), where the
prototypes sit in the map and which prototype each point is closest to.

By default the projection is **fitted on the ID test points only** and the OOD points are
placed into that map with ``Projection.transform`` (exact for PCA, UMAP's own transform, a
neighbour average for t-SNE): the map then shows where OOD samples land in the ID geometry,
instead of a map bent to make room for them. ``fit_on="all"`` fits on every point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .bank import FeatureBank

__all__ = ["OODMap", "ood_map"]


@dataclass(frozen=True, eq=False)
class OODMap:
    """Points of the ID test set and the OOD sets in one 2-D map, with every detector's scores.

    ``coords`` (N, 2); ``set_index`` (N,): 0 = ID, k = the k-th OOD set of ``set_names[k]``;
    ``labels`` (N,): ID class or -1; ``scores[detector]`` (N,) (larger = more OOD);
    ``metrics[(detector, set)]`` from the comparison; ``prototypes_xy`` (K, 2) and
    ``proto_class`` (K,) or None; ``nearest_proto`` / ``nearest_cos`` (N,) the closest prototype
    of each point in the embedding space (or None); ``images`` (N, ...) inputs for previews.
    """

    coords: torch.Tensor
    set_index: torch.Tensor
    set_names: tuple[str, ...]
    labels: torch.Tensor
    scores: dict[str, torch.Tensor]
    metrics: dict
    space: str
    projection: Any = field(repr=False)
    prototypes_xy: torch.Tensor | None = None
    proto_class: torch.Tensor | None = None
    nearest_proto: torch.Tensor | None = None
    nearest_cos: torch.Tensor | None = None
    class_names: tuple[str, ...] | None = None
    images: torch.Tensor | None = field(default=None, repr=False)
    convention: str = "id-positive"

    @property
    def detectors(self) -> tuple[str, ...]:
        return tuple(self.scores)

    @property
    def is_ood(self) -> torch.Tensor:
        return self.set_index > 0

    def set_scores(self, detector: str, ood_set: str | None = None) -> dict[str, torch.Tensor]:
        """{"ID": scores, name: scores, ...} of one detector (all OOD sets, or just ``ood_set``)."""
        self._check_detector(detector)
        self._check_set(ood_set)
        s = self.scores[detector]
        return {name: s[self.set_index == k] for k, name in enumerate(self.set_names)
                if k == 0 or ood_set is None or name == ood_set}

    #: codes and names of ``outcome``: what a threshold does to each point
    OUTCOMES = ("ID kept", "ID flagged (false alarm)", "OOD caught", "OOD missed")

    def _check_detector(self, detector: str) -> None:
        if detector not in self.scores:
            raise ValueError(f"unknown detector {detector!r}; valid: {', '.join(self.scores)}")

    def _check_set(self, ood_set: str | None) -> None:
        if ood_set is not None and ood_set not in self.set_names[1:]:
            raise ValueError(f"unknown OOD set {ood_set!r}; valid: {', '.join(self.set_names[1:])}")

    def best_detector(self, ood_set: str | None = None) -> str:
        """The detector with the highest AUROC against ``ood_set`` (default: the mean over every
        OOD set), from the comparison's metrics; ties go to the first in the comparison."""
        self._check_set(ood_set)
        sets = self.set_names[1:] if ood_set is None else (ood_set,)

        def mean_auroc(d):
            vals = [self.metrics[(d, s)].auroc for s in sets if (d, s) in self.metrics]
            return sum(vals) / len(vals) if vals else 0.0

        return max(self.scores, key=mean_auroc)

    def score_pair(self, detector: str, ood_set: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ID scores, OOD scores) of ``detector`` against ``ood_set`` (None: every OOD set pooled)."""
        self._check_detector(detector)
        self._check_set(ood_set)
        s = self.scores[detector]
        ood = self.is_ood if ood_set is None else self.set_index == self.set_names.index(ood_set)
        return s[self.set_index == 0], s[ood]

    def thresholds(self, detector: str) -> torch.Tensor:
        """Every distinct threshold the data allows for ``detector`` (sorted, float64): just below
        the smallest score (flag every point), then each distinct score (flag the points above)."""
        self._check_detector(detector)
        u = torch.unique(self.scores[detector].double())
        return torch.cat([torch.nextafter(u[:1], torch.tensor([-float("inf")], dtype=torch.float64)), u])

    def describe(self, indices, detector: str, threshold: float) -> dict:
        """What a set of points (e.g. a lasso selection) holds: ``n``, ``mean_score`` of
        ``detector``, counts ``per_set`` and ``per_outcome`` at ``threshold`` (names -> count,
        non-zero only), and with prototypes ``nearest_class``: class of the nearest prototype
        -> count, most frequent first."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        self._check_detector(detector)
        if idx.numel() and (idx.min() < 0 or idx.max() >= len(self.labels)):
            raise IndexError(f"indices must be in 0..{len(self.labels) - 1}")
        out = {"n": int(idx.numel()), "mean_score": float(self.scores[detector][idx].float().mean()) if idx.numel() else float("nan")}
        si = torch.bincount(self.set_index[idx], minlength=len(self.set_names))
        out["per_set"] = {n: int(c) for n, c in zip(self.set_names, si) if c}
        oc = torch.bincount(self.outcome(detector, threshold)[idx], minlength=len(self.OUTCOMES))
        out["per_outcome"] = {n: int(c) for n, c in zip(self.OUTCOMES, oc) if c}
        if self.nearest_proto is not None and self.proto_class is not None and idx.numel():
            vals, counts = torch.unique(self.proto_class[self.nearest_proto[idx]], return_counts=True)
            order = torch.argsort(counts, descending=True, stable=True)
            out["nearest_class"] = {int(vals[i]): int(counts[i]) for i in order}
        return out

    def outcome(self, detector: str, threshold: float) -> torch.Tensor:
        """(N,) codes of what "flag OOD when score > threshold" does to each point: 0 ID kept,
        1 ID flagged (false alarm), 2 OOD caught, 3 OOD missed (names in ``OUTCOMES``)."""
        self._check_detector(detector)
        flagged = self.scores[detector] > float(threshold)
        ood = self.is_ood
        return torch.where(ood, torch.where(flagged, 2, 3), torch.where(flagged, 1, 0)).to(torch.int64)

    def landing(self, detector: str, threshold: float, ood_set: str | None = None) -> dict:
        """Where OOD points land among the prototypes: for every ID class, how many OOD points
        (of ``ood_set``, default all) have their nearest prototype in that class, split into
        ``caught`` and ``missed`` at ``threshold``; also the mean cosine to that prototype.
        Needs prototypes (a PALM bank)."""
        if self.nearest_proto is None or self.proto_class is None:
            raise ValueError("this map has no prototypes: build it from a FeatureBank(model, method=palm)")
        self._check_detector(detector)
        self._check_set(ood_set)
        sel = self.is_ood.clone()
        if ood_set is not None:
            sel &= self.set_index == self.set_names.index(ood_set)
        c = int(self.proto_class.max()) + 1
        cls = self.proto_class[self.nearest_proto]
        flagged = self.scores[detector] > float(threshold)
        caught = torch.bincount(cls[sel & flagged], minlength=c)
        missed = torch.bincount(cls[sel & ~flagged], minlength=c)
        cos_sum = torch.zeros(c).index_add_(0, cls[sel], self.nearest_cos[sel].float())
        n = (caught + missed).clamp_min(1)
        return {"caught": caught, "missed": missed, "mean_cosine": cos_sum / n}

    def __repr__(self) -> str:
        sets = ", ".join(f"{n} ({int((self.set_index == k).sum())})" for k, n in enumerate(self.set_names))
        protos = f", {len(self.prototypes_xy)} prototypes" if self.prototypes_xy is not None else ""
        return (f"OODMap({self.projection.method if self.projection is not None else '?'} map of the "
                f"{self.space} features: {sets}; {len(self.scores)} detectors{protos})")


def ood_map(comparison, bank: FeatureBank, id_test, ood: Mapping, *, space: str | None = None,
            projection: str = "pca", fit_on: str = "id", seed: int = 0, method=None, **options) -> OODMap:
    """Build the lens's data: a 2-D map of ``id_test`` and the ``ood`` sets plus the scores of
    every detector in ``comparison`` (from ``wb.ood.compare`` on the same bank and sets).

    ``space``: features to map ("embedding" when the bank has one, else "backbone").
    ``projection``: "pca" (default), "umap" or "tsne" (``options`` go to it). ``fit_on``: "id"
    (fit the map on the ID points, place the OOD points into it) or "all". ``method``: where
    prototypes come from (default the bank's method, when it has ``prototypes``).
    """
    from ..analyses.embedding import project
    from . import Comparison

    if not isinstance(comparison, Comparison):
        raise TypeError(f"comparison must come from wb.ood.compare, got {type(comparison).__name__}")
    if not isinstance(bank, FeatureBank):
        raise TypeError(f"bank must be a wb.ood.FeatureBank, got {type(bank).__name__}")
    if not isinstance(ood, Mapping) or not ood:
        raise TypeError("ood must be a non-empty dict {name: Dataset} (the sets given to compare)")
    missing = [k for k in ood if k not in comparison.ood_sets]
    if missing:
        raise ValueError(f"OOD sets {missing} are not in the comparison; its sets: {', '.join(comparison.ood_sets)}")
    if fit_on not in ("id", "all"):
        raise ValueError(f"fit_on must be 'id' or 'all', got {fit_on!r}")
    f_id = bank.features(id_test)
    if space is None:
        space = "embedding" if f_id.embedding is not None else "backbone"
    feats = [f_id] + [bank.features(d) for d in ood.values()]
    zs = [f.get(space) for f in feats]
    z = torch.cat(zs)
    set_index = torch.cat([torch.full((len(f),), k, dtype=torch.int64) for k, f in enumerate(feats)])
    y_id = f_id.y if f_id.y is not None else torch.zeros(len(f_id), dtype=torch.int64)
    labels = torch.cat([y_id] + [torch.full((len(f),), -1, dtype=torch.int64) for f in feats[1:]])
    if fit_on == "id":
        proj = project(zs[0], projection, seed=seed, **options)
        coords = torch.cat([proj.coords] + [proj.transform(v) for v in zs[1:]])
    else:
        proj = project(z, projection, seed=seed, **options)
        coords = proj.coords
    scores = {d: torch.cat([s["ID"]] + [s[k] for k in ood]) for d, s in comparison.scores.items()}
    mets = {key: m for key, m in comparison.metrics.items() if key[1] in ood}

    method = method if method is not None else bank.method
    protos = getattr(method, "prototypes", None) if method is not None else None
    proto_xy = proto_class = nearest = cos = None
    if protos is not None:
        p = F.normalize(protos.detach().float().cpu(), dim=1)
        proto_class = getattr(method, "proto_class", None)
        proto_class = proto_class.detach().cpu() if proto_class is not None else None
        emb = [f.embedding for f in feats]
        if all(e is not None for e in emb) and emb[0].shape[1] == p.shape[1]:
            sim = torch.cat(emb) @ p.T
            cos, nearest = sim.max(1)
        if space == "embedding" and p.shape[1] == z.shape[1]:
            proto_xy = proj.transform(p)
    from ..data.embeddings import images_of

    images = None
    try:
        images = torch.cat([(images_of(d) if images_of(d) is not None else d.x).detach().cpu()
                            for d in (id_test, *ood.values())])
    except (AttributeError, RuntimeError, TypeError):
        images = None
    return OODMap(
        coords=coords, set_index=set_index, set_names=("ID",) + tuple(ood), labels=labels,
        scores=scores, metrics=mets, space=space, projection=proj, prototypes_xy=proto_xy,
        proto_class=proto_class, nearest_proto=nearest, nearest_cos=cos,
        class_names=getattr(id_test, "classes", None), images=images, convention=comparison.convention,
    )
