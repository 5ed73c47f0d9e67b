"""wb.ood detectors: the estimator contract, known answers, bad input, the feature bank,
compare() and the built-in benchmarks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import workbench as wb
from workbench.ood import (
    KNN,
    MSP,
    NECO,
    SSD,
    Energy,
    Mahalanobis,
    MaxLogit,
    NotFittedError,
    PrototypeScore,
    WDiscOOD,
)

# ----------------------------------------------------------------------------- fixtures


def gaussian_classes(n_per=200, d=8, c=3, seed=0, spread=4.0, noise=0.5):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(c, d, generator=g) * spread
    y = torch.arange(c).repeat_interleave(n_per)
    z = means[y] + noise * torch.randn(len(y), d, generator=g)
    return z, y, means


def far_point(means, scale=10.0, seed=1):
    """A point orthogonal to every class mean, far from all of them."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(means.shape[1], generator=g)
    q, _ = torch.linalg.qr(means.T)
    v = v - q @ (q.T @ v)
    return (scale * F.normalize(v, dim=0))[None]


class FakePALM(nn.Module):
    """Stands in for wb.methods.PALM: prototypes (K, d), proto_class (K,), embed(model, x)."""

    def __init__(self, feature_dim, dim=4, k_per_class=2, n_classes=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = nn.Linear(feature_dim, dim)
        self.register_buffer("prototypes", F.normalize(torch.rand(k_per_class * n_classes, dim, generator=g), dim=1))
        self.register_buffer("proto_class", torch.arange(n_classes).repeat(k_per_class))

    def embed(self, model, x):
        return F.normalize(self.proj(model.features(x)), dim=1)


FEATURE_DETECTORS = [
    lambda: Mahalanobis(),
    lambda: Mahalanobis(normalize=True, shrinkage=0.1),
    lambda: SSD(),
    lambda: SSD(center="standardized"),
    lambda: KNN(k=5),
    lambda: NECO(dim=2),
    lambda: WDiscOOD(),
]
LOGIT_DETECTORS = [lambda: MSP(), lambda: MaxLogit(), lambda: Energy(), lambda: MSP(temperature=2.0)]


# ----------------------------------------------------------------------------- contract


@pytest.mark.parametrize("make", FEATURE_DETECTORS + LOGIT_DETECTORS)
def test_contract_init_fit_predict(make):
    det = make()
    params = det.get_params()
    assert not [k for k in vars(det) if k.endswith("_")], "__init__ must not learn anything"
    assert type(det)(**params).get_params() == params
    z, y, means = gaussian_classes()
    with pytest.raises(NotFittedError, match="not fitted"):
        det.predict_features(z)
    assert det.fit_features(z, y) is det
    assert det.n_features_in_ == z.shape[1]
    s = det.predict_features(z[:7])
    assert s.shape == (7,) and s.dtype == torch.float32 and s.device.type == "cpu"
    # refitting replaces the learned state
    det.fit_features(z[:, :5], y)
    assert det.n_features_in_ == 5


@pytest.mark.parametrize("make", FEATURE_DETECTORS)
def test_far_outlier_scores_higher_than_inliers(make):
    z, y, means = gaussian_classes()
    det = make().fit_features(z, y)
    s_in = det.predict_features(means)            # the class centres: the most typical points
    s_out = det.predict_features(far_point(means))
    assert s_out.item() > s_in.max().item()


@pytest.mark.parametrize("make", LOGIT_DETECTORS)
def test_logit_detectors_flat_logits_are_more_ood(make):
    det = make().fit_features(None)
    confident = torch.tensor([[12.0, 0.0, 0.0]])
    flat = torch.tensor([[0.1, 0.0, 0.0]])
    assert det.predict_features(flat).item() > det.predict_features(confident).item()


def test_logit_detectors_known_values():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    lse = torch.logsumexp(logits.double(), 1)
    np.testing.assert_allclose(MSP().fit_features(None).predict_features(logits), -torch.exp(logits[:, 0] - lse), rtol=1e-6)
    np.testing.assert_allclose(MSP().fit_features(None).predict_features(logits)[1], -1 / 3, rtol=1e-6)
    np.testing.assert_allclose(MaxLogit().fit_features(logits).predict_features(logits), [-2.0, 0.0])
    np.testing.assert_allclose(Energy().fit_features(None).predict_features(logits), -lse, rtol=1e-6)
    t = 3.0
    np.testing.assert_allclose(
        Energy(temperature=t).fit_features(None).predict_features(logits),
        -t * torch.logsumexp(logits.double() / t, 1), rtol=1e-6,
    )


def test_mahalanobis_equals_the_closed_form_on_gaussian_data():
    z, y, _ = gaussian_classes(n_per=300, d=5, c=3, seed=3)
    det = Mahalanobis().fit_features(z, y)
    zn, yn = z.double().numpy(), y.numpy()
    mu = np.stack([zn[yn == c].mean(0) for c in range(3)])
    r = zn - mu[yn]
    prec = np.linalg.inv(r.T @ r / len(zn))
    q = np.random.default_rng(0).normal(0, 5, (40, 5))
    d2 = np.stack([np.einsum("ij,jk,ik->i", q - mu[c], prec, q - mu[c]) for c in range(3)], 1)
    np.testing.assert_allclose(det.predict_features(torch.tensor(q)), d2.min(1), rtol=1e-5)
    np.testing.assert_allclose(det.distances(torch.tensor(q)), d2, rtol=1e-5)
    np.testing.assert_allclose(det.precision_.numpy(), prec, rtol=1e-8, atol=1e-10)


def test_mahalanobis_approaches_the_true_distance_with_many_samples():
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, -0.3, 0.5]])
    cov = a @ a.T
    means = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    y = torch.arange(2).repeat_interleave(20000)
    z = means[y] + torch.randn(len(y), 3, generator=g) @ a.T
    det = Mahalanobis().fit_features(z, y)
    q = torch.tensor([[1.0, 2.0, -1.0], [4.0, -1.0, 0.5]])
    p = torch.linalg.inv(cov)
    true = torch.stack([torch.einsum("ij,jk,ik->i", q - m, p, q - m) for m in means], 1).amin(1)
    np.testing.assert_allclose(det.predict_features(q), true, rtol=0.03)


