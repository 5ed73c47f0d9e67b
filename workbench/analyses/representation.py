"""Representation metrics: how good and how shaped an embedding is.

Every function takes embeddings (tensors or arrays, (N, d)) and labels, so any model's
features, a method's head output or distilled features can be compared; ``representation_metrics``
runs them all for a model over a (train, test) pair.

* ``alignment(z1, z2, alpha=2)``: Wang & Isola (ICML 2020), E_(x, x+) ‖f(x) - f(x+)‖^α over
  positive pairs (two augmented views of one sample), on L2-normalised embeddings. Lower =
  views land closer together.
* ``uniformity(z, t=2)``: Wang & Isola, log E_(x, y) exp(-t‖f(x) - f(y)‖²) over pairs of
  distinct samples (a random subset of pairs when there are many), on L2-normalised embeddings.
  Lower (more negative) = more uniformly spread on the sphere; the minimum for d-dim unit
  vectors at t = 2 is about -4 as d grows.
* ``knn_accuracy``: a k-nearest-neighbour classifier (cosine similarity by default, majority vote
  with ties broken by the summed similarity) fitted on a train embedding, scored on a test one.
* ``linear_probe_accuracy``: a multinomial logistic regression (scikit-learn, L-BFGS) on
  standardised train embeddings, scored on the test embeddings.
* ``neural_collapse`` (Papyan, Han & Donoho, PNAS 2020): with class means μ_c, global mean μ_G,
  within-class covariance Σ_W and between-class covariance Σ_B of the (train) features:
  NC1 = tr(Σ_W Σ_B⁺) / C (variability collapse; → 0);
  NC2 = equinorm (coefficient of variation of ‖μ_c - μ_G‖), equiangularity (std of the cosines
  between centred class means, c ≠ c') and max-angle (mean |cos + 1/(C-1)|): all → 0 for a
  simplex ETF; NC3 = ‖W/‖W‖_F - M/‖M‖_F‖²_F between the classifier's rows and the centred
  class means (self-duality; needs a classifier); NC4 = fraction of samples where the
  classifier's prediction differs from the nearest class mean's (needs a classifier).
* ``silhouette``: scikit-learn's silhouette score of the labels in the embedding (cosine by
  default; a seeded subsample of at most ``max_points`` points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_int, check_number, check_seed

__all__ = [
    "alignment", "uniformity", "knn_accuracy", "knn_predict", "linear_probe_accuracy",
    "neural_collapse", "NeuralCollapse", "silhouette", "representation_metrics",
    "RepresentationMetrics", "representation_table",
]


def _t(z, what="z", ndim=2) -> torch.Tensor:
    if isinstance(z, np.ndarray):
        z = torch.from_numpy(np.ascontiguousarray(z))
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{what} must be a torch tensor or numpy array, got {type(z).__name__}")
    if z.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} axes, got shape {tuple(z.shape)}")
    if z.shape[0] == 0:
        raise ValueError(f"{what} is empty; pass at least one row")
    return z.detach().cpu()


def _labels(y, n, what="y") -> torch.Tensor:
    y = _t(y, what, ndim=1)
    if y.dtype == torch.bool or y.dtype.is_complex:
        raise TypeError(f"{what} must hold integer class labels, got {y.dtype}")
    if y.shape[0] != n:
        raise ValueError(f"{what} has {y.shape[0]} labels for {n} embeddings; pass one label per row")
    if y.dtype.is_floating_point:
        if not torch.equal(y, y.round()):
            raise TypeError(f"{what} must hold integer class labels")
    return y.long()


def _float(z) -> torch.Tensor:
    z = z.float()
    if not torch.isfinite(z).all():
        raise ValueError("the embedding contains NaN or inf; check the model's features")
    return z


# --------------------------------------------------------------------------- alignment/uniformity
def alignment(z1, z2, *, alpha: float = 2.0, normalize: bool = True) -> float:
    """Wang & Isola's alignment: mean ‖z1_i - z2_i‖^α over positive pairs (rows of z1 and z2)."""
    alpha = check_number(alpha, "alpha", min=0, min_open=True, hint="the exponent α, 2 in the paper")
    a, b = _float(_t(z1, "z1")), _float(_t(z2, "z2"))
    if a.shape != b.shape:
        raise ValueError(f"z1 and z2 must have the same shape (row i of each is a positive pair), got {tuple(a.shape)} and {tuple(b.shape)}")
    if normalize:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z, *, t: float = 2.0, normalize: bool = True, max_pairs: int = 200_000, seed: int = 0) -> float:
    """Wang & Isola's uniformity: log mean over distinct pairs of exp(-t‖z_i - z_j‖²).

    All pairs when there are at most ``max_pairs``, else ``max_pairs`` random pairs (seeded).
    """
    t = check_number(t, "t", min=0, min_open=True, hint="the paper's t, 2 by default")
    check_int(max_pairs, "max_pairs", min=1)
    check_seed(seed)
    a = _float(_t(z))
    n = a.shape[0]
    if n < 2:
        raise ValueError("uniformity needs at least 2 embeddings")
    if normalize:
        a = F.normalize(a, dim=1)
    n_pairs = n * (n - 1) // 2
    if n_pairs <= max_pairs:
        i, j = torch.triu_indices(n, n, offset=1)
    else:
        g = torch.Generator().manual_seed(seed)
        i = torch.randint(0, n, (max_pairs,), generator=g)
        j = (i + torch.randint(1, n, (max_pairs,), generator=g)) % n  # j != i
    sq = (a[i] - a[j]).pow(2).sum(1)
    return float(torch.logsumexp(-t * sq.double(), 0) - math.log(sq.numel()))


