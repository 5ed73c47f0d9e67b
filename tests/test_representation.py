"""Representation metrics (exact oracles), aligned projections, prototype-assignment analyses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import workbench as wb
from workbench.analyses import (
    aligned_projections,
    alignment,
    assignments_from,
    knn_accuracy,
    knn_predict,
    linear_probe_accuracy,
    neural_collapse,
    procrustes_fit,
    prototype_evolution,
    representation_metrics,
    representation_table,
    silhouette,
    uniformity,
)


# --------------------------------------------------------------------------- alignment / uniformity
def test_alignment_and_uniformity_exact():
    e = torch.eye(3)
    assert alignment(e, e) == 0.0
    assert alignment(e[:1], e[1:2]) == pytest.approx(2.0)  # ‖e1 - e2‖² = 2
    assert alignment(e[:1], e[1:2], alpha=1) == pytest.approx(math.sqrt(2))
    # two antipodal points: one pair at squared distance 4 -> log exp(-2 * 4) = -8
    assert uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(20, 4, generator=g), dim=1)
    d2 = torch.cdist(z, z).pow(2)
    iu = torch.triu_indices(20, 20, 1)
    ref = math.log(torch.exp(-2 * d2[iu[0], iu[1]]).mean().item())
    assert uniformity(z) == pytest.approx(ref, rel=1e-5)
    # subsampled pairs estimate the same quantity
    assert uniformity(z, max_pairs=150, seed=1) == pytest.approx(ref, abs=0.3)
    with pytest.raises(ValueError, match="same shape"):
        alignment(e, e[:2])


# --------------------------------------------------------------------------- kNN / linear probe
def _blobs(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    return centres[y] + 0.3 * torch.randn(n, 3, generator=g), y


def test_knn_and_linear_probe_on_separable_data():
    z, y = _blobs()
    zt, yt = _blobs(seed=1)
    assert knn_accuracy(z, y, zt, yt, k=5) == 1.0
    assert knn_accuracy(z, y, zt, yt, k=5, metric="euclidean") == 1.0
    assert linear_probe_accuracy(z, y, zt, yt) == 1.0
    # -1 test labels are skipped; numpy inputs work
    yt2 = yt.clone()
    yt2[:5] = -1
    assert knn_accuracy(z.numpy(), y.numpy(), zt.numpy(), yt2.numpy()) == 1.0
    # k=2 tie (one vote each) broken by the closer neighbour
    za = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pred = knn_predict(za, torch.tensor([0, 1]), torch.tensor([[0.9, 0.2]]), k=2)
    assert pred.tolist() == [0]
    with pytest.raises(ValueError, match="-d"):
        knn_accuracy(z, y, zt[:, :2], yt)
    with pytest.raises(ValueError, match="metric"):
        knn_accuracy(z, y, zt, yt, metric="manhattan")
    with pytest.raises(ValueError, match="2 classes"):
        linear_probe_accuracy(z, torch.zeros(60, dtype=torch.long), zt, yt)
    with pytest.raises(ValueError, match="one label per row"):
        knn_accuracy(z, y[:3], zt, yt)


# --------------------------------------------------------------------------- neural collapse
def _simplex(c):
    m = torch.eye(c) - 1.0 / c
    return m / m.norm(dim=1, keepdim=True)  # rows: centred simplex ETF in R^c


def test_neural_collapse_is_zero_at_collapse_and_matches_formula():
    c = 4
    means = _simplex(c).double()
    y = torch.arange(40) % c
    z = means[y]
    nc = neural_collapse(z, y, weight=means, bias=torch.zeros(c))
    assert nc.nc1 == pytest.approx(0.0, abs=1e-10)
    assert nc.nc2_equinorm == pytest.approx(0.0, abs=1e-10)
    assert nc.nc2_equiangular == pytest.approx(0.0, abs=1e-10)
    assert nc.nc2_maxangle == pytest.approx(0.0, abs=1e-10)
    assert nc.nc3 == pytest.approx(0.0, abs=1e-10)
    assert nc.nc4 == 0.0
    assert math.isnan(neural_collapse(z, y).nc3)
    # NC1 against a direct numpy computation on noisy features
    rng = np.random.default_rng(0)
    zn = z.numpy() + 0.1 * rng.standard_normal(z.shape)
    yn = y.numpy()
    mu = np.stack([zn[yn == k].mean(0) for k in range(c)])
    mg = mu.mean(0)
    sw = sum(((zn[yn == k] - mu[k]).T @ (zn[yn == k] - mu[k])) for k in range(c)) / len(zn)
    sb = (mu - mg).T @ (mu - mg) / c
    ref = np.trace(sw @ np.linalg.pinv(sb)) / c
    assert neural_collapse(zn, yn).nc1 == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match="weight must be"):
        neural_collapse(z, y, weight=torch.zeros(3, 4))


def test_silhouette_matches_sklearn():
    from sklearn.metrics import silhouette_score

    z, y = _blobs()
    assert silhouette(z, y) == pytest.approx(silhouette_score(z.numpy(), y.numpy(), metric="cosine"))
    assert silhouette(z, y, metric="euclidean") == pytest.approx(silhouette_score(z.numpy(), y.numpy()))


def test_representation_metrics_leave_model_untouched():
    ds = wb.data.load("digits", n=300, seed=0)
    train, test = ds.split(0.7, seed=0)
    model = wb.models.MLP(64, (32,), 10, seed=0)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    m = representation_metrics(model, train, test, classifier="model")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    d = m.to_dict()
    for key in ("knn_acc", "linear_probe_acc", "alignment", "uniformity", "silhouette", "nc1", "nc3", "nc4"):
        assert math.isfinite(d[key]), key
    assert 0 <= m.knn_acc <= 1 and m.dim == 32 and m.n_test == len(test)
    table = representation_table({"a": m, "b": m})
    assert list(table.index) == ["a", "b"] and "knn_acc" in table.columns
    with pytest.raises(ValueError, match="fc"):
        representation_metrics(torch.nn.Sequential(), train, test, fn=lambda mm, x: x.flatten(1), classifier="model")


# --------------------------------------------------------------------------- aligned projections
def test_procrustes_recovers_a_similarity_transform():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 2))
    th = 0.7
    r = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    y = 2.5 * x @ r + np.array([1.0, -3.0])
    rr, s, t = procrustes_fit(x, y)
    assert np.allclose(s * x @ rr + t, y, atol=1e-10)
    assert s == pytest.approx(2.5)
    # a reflection is found when allowed, refused otherwise
    yf = x * np.array([-1.0, 1.0])
    rr, s, t = procrustes_fit(x, yf)
    assert np.allclose(s * x @ rr + t, yf, atol=1e-10)
    rr, _, _ = procrustes_fit(x, yf, reflection=False)
    assert np.linalg.det(rr) > 0


def test_aligned_projections_undo_rotations_and_place_new_points():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(80, 5, generator=g) * torch.tensor([5.0, 2.0, 0.5, 0.2, 0.1])
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g))
    zs = {"model A": z, "model B": 3 * z @ q, "model C (3-d)": z[:, :3]}
    al = aligned_projections(zs, "pca", reference="first")
    assert al.coords.shape == (3, 80, 2) and al.names == ("model A", "model B", "model C (3-d)")
    assert torch.allclose(al.coords[1], al.coords[0], atol=1e-3)  # rotated + scaled copy aligns exactly
    # transform of the fitted points reproduces their aligned coordinates
    assert torch.allclose(al.transform(1, zs["model B"]), al.coords[1], atol=1e-3)
    # chain (default) over snapshots-like lists; shared projection needs equal dims
    al2 = aligned_projections([z, z @ q, 2 * z @ q], "pca")
    assert torch.allclose(al2.coords[0], al2.coords[2], atol=1e-3)
    sh = aligned_projections([z, z + 0.01], "pca", align="shared")
    assert torch.allclose(sh.coords[-1], sh.projections[-1].coords, atol=1e-4)  # fitted on the reference
    with pytest.raises(ValueError, match="same dimension"):
        aligned_projections(zs, "pca", align="shared")
    with pytest.raises(ValueError, match="same 80 points"):
        aligned_projections([z, z[:50]])
    with pytest.raises(ValueError, match="valid"):
        aligned_projections([z, z], "mds")
    with pytest.raises(ValueError, match="valid"):
        aligned_projections([z, z], align="affine")
    with pytest.raises(TypeError, match="SnapshotSeries"):
        aligned_projections(z)


def test_aligned_projections_from_snapshots_and_tsne():
    ds = wb.data.load("gaussians8", n=120, seed=0)
    model = wb.models.MLP(2, (8,), 8, seed=0)
    snaps = wb.training.Snapshots(every=5, embed=ds)
    h = wb.fit(model, wb.methods.CrossEntropy(), ds, steps=10, batch_size=60, progress=False, callbacks=[snaps])
    al = aligned_projections(h.snapshots, "pca")
    assert al.names == ("step 0", "step 5", "step 10") and al.coords.shape == (3, 120, 2)
    assert al.transform(0, h.snapshots.embeddings[0][:4]).shape == (4, 2)
    # t-SNE (no out-of-sample map: new points are interpolated from their neighbours)
    zs = list(h.snapshots.embeddings[1:])
    ts = aligned_projections([z[:40] for z in zs], "tsne", perplexity=8.0, max_iter=250)
    assert ts.coords.shape == (2, 40, 2)
    assert torch.allclose(ts.transform(1, zs[1][:3]), ts.coords[1][:3], atol=1e-3)


# --------------------------------------------------------------------------- prototypes
def test_assignments_from_a_hand_made_case():
    # 2 classes x 2 prototypes in 2-D; prototype 2 (class 0) duplicates prototype 0; prototype 3
    # (class 1) points away from every sample (dead)
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.01], [-1.0, -1.0]])
    pclass = torch.tensor([0, 1, 0, 1])
    z = torch.tensor([[1.0, 0.1], [0.9, -0.1], [0.1, 1.0], [0.0, 1.0], [0.8, 0.3]])
    y = torch.tensor([0, 0, 1, 1, 1])  # the last sample sits by class 0's prototypes: impure
    a = assignments_from(z, protos, pclass, y, top_k=2)
    assert torch.allclose(a.weights.sum(1), torch.ones(5))
    assert torch.all(a.weights[:, [1, 3]][:2] == 0) and torch.all(a.weights[:, [0, 2]][2:] == 0)
    assert a.counts.sum() == 5 and a.counts[3] == 0
    assert a.dead.tolist() == [False, False, False, True] and a.n_dead == 1
    assert a.duplicate_pairs[0][:2] == (0, 2) and a.n_duplicates == 1
    # purity from the unmasked nearest prototype: sample 4 (class 1) is nearest to a class-0 prototype
    near = a.nearest.tolist()
    hits = {j: [y[i].item() == pclass[j].item() for i in range(5) if near[i] == j] for j in range(4)}
    for j in range(4):
        if hits[j]:
            assert a.purity[j].item() == pytest.approx(sum(hits[j]) / len(hits[j]))
        else:
            assert math.isnan(a.purity[j].item())
    assert a.purity[1] == 1.0 and a.purity.nanmean() < 1.0
    assert a.redundancy[0] == pytest.approx(float(F.normalize(protos[2], dim=0)[0]), abs=1e-4)
    assert a.top_points(0, 2).shape == (2,)
    assert list(a.table().columns) == ["class", "occupancy", "count", "purity", "redundancy", "dead"]
    soft = assignments_from(z, protos, pclass, None, assignment="softmax")
    assert torch.allclose(soft.weights, (F.normalize(z, dim=1) @ F.normalize(protos, dim=1).T / 0.1).softmax(1))
    with pytest.raises(ValueError, match="needs labels"):
        assignments_from(z, protos, pclass, None)
    with pytest.raises(ValueError, match="valid"):
        assignments_from(z, protos, pclass, y, assignment="hard")


def test_prototype_evolution_over_a_fit():
    ds = wb.data.load("gaussians8", n=160, seed=0)
    model = wb.models.MLP(2, (16,), 8, seed=0)
    m = wb.methods.PALM(n_classes=8, n_prototypes=2, top_k=2, dim=8, feature_dim=16, momentum=0.9)
    snaps = wb.training.Snapshots(every=4, embed=ds, embed_fn=m.embed)
    h = wb.fit(model, m, ds, steps=8, batch_size=80, progress=False, callbacks=[snaps])
    evo = prototype_evolution(h.snapshots, m, ds)
    assert evo.steps.tolist() == [0, 4, 8]
    assert evo.counts.shape == (3, 16) and (evo.counts.sum(1) == 160).all()
    assert torch.allclose(evo.prototypes[-1], m.prototypes)
    assert len(evo.table()) == 3
    now = wb.analyses.prototype_assignments(m, model, ds)
    assert torch.allclose(now.weights, evo.per_snapshot[-1].weights, atol=1e-5)
    with pytest.raises(ValueError, match="labels were given"):
        prototype_evolution(h.snapshots, m, labels=ds.y[:5])
    with pytest.raises(TypeError, match="prototype method"):
        prototype_evolution(h.snapshots, wb.methods.CrossEntropy(), ds)


@pytest.mark.slow
def test_aligned_umap_jointly_fits_all_items():
    """umap's AlignedUMAP (slow: numba compiles on the first fit in a process)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(120, 6, generator=g)
    al = aligned_projections([z, z + 0.05 * torch.randn(120, 6, generator=g)], "aligned_umap", n_neighbors=10)
    assert al.coords.shape == (2, 120, 2) and al.align == "aligned_umap"
    assert al.transform(1, z[:5]).shape == (5, 2)