def test_mahalanobis_singular_covariance_uses_a_pseudo_inverse():
    z, y, _ = gaussian_classes(d=6)
    z = torch.cat([z, torch.zeros(len(z), 2)], 1)  # two dead dimensions: singular covariance
    det = Mahalanobis().fit_features(z, y)
    s = det.predict_features(z)
    assert torch.isfinite(s).all() and s.max() < 100
    ref = Mahalanobis().fit_features(z[:, :6], y).predict_features(z[:, :6])
    np.testing.assert_allclose(s, ref, rtol=1e-4)


def _ssd_official_numpy(train, test, center="official"):
    """PALM's eval_maha (SSD+), written out independently in numpy."""
    norm = lambda x: x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-10)  # noqa: E731
    ftr, fte = norm(train), norm(test)
    m, s = ftr.mean(0), ftr.std(0)
    std = lambda x: (x - m) / (s + 1e-10)  # noqa: E731
    inv = np.linalg.pinv(np.cov(std(ftr).T, bias=True))
    c = m if center == "official" else 0.0
    d = std(fte) - c
    return np.sum(d * (inv @ d.T).T, axis=-1)


@pytest.mark.parametrize("center", ["official", "standardized"])
def test_ssd_matches_palms_official_scoring(center):
    z, y, _ = gaussian_classes(d=6, seed=2)
    q = torch.randn(30, 6, generator=torch.Generator().manual_seed(4)) * 3
    det = SSD(center=center).fit_features(z)
    ref = _ssd_official_numpy(z.double().numpy(), q.double().numpy(), center)
    np.testing.assert_allclose(det.predict_features(q), ref, rtol=1e-5)
    if center == "official":
        np.testing.assert_allclose(det.center_, det.mean_)


def test_knn_is_the_kth_neighbour_distance_on_the_sphere():
    ang = torch.tensor([0.0, 0.1, 0.3, 0.6, 1.0])
    bank = torch.stack([torch.cos(ang), torch.sin(ang)], 1) * torch.tensor([[1.0], [2.0], [0.5], [3.0], [1.0]])
    q = torch.tensor([[5.0, 0.0]])  # normalised: angle 0
    for k in range(1, 6):
        det = KNN(k=k).fit_features(bank)
        expected = (2 - 2 * torch.cos(ang[k - 1])).sqrt()  # the k-th closest angle from 0
        assert det.predict_features(q).item() == pytest.approx(expected.item(), abs=1e-6)
    d, i = KNN(k=2).fit_features(bank).kneighbors(q)
    assert i.tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="k=9 but only 5 training samples"):
        KNN(k=9).fit_features(bank)


