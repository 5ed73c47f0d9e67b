"""Prototypes for embeddings that no prototype method trained: k-means or a Gaussian mixture
per class, so the prototype analyses (assignments, dead/duplicate prototypes, purity, maps,
``PrototypeView``) work on any model's features or on ``wb.data.Embeddings`` from a file.

``fit_prototypes(z, labels, n_prototypes=3, method="kmeans")``:

* rows are L2-normalised first (``normalize=True``, the default), because the prototype
  analyses compare directions (cosines), as PALM's unit prototypes do; set ``normalize=False``
  to cluster the raw features;
* ``"kmeans"``: scikit-learn's ``KMeans`` (Lloyd, k-means++ starts, ``n_init`` restarts, seeded)
  within each class; the prototypes are the cluster centres (re-normalised to unit length when
  ``normalize``: the centre of unit vectors is shorter than 1, its direction is what counts);
* ``"gmm"``: scikit-learn's ``GaussianMixture`` with diagonal covariances within each class;
  the prototypes are the component means (re-normalised likewise), ``weights`` the mixing
  proportions;
* unlabelled data (or ``per_class=False``): one clustering of all rows; every prototype then
  belongs to class 0 (the analyses count dead and duplicate prototypes, purity is undefined).

A class with fewer rows than ``n_prototypes`` gets one prototype per row. The result has the
``prototypes`` / ``proto_class`` attributes a prototype method has, so it goes wherever a
trained PALM method goes for features-only work (``assignments_from``, ``prototype_maps(protos,
data=emb)``, ``wb.ood.PrototypeScore(protos)``).

``maps_from_embeddings`` is what ``prototype_maps`` does for ``Embeddings``: one map of the
L2-normalised rows (PCA / UMAP / t-SNE) with the prototypes placed in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_bool, check_choice, check_int, check_seed

__all__ = ["FittedPrototypes", "fit_prototypes", "maps_from_embeddings", "PROTOTYPE_FITS"]

PROTOTYPE_FITS = ("kmeans", "gmm")


@dataclass(frozen=True, eq=False)
class FittedPrototypes:
    """Prototypes fitted to embeddings: ``prototypes`` (K, d), ``proto_class`` (K,), the mixing
    ``weights`` (K,) within each class (cluster sizes for k-means), and how they were fitted."""

    prototypes: torch.Tensor  # (K, d)
    proto_class: torch.Tensor  # (K,)
    weights: torch.Tensor  # (K,)
    method: str
    normalized: bool
    seed: int
    inertia: float = field(default=float("nan"))  # k-means: summed within-cluster squared distance

    @property
    def n_prototypes(self) -> int:
        return int(self.prototypes.shape[0])

    def __repr__(self) -> str:
        n_cls = len(torch.unique(self.proto_class))
        return (f"FittedPrototypes({self.method}, {self.n_prototypes} prototypes over {n_cls} classes, "
                f"d={self.prototypes.shape[1]}, normalized={self.normalized}, seed={self.seed})")


def _as_rows(z) -> torch.Tensor:
    if isinstance(z, np.ndarray):
        z = torch.from_numpy(np.ascontiguousarray(z))
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"z must be an (N, d) tensor, numpy array or wb.data.Embeddings, got {type(z).__name__}")
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"z must be non-empty (N, d) features, got shape {tuple(z.shape)}")
    z = z.detach().cpu().float()
    if not bool(torch.isfinite(z).all()):
        raise ValueError("z contains NaN or inf; check the features")
    return z


def fit_prototypes(z, labels=None, *, n_prototypes: int = 3, method: str = "kmeans", normalize: bool = True,
                   per_class: bool = True, n_init: int = 4, seed: int = 0) -> FittedPrototypes:
    """k-means or GMM prototypes of the (N, d) embeddings ``z`` within each class (see the
    module docstring). ``labels`` default to ``z.labels`` for ``wb.data.Embeddings``; rows
    labelled -1 (unknown/OOD) are left out."""
    check_int(n_prototypes, "n_prototypes", min=1, hint="prototypes per class")
    check_choice(method, "prototype fit", PROTOTYPE_FITS)
    check_bool(normalize, "normalize")
    check_bool(per_class, "per_class")
    check_int(n_init, "n_init", min=1)
    check_seed(seed)
    if labels is None:
        labels = getattr(z, "labels", None)
    x = _as_rows(z)
    if normalize:
        x = F.normalize(x, dim=1)
    if labels is None or not per_class:
        y = torch.zeros(x.shape[0], dtype=torch.int64)
    else:
        y = torch.as_tensor(labels).detach().cpu().long().reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"labels has {y.shape[0]} entries for {x.shape[0]} rows; pass one label per row")
    keep = y >= 0
    if not bool(keep.any()):
        raise ValueError("every row is labelled -1 (unknown/OOD); fit prototypes on labelled in-distribution rows")
    protos, owner, weights, inertia = [], [], [], 0.0
    for c in torch.unique(y[keep]).tolist():
        rows = x[y == c].double().numpy()
        k = min(n_prototypes, rows.shape[0])
        centres, w, inert = _cluster(rows, k, method, n_init, seed)
        protos.append(centres)
        weights.append(w)
        owner += [c] * k
        inertia += inert
    p = torch.as_tensor(np.concatenate(protos), dtype=torch.float32)
    if normalize:
        p = F.normalize(p, dim=1)
    return FittedPrototypes(p, torch.tensor(owner, dtype=torch.int64), torch.as_tensor(np.concatenate(weights),
                            dtype=torch.float32), method, normalize, seed,
                            inertia if method == "kmeans" else float("nan"))


def _cluster(rows: np.ndarray, k: int, method: str, n_init: int, seed: int):
    """(centres (k, d), weights (k,), inertia) of one class's rows."""
    if method == "kmeans":
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(rows)
        w = np.bincount(km.labels_, minlength=k) / rows.shape[0]
        return km.cluster_centers_, w, float(km.inertia_)
    from sklearn.mixture import GaussianMixture

    if k == rows.shape[0]:  # a mixture needs more rows than components: one row, one prototype
        return rows.copy(), np.full(k, 1.0 / k), 0.0
    gm = GaussianMixture(n_components=k, covariance_type="diag", n_init=n_init, random_state=seed,
                         reg_covar=1e-6).fit(rows)
    return gm.means_, gm.weights_, 0.0


