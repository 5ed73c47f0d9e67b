"""Generalised category discovery with an unknown number of classes: the EM loop of GPC.

Zhao, Wen & Han, "Learning Semi-supervised Gaussian Mixture Models for Generalized Category
Discovery" (ICCV 2023). The data hold labelled samples of the *old* classes (their class ids)
and unlabelled samples (label −1) of old and *new* classes; how many new classes there are is
not given. Each round:

1. **E step**: the unit backbone features of every sample (``model.features``, L2-normalised;
   optionally PCA to ``pca_dim`` for the mixture) go through one pass of the semi-supervised
   GMM: SS-k-means from the previous round's components, then split/merge
   (``wb.analyses.fit_ss_gmm``; the first round starts from ``k_init`` components). K may change.
2. **stop?** When ``patience`` consecutive passes made no split or merge (and at least
   ``min_rounds`` passes ran), K has settled: the loop stops, and the estimated class count is
   K. Otherwise it stops after ``max_rounds`` passes, with K as it then is.
3. **M step**: the components become the method's prototypes (``GPCLoss``: PCL targets with
   their concentrations; ``ProtoGCD``: the starting unified prototypes) and the model trains
   ``steps_per_round`` steps (``wb.fit``).

Predictions: GPC's are the mixture's assignments after the last pass; ProtoGCD's the nearest
trained prototype when the loop stopped on a settled K (the prototypes then match the final
components), else the mixture's. Every round's GCD accuracy (v2, on the unlabelled samples,
when ``true_labels`` are given) and every mixture state (for the animated view) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_seed
from .._modes import eval_mode
from ..analyses.embedding import embed
from ..analyses.gcd import GCDAccuracy, cluster_accuracy
from ..analyses.ss_gmm import GMMFrame, SSGMMFit, fit_ss_gmm
from ..training import fit

__all__ = ["discover_categories", "CategoryDiscovery"]


@dataclass(frozen=True, eq=False)
class CategoryDiscovery:
    """What ``discover_categories`` found.

    ``estimated_k``: the class count at the stop; ``k_history`` (R+1,): K before the first pass
    and after every pass; ``stop_reason``; ``predictions`` (N,) component per sample;
    ``accuracy``: the final v2 GCD accuracy on the unlabelled samples (None without
    ``true_labels``) and ``round_accuracy`` one per pass; ``frames``: every mixture state (two
    per pass: after SS-k-means and after split/merge) and ``features`` the (N, D) features each
    pass clustered (for ``wb.analyses.gmm_film``); ``gmm``: the last pass; ``histories``."""

    model: nn.Module = field(repr=False)
    method: nn.Module = field(repr=False)
    estimated_k: int
    k_history: torch.Tensor
    stop_reason: str
    predictions: torch.Tensor = field(repr=False)
    accuracy: GCDAccuracy | None
    round_accuracy: tuple = field(repr=False)
    frames: tuple[GMMFrame, ...] = field(repr=False)
    features: tuple[torch.Tensor, ...] = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    old_classes: tuple[int, ...] = field(repr=False)
    gmm: SSGMMFit = field(repr=False)
    histories: tuple[Any, ...] = field(repr=False)

    def __repr__(self) -> str:
        ks = " -> ".join(str(int(k)) for k in self.k_history)
        acc = f"; {self.accuracy}" if self.accuracy is not None else ""
        return f"CategoryDiscovery(estimated K = {self.estimated_k} ({self.stop_reason}); K by pass: {ks}{acc})"


def _features(model, data, pca_dim, seed) -> tuple[torch.Tensor, torch.Tensor]:
    """(unit backbone features (N, F), what the mixture clusters (N, D))."""
    q = F.normalize(embed(model, data).double(), dim=1)
    if pca_dim is None or pca_dim >= q.shape[1]:
        return q, q
    from sklearn.decomposition import PCA

    z = PCA(pca_dim, random_state=seed).fit_transform(q.numpy())
    return q, torch.as_tensor(z)


def _component_means(q: torch.Tensor, assign: torch.Tensor, k: int) -> torch.Tensor:
    counts = torch.bincount(assign, minlength=k).clamp_min(1).to(q.dtype)
    return torch.zeros(k, q.shape[1], dtype=q.dtype).index_add_(0, assign, q) / counts[:, None]


def _set_prototypes(method, q, gmm: SSGMMFit):
    from ..methods.gpc import cluster_density

    frame = gmm.frames[-1]
    cents = F.normalize(_component_means(q, frame.assignment, frame.k), dim=1)
    if hasattr(method, "density"):  # GPCLoss: PCL targets with concentrations
        method.set_prototypes(cents, frame.anchor_class, cluster_density(q, frame.assignment, cents))
    else:
        method.set_prototypes(cents, frame.anchor_class)


def _make_method(method, model, data):
    from .. import methods

    if isinstance(method, str):
        table = {"gpc": methods.GPCLoss, "protogcd": methods.ProtoGCD}
        if method not in table:
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(table)} or a method object")
        method = table[method]()
    if not callable(getattr(method, "set_prototypes", None)):
        raise TypeError("the method must take the mixture's components (set_prototypes): GPCLoss or ProtoGCD")
    if callable(getattr(method, "setup", None)):
        method.setup(model, data)
    return method


def discover_categories(
    model: nn.Module,
    data,
    *,
    true_labels=None,
    method="gpc",
    k_init: int | None = None,
    max_rounds: int = 8,
    min_rounds: int = 2,
    patience: int = 1,
    steps_per_round: int = 200,
    batch_size: int = 128,
    lr: float = 1e-3,
    pca_dim: int | None = None,
    warmup_steps: int = 0,
    gmm_options: dict | None = None,
    seed: int = 0,
    **fit_options,
) -> CategoryDiscovery:
    """The EM loop (module docstring); ``model`` trains in place.

    ``data``: a Dataset whose labels are the old classes' ids for the labelled samples and −1
    for the unlabelled ones. ``true_labels`` (N,): every sample's class, only to score the
    rounds. ``method``: ``"gpc"`` (``wb.methods.GPCLoss()``), ``"protogcd"``, or such an object.
    ``k_init``: the first pass's K (default twice the labelled classes; it must exceed them).
    ``warmup_steps``: contrastive-only training before the first pass (the method without
    prototypes; GPC warms up one epoch). ``gmm_options`` go to ``fit_ss_gmm`` (e.g.
    ``merge_into_anchored=False``, ``min_size=``).
    """
    if getattr(data, "y", None) is None:
        raise ValueError("data needs labels: the old classes' ids for labelled samples, -1 for the others")
    y = data.y.cpu()
    old = tuple(sorted(int(c) for c in torch.unique(y[y >= 0])))
    if not old:
        raise ValueError("no labelled sample: GCD needs labelled examples of the old classes")
    k_init = 2 * len(old) if k_init is None else k_init
    check_int(k_init, "k_init", min=len(old) + 1, hint=f"it must exceed the {len(old)} labelled classes")
    for name, v in (("max_rounds", max_rounds), ("min_rounds", min_rounds), ("patience", patience)):
        check_int(v, name, min=1)
    check_int(steps_per_round, "steps_per_round", min=1)
    check_int(warmup_steps, "warmup_steps", min=0)
    check_seed(seed)
    gmm_options = dict(gmm_options or {})
    bad = {"k_init", "max_rounds", "patience", "start", "seed", "round_offset"} & set(gmm_options)
    if bad:
        raise ValueError(f"gmm_options cannot set {sorted(bad)}: the loop sets them")
    truth = None if true_labels is None else torch.as_tensor(true_labels).cpu().long()
    if truth is not None and truth.shape != y.shape:
        raise ValueError(f"true_labels must hold one class per sample ({len(y)}), got {tuple(truth.shape)}")
    method = _make_method(method, model, data)
    fit_options.setdefault("progress", False)
    unl = y < 0
    frames, feats, ks, accs, hists = [], [], [k_init], [], []
    gmm, quiet, reason = None, 0, f"max_rounds={max_rounds} reached"
    if warmup_steps:
        hists.append(fit(model, method, data, steps=warmup_steps, batch_size=batch_size, lr=lr, seed=seed,
                         **fit_options))
    for r in range(max_rounds):
        q, z = _features(model, data, pca_dim, seed)
        gmm = fit_ss_gmm(z, y, k_init=k_init, max_rounds=1, patience=1, start=gmm, seed=seed + r, round_offset=r,
                         **gmm_options)
        frames += list(gmm.frames)
        feats.append(z.float())
        ks.append(gmm.n_components)
        if truth is not None:
            accs.append(cluster_accuracy(truth[unl], gmm.assignment[unl], old))
        quiet = quiet + 1 if not gmm.frames[-1].events else 0
        if r + 1 >= min_rounds and quiet >= patience:
            reason = f"no split or merge in {patience} pass(es)"
            break
        if r == max_rounds - 1:
            break
        _set_prototypes(method, q, gmm)
        hists.append(fit(model, method, data, steps=steps_per_round, batch_size=batch_size, lr=lr,
                         seed=seed + 1 + r, **fit_options))
    pred = gmm.assignment
    if hists and hasattr(method, "predict") and reason.startswith("no split"):
        with eval_mode(model, method):
            pred = torch.cat([method.predict(model, xb).cpu()
                              for xb, _ in data.loader(1024, shuffle=False, device=next(model.parameters()).device)])
    acc = cluster_accuracy(truth[unl], pred[unl], old) if truth is not None else None
    return CategoryDiscovery(
        model=model, method=method, estimated_k=gmm.n_components, k_history=torch.tensor(ks), stop_reason=reason,
        predictions=pred, accuracy=acc, round_accuracy=tuple(accs), frames=tuple(frames), features=tuple(feats),
        labels=truth if truth is not None else y, old_classes=old, gmm=gmm, histories=tuple(hists),
    )