def test_neco_ratio_is_one_in_the_principal_subspace_and_zero_outside():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(6, 2, generator=g))[0]          # (6, 2) orthonormal
    coef = torch.randn(500, 2, generator=g)
    coef = coef - coef.mean(0)
    z = coef @ basis.T                                                   # centred, rank 2
    det = NECO(dim=2, scale=False).fit_features(z)
    inside = torch.tensor([[1.5, -0.5]]) @ basis.T
    outside = torch.linalg.qr(torch.cat([basis, torch.randn(6, 1, generator=g)], 1))[0][:, 2:].T
    assert det.predict_features(inside).item() == pytest.approx(-1.0, abs=1e-5)
    assert det.predict_features(outside).item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="dim="):
        NECO().fit_features(z)              # no labels: dim must be given
    assert NECO().fit_features(*gaussian_classes()[:2]).dim_ == 3


def test_wdiscood_is_invariant_to_an_invertible_linear_map_of_the_features():
    z, y, means = gaussian_classes(d=6, seed=5)
    q = torch.cat([means, far_point(means), z[:5]])
    a = torch.randn(6, 6, generator=torch.Generator().manual_seed(9)) + 3 * torch.eye(6)
    s1 = WDiscOOD(alpha=1e-9).fit_features(z, y).predict_features(q)
    s2 = WDiscOOD(alpha=1e-9).fit_features(z @ a.T, y).predict_features(q @ a.T)
    np.testing.assert_allclose(s1, s2, rtol=1e-4, atol=1e-4)
    det = WDiscOOD().fit_features(z, y)
    assert det.discriminants_.shape == (2, 6)          # C - 1 discriminants
    dg, dh = det.parts(q)
    np.testing.assert_allclose(det.predict_features(q), dg + det.residual_weight * dh, rtol=1e-5)


def test_prototype_score_exact_cosines():
    p = torch.eye(3)[:2] * 4                  # two prototypes (normalised inside): e0, e1
    det = PrototypeScore(prototypes=p, proto_class=torch.tensor([0, 1])).fit_features(None)
    z = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [-1.0, -1.0, 0.0]])
    np.testing.assert_allclose(det.predict_features(z), [-1.0, 0.0, -2**-0.5, 2**-0.5], atol=1e-6)
    a = det.assign(z)
    assert a["index"][0] == 0 and a["cls"][0] == 0
    lse = PrototypeScore(prototypes=p, kind="logsumexp", temperature=0.5).fit_features(None)
    np.testing.assert_allclose(lse.predict_features(z[:1]), [-0.5 * np.log(np.exp(2) + np.exp(0))], rtol=1e-6)
    with pytest.raises(ValueError, match="prototypes are 3-dimensional"):
        PrototypeScore(prototypes=p).fit_features(torch.randn(4, 5))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("make", FEATURE_DETECTORS + [lambda: Energy()])
def test_mismatched_feature_dims_raise(make):
    z, y, _ = gaussian_classes()
    det = make().fit_features(z, y)
    with pytest.raises(ValueError, match="fitted on 8-dimensional features but got 5"):
        det.predict_features(torch.randn(3, 5))


@pytest.mark.parametrize("make", FEATURE_DETECTORS)
def test_nan_features_raise(make):
    z, y, _ = gaussian_classes()
    bad = z.clone()
    bad[4, 2] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf values \(first bad rows: \[4\]\)"):
        make().fit_features(bad, y)
    det = make().fit_features(z, y)
    with pytest.raises(ValueError, match="NaN"):
        det.predict_features(bad[:6])


@pytest.mark.parametrize("cls", [Mahalanobis, WDiscOOD])
def test_class_conditional_detectors_need_labels(cls):
    z, y, _ = gaussian_classes()
    with pytest.raises(ValueError, match="class-conditional and needs the class labels"):
        cls().fit_features(z)
    with pytest.raises(ValueError, match="in-distribution training data only"):
        cls().fit_features(z, torch.where(y == 2, -1, y))
    with pytest.raises(ValueError, match="one label per feature row"):
        cls().fit_features(z, y[:-1])