def maps_from_embeddings(method, emb, *, projection: str = "pca", seed: int = 0, n_prototypes: int = 3,
                         fit: str = "kmeans"):
    """``PrototypeMaps`` of ``Embeddings`` (one map, "now"): the prototypes of ``method`` (a
    trained prototype method or ``FittedPrototypes``) or, when ``method`` is None, k-means/GMM
    prototypes fitted here (``fit``, ``n_prototypes``)."""
    from .embedding import project
    from .prototypes import PrototypeMaps, _method_options, assignments_from

    if method is None:
        method = fit_prototypes(emb, n_prototypes=n_prototypes, method=fit, seed=seed)
    protos = getattr(method, "prototypes", None)
    pc = getattr(method, "proto_class", None)
    if protos is None or pc is None:
        raise TypeError(
            f"{type(method).__name__} has no prototypes/proto_class; pass a prototype method, "
            "wb.analyses.fit_prototypes(emb), or None to fit k-means prototypes"
        )
    p = torch.as_tensor(protos).detach().cpu().float()
    if p.shape[1] != emb.shape[1]:
        raise ValueError(
            f"the prototypes are {p.shape[1]}-dimensional but the embeddings are {emb.shape[1]}-dimensional; "
            "embed with the function the prototypes live in (e.g. fn=palm.embed)"
        )
    z = F.normalize(_as_rows(emb), dim=1)  # (N, d): the geometry the cosine assignments use
    y = emb.labels
    options = _method_options(method)
    a = assignments_from(z, p, pc, y, assignment="sinkhorn" if y is not None else "softmax", **options)
    proj = project(z, projection, seed=seed)
    return PrototypeMaps(
        names=("now",), coords=proj.coords[None].float(),
        proto_coords=proj.transform(F.normalize(p, dim=1))[None].float(), assignments=(a,),
        proto_class=a.proto_class, projection=projection,
    )