# --------------------------------------------------------------------------- classifiers on z
def knn_predict(z_train, y_train, z_query, *, k: int = 10, metric: str = "cosine", batch_size: int = 2048) -> torch.Tensor:
    """Labels predicted for ``z_query`` by a k-NN vote over (``z_train``, ``y_train``).

    Training rows labelled -1 (OOD/unknown) are left out of the vote. ``k`` must not exceed the
    number of labelled training rows.
    """
    a = _float(_t(z_train, "z_train"))
    q = _float(_t(z_query, "z_query"))
    ya = _labels(y_train, a.shape[0], "y_train")
    if a.shape[1] != q.shape[1]:
        raise ValueError(f"z_train is {a.shape[1]}-d but z_query is {q.shape[1]}-d")
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    check_int(batch_size, "batch_size", min=1)
    known = ya >= 0
    if not bool(known.all()):
        a, ya = a[known], ya[known]
    if a.shape[0] == 0:
        raise ValueError("y_train has no labelled rows (all -1); the k-NN vote needs class labels")
    if k > a.shape[0]:
        raise ValueError(
            f"k={k} neighbours but only {a.shape[0]} labelled training rows; pass k <= {a.shape[0]}"
        )
    classes, ya_idx = torch.unique(ya, return_inverse=True)
    n_cls = classes.numel()
    if metric == "cosine":
        a, q = F.normalize(a, dim=1), F.normalize(q, dim=1)
    out = []
    for s in range(0, q.shape[0], batch_size):
        qb = q[s : s + batch_size]
        sim = qb @ a.T if metric == "cosine" else -torch.cdist(qb, a)
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(qb.shape[0], n_cls).scatter_add_(1, ya_idx[idx], torch.ones_like(top))
        # tie-break by the summed similarity (scaled far below one vote)
        span = (top.max() - top.min()).clamp_min(1e-12)
        tie = torch.zeros(qb.shape[0], n_cls).scatter_add_(1, ya_idx[idx], (top - top.min()) / span)
        out.append(classes[(votes + tie / (k + 1)).argmax(1)])
    return torch.cat(out)


def knn_accuracy(z_train, y_train, z_test, y_test, *, k: int = 10, metric: str = "cosine") -> float:
    """Accuracy of a k-NN classifier (cosine by default) fitted on train, scored on test.

    Test samples labelled -1 (OOD/unknown) are skipped.
    """
    pred = knn_predict(z_train, y_train, z_test, k=k, metric=metric)
    yt = _labels(y_test, pred.shape[0], "y_test")
    keep = yt >= 0
    if not bool(keep.any()):
        raise ValueError("y_test has no labelled samples (all -1)")
    return float((pred[keep] == yt[keep]).float().mean())


