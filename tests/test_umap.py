"""The UMAP path in the default run: ``project(..., "umap")``, ``Projection.transform`` of new
points and ``aligned_projections(..., "aligned_umap")``.

UMAP's first fit in a process compiles numba code (10-25 s; conftest sets NUMBA_CACHE_DIR so
later processes reuse it), so every UMAP call of the suite lives in this one module, on one
small clustered embedding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import umap  # noqa: F401  (a core dependency: imported, never skipped)

from workbench.analyses import aligned_projections, project

N_PER, D, K = 40, 8, 3

# AlignedUMAP fits with our random_state and says so for every item
pytestmark = pytest.mark.filterwarnings("ignore:n_jobs value 1 overridden:UserWarning")


def _blobs(n_per=N_PER, seed=0):
    """K well-separated Gaussian clusters in D dimensions: (K·n_per, D) points and their labels."""
    g = torch.Generator().manual_seed(seed)
    centres = 6.0 * torch.eye(K, D)
    y = torch.arange(K).repeat_interleave(n_per)
    return centres[y] + 0.5 * torch.randn(K * n_per, D, generator=g), y


def _nearest_centroid_acc(coords: torch.Tensor, y: torch.Tensor, ref_coords: torch.Tensor, ref_y: torch.Tensor) -> float:
    """Share of points whose nearest class centroid (of the reference map) is their own class."""
    cents = torch.stack([ref_coords[ref_y == c].mean(0) for c in range(K)])
    return float((torch.cdist(coords, cents).argmin(1) == y).float().mean())


@pytest.fixture(scope="module")
def fitted():
    z, y = _blobs()
    return z, y, project(z, "umap", seed=0, n_neighbors=10)


def test_umap_fit_keeps_clusters_and_is_seeded(fitted):
    z, y, proj = fitted
    assert proj.method == "umap" and proj.coords.shape == (K * N_PER, 2)
    assert torch.isfinite(proj.coords).all()
    # the clusters stay separate in the map: each point is nearest its own cluster's centroid
    assert _nearest_centroid_acc(proj.coords, y, proj.coords, y) == 1.0
    spread = float(proj.coords.std(0).mean())
    within = float(np.mean([proj.coords[y == c].std(0).mean() for c in range(K)]))
    assert within < 0.5 * spread
    again = project(z, "umap", seed=0, n_neighbors=10)  # numba is compiled by now: fast
    assert torch.equal(again.coords, proj.coords)


def test_umap_transform_places_new_points_in_their_cluster(fitted):
    _, y, proj = fitted
    z_new, y_new = _blobs(n_per=10, seed=1)
    placed = proj.transform(z_new)
    assert placed.shape == (K * 10, 2) and torch.isfinite(placed).all()
    assert _nearest_centroid_acc(placed, y_new, proj.coords, y) == 1.0
    with pytest.raises(ValueError, match="fitted on 8-dimensional features"):
        proj.transform(z_new[:, :3])


def test_aligned_umap_maps_snapshots_consistently():
    z, y = _blobs()
    g = torch.Generator().manual_seed(2)
    later = z + 0.05 * torch.randn(z.shape, generator=g)        # a "later snapshot" of the same points
    al = aligned_projections({"early": z, "late": later}, "aligned_umap", n_neighbors=10, seed=0)
    assert al.coords.shape == (2, K * N_PER, 2) and al.names == ("early", "late")
    assert al.align == "aligned_umap" and torch.isfinite(al.coords).all()
    for i in range(2):
        assert _nearest_centroid_acc(al.coords[i], y, al.coords[i], y) == 1.0
    # aligned: the same point lands close to itself in both maps, relative to the map's size
    move = float((al.coords[1] - al.coords[0]).norm(dim=1).median())
    size = float(torch.cdist(al.coords[0], al.coords[0]).median())
    assert move < 0.25 * size
    # new points of the late snapshot's space are placed by their fitted neighbours
    z_new, y_new = _blobs(n_per=5, seed=3)
    placed = al.transform(1, z_new)
    assert placed.shape == (K * 5, 2)
    assert _nearest_centroid_acc(placed, y_new, al.coords[1], y) == 1.0


def test_umap_fitted_on_a_sample_places_the_rest_with_transform(fitted):
    """The large-data mode (issue 14): fit on ``sample`` rows, place the others with UMAP's own
    transform, in blocks; the sample's rows keep their fitted coordinates."""
    z, y, _ = fitted
    proj = project(z, "umap", seed=0, n_neighbors=10, sample=60, progress=False)
    idx = proj.sample_index
    assert idx.shape == (60,) and torch.equal(idx, idx.sort().values) and idx.unique().numel() == 60
    assert torch.equal(proj.sample_index, project(z, "umap", seed=0, n_neighbors=10, sample=60).sample_index)
    rest = torch.ones(len(z), dtype=torch.bool)
    rest[idx] = False
    # fitted rows: UMAP's own embedding of the sample; the rest: its transform of those rows
    assert torch.allclose(proj.coords[idx], torch.as_tensor(proj.estimator.embedding_, dtype=torch.float32))
    assert _nearest_centroid_acc(proj.coords[rest], y[rest], proj.coords[idx], y[idx]) == 1.0
    assert "fitted on a sample of 60" in repr(proj)
