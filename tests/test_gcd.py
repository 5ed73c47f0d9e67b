"""Generalised category discovery: Hungarian accuracy (v1/v2/v2b), the NIW split/merge mixture,
ProtoGCD's terms, the EM recipe and the film of the mixture.

Golden values: ``/work/shared/references/prototypes_ii.md`` §4-§6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.analyses import cluster_accuracy, fit_ss_gmm, log_split_ratio, niw_log_marginal
from workbench.analyses.ss_gmm import NIWPrior
from workbench.methods.gpc import cluster_density
from workbench.methods.protogcd import dapl_targets, entropy_regulariser, separation_loss


# ----------------------------------------------------------------------------- the metric
def test_cluster_accuracy_conventions_golden():
    t, p = [0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 1, 1]
    v2 = cluster_accuracy(t, p, [0, 1])
    assert (round(v2.all, 6), v2.old, v2.new) == (0.666667, 0.5, 1.0) and v2.convention == "v2"
    v1 = cluster_accuracy(t, p, [0, 1], convention="v1")
    assert (round(v1.all, 6), v1.old, v1.new) == (0.833333, 0.75, 1.0)
    v2b = cluster_accuracy(t, p, [0, 1], convention="v2b")
    assert (round(v2b.all, 6), round(v2b.old, 6), v2b.new) == (0.555556, 0.333333, 1.0)
    renamed = cluster_accuracy(t, [5, 5, 3, 3, 3, 3], [0, 1])
    assert (renamed.all, renamed.old, renamed.new) == (v2.all, v2.old, v2.new)
    assert "v2: All 0.6667" in repr(v2)


def test_cluster_accuracy_penalises_extra_clusters_and_checks_input():
    t = [0, 0, 1, 1]
    assert cluster_accuracy(t, [0, 1, 2, 3], [0]).all == 0.5  # two clusters stay unmatched
    with pytest.raises(ValueError, match="valid"):
        cluster_accuracy(t, t, [0], convention="v3")
    with pytest.raises(TypeError, match="old_classes"):
        cluster_accuracy(t, t, 0)
    with pytest.raises(ValueError, match="same length"):
        cluster_accuracy(t, [0, 1], [0])
    with pytest.raises(TypeError, match="integer"):
        cluster_accuracy([0.5, 1.0], [0, 1], [0])


# ----------------------------------------------------------------------------- the NIW split rule
OFFSETS = torch.tensor([[-.3, -.2], [.2, -.3], [.3, .1], [-.1, .3], [0, 0], [.1, -.1], [-.2, .2], [.25, .25]],
                       dtype=torch.float64)


def _prior(x):
    return NIWPrior(x.mean(0), 0.005 * torch.eye(2, dtype=torch.float64), 1e-4, 3.0)


def test_niw_marginal_and_split_ratio_golden():
    x1, x2 = OFFSETS, OFFSETS + torch.tensor([3.0, 0.0], dtype=torch.float64)
    pr = _prior(torch.cat([x1, x2]))
    assert math.isclose(niw_log_marginal(x1, pr), -17.211509, abs_tol=1e-5)
    assert math.isclose(niw_log_marginal(x2, pr), -17.211509, abs_tol=1e-5)
    assert math.isclose(niw_log_marginal(torch.cat([x1, x2]), pr), -54.255852, abs_tol=1e-5)
    assert math.isclose(log_split_ratio(x1, x2, pr), 8.983885, abs_tol=1e-5)  # split
    x2 = OFFSETS + torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert math.isclose(log_split_ratio(x1, x2, _prior(torch.cat([x1, x2]))), -10.579708, abs_tol=1e-5)


def _ring(seed=0):
    """The notes' ring: 8 Gaussians (radius 4, σ 0.5, 150 each); old = 4 of them, half labelled."""
    g = np.random.default_rng(seed)
    ang = np.arange(8) * 2 * np.pi / 8
    x = np.concatenate([4 * np.stack([np.cos(a), np.sin(a)]) + 0.5 * g.standard_normal((150, 2)) for a in ang])
    cls = np.repeat(np.arange(8), 150)
    y = np.where((cls < 4) & (g.random(len(cls)) < 0.5), cls, -1)
    return torch.tensor(x), torch.tensor(cls), torch.tensor(y)


