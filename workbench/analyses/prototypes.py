"""Prototype assignments: who is assigned to which prototype, how full, how redundant, how pure.

For a prototype method (PALM) with Kt unit prototypes p_j owned by classes ``proto_class[j]``
and unit embeddings z_i of N samples:

* ``weights`` (N, Kt), the soft-assignment matrix. ``assignment="sinkhorn"`` reproduces the
  weights PALM trains with (Sinkhorn-Knopp over the N samples, masked to each sample's class,
  top-k, rows normalised to 1; needs labels); ``"softmax"`` is softmax_j(z_i·p_j / τ) over all
  prototypes (no labels needed: test or OOD data).
* ``occupancy`` (Kt,): the soft mass Σ_i w_ij each prototype receives. ``assigned`` (N,): each
  sample's hard assignment, the most similar prototype of its own class (of all prototypes for
  unlabelled or -1 samples); ``counts`` (Kt,): how many samples are assigned to each. A
  prototype with count 0 is **dead** (no sample is closest to it). Counts are taken from the
  similarities, not from the Sinkhorn weights, because Sinkhorn's equal-mass constraint hands
  mass even to a prototype that no sample is near.
* ``redundancy`` (Kt,): the largest cosine between a prototype and another prototype of its own
  class; ``cosine`` (Kt, Kt) all pairwise cosines. Same-class pairs above
  ``duplicate_threshold`` (0.95) are **duplicates**: Sinkhorn's equal mass splits a mode between
  them and PALM's prototype-contrastive loss pulls same-class prototypes together.
* ``purity`` (Kt,): among the samples whose most similar prototype over *all* classes is p_j,
  the fraction that belong to p_j's class (NaN when no sample picks p_j or labels are missing).
  (Within the class mask purity is 1 by construction, so it is measured without the mask.)

``prototype_evolution(history.snapshots, method, data)`` computes all of this for every
snapshot of a fit (record them with ``Snapshots(every=k, embed=data, embed_fn=method.embed)``),
to watch prototypes form, duplicate or die.

``prototype_maps(method, model, data, snapshots=...)`` adds 2-D maps: the samples projected to
2-D (aligned over snapshots by Procrustes) with the prototypes placed in the same maps
(``Projection.transform``), everything ``wb.widgets.PrototypeView`` draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = [
    "PrototypeAssignments", "assignments_from", "prototype_assignments",
    "PrototypeEvolution", "prototype_evolution", "PrototypeMaps", "prototype_maps",
]

ASSIGNMENTS = ("sinkhorn", "softmax")


@dataclass(frozen=True, eq=False)
class PrototypeAssignments:
    """Assignments of N embeddings to Kt prototypes and per-prototype statistics (CPU tensors).

    See the module docstring for the definitions of every field.
    """

    weights: torch.Tensor  # (N, Kt)
    similarity: torch.Tensor  # (N, Kt) cosines
    labels: torch.Tensor | None  # (N,)
    prototypes: torch.Tensor  # (Kt, d)
    proto_class: torch.Tensor  # (Kt,)
    assignment: str
    assigned: torch.Tensor  # (N,) most similar own-class prototype
    nearest: torch.Tensor  # (N,) most similar prototype, all classes
    occupancy: torch.Tensor  # (Kt,) soft mass
    counts: torch.Tensor  # (Kt,) hard counts
    purity: torch.Tensor  # (Kt,)
    cosine: torch.Tensor = field(repr=False)  # (Kt, Kt)
    redundancy: torch.Tensor = field(repr=False)  # (Kt,)
    duplicate_threshold: float = 0.95

    @property
    def n_prototypes(self) -> int:
        return self.prototypes.shape[0]

    @property
    def dead(self) -> torch.Tensor:
        """(Kt,) bool: prototypes no sample is assigned to (closest to, within its class)."""
        return self.counts == 0

    @property
    def n_dead(self) -> int:
        return int(self.dead.sum())

    @property
    def duplicate_pairs(self) -> list[tuple[int, int, float]]:
        """Same-class prototype pairs (i < j) with cosine >= ``duplicate_threshold``."""
        same = self.proto_class[:, None] == self.proto_class[None, :]
        upper = torch.triu(torch.ones_like(same), diagonal=1)
        hit = (same & upper & (self.cosine >= self.duplicate_threshold)).nonzero().tolist()
        return [(i, j, float(self.cosine[i, j])) for i, j in hit]

    @property
    def n_duplicates(self) -> int:
        """Number of prototypes that duplicate an earlier one of their class."""
        return len({j for _, j, _ in self.duplicate_pairs})

    def sample_weights(self, i: int) -> dict[int, float]:
        """The non-zero soft weights of sample ``i``: {prototype: weight}, largest first."""
        if not 0 <= i < self.weights.shape[0]:
            raise IndexError(f"sample {i} out of range (0..{self.weights.shape[0] - 1})")
        row = self.weights[i]
        order = row.argsort(descending=True)
        return {int(j): round(float(row[j]), 4) for j in order if row[j] > 0}

    def top_points(self, j: int, m: int = 5, *, by: str = "weight") -> torch.Tensor:
        """Indices of the ``m`` samples most assigned to prototype ``j`` (``by="weight"``) or most
        similar to it (``by="similarity"``), best first; only samples with a non-zero weight
        when ``by="weight"``."""
        if not 0 <= j < self.n_prototypes:
            raise IndexError(f"prototype {j} out of range (0..{self.n_prototypes - 1})")
        if by == "weight":
            col = self.weights[:, j]
            k = min(m, int((col > 0).sum()))
            return col.topk(k).indices if k else torch.empty(0, dtype=torch.long)
        if by == "similarity":
            return self.similarity[:, j].topk(min(m, self.similarity.shape[0])).indices
        raise ValueError(f"by must be 'weight' or 'similarity', got {by!r}")

    def table(self):
        """A pandas DataFrame with one row per prototype."""
        import pandas as pd

        return pd.DataFrame({
            "class": self.proto_class.numpy(),
            "occupancy": self.occupancy.numpy(),
            "count": self.counts.numpy(),
            "purity": self.purity.numpy(),
            "redundancy": self.redundancy.numpy(),
            "dead": self.dead.numpy(),
        }).rename_axis("prototype")

    def __repr__(self) -> str:
        n, kt = self.weights.shape
        return (
            f"PrototypeAssignments({self.assignment}, {n} samples x {kt} prototypes, "
            f"dead={self.n_dead}, duplicates={self.n_duplicates} (cos >= {self.duplicate_threshold}), "
            f"mean purity={float(self.purity.nanmean()) if self.labels is not None else float('nan'):.3f})"
        )


def assignments_from(
    z,
    prototypes,
    proto_class,
    labels=None,
    *,
    assignment: str = "sinkhorn",
    epsilon: float = 0.05,
    iters: int = 3,
    top_k: int = 5,
    temperature: float = 0.1,
    sinkhorn: str = "global",
    duplicate_threshold: float = 0.95,
) -> PrototypeAssignments:
    """Assignment statistics of embeddings ``z`` (N, d) to ``prototypes`` (Kt, d).

    Rows of ``z`` and ``prototypes`` are L2-normalised first. ``labels`` (N,) are needed for
    ``assignment="sinkhorn"`` and for purity; samples labelled -1 get softmax weights.
    """
    from ..methods.palm import sinkhorn as _sinkhorn
    from ..methods.palm import topk_mask

    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; valid: {', '.join(ASSIGNMENTS)}")
    z = torch.as_tensor(z).detach().cpu().float()
    p = torch.as_tensor(prototypes).detach().cpu().float()
    pc = torch.as_tensor(proto_class).detach().cpu().long()
    if z.ndim != 2 or p.ndim != 2 or z.shape[1] != p.shape[1]:
        raise ValueError(
            f"z must be (N, d) and prototypes (Kt, d) with the same d, got {tuple(z.shape)} and {tuple(p.shape)}"
        )
    if pc.shape != (p.shape[0],):
        raise ValueError(f"proto_class must have one class per prototype ({p.shape[0]}), got {tuple(pc.shape)}")
    y = None
    if labels is not None:
        y = torch.as_tensor(labels).detach().cpu().long()
        if y.shape != (z.shape[0],):
            raise ValueError(f"labels must be (N,) = ({z.shape[0]},), got {tuple(y.shape)}")
    if assignment == "sinkhorn" and y is None:
        raise ValueError("assignment='sinkhorn' needs labels (the class mask); pass labels= or use assignment='softmax'")
    z, p = F.normalize(z, dim=1), F.normalize(p, dim=1)
    sim = z @ p.T  # (N, Kt)
    soft = (sim / temperature).softmax(1)
    if assignment == "sinkhorn":
        mask = y[:, None] == pc[None, :]
        known = y >= 0
        w = _sinkhorn(sim, epsilon, iters, mask=mask if sinkhorn == "per-class" else None) * mask
        k = min(top_k, int((pc[None, :] == pc[:, None]).sum(1).min()))
        w = F.normalize(w * topk_mask(w, k), p=1, dim=1)
        w = torch.where(known[:, None], w, soft)
    else:
        w = soft
    kt = p.shape[0]
    nearest = sim.argmax(1)
    if y is not None:
        own = (y[:, None] == pc[None, :]) & (y >= 0)[:, None]
        has_own = own.any(1)
        assigned = torch.where(has_own, sim.masked_fill(~own, float("-inf")).argmax(1), nearest)
    else:
        assigned = nearest
    counts = torch.bincount(assigned, minlength=kt)
    if y is not None:
        hit = torch.zeros(kt).index_add_(0, nearest, (y == pc[nearest]).float())
        tot = torch.bincount(nearest, minlength=kt).float()
        purity = torch.where(tot > 0, hit / tot.clamp_min(1), torch.full_like(tot, float("nan")))
    else:
        purity = torch.full((kt,), float("nan"))
    cos = p @ p.T
    same = (pc[:, None] == pc[None, :]) & ~torch.eye(kt, dtype=torch.bool)
    redundancy = cos.masked_fill(~same, float("-inf")).max(1).values
    redundancy = torch.where(torch.isinf(redundancy), torch.full_like(redundancy, float("nan")), redundancy)
    return PrototypeAssignments(
        weights=w, similarity=sim, labels=y, prototypes=p, proto_class=pc, assignment=assignment,
        assigned=assigned, nearest=nearest, occupancy=w.sum(0), counts=counts, purity=purity,
        cosine=cos, redundancy=redundancy, duplicate_threshold=float(duplicate_threshold),
    )


def _method_options(method) -> dict:
    return dict(
        epsilon=getattr(method, "epsilon", 0.05),
        iters=getattr(method, "sinkhorn_iters", 3),
        top_k=getattr(method, "top_k", 5),
        temperature=getattr(method, "temperature", 0.1),
        sinkhorn=getattr(method, "sinkhorn_mode", "global"),
    )


def _check_proto_method(method):
    if not (hasattr(method, "prototypes") and hasattr(method, "proto_class") and hasattr(method, "embed")):
        raise TypeError(
            f"{type(method).__name__} has no prototypes; pass a prototype method such as "
            "wb.methods.PALM, or call assignments_from(z, prototypes, proto_class, labels)"
        )


def prototype_assignments(method, model, data, *, assignment: str = "auto", batch_size: int = 1024,
                          duplicate_threshold: float = 0.95) -> PrototypeAssignments:
    """Assignments of ``data``'s embeddings (``method.embed``) to ``method``'s prototypes.

    ``data`` may be ``wb.data.Embeddings`` (no model needed); ``method`` is then a prototype
    method, ``FittedPrototypes``, or None for k-means prototypes (``fit_prototypes``).
    ``assignment="auto"``: ``"sinkhorn"`` when ``data`` has labels, else ``"softmax"``. The model
    and method are not changed.
    """
    from ..data.embeddings import Embeddings
    from .embedding import embed

    if isinstance(data, Embeddings):  # precomputed: no model; prototypes from method (or fitted)
        from .prototype_fit import fit_prototypes

        method = fit_prototypes(data) if method is None else method
        z = data
    else:
        _check_proto_method(method)
    if assignment == "auto":
        assignment = "sinkhorn" if getattr(data, "y", None) is not None else "softmax"
    if not isinstance(data, Embeddings):
        z = embed(model, data, fn=method.embed, batch_size=batch_size)
    return assignments_from(
        z, method.prototypes, method.proto_class, getattr(data, "y", None), assignment=assignment,
        duplicate_threshold=duplicate_threshold, **_method_options(method),
    )


@dataclass(frozen=True, eq=False)
class PrototypeEvolution:
    """Per-snapshot prototype statistics over a fit: arrays are (T, Kt) or (T,).

    ``per_snapshot[i]`` is the full ``PrototypeAssignments`` of snapshot i.
    """

    steps: torch.Tensor  # (T,)
    occupancy: torch.Tensor  # (T, Kt)
    counts: torch.Tensor  # (T, Kt)
    purity: torch.Tensor  # (T, Kt)
    redundancy: torch.Tensor  # (T, Kt)
    n_dead: torch.Tensor  # (T,)
    n_duplicates: torch.Tensor  # (T,)
    prototypes: torch.Tensor = field(repr=False)  # (T, Kt, d)
    proto_class: torch.Tensor = field(repr=False)  # (Kt,)
    per_snapshot: tuple[PrototypeAssignments, ...] = field(repr=False, default=())

    def __len__(self) -> int:
        return self.steps.shape[0]

    def table(self):
        """A pandas DataFrame indexed by step: dead and duplicate counts, mean purity/redundancy."""
        import pandas as pd

        return pd.DataFrame({
            "dead": self.n_dead.numpy(),
            "duplicates": self.n_duplicates.numpy(),
            "mean purity": self.purity.nanmean(1).numpy(),
            "mean redundancy": self.redundancy.nanmean(1).numpy(),
        }, index=pd.Index(self.steps.numpy(), name="step"))

    def __repr__(self) -> str:
        return (
            f"PrototypeEvolution({len(self)} snapshots, steps {int(self.steps[0])}..{int(self.steps[-1])}; "
            f"dead {int(self.n_dead[0])}->{int(self.n_dead[-1])}, "
            f"duplicates {int(self.n_duplicates[0])}->{int(self.n_duplicates[-1])})"
        )


def _snapshot_protos(state: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    for key in ("protos", "prototypes"):
        if key in state:
            return state[key], state.get("proto_class")
    raise ValueError(
        f"a snapshot's method state has no prototypes (keys: {sorted(state)}); record snapshots of a "
        "prototype method with Snapshots(method_state=True)"
    )


def prototype_evolution(snapshots, method, data=None, *, labels=None, assignment: str = "auto",
                        duplicate_threshold: float = 0.95) -> PrototypeEvolution:
    """Prototype statistics at every snapshot of a fit.

    ``snapshots``: ``history.snapshots`` recorded with ``Snapshots(every=k, embed=data,
    embed_fn=method.embed, method_state=True)``; ``data`` is that probe Dataset (for its labels),
    or pass ``labels=`` directly.
    """
    _check_proto_method(method)
    if not getattr(snapshots, "embeddings", None) or not getattr(snapshots, "method_states", None):
        raise ValueError(
            "the snapshots need embeddings and method states: record them with "
            "Snapshots(every=k, embed=data, embed_fn=method.embed, method_state=True)"
        )
    y = labels if labels is not None else getattr(data, "y", None)
    if assignment == "auto":
        assignment = "sinkhorn" if y is not None else "softmax"
    per = []
    for z, state in zip(snapshots.embeddings, snapshots.method_states):
        protos, pc = _snapshot_protos(state)
        if pc is None:
            pc = method.proto_class
        if y is not None and len(y) != z.shape[0]:
            raise ValueError(
                f"the snapshots embed {z.shape[0]} samples but {len(y)} labels were given; pass the "
                "probe Dataset that Snapshots(embed=...) recorded"
            )
        per.append(assignments_from(
            z, protos, pc, y, assignment=assignment, duplicate_threshold=duplicate_threshold,
            **_method_options(method),
        ))
    return PrototypeEvolution(
        steps=torch.as_tensor(snapshots.steps),
        occupancy=torch.stack([a.occupancy for a in per]),
        counts=torch.stack([a.counts for a in per]),
        purity=torch.stack([a.purity for a in per]),
        redundancy=torch.stack([a.redundancy for a in per]),
        n_dead=torch.as_tensor([a.n_dead for a in per]),
        n_duplicates=torch.as_tensor([a.n_duplicates for a in per]),
        prototypes=torch.stack([a.prototypes for a in per]),
        proto_class=per[0].proto_class,
        per_snapshot=tuple(per),
    )


@dataclass(frozen=True, eq=False)
class PrototypeMaps:
    """Prototypes and samples in 2-D maps, per snapshot of a fit (or one map of the current
    state): what ``wb.widgets.PrototypeView`` shows.

    ``coords[i]`` (N, 2) the samples and ``proto_coords[i]`` (Kt, 2) the prototypes in map i
    (maps aligned to each other); ``assignments[i]`` their ``PrototypeAssignments``; ``names``
    ("step k", or "now"); ``evolution`` the ``PrototypeEvolution`` over the snapshots (None
    for one map of the current state).
    """

    names: tuple[str, ...]
    coords: torch.Tensor  # (T, N, 2)
    proto_coords: torch.Tensor  # (T, Kt, 2)
    assignments: tuple[PrototypeAssignments, ...] = field(repr=False)
    proto_class: torch.Tensor = field(repr=False)  # (Kt,)
    projection: str = "pca"
    evolution: PrototypeEvolution | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        t, n, _ = self.coords.shape
        return (f"PrototypeMaps({t} map(s) [{self.names[0]} .. {self.names[-1]}], {n} samples, "
                f"{self.proto_coords.shape[1]} prototypes, {self.projection})")


def prototype_maps(method, model=None, data=None, *, snapshots=None, projection: str = "pca",
                   seed: int = 0, batch_size: int = 1024) -> PrototypeMaps:
    """2-D maps of ``data`` (a labelled Dataset) with ``method``'s prototypes placed in them.

    With ``snapshots`` (``history.snapshots`` or the History, recorded with
    ``Snapshots(every=k, embed=data, embed_fn=method.embed, method_state=True)``): one map per
    snapshot, aligned over the fit (``aligned_projections``), with each snapshot's prototypes and
    assignments (``prototype_evolution``). Without: one map of ``model``'s current embedding.
    ``projection``: "pca", "umap" or "tsne". The model and method are not changed.

    ``data`` may be ``wb.data.Embeddings`` (or pass them as the first argument): one map of the
    L2-normalised rows, with ``method``'s prototypes or, when ``method`` is None, k-means
    prototypes per class (``wb.analyses.fit_prototypes``); no model needed.
    """
    from ..data.embeddings import Embeddings
    from .embedding import aligned_projections, embed, project

    if isinstance(method, Embeddings) and data is None:
        method, data = None, method
    if isinstance(data, Embeddings):
        from .prototype_fit import maps_from_embeddings

        return maps_from_embeddings(method, data, projection=projection, seed=seed)
    _check_proto_method(method)
    if data is None:
        raise ValueError("pass data= (the labelled Dataset whose samples to show)")
    if hasattr(snapshots, "snapshots") and not hasattr(snapshots, "embeddings"):
        snapshots = snapshots.snapshots  # a History
    if snapshots is not None:
        evolution = prototype_evolution(snapshots, method, data)
        aligned = aligned_projections(snapshots, projection, seed=seed)
        proto_xy = [aligned.transform(i, evolution.prototypes[i]) for i in range(len(aligned))]
        return PrototypeMaps(
            names=tuple(aligned.names), coords=aligned.coords.float(), proto_coords=torch.stack(proto_xy).float(),
            assignments=tuple(evolution.per_snapshot), proto_class=evolution.proto_class,
            projection=projection, evolution=evolution,
        )
    if model is None:
        raise ValueError("without snapshots, pass the trained model to embed the data")
    z = embed(model, data, fn=method.embed, batch_size=batch_size)  # (N, d)
    y = getattr(data, "y", None)
    a = assignments_from(z, method.prototypes, method.proto_class, y,
                         assignment="sinkhorn" if y is not None else "softmax", **_method_options(method))
    proj = project(z, projection, seed=seed)
    return PrototypeMaps(
        names=("now",), coords=proj.coords[None].float(),
        proto_coords=proj.transform(method.prototypes)[None].float(), assignments=(a,),
        proto_class=a.proto_class, projection=projection,
    )