def linear_probe_accuracy(z_train, y_train, z_test, y_test, *, C: float = 1.0, max_iter: int = 1000,
                          standardize: bool = True, seed: int = 0) -> float:
    """Test accuracy of a logistic-regression probe trained on (``z_train``, ``y_train``).

    ``C``: inverse L2 regularisation strength (scikit-learn's). Features are standardised with
    the train statistics when ``standardize``. Samples labelled -1 are skipped.
    """
    from sklearn.linear_model import LogisticRegression

    C = check_number(C, "C", min=0, min_open=True, hint="scikit-learn's inverse regularisation strength, e.g. 1.0")
    check_int(max_iter, "max_iter", min=1)
    a = _float(_t(z_train, "z_train")).double().numpy()
    b = _float(_t(z_test, "z_test")).double().numpy()
    ya = _labels(y_train, a.shape[0], "y_train").numpy()
    yb = _labels(y_test, b.shape[0], "y_test").numpy()
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"z_train is {a.shape[1]}-d but z_test is {b.shape[1]}-d")
    ka, kb = ya >= 0, yb >= 0
    a, ya, b, yb = a[ka], ya[ka], b[kb], yb[kb]
    if len(np.unique(ya)) < 2:
        raise ValueError("a linear probe needs at least 2 classes in y_train")
    if len(yb) == 0:
        raise ValueError("y_test has no labelled samples (all -1)")
    if standardize:
        mu, sd = a.mean(0), a.std(0)
        sd[sd < 1e-12] = 1.0
        a, b = (a - mu) / sd, (b - mu) / sd
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny problems
        clf.fit(a, ya)
    return float((clf.predict(b) == yb).mean())


# --------------------------------------------------------------------------- neural collapse
@dataclass(frozen=True)
class NeuralCollapse:
    """Neural-collapse statistics (all → 0 at collapse). NC3/NC4 are NaN without a classifier."""

    nc1: float
    nc2_equinorm: float
    nc2_equiangular: float
    nc2_maxangle: float
    nc3: float
    nc4: float
    n_classes: int

    def __repr__(self) -> str:
        return (
            f"NeuralCollapse(NC1={self.nc1:.4g}, NC2 equinorm={self.nc2_equinorm:.3g}, "
            f"equiangular={self.nc2_equiangular:.3g}, max-angle={self.nc2_maxangle:.3g}, "
            f"NC3={self.nc3:.3g}, NC4={self.nc4:.3g}, classes={self.n_classes})"
        )


def neural_collapse(z, y, *, weight=None, bias=None) -> NeuralCollapse:
    """NC1-NC4 of features ``z`` (N, d) with labels ``y`` (N,); -1 labels are skipped.

    ``weight`` (C, d) and ``bias`` (C,): the last linear classifier (e.g. ``model.fc.weight``),
    needed for NC3 and NC4 (NaN without). Its rows must follow the sorted class labels.
    """
    h = _float(_t(z)).double()
    yl = _labels(y, h.shape[0])
    keep = yl >= 0
    h, yl = h[keep], yl[keep]
    classes, inv = torch.unique(yl, return_inverse=True)
    c = classes.numel()
    if c < 2:
        raise ValueError("neural collapse needs at least 2 classes")
    n, d = h.shape
    counts = torch.bincount(inv, minlength=c).double()
    means = torch.zeros(c, d, dtype=h.dtype).index_add_(0, inv, h) / counts[:, None]  # (C, d)
    mu_g = means.mean(0)  # balanced global mean (Papyan et al.)
    centred_h = h - means[inv]
    sigma_w = centred_h.T @ centred_h / n  # (d, d)
    m = means - mu_g  # (C, d)
    sigma_b = m.T @ m / c
    nc1 = float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, hermitian=True)) / c)
    norms = m.norm(dim=1)
    equinorm = float(norms.std(unbiased=False) / norms.mean().clamp_min(1e-12))
    mn = m / norms.clamp_min(1e-12)[:, None]
    cos = mn @ mn.T
    off = ~torch.eye(c, dtype=torch.bool)
    equiangular = float(cos[off].std(unbiased=False))
    maxangle = float((cos[off] + 1.0 / (c - 1)).abs().mean())
    nc3 = nc4 = float("nan")
    if weight is not None:
        w = _t(weight, "weight").double()
        if w.shape != (c, d):
            raise ValueError(f"weight must be (classes={c}, d={d}) for these features, got {tuple(w.shape)}")
        nc3 = float((w / w.norm() - m / m.norm()).pow(2).sum())
        logits = h @ w.T
        if bias is not None:
            b = _t(bias, "bias", ndim=1).double()
            if b.shape != (c,):
                raise ValueError(f"bias must be ({c},) (one per class), got {tuple(b.shape)}")
            logits = logits + b
        ncc = torch.cdist(h, means).argmin(1)
        nc4 = float((logits.argmax(1) != ncc).double().mean())
    return NeuralCollapse(nc1, equinorm, equiangular, maxangle, nc3, nc4, c)