@pytest.mark.parametrize("k_init", [6, 12, 16])
def test_ring_settles_on_the_true_count_from_below_and_above(k_init):
    x, cls, y = _ring()
    fit = fit_ss_gmm(x, y, k_init=k_init)
    assert fit.n_components == 8 and fit.stop_reason.startswith("no split")
    assert int(fit.k_history[0]) == k_init and len(fit.frames) == 2 * (len(fit.k_history) - 1)
    u = y < 0
    assert cluster_accuracy(cls[u], fit.assignment[u], range(4)).all > 0.99


def _mixture(seed):
    """Old: a big cluster (1500) and two others (150); new: two small close clusters (80 each,
    2.4 apart) and one more (150); σ = 0.5. k-means with the true K = 6 tends to split the big
    cluster and merge the two small ones."""
    g = np.random.default_rng(seed)
    centres = np.array([[0, 0], [6, 0], [0, 6], [4, 4], [6.4, 4], [8, 8]], float)
    ns = [1500, 150, 150, 80, 80, 150]
    x = np.concatenate([c + 0.5 * g.standard_normal((n, 2)) for c, n in zip(centres, ns)])
    cls = np.repeat(np.arange(6), ns)
    y = np.where((cls < 3) & (g.random(len(cls)) < 0.5), cls, -1)
    return torch.tensor(x), torch.tensor(cls), torch.tensor(y)


@pytest.mark.parametrize("seed", [1, 2])
def test_synthetic_mixture_count_is_right_and_beats_kmeans_with_true_k(seed):
    from sklearn.cluster import KMeans

    x, cls, y = _mixture(seed)
    fit = fit_ss_gmm(x, y, k_init=9, seed=seed)
    assert fit.n_components == 6
    u = y < 0
    ours = cluster_accuracy(cls[u], fit.assignment[u], [0, 1, 2])
    km = KMeans(6, n_init=10, random_state=seed).fit(x.numpy())
    base = cluster_accuracy(cls[u], torch.as_tensor(km.labels_)[u], [0, 1, 2])
    print(f"seed {seed}: SS-GMM K={fit.n_components} {ours} | k-means(6) {base}")
    assert ours.all > base.all and ours.old > base.old and ours.new > base.new


def test_fit_checks_and_labelled_points_stay_put():
    x, cls, y = _ring()
    with pytest.raises(ValueError, match="labelled classes"):
        fit_ss_gmm(x, y, k_init=4)
    fit = fit_ss_gmm(x, y, k_init=10)
    for fr in fit.frames:
        lab = y >= 0
        comp_class = fr.anchor_class[fr.assignment[lab]]
        assert torch.equal(comp_class, y[lab])  # every labelled sample sits in its class's component


def test_film_draws_splits_and_merges():
    x, cls, y = _ring()
    fit = fit_ss_gmm(x, y, k_init=12)
    film = wb.analyses.gmm_film(fit.frames, x.float(), cls, labelled=y >= 0)
    assert film.n_frames == len(fit.frames) and film.coords.shape == (1, len(x), 2)
    merges = sum(e[0] == "merge" for fr in fit.frames for e in fr.events)
    assert merges > 0 and sum(len(s) for s in film.segments) == 2 * merges
    assert all(c.shape == (fr.k, 2) for c, fr in zip(film.centroid_coords, fit.frames))


# ----------------------------------------------------------------------------- ProtoGCD and GPC terms
def test_protogcd_terms_golden():
    a = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    assert math.isclose(float(separation_loss(torch.stack([a.cos(), a.sin()], 1))), -5.0, abs_tol=1e-5)
    logits = torch.tensor([[.30, .25, .10], [.50, .20, .10], [.20, .21, .19], [.40, .38, 0]])
    p = (logits / 0.05).softmax(1)
    top = p.topk(2, 1).values
    # the notes print 403.27 for row 1; exp(0.3 / 0.05) = exp(6) = 403.4288 exactly
    assert torch.allclose(top[:, 0] / top[:, 1], torch.tensor([math.e, math.exp(6), 1.221403, 1.491825]), rtol=1e-5)
    t = dapl_targets(logits, 0.5)
    assert torch.equal(t[:2], torch.tensor([[1.0, 0, 0], [1.0, 0, 0]])) and torch.allclose(t[2:], p[2:])
    assert torch.allclose((logits / 0.1).softmax(1).mean(0), torch.tensor([0.5967, 0.3019, 0.1014]), atol=1e-4)
    assert math.isclose(float(entropy_regulariser(logits)), 0.196934, abs_tol=1e-5)


