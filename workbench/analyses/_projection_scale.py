"""Projections at scale: which PCA solver, which rows to fit a map on, placing the rest in blocks.

``project`` (``analyses/embedding.py``) calls these so that a million 128-d vectors map without
a second copy of the data in memory:

* **PCA** — ``solver="auto"`` uses scikit-learn's ``PCA`` while the data is small (at most
  ``PCA_IN_MEMORY`` values: scikit-learn validates, i.e. copies, the whole array first) and the
  streamed, exact ``ChunkedPCA`` above that (when n ≥ 10·d and d ≤ 4096; else scikit-learn's
  randomised solver). ``"full"``, ``"randomized"`` and ``"chunked"`` force one.
* **Fit on a sample, then transform** — UMAP and t-SNE cost far more than linear time and
  memory in n. ``sample=k`` fits the map on k rows drawn without replacement (seeded) and places
  every other row with the map's out-of-sample step: UMAP's own ``transform``, t-SNE's
  inverse-distance-weighted average of the nearest fitted points (it has none of its own),
  PCA's projection. ``sample="auto"`` does this for UMAP above ``AUTO_SAMPLE_ABOVE`` rows and
  t-SNE above ``TSNE_SAMPLE_ABOVE`` rows (and warns, naming ``sample=None``). Rows of the sample
  keep their fitted coordinates. The rest are placed ``TRANSFORM_BLOCK`` rows at a time, with a
  ``tqdm`` bar when ``progress=True`` (UMAP's epochs also get a bar for the fit).

Measured here (2 cores, one thread, 128-d features in 10 blobs; umap-learn 0.5.12): UMAP
fitted on 50 000 rows in ~50 s and placed further rows at ~0.4 ms each (20 000 in 8 s), so a
million rows take ~7-8 minutes after a 50 000-row fit; the chunked PCA of 10⁶ × 128 rows fits
in ~2 s and transforms in < 0.1 s.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._checks import check_bool, check_choice, check_int

PCA_SOLVERS = ("auto", "full", "randomized", "chunked")
PCA_IN_MEMORY = 10_000_000  # values (n·d) up to which scikit-learn's PCA is used
AUTO_SAMPLE_ABOVE = 100_000  # UMAP rows above which sample="auto" fits on a sample
TSNE_SAMPLE_ABOVE = 20_000  # t-SNE rows above which sample="auto" fits on a sample
AUTO_SAMPLE_SIZE = 50_000
TRANSFORM_BLOCK = 20_000  # rows placed per block (UMAP, t-SNE)


def pca_estimator(zn: np.ndarray, solver: str, seed: int, options: dict):
    """A fitted PCA estimator (scikit-learn's or ``ChunkedPCA``) of the (N, d) array ``zn``."""
    check_choice(solver, "PCA solver", PCA_SOLVERS)
    n, d = zn.shape
    if solver == "auto":
        if n * d <= PCA_IN_MEMORY:
            solver = "sklearn"
        else:
            solver = "chunked" if (n >= 10 * d and d <= 4096) else "randomized"
    if solver == "chunked":
        from ._pca import ChunkedPCA

        if options:
            raise ValueError(
                f"the chunked PCA takes no estimator options, got {sorted(options)}; pass solver='full' "
                "to use scikit-learn's PCA with them"
            )
        return ChunkedPCA(2).fit(zn)
    from sklearn.decomposition import PCA

    opts = dict(options)
    if solver in ("full", "randomized"):
        if "svd_solver" in opts:
            raise ValueError("pass the PCA solver once: solver=..., not also svd_solver=")
        opts["svd_solver"] = solver
    return PCA(n_components=2, random_state=seed, **opts).fit(zn)


def choose_sample(n: int, method: str, sample, seed: int) -> np.ndarray | None:
    """Sorted row indices to fit the map on, or None for every row."""
    if sample is None:
        return None
    if isinstance(sample, str):
        check_choice(sample, "sample", ("auto",))
        limit = {"umap": AUTO_SAMPLE_ABOVE, "tsne": TSNE_SAMPLE_ABOVE}.get(method)
        if limit is None or n <= limit:
            return None
        size = min(AUTO_SAMPLE_SIZE, limit)
        warnings.warn(
            f"{method} on {n} rows: fitting the map on a random sample of {size} rows and placing "
            f"the rest with its transform (sample='auto'); pass sample=None to fit on every row "
            "(slow) or sample=<rows> to choose the size",
            UserWarning,
            stacklevel=3,
        )
    else:
        size = check_int(sample, "sample", min=3, hint="pass the number of rows to fit the map on, 'auto' or None")
        if size >= n:
            return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def place_rest(transform, zn: np.ndarray, coords: np.ndarray, fitted_rows: np.ndarray, *,
               progress: bool, desc: str) -> None:
    """Fill ``coords`` (N, 2) for every row not in ``fitted_rows`` with ``transform(rows)``,
    ``TRANSFORM_BLOCK`` rows at a time (a progress bar when ``progress``)."""
    check_bool(progress, "progress")
    rest = np.ones(zn.shape[0], dtype=bool)
    rest[fitted_rows] = False
    rest_idx = np.flatnonzero(rest)
    blocks = range(0, rest_idx.size, TRANSFORM_BLOCK)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(rest_idx.size), desc=desc, unit="row")
    try:
        for i in blocks:
            idx = rest_idx[i : i + TRANSFORM_BLOCK]
            coords[idx] = transform(zn[idx])
            if bar is not None:
                bar.update(idx.size)
    finally:
        if bar is not None:
            bar.close()


class KNNPlacer:
    """Places new points at the inverse-distance-weighted mean of the map coordinates of their
    ``k`` nearest fitted points (t-SNE's stand-in for an out-of-sample map)."""

    def __init__(self, fitted: np.ndarray, coords: np.ndarray, k: int = 10):
        from sklearn.neighbors import NearestNeighbors

        self.coords = np.asarray(coords)
        self.nn = NearestNeighbors(n_neighbors=min(k, len(fitted))).fit(fitted)

    def __call__(self, z_new: np.ndarray) -> np.ndarray:
        out = np.empty((z_new.shape[0], self.coords.shape[1]), dtype=np.float64)
        for i in range(0, z_new.shape[0], TRANSFORM_BLOCK):
            dist, idx = self.nn.kneighbors(z_new[i : i + TRANSFORM_BLOCK])
            w = 1.0 / (dist + 1e-8)
            w /= w.sum(1, keepdims=True)
            out[i : i + TRANSFORM_BLOCK] = (w[..., None] * self.coords[idx]).sum(1)
        return out