def silhouette(z, y, *, metric: str = "cosine", max_points: int = 3000, seed: int = 0) -> float:
    """Silhouette score of the labels in the embedding (scikit-learn), -1 labels skipped."""
    from sklearn.metrics import silhouette_score

    check_int(max_points, "max_points", min=3, hint="the size of the seeded subsample")
    check_seed(seed)
    a = _float(_t(z)).numpy()
    yl = _labels(y, a.shape[0]).numpy()
    keep = yl >= 0
    a, yl = a[keep], yl[keep]
    if len(np.unique(yl)) < 2:
        raise ValueError("silhouette needs at least 2 classes")
    size = min(max_points, len(a)) if len(a) > max_points else None
    return float(silhouette_score(a, yl, metric=metric, sample_size=size, random_state=seed))


# --------------------------------------------------------------------------- one call for a model
@dataclass(frozen=True)
class RepresentationMetrics:
    """All metrics of one embedding (floats; NaN where not applicable)."""

    knn_acc: float
    linear_probe_acc: float
    alignment: float
    uniformity: float
    silhouette: float
    nc1: float
    nc2_equinorm: float
    nc2_equiangular: float
    nc3: float
    nc4: float
    dim: int
    n_train: int
    n_test: int

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __repr__(self) -> str:
        return (
            f"RepresentationMetrics(kNN={self.knn_acc:.3f}, linear probe={self.linear_probe_acc:.3f}, "
            f"align={self.alignment:.3f}, unif={self.uniformity:.3f}, silhouette={self.silhouette:.3f}, "
            f"NC1={self.nc1:.3g}, dim={self.dim})"
        )


def representation_metrics(
    model,
    train,
    test,
    *,
    fn=None,
    augment="auto",
    k: int = 10,
    classifier=None,
    seed: int = 0,
    batch_size: int = 1024,
) -> RepresentationMetrics:
    """Every metric for ``model``'s embedding, fitted on ``train`` and scored on ``test``.

    ``fn(model, x)``: the embedding (default ``model.features``; e.g. ``method.embed`` for a
    contrastive head). kNN / linear probe: fitted on train, scored on test; alignment: two
    augmented views (``augment``, see ``wb.methods.augment``; drawn from a generator seeded by
    ``seed``) of the test inputs; uniformity and silhouette on test; NC1-NC4 on train.
    ``classifier``: ``"model"`` to use ``model.fc`` as the linear classifier for NC3/NC4 (only
    meaningful when ``fn`` is the features that ``fc`` reads), ``(weight, bias)``, or None.
    The model is not changed (eval mode inside, restored).

    Precomputed ``wb.data.Embeddings`` for ``train`` and ``test`` need no model (pass
    ``model=None``): every metric but alignment (which embeds augmented inputs: NaN) and
    NC3/NC4 unless ``classifier=(weight, bias)`` is given.
    """
    from ..data.dataset import Dataset
    from ..data.embeddings import Embeddings
    from ..methods.augment import get_augmentation
    from .embedding import embed

    if isinstance(train, Embeddings) and isinstance(test, Embeddings):
        return _metrics_of_embeddings(model, train, test, k=k, classifier=classifier, seed=seed)
    for what, d in (("train", train), ("test", test)):
        if not isinstance(d, Dataset):
            raise TypeError(
                f"{what} must be a wb.data.Dataset, got {type(d).__name__}; for precomputed embeddings "
                "call knn_accuracy, linear_probe_accuracy, ... directly"
            )
    if train.y is None or test.y is None:
        raise ValueError("representation_metrics needs labelled train and test sets")
    z_tr = embed(model, train, fn=fn, batch_size=batch_size)
    z_te = embed(model, test, fn=fn, batch_size=batch_size)
    aug = get_augmentation(augment)
    g = torch.Generator().manual_seed(seed)
    xs = test.x.cpu()
    v1 = test.__class__(aug(xs, generator=g), test.y.cpu(), kind=test.kind)
    v2 = test.__class__(aug(xs, generator=g), test.y.cpu(), kind=test.kind)
    z1 = embed(model, v1, fn=fn, batch_size=batch_size)
    z2 = embed(model, v2, fn=fn, batch_size=batch_size)
    return _metrics(z_tr, train.y, z_te, test.y, alignment(z1, z2), *_classifier(model, classifier), k=k, seed=seed)


