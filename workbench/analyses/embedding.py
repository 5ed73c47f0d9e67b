"""Embeddings and 2-D projections of them.

``embed(model, data)`` runs ``model.features`` (or any ``fn(model, x)``) over a data set in
evaluation mode without touching the model's mode or weights. ``project(z, method=...)`` fits a
2-D map (PCA, UMAP or t-SNE) and returns a ``Projection`` that can place new points (e.g.
prototypes, OOD samples) in the same map: exactly for PCA, with UMAP's own ``transform`` for
UMAP, and by a distance-weighted average of the nearest fitted points' coordinates for t-SNE
(which has no out-of-sample map).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._device import model_device
from ..data.dataset import Dataset

PROJECTIONS = ("pca", "umap", "tsne")


@torch.no_grad()
def embed(model: nn.Module, data, *, fn=None, batch_size: int = 1024) -> torch.Tensor:
    """Features of every sample of ``data`` as an (N, d) CPU tensor.

    ``fn(model, x)`` computes them (default ``model.features(x)``). The model runs in eval mode
    and is put back in the mode it was in.
    """
    if not isinstance(data, Dataset):
        if isinstance(data, torch.Tensor):
            data = Dataset(data.float() if not data.dtype.is_floating_point else data)
        else:
            raise TypeError(f"data must be a wb.data.Dataset or a tensor, got {type(data).__name__}")
    if fn is None:
        if not hasattr(model, "features"):
            raise TypeError(
                f"{type(model).__name__} has no features(x); pass fn=lambda model, x: ... to say "
                "which representation to embed"
            )
        fn = lambda m, x: m.features(x)  # noqa: E731
    device = model_device(model)
    if data.device.type != "cpu" and data.device != device:
        raise ValueError(f"the model is on {device} but the data is on {data.device}; move one of them")
    was = model.training
    model.eval()
    try:
        out = [fn(model, x).detach().float().cpu() for x, _ in data.loader(batch_size, shuffle=False, device=device)]
    finally:
        model.train(was)
    return torch.cat(out)


def _as_numpy_2d(z, what="z") -> np.ndarray:
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().numpy()
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"{what} must be an (N, d) array, got shape {z.shape}")
    if z.shape[0] < 3:
        raise ValueError(f"{what} needs at least 3 points to project, got {z.shape[0]}")
    if not np.isfinite(z).all():
        raise ValueError(f"{what} contains NaN or inf; check the model's features")
    return z.astype(np.float32, copy=False)


@dataclass(frozen=True, eq=False)
class Projection:
    """A fitted 2-D map of an embedding. ``coords``: (N, 2) CPU tensor of the fitted points.

    ``transform(z_new)`` places new points in the same map. ``estimator`` is the fitted
    scikit-learn/umap object (for PCA also ``components``/``mean`` tensors).
    """

    coords: torch.Tensor
    method: str
    seed: int | None
    estimator: Any = field(repr=False, default=None)
    explained_variance: tuple[float, ...] | None = None
    fitted: torch.Tensor | None = field(repr=False, default=None)

    def transform(self, z) -> torch.Tensor:
        """Coordinates of new points ``z`` (M, d) in this map, as an (M, 2) tensor."""
        zn = np.asarray(z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else z, dtype=np.float32)
        if zn.ndim != 2:
            raise ValueError(f"z must be (M, d), got shape {zn.shape}")
        d = self.fitted.shape[1]
        if zn.shape[1] != d:
            raise ValueError(f"this projection was fitted on {d}-dimensional features, got {zn.shape[1]}")
        if self.method == "pca":
            out = self.estimator.transform(zn)
        elif self.method == "umap":
            out = self.estimator.transform(zn)
        else:  # tsne: inverse-distance weighting over the fitted points' nearest neighbours
            from sklearn.neighbors import NearestNeighbors

            fit = self.fitted.numpy()
            nn_ = NearestNeighbors(n_neighbors=min(10, len(fit))).fit(fit)
            dist, idx = nn_.kneighbors(zn)
            w = 1.0 / (dist + 1e-8)
            w /= w.sum(1, keepdims=True)
            out = (w[..., None] * self.coords.numpy()[idx]).sum(1)
        return torch.as_tensor(np.asarray(out, dtype=np.float32))

    def __repr__(self) -> str:
        ev = ""
        if self.explained_variance:
            ev = ", explained variance " + "/".join(f"{v:.1%}" for v in self.explained_variance)
        return f"Projection({self.method}, n={self.coords.shape[0]}, seed={self.seed}{ev})"


def project(z, method: str = "pca", *, seed: int = 0, **options) -> Projection:
    """Fit a 2-D map of the (N, d) embedding ``z``: ``"pca"``, ``"umap"`` or ``"tsne"``.

    ``options`` go to the estimator (e.g. ``n_neighbors=15`` for UMAP, ``perplexity=30`` for
    t-SNE). UMAP's first fit in a new Python process compiles numba code (10-25 s once).
    """
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; valid: {', '.join(PROJECTIONS)}")
    zn = _as_numpy_2d(z)
    if method == "pca":
        from sklearn.decomposition import PCA

        est = PCA(n_components=2, random_state=seed, **options).fit(zn)
        coords = est.transform(zn)
        return Projection(
            torch.as_tensor(coords, dtype=torch.float32), "pca", seed, est,
            tuple(float(v) for v in est.explained_variance_ratio_), torch.as_tensor(zn),
        )
    if method == "umap":
        from .._optional import require

        umap = require("umap", "UMAP projections")
        opts = dict(n_components=2, random_state=seed, n_jobs=1)
        opts.update(options)
        est = umap.UMAP(**opts)
        coords = est.fit_transform(zn)
        return Projection(torch.as_tensor(coords, dtype=torch.float32), "umap", seed, est, None, torch.as_tensor(zn))
    from sklearn.manifold import TSNE

    opts = dict(n_components=2, random_state=seed, init="pca", perplexity=min(30.0, (len(zn) - 1) / 3))
    opts.update(options)
    coords = TSNE(**opts).fit_transform(zn)
    return Projection(torch.as_tensor(coords, dtype=torch.float32), "tsne", seed, None, None, torch.as_tensor(zn))