def test_cluster_density_is_rescaled_to_the_temperature():
    z = torch.randn(60, 3, generator=torch.Generator().manual_seed(0))
    assign = torch.arange(60) % 3
    cents = torch.stack([z[assign == k].mean(0) for k in range(3)])
    phi = cluster_density(z, assign, cents, temperature=0.1)
    assert phi.shape == (3,) and math.isclose(float(phi.mean()), 0.1, rel_tol=1e-5) and bool((phi > 0).all())


# ----------------------------------------------------------------------------- the EM recipe
@pytest.fixture(scope="module")
def gcd_digits():
    ds = wb.data.load("digits", n=400, seed=0)
    g = torch.Generator().manual_seed(0)
    lab = (ds.y < 5) & (torch.rand(len(ds), generator=g) < 0.5)
    return ds, ds.with_labels(torch.where(lab, ds.y, -1))


@pytest.mark.parametrize("method", ["gpc", "protogcd"])
def test_discover_categories_runs_the_em_loop(method, gcd_digits):
    ds, data = gcd_digits
    model = wb.models.MLP(64, (32,), 10, seed=0)
    meth = {"gpc": wb.methods.GPCLoss, "protogcd": wb.methods.ProtoGCD}[method](unsup_temperature=0.1, dim=16)
    res = wb.recipes.discover_categories(model, data, true_labels=ds.y, method=meth, k_init=8, max_rounds=3,
                                         steps_per_round=5, batch_size=64, pca_dim=8, warmup_steps=5)
    assert res.estimated_k == int(res.k_history[-1]) == res.gmm.n_components
    assert len(res.frames) == 2 * len(res.features) == 2 * (len(res.k_history) - 1)
    assert res.accuracy is not None and 0 <= res.accuracy.all <= 1 and len(res.round_accuracy) == len(res.features)
    assert res.predictions.shape == (len(ds),) and "estimated K" in repr(res)
    film = wb.analyses.gmm_film(res.frames, res.features, ds.y, labelled=data.y >= 0,
                                accuracy=[a.all for a in res.round_accuracy])
    assert film.coords.shape[0] == len(res.features) and film.n_frames == len(res.frames)


def test_gcd_methods_refuse_bad_input(gcd_digits):
    _, data = gcd_digits
    model = wb.models.MLP(64, (16,), 10, seed=0)
    with pytest.raises(ValueError, match="labels"):
        wb.methods.GPCLoss(feature_dim=16).loss(model, (data.x[:4], None))
    p = wb.methods.ProtoGCD(feature_dim=16)
    with pytest.raises(ValueError, match="K >= 2"):
        p.set_prototypes(torch.randn(1, 16), torch.tensor([0]))
    with pytest.raises(ValueError, match="unknown method"):
        wb.recipes.discover_categories(model, data, method="kmeans")
    with pytest.raises(ValueError, match="exceed"):
        wb.recipes.discover_categories(model, data, k_init=3)


def test_lazily_set_state_survives_a_checkpoint(tmp_path, gcd_digits):
    """Prototypes set after construction (GPCLoss, ProtoGCD) and the replay buffer (OnPro) come back."""
    _, data = gcd_digits
    model = wb.models.MLP(64, (16,), 10, seed=0)
    anchors = torch.tensor([0, 1, 2, 3, 4] + [-1] * 3)
    methods = [wb.methods.GPCLoss(feature_dim=16, dim=8).set_prototypes(torch.randn(8, 16), anchors, torch.ones(8)),
               wb.methods.ProtoGCD(feature_dim=16, dim=8).set_prototypes(torch.randn(8, 16), anchors),
               wb.methods.OnPro(10, buffer_size=12, feature_dim=16, dim=8)]
    wb.fit(model, methods[2], data.with_labels(data.y.clamp(min=0)), steps=2, batch_size=10, progress=False)
    for m in methods:
        path = tmp_path / f"{type(m).__name__}.safetensors"
        wb.save_checkpoint(path, model, m)
        _, back = wb.load_checkpoint(path)[:2]
        for k, v in m.state_dict().items():
            assert torch.equal(back.state_dict()[k], v), (type(m).__name__, k)
        if hasattr(m, "class_component"):
            assert back.class_component == m.class_component == {c: c for c in range(5)}