def _classifier(model, classifier):
    """(weight, bias) of the linear classifier for NC3/NC4, or (None, None)."""
    if classifier == "model":
        fc = getattr(model, "fc", None)
        head = getattr(model, "wrap_config", {}).get("head") if fc is None else None
        if isinstance(head, str):  # a wrapped network: its head, when that is a linear layer
            fc = model.module.get_submodule(head)
        if not isinstance(getattr(fc, "weight", None), torch.Tensor):
            raise ValueError(f"{type(model).__name__} has no fc layer; pass classifier=(weight, bias) or None")
        return fc.weight.detach(), fc.bias.detach() if fc.bias is not None else None
    if classifier is not None:
        if not isinstance(classifier, (tuple, list)) or len(classifier) != 2:
            raise ValueError(f"classifier must be 'model', a pair (weight, bias) or None, got {classifier!r}")
        return classifier[0], classifier[1]
    return None, None


def _metrics_of_embeddings(model, train, test, *, k, classifier, seed) -> RepresentationMetrics:
    if train.labels is None or test.labels is None:
        raise ValueError("representation_metrics needs labelled train and test Embeddings")
    weight, bias = _classifier(model, classifier) if classifier is not None else (None, None)
    return _metrics(train, train.labels, test, test.labels, float("nan"), weight, bias, k=k, seed=seed)


def _metrics(z_tr, y_tr, z_te, y_te, align: float, weight, bias, *, k, seed) -> RepresentationMetrics:
    nc = neural_collapse(z_tr, y_tr, weight=weight, bias=bias)
    return RepresentationMetrics(
        knn_acc=knn_accuracy(z_tr, y_tr, z_te, y_te, k=k),
        linear_probe_acc=linear_probe_accuracy(z_tr, y_tr, z_te, y_te, seed=seed),
        alignment=align,
        uniformity=uniformity(z_te, seed=seed),
        silhouette=silhouette(z_te, y_te, seed=seed),
        nc1=nc.nc1,
        nc2_equinorm=nc.nc2_equinorm,
        nc2_equiangular=nc.nc2_equiangular,
        nc3=nc.nc3,
        nc4=nc.nc4,
        dim=int(z_tr.shape[1]),
        n_train=int(z_tr.shape[0]),
        n_test=int(z_te.shape[0]),
    )


def representation_table(results: dict):
    """A pandas DataFrame with one row per named ``RepresentationMetrics`` (or dict)."""
    import pandas as pd

    if not isinstance(results, dict):
        raise TypeError(f"representation_table takes a dict name -> RepresentationMetrics, got {type(results).__name__}")
    rows = {name: (r.to_dict() if hasattr(r, "to_dict") else dict(r)) for name, r in results.items()}
    return pd.DataFrame.from_dict(rows, orient="index")