def test_other_bad_input():
    z, y, _ = gaussian_classes()
    with pytest.raises(ValueError, match=r"\(N, d\) features"):
        Mahalanobis().fit_features(z[:, :, None], y)
    with pytest.raises(ValueError, match="reshape"):
        KNN().fit_features(z[:, 0])
    with pytest.raises(TypeError, match="torch tensor or numpy"):
        KNN().fit_features([[1.0, 2.0]])
    with pytest.raises(ValueError, match="valid: official, standardized"):
        SSD(center="mean").fit_features(z)
    with pytest.raises(ValueError, match="shrinkage"):
        Mahalanobis(shrinkage=2).fit_features(z, y)
    with pytest.raises(ValueError, match="valid: backbone, logits, embedding"):
        Mahalanobis(space="head").fit(nn.Linear(2, 2), z)
    with pytest.raises(ValueError, match="unknown detector 'foo'; valid: MSP"):
        wb.ood.create("foo")
    with pytest.raises(ValueError, match="learns from in-distribution training data"):
        KNN().fit(nn.Linear(2, 2))


# ----------------------------------------------------------------------------- model level + bank


def _toy_model_and_data(seed=0):
    ds = wb.data.load("gaussians8", n=320, seed=seed)
    id_train, id_test, ood = wb.data.ood_split(ds, [6, 7], seed=seed)
    model = wb.models.MLP(2, (16,), id_train.n_classes, seed=seed)
    return model, id_train, id_test, ood


def test_fit_with_a_model_equals_fit_features():
    model, id_train, id_test, _ = _toy_model_and_data()
    z_tr = wb.analyses.embed(model, id_train)
    z_te = wb.analyses.embed(model, id_test)
    for det_a, det_b in [(Mahalanobis(), Mahalanobis()), (KNN(k=3), KNN(k=3))]:
        a = det_a.fit(model, id_train).predict(model, id_test)
        b = det_b.fit_features(z_tr, id_train.y).predict_features(z_te)
        torch.testing.assert_close(a, b)
    logits = wb.analyses.predict(model, id_test).logits
    torch.testing.assert_close(Energy().fit(model, id_train).predict(model, id_test),
                               Energy().fit_features(None).predict_features(logits))
    # tensors of inputs work as data too
    assert Energy().fit(model).predict(model, id_test.x).shape == (len(id_test),)


def test_feature_bank_computes_each_data_set_once():
    model, id_train, id_test, ood = _toy_model_and_data()
    bank = wb.ood.FeatureBank(model)
    for det in [Mahalanobis(), SSD(), KNN(k=3), NECO(), WDiscOOD(), MSP(), Energy()]:
        det.fit(bank, id_train)
        det.predict(bank, id_test)
        det.predict(bank, ood)
    assert bank.n_passes == 3
    f = bank.features(id_test)
    assert f.backbone.shape == (len(id_test), 16) and f.logits.shape == (len(id_test), 6)
    assert f.embedding is None and "backbone" in repr(f)


def test_feature_bank_recomputes_after_the_model_changes_and_leaves_it_untouched():
    model, id_train, _, _ = _toy_model_and_data()
    model.train()
    bank = wb.ood.FeatureBank(model)
    a = bank.features(id_train).backbone
    assert model.training and bank.n_passes == 1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bank.features(id_train)
    assert bank.n_passes == 1
    with torch.no_grad():
        model.body[0].weight.add_(1.0)  # an in-place update, as an optimiser step does
    b = bank.features(id_train).backbone
    assert bank.n_passes == 2 and not torch.equal(a, b)
    with torch.no_grad():
        model.body[0].weight.sub_(1.0)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_bank_with_an_embedding_method_has_no_logits_and_logit_detectors_say_so():
    model, id_train, id_test, ood = _toy_model_and_data()
    palm = FakePALM(feature_dim=16, n_classes=6)
    palm.train()
    bank = wb.ood.FeatureBank(model, palm)
    f = bank.features(id_test)
    assert f.logits is None and f.embedding.shape == (len(id_test), 4)
    torch.testing.assert_close(f.embedding.norm(dim=1), torch.ones(len(id_test)))
    assert palm.training  # mode restored
    with pytest.raises(ValueError, match="no logits"):
        Energy().fit(bank, id_train)
    det = PrototypeScore(palm).fit(bank, id_train)
    s = det.predict(bank, ood)
    f = bank.features(ood)
    np.testing.assert_allclose(s, -(f.embedding.double() @ palm.prototypes.double().T).amax(1), rtol=1e-5)
    # a model alone + the detector's own method gives the same scores
    np.testing.assert_allclose(PrototypeScore(palm).fit(model).predict(model, ood), s, rtol=1e-6)
    with pytest.raises(ValueError, match="needs embeddings"):
        PrototypeScore(prototypes=palm.prototypes).fit(model, id_train)


def test_compare_table_and_skipping():
    model, id_train, id_test, ood = _toy_model_and_data()
    shuffled = wb.ood.shuffle_pixels(id_test, seed=0)
    cmp = wb.ood.compare([Energy(), "mahalanobis", KNN(k=3), KNN(k=5)], model, id_train, id_test,
                         {"held-out": ood, "shuffled": shuffled})
    assert list(cmp.detectors) == ["Energy", "Mahalanobis", "KNN(k=3)", "KNN(k=5)"]
    df = cmp.table()
    assert df.shape[0] == 8 and df.index.names == ["detector", "ood set"]
    assert set(cmp.scores["Energy"]) == {"ID", "held-out", "shuffled"}
    assert cmp.wide("fpr95").columns.name == "fpr95 (id-positive)"
    assert "Comparison(4 detectors x 2 OOD sets" in repr(cmp)
    palm = FakePALM(feature_dim=16, n_classes=6)
    bank = wb.ood.FeatureBank(model, palm)
    cmp2 = wb.ood.compare([Energy(), Mahalanobis(), PrototypeScore(palm)], bank, id_train, id_test, ood,
                          skip_unavailable=True)
    assert list(cmp2.detectors) == ["Mahalanobis", "PrototypeScore"] and "Energy" in cmp2.skipped
    with pytest.raises(ValueError, match="no logits"):
        wb.ood.compare([Energy()], bank, id_train, id_test, ood)
    names = [d.name for d in wb.ood.default_detectors(bank, n_train=len(id_train))]
    assert "Energy" not in names and "PrototypeScore" in names


# ----------------------------------------------------------------------------- benchmarks


@pytest.mark.parametrize("name", ["digits", "mnist1d", "gaussians8", "gaussian_grid"])
def test_benchmarks_are_labelled_and_deterministic(name):
    n = {"digits": None, "mnist1d": 600, "gaussians8": 400, "gaussian_grid": 500}[name]
    b = wb.ood.benchmark(name, n=n, seed=0)
    assert int(b.id_train.y.max()) == b.n_classes - 1 and (b.id_train.y >= 0).all()
    assert set(b.kinds.values()) == {"near", "far"}
    for k, ds in b.ood.items():
        assert (ds.y == -1).all() and ds.shape == b.id_test.shape and ds.kind == b.id_test.kind, k
        assert torch.isfinite(ds.x).all()
    again = wb.ood.benchmark(name, n=n, seed=0)
    for k in b.ood:
        torch.testing.assert_close(b.ood[k].x, again.ood[k].x)
    assert name in repr(b)


def test_shuffled_pixels_keep_each_image_histogram():
    b = wb.ood.benchmark("digits")
    sh = b.ood["shuffled pixels"]
    a = b.id_test.flat.sort(1).values
    torch.testing.assert_close(sh.flat.sort(1).values, a)
    assert not torch.equal(sh.x, b.id_test.x)
    with pytest.raises(ValueError, match="valid: digits"):
        wb.ood.benchmark("cifar10")


def test_ood_does_not_import_plotly():
    import subprocess
    import sys

    code = "import sys, workbench as wb; wb.ood.metrics([0.], [1.]); assert 'plotly' not in sys.modules"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_prototype_score_with_the_real_palm_and_with_an_embed_function():
    model, id_train, id_test, ood = _toy_model_and_data()
    palm = wb.methods.PALM(n_classes=6, n_prototypes=2, top_k=1, dim=4, feature_dim=16, seed=0)
    s = PrototypeScore(palm).fit(model).predict(model, ood)
    z = palm.embed(model, ood.x).detach()
    np.testing.assert_allclose(s, -(z @ palm.prototypes.T).amax(1), rtol=1e-5, atol=1e-6)
    det = PrototypeScore(prototypes=palm.prototypes, embed=palm.embed).fit(model)
    np.testing.assert_allclose(det.predict(model, ood), s, rtol=1e-6)
    assert det.assign(z)["cls"] is None
    bank = wb.ood.FeatureBank(model, palm)
    assert "PrototypeScore" in [d.name for d in wb.ood.default_detectors(bank)]
