"""Bad input, as a new user would try it, gets a clear TypeError / ValueError naming the argument
and what to pass instead; nothing is silently corrected. One table per entry point family.

Each row: (id, call, exception, regex the message must match).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import workbench as wb
from workbench import analyses as A
from workbench import ood as O
from workbench.data import Dataset

NAN = float("nan")


def _cases(rows):
    return pytest.mark.parametrize("call,err,match", [r[1:] for r in rows], ids=[r[0] for r in rows])


def _check(call, err, match):
    with pytest.raises(err, match=match):
        call()


# --------------------------------------------------------------------------- built-in data sets
LOAD = [
    # (name, options, error, match)
    ("spirals", dict(arms=0), ValueError, "arms must be an int >= 1"),
    ("spirals", dict(arms=-1), ValueError, "arms"),
    ("spirals", dict(arms=2.5), TypeError, "arms must be an int"),
    ("spirals", dict(turns=0), ValueError, "turns"),
    ("spirals", dict(noise=-1), ValueError, "noise"),
    ("spirals", dict(noise=NAN), ValueError, "noise must be a finite number"),
    ("moons", dict(noise=-0.1), ValueError, "noise"),
    ("moons", dict(noise="a"), TypeError, "noise must be a number"),
    ("moons", dict(n=0), ValueError, "positive int"),
    ("moons", dict(n=2.0), ValueError, "positive int"),
    ("moons", dict(seed=-1), ValueError, "seed"),
    ("moons", dict(seed=1.5), TypeError, "seed"),
    ("moons", dict(bogus=1), ValueError, "valid options: \\['noise'\\]"),
    ("circles", dict(factor=0), ValueError, "factor"),
    ("circles", dict(noise=-1), ValueError, "noise"),
    ("circles", dict(factor=1.5), ValueError, "factor .* in \\(0, 1\\)"),
    ("gaussians8", dict(radius=0), ValueError, "radius"),
    ("gaussians8", dict(std=-0.1), ValueError, "std"),
    ("gaussian_grid", dict(k=1), ValueError, "k must be an int >= 2"),
    ("gaussian_grid", dict(k=2.5), TypeError, "k must be an int"),
    ("gaussian_grid", dict(spacing=0), ValueError, "spacing"),
    ("gaussian_grid", dict(std=0), ValueError, "std"),
    ("swiss_roll", dict(n_bins=0), ValueError, "n_bins"),
    ("swiss_roll", dict(noise=NAN), ValueError, "noise"),
    ("checkerboard", dict(cells=0), ValueError, "cells must be an int >= 2"),
    ("checkerboard", dict(cells=1), ValueError, "cells"),
    ("digits", dict(n=5000), ValueError, "digits has 1797 real images; pass n <= 1797"),
    ("digits", dict(n=0), ValueError, "positive int"),
    ("mnist1d", dict(length=0), ValueError, "length"),
    ("mnist1d", dict(length=5), ValueError, "templates have 12 points"),
    ("mnist1d", dict(corr_noise=-1), ValueError, "corr_noise"),
    ("mnist1d", dict(iid_noise=NAN), ValueError, "iid_noise"),
    ("mnist1d", dict(max_shift=-0.1), ValueError, "max_shift"),
    ("mnist1d", dict(shear=-1), ValueError, "shear"),
    ("mnist1d", dict(scale_range=(0, 1)), ValueError, "scale_range\\[0\\]"),
    ("mnist1d", dict(scale_range=(1.2, 0.8)), ValueError, "scale_range\\[1\\]"),
    ("mnist1d", dict(scale_range=1.0), TypeError, "scale_range must be a pair"),
    ("multi_digits", dict(p_two=1.5), ValueError, "p_two must be a finite number in \\[0, 1\\]"),
    ("multi_digits", dict(p_two="half"), TypeError, "p_two must be a number"),
    ("multi_digits", dict(n=5000), ValueError, "composites; pass n <= "),
    ("gaussians8", dict(weights=(1, 1)), ValueError, "8 numbers"),
    ("gaussians8", dict(weights=(1,) * 7 + (-1,)), ValueError, "weights\\[7\\]"),
    ("gaussians8", dict(weights="uniform"), TypeError, "sequence of 8"),
    ("subspaces", dict(dim=1), ValueError, "dim"),
    ("subspaces", dict(k=0), ValueError, "k must"),
    ("subspaces", dict(d=0), ValueError, "d must"),
    ("subspaces", dict(dim=4, k=3, d=2), ValueError, "do not fit"),
    ("subspaces", dict(noise=-0.1), ValueError, "noise"),
    ("sequences", dict(length=1), ValueError, "length"),
    ("sequences", dict(vocab=1), ValueError, "vocab"),
    ("sequences", dict(vocab=4, branching=5), ValueError, "branching"),
    ("Moons", {}, ValueError, "valid names: moons, circles"),
    (3, {}, ValueError, "unknown dataset 3"),
]


@pytest.mark.parametrize("name,kw,err,match", LOAD, ids=[f"{n}-{k}" for n, k, *_ in LOAD])
def test_load_refuses_bad_options(name, kw, err, match):
    with pytest.raises(err, match=match):
        wb.data.load(name, **kw)


def test_every_builtin_option_is_checked():
    """Every keyword of every built-in generator appears in a refusal above (a new option
    needs its check and its row)."""
    import inspect

    from workbench.data.builtin import BUILTIN

    tried = {(n, k) for n, kw, *_ in LOAD for k in kw}
    for name, fn in BUILTIN.items():
        for p in inspect.signature(fn).parameters:
            if p not in ("n", "seed"):
                assert (name, p) in tried, f"no bad-input row for {name}({p}=...)"


def test_digits_n_is_exact_and_stratified():
    full = wb.data.load("digits")
    for n in (5, 10, 401, 1796, 1797):
        ds = wb.data.load("digits", n=n, seed=1)
        assert len(ds) == n and ds.name == "digits"
    ds = wb.data.load("digits", n=500, seed=0)
    share = torch.bincount(ds.y, minlength=10).double() / 500
    full_share = torch.bincount(full.y, minlength=10).double() / len(full)
    assert (share - full_share).abs().max() < 1.0 / 500 + 1e-9      # within one sample per class
    assert torch.equal(wb.data.load("digits", n=500, seed=0).x, ds.x)  # seeded
    assert not torch.equal(wb.data.load("digits", n=500, seed=1).x, ds.x)


def test_spirals_valid_options_still_work():
    ds = wb.data.load("spirals", n=300, arms=3, turns=0.5, noise=0.0)
    assert torch.isfinite(ds.x).all() and ds.n_classes == 3


# --------------------------------------------------------------------------- Dataset
_x = np.random.default_rng(0).random((10, 3)).astype("float32")
_y = np.arange(10) % 2
_ds = Dataset.from_arrays(_x, _y)

DATASET = [
    ("from_arrays-none", lambda: Dataset.from_arrays(None), TypeError, "numpy array or a torch tensor"),
    ("from_arrays-y-len", lambda: Dataset.from_arrays(_x, _y[:5]), ValueError, "one label per sample"),
    ("from_arrays-y-names", lambda: Dataset.from_arrays(_x, np.array(["cat", "dog"] * 5)), TypeError,
     "np.unique\\(y, return_inverse=True\\)"),
    ("from_arrays-y-frac", lambda: Dataset.from_arrays(_x, _y + 0.5), TypeError, "non-integer"),
    ("from_arrays-y-below-1", lambda: Dataset.from_arrays(_x, _y - 2), ValueError, "below -1"),
    ("from_arrays-kind", lambda: Dataset.from_arrays(_x, _y, kind="imagez"), ValueError, "valid kinds"),
    ("from_arrays-classes-short", lambda: Dataset.from_arrays(_x, _y, classes=["a"]), ValueError,
     "one name per class"),
    ("from_arrays-classes-str", lambda: Dataset.from_arrays(_x, _y, classes="ab"), TypeError, "list of class names"),
    ("from_arrays-name", lambda: Dataset.from_arrays(_x, _y, name=3), TypeError, "name must be a string"),
    ("from_arrays-ragged", lambda: Dataset.from_arrays([[1, 2], [3]]), TypeError, "numeric array"),
    ("from_arrays-nan", lambda: Dataset.from_arrays(np.full((3, 2), np.nan)), ValueError, "NaN"),
    ("split-0", lambda: _ds.split(0), ValueError, "frac"),
    ("split-str", lambda: _ds.split("a"), ValueError, "frac"),
    ("split-seed-str", lambda: _ds.split(0.5, seed="a"), TypeError, "seed"),
    ("split-seed-float", lambda: _ds.split(0.5, seed=1.5), TypeError, "seed"),
    ("split-stratify-str", lambda: _ds.split(0.5, stratify="yes"), TypeError, "stratify must be True or False"),
    ("split-too-small", lambda: _ds.split(0.01), ValueError, "empty"),
    ("subset-out-of-range", lambda: _ds.subset([100]), ValueError, "out of range .* valid indices are -10..9"),
    ("subset-float", lambda: _ds.subset([0.5]), TypeError, "integers or booleans"),
    ("subset-str", lambda: _ds.subset("a"), TypeError, "integers or booleans"),
    ("subset-mask-shape", lambda: _ds.subset(np.ones(5, bool)), ValueError, "mask must have shape \\(10,\\)"),
    ("subset-2d", lambda: _ds.subset([[0, 1]]), ValueError, "one-dimensional"),
    ("subset-empty", lambda: _ds.subset([]), ValueError, "empty"),
    ("getitem-int", lambda: _ds[3], TypeError, "ds\\[\\[3\\]\\]"),
    ("loader-bs-0", lambda: list(_ds.loader(0)), ValueError, "batch_size"),
    ("loader-bs-bool", lambda: list(_ds.loader(True)), ValueError, "batch_size"),
    ("loader-bs-float", lambda: list(_ds.loader(2.0)), ValueError, "batch_size"),
    ("loader-shuffle-str", lambda: list(_ds.loader(2, shuffle="no")), TypeError, "shuffle must be True or False"),
    ("loader-seed-str", lambda: list(_ds.loader(2, seed="a")), TypeError, "seed"),
    ("loader-device", lambda: list(_ds.loader(2, device="gpu0")), ValueError, "unknown device 'gpu0'"),
    ("to-device", lambda: _ds.to("gpu0"), ValueError, "unknown device"),
    ("with-labels-float", lambda: _ds.with_labels(np.full(10, 0.5)), TypeError, "integer class indices"),
    ("with-labels-len", lambda: _ds.with_labels(np.ones(3, int)), ValueError, "one label per sample"),
    ("dataset-numpy-x", lambda: Dataset(_x), TypeError, "from_arrays"),
    ("concat-not-list", lambda: wb.data.concat(_ds), TypeError, "list of Datasets"),
    ("concat-array", lambda: wb.data.concat([_ds, _x]), TypeError, "list of Datasets"),
    ("concat-kinds", lambda: wb.data.concat([_ds, Dataset(_ds.x, _ds.y, kind="points")]), ValueError,
     "different kinds"),
]


@_cases(DATASET)
def test_dataset_refuses(call, err, match):
    _check(call, err, match)


def test_dataset_slices_and_negative_indices():
    assert torch.equal(_ds[2:5].x, _ds.x[2:5])
    assert torch.equal(_ds[[-1]].x, _ds.x[-1:])


# --------------------------------------------------------------------------- ood_split
_digits = wb.data.load("digits", n=300, seed=0)

OOD_SPLIT = [
    ("numpy", lambda: wb.data.ood_split(_x, [1]), TypeError, "takes a wb.data.Dataset"),
    ("unlabelled", lambda: wb.data.ood_split(Dataset(_digits.x), [8]), ValueError, "labelled"),
    ("str", lambda: wb.data.ood_split(_digits, "8"), TypeError, "ood_classes must be an int or a list"),
    ("float", lambda: wb.data.ood_split(_digits, [1.5]), TypeError, "integer class labels"),
    ("bool", lambda: wb.data.ood_split(_digits, [True]), TypeError, "integer class labels"),
    ("none", lambda: wb.data.ood_split(_digits, None), TypeError, "ood_classes"),
    ("empty", lambda: wb.data.ood_split(_digits, []), ValueError, "ood_classes is empty"),
    ("absent", lambda: wb.data.ood_split(_digits, [12]), ValueError, "classes present: \\[0, 1"),
    ("all", lambda: wb.data.ood_split(_digits, list(range(10))), ValueError, "keep at least one"),
    ("frac-1", lambda: wb.data.ood_split(_digits, [8], frac=1), ValueError, "frac"),
    ("seed", lambda: wb.data.ood_split(_digits, [8], seed="a"), TypeError, "seed"),
]


@_cases(OOD_SPLIT)
def test_ood_split_refuses(call, err, match):
    _check(call, err, match)


def test_ood_split_accepts_int_array_and_tensor():
    for classes in (8, [8], np.array([8]), torch.tensor([8])):
        _, _, ood = wb.data.ood_split(_digits, classes)
        assert (ood.meta["original_labels"] == 8).all()


# --------------------------------------------------------------------------- method constructors
_mlp = wb.models.MLP(in_dim=4, hidden=(8,), out_dim=3)
_ddpm = wb.methods.DDPM(n_steps=10)
_den = wb.models.TimeMLP(dim=2)
M = wb.methods

METHODS = [
    ("supcon-temp-0", lambda: M.SupCon(temperature=0), ValueError, "temperature"),
    ("supcon-temp-bool", lambda: M.SupCon(temperature=True), TypeError, "temperature"),
    ("supcon-temp-nan", lambda: M.SupCon(temperature=NAN), ValueError, "temperature"),
    ("supcon-views-bool", lambda: M.SupCon(n_views=True), ValueError, "n_views"),
    ("supcon-head", lambda: M.SupCon(head="mlpp"), ValueError, "valid: 'mlp', 'linear' or None"),
    ("supcon-head-hidden", lambda: M.SupCon(head_hidden=0), ValueError, "head_hidden"),
    ("supcon-seed", lambda: M.SupCon(seed="a"), TypeError, "seed"),
    ("supcon-seed-neg", lambda: M.SupCon(seed=-1), ValueError, "seed"),
    ("supcon-supervised", lambda: M.SupCon(supervised="yes"), ValueError, "supervised"),
    ("supcon-augment", lambda: M.SupCon(augment="rotate"), ValueError, "valid names: auto"),
    ("palm-classes", lambda: M.PALM(n_classes=0), ValueError, "n_classes"),
    ("palm-topk", lambda: M.PALM(top_k=7), ValueError, "top_k <= 6"),
    ("palm-momentum", lambda: M.PALM(momentum=1.0), ValueError, "momentum"),
    ("palm-temperature-str", lambda: M.PALM(temperature="x"), TypeError, "temperature must be a number"),
    ("palm-momentum-str", lambda: M.PALM(momentum="a"), TypeError, "momentum must be a number"),
    ("palm-lambda-nan", lambda: M.PALM(lambda_proto=NAN), ValueError, "lambda_proto"),
    ("palm-sinkhorn", lambda: M.PALM(sinkhorn="local"), ValueError, "valid: global, per-class"),
    ("palm-seed", lambda: M.PALM(seed="a"), TypeError, "seed"),
    ("palm-head-hidden", lambda: M.PALM(head_hidden=-1), ValueError, "head_hidden"),
    ("center-feature-dim", lambda: M.CenterLoss(feature_dim=0), ValueError, "feature_dim"),
    ("center-classes-bool", lambda: M.CenterLoss(n_classes=True), ValueError, "n_classes"),
    ("center-alpha-str", lambda: M.CenterLoss(alpha="a"), TypeError, "alpha"),
    ("center-weight-nan", lambda: M.CenterLoss(weight=NAN), ValueError, "weight"),
    ("ddpm-steps", lambda: M.DDPM(n_steps=1), ValueError, "n_steps"),
    ("ddpm-schedule", lambda: M.DDPM(schedule="quad"), ValueError, "valid: "),
    ("ddpm-beta-str", lambda: M.DDPM(schedule="linear", beta_start="a"), TypeError, "beta_start must be a number"),
    ("ddpm-betas", lambda: M.DDPM(schedule="linear", beta_start=0.5, beta_end=0.1), ValueError, "beta_start"),
    ("kd-teacher", lambda: M.KnowledgeDistillation(None), TypeError, "teacher"),
    ("kd-alpha", lambda: M.KnowledgeDistillation(_mlp, alpha=NAN), ValueError, "alpha"),
    ("pskd-epochs", lambda: M.PSKD(epochs=1.5, epoch_steps=1), ValueError, "epochs"),
    ("consistency-ema", lambda: M.ConsistencyDistillation(_den, _ddpm, n_intervals=5, ema=NAN), ValueError, "ema"),
    ("consistency-ddpm", lambda: M.ConsistencyDistillation(_den, None), TypeError, "ddpm"),
    ("random-teacher-seed", lambda: M.RandomTeacherDistillation(_mlp, seed="a"), TypeError, "seed"),
    ("random-teacher-centering", lambda: M.RandomTeacherDistillation(_mlp, center_momentum="a"), TypeError,
     "center_momentum"),
    ("random-teacher-locality", lambda: M.RandomTeacherDistillation(_mlp, locality=2), ValueError, "locality"),
    ("bottleneck-in-dim", lambda: M.L2BottleneckHead(0), ValueError, "in_dim"),
    ("bottleneck-layers", lambda: M.L2BottleneckHead(4, n_layers=0), ValueError, "n_layers"),
    ("interpolate-locality", lambda: M.interpolate_init(_mlp, _mlp, 2.0), ValueError, "locality"),
    ("interpolate-fresh", lambda: M.interpolate_init(_mlp, None, 0.5), TypeError, "fresh"),
    ("augment-image", lambda: M.augment.ImageAugment(noise=NAN), ValueError, "noise"),
    ("augment-vector", lambda: M.augment.VectorNoise(drop=1.0), ValueError, "drop"),
    ("augment-jitter", lambda: M.augment.Jitter(std="a"), TypeError, "std"),
    ("augment-signal", lambda: M.augment.SignalAugment(scale=-1), ValueError, "scale"),
    ("create", lambda: M.create("palmm"), ValueError, "valid names: .*PALM"),
]


@_cases(METHODS)
def test_method_constructors_refuse(call, err, match):
    _check(call, err, match)


# --------------------------------------------------------------------------- OOD detectors
_g = torch.Generator().manual_seed(0)
_z = torch.randn(60, 5, generator=_g)
_zy = torch.arange(60) % 3
_clf = wb.models.MLP(in_dim=5, hidden=(8,), out_dim=3)
_zds = Dataset(_z, _zy)
_LOGIT = ("MSP", "MaxLogit", "Energy", "GEN", "KLMatching", "ODIN")


def _make(name, **kw):
    if name in O.HEAD_DETECTORS:  # fit_features needs the linear head on the 5-d features
        kw.setdefault("head", (torch.randn(3, 5, generator=torch.Generator().manual_seed(3)), None))
    if name in ("ViM", "Residual"):
        kw.setdefault("dim", 2)
    if name == "PrototypeScore":
        protos = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
        return O.PrototypeScore(prototypes=protos, embed=lambda m, x: m.features(x)[:, :5], **kw)
    return O.DETECTORS[name](**kw)


def _fit_z(name):
    return torch.randn(60, 3, generator=torch.Generator().manual_seed(2)) if name in _LOGIT else _z


@pytest.mark.parametrize("name", list(O.DETECTORS))
def test_detector_refuses_bad_input(name):
    det = _make(name)
    z = _fit_z(name)
    with pytest.raises(O.NotFittedError, match="not fitted yet; call"):
        det.predict_features(z)
    with pytest.raises(O.NotFittedError, match="not fitted yet"):
        _make(name).predict(_clf, _zds)
    if det.needs_fit_data or name in _LOGIT:
        with pytest.raises(ValueError, match="negative \\(OOD/unknown, -1\\)"):
            _make(name).fit_features(z, torch.where(_zy == 0, -1, _zy))
        with pytest.raises(ValueError, match="labelled -1 .*in-distribution training data only"):
            _make(name).fit(_clf, Dataset(_zds.x, torch.full((60,), -1)))
    with pytest.raises(ValueError, match="pass \\(N, d\\) features"):
        _make(name).fit_features(z[:, 0], _zy)
    with pytest.raises(ValueError, match="flatten each sample"):
        _make(name).fit_features(z[:, None], _zy)
    with pytest.raises(TypeError, match="must be an \\(N, d\\) torch tensor or numpy array"):
        _make(name).fit_features(z.tolist(), _zy)
    with pytest.raises(ValueError, match="one label per feature row"):
        _make(name).fit_features(z, _zy[:10])
    with pytest.raises(TypeError, match="non-integer"):
        _make(name).fit_features(z, _zy + 0.5)
    with pytest.raises(ValueError, match="NaN or inf"):
        _make(name).fit_features(torch.where(z > 1.5, NAN, z), _zy)
    with pytest.raises(TypeError, match="model \\(nn.Module\\) or a wb.ood.FeatureBank"):
        _make(name).fit(None, _zds)
    with pytest.raises(TypeError, match="Dataset.from_arrays"):
        _make(name).fit(_clf, _z.numpy())
    if "space" in det.get_params():
        with pytest.raises(ValueError, match="unknown feature space 'latent'; valid"):
            _make(name).set_params(space="latent").fit_features(z, _zy)
    fitted = _make(name).fit_features(z, _zy)
    with pytest.raises(ValueError, match="fitted on \\d+-dimensional features but got 9"):
        fitted.predict_features(torch.randn(4, 9))
    with pytest.raises(ValueError, match="empty"):
        fitted.predict_features(torch.randn(0, z.shape[1]))
    with pytest.raises(ValueError, match="NaN or inf"):
        fitted.predict_features(torch.full((4, z.shape[1]), NAN))
    with pytest.raises(TypeError, match="must be a wb.data.Dataset or a tensor"):
        fitted.predict(_clf, [1, 2])


DETECTOR_PARAMS = [
    ("knn-k-0", lambda: O.KNN(k=0).fit_features(_z), ValueError, "k must be a positive int"),
    ("knn-k-large", lambda: O.KNN(k=100).fit_features(_z), ValueError, "pass k <= 60"),
    ("knn-normalize", lambda: O.KNN(normalize="yes").fit_features(_z), TypeError, "normalize must be True or False"),
    ("knn-batch", lambda: O.KNN(batch_size=0).fit_features(_z), ValueError, "batch_size"),
    ("msp-temp", lambda: O.MSP(temperature=0).fit_features(None), ValueError, "temperature"),
    ("maha-shrinkage", lambda: O.Mahalanobis(shrinkage=2).fit_features(_z, _zy), ValueError, "shrinkage"),
    ("maha-normalize", lambda: O.Mahalanobis(normalize="x").fit_features(_z, _zy), TypeError, "normalize"),
    ("maha-few", lambda: O.Mahalanobis().fit_features(_z[:3], _zy[:3]), ValueError, "more training samples than classes"),
    ("maha-no-labels", lambda: O.Mahalanobis().fit_features(_z), ValueError, "class-conditional"),
    ("ssd-center", lambda: O.SSD(center="x").fit_features(_z), ValueError, "valid: official, standardized"),
    ("ssd-rcond", lambda: O.SSD(rcond="a").fit_features(_z), ValueError, "rcond"),
    ("neco-dim", lambda: O.NECO(dim=100).fit_features(_z, _zy), ValueError, "pass dim <= 5"),
    ("neco-scale", lambda: O.NECO(scale="x").fit_features(_z, _zy), TypeError, "scale"),
    ("neco-one", lambda: O.NECO(dim=1).fit_features(_z[:1]), ValueError, "at least 2"),
    ("wdisc-k", lambda: O.WDiscOOD(n_discriminants=100).fit_features(_z, _zy), ValueError, "n_discriminants"),
    ("wdisc-whiten", lambda: O.WDiscOOD(whiten="x").fit_features(_z, _zy), TypeError, "whiten"),
    ("wdisc-alpha", lambda: O.WDiscOOD(alpha=NAN).fit_features(_z, _zy), ValueError, "alpha"),
    ("wdisc-few", lambda: O.WDiscOOD().fit_features(_z[:3], _zy[:3]), ValueError, "more training samples"),
    ("proto-kind", lambda: O.PrototypeScore(prototypes=torch.randn(3, 5), kind="x").fit_features(_z), ValueError,
     "valid: max_cosine, logsumexp"),
    ("proto-zero", lambda: O.PrototypeScore(prototypes=torch.zeros(3, 5)).fit_features(_z), ValueError, "zero vector"),
    ("proto-dim", lambda: O.PrototypeScore(prototypes=torch.randn(3, 4)).fit_features(_z), ValueError, "4-dimensional"),
    ("proto-none", lambda: O.PrototypeScore().fit_features(_z), ValueError, "prototypes"),
    ("create", lambda: O.create("knnn"), ValueError, "valid: MSP, MaxLogit"),
    ("set-params", lambda: O.KNN().set_params(kk=3), ValueError, "valid: k, space"),
    ("positional", lambda: O.KNN(3), TypeError, "positional"),
]


@_cases(DETECTOR_PARAMS)
def test_detector_hyperparameters_refused(call, err, match):
    _check(call, err, match)


# --------------------------------------------------------------------------- OOD metrics, benchmarks
_a, _b = torch.randn(50, generator=_g), torch.randn(40, generator=_g) + 1

METRICS = [
    ("convention", lambda: O.metrics(_a, _b, convention="id"), ValueError, "'id-positive' .* or 'ood-positive'"),
    ("tpr-95", lambda: O.metrics(_a, _b, tpr=95), ValueError, "tpr must be a fraction"),
    ("tpr-bool", lambda: O.metrics(_a, _b, tpr=True), ValueError, "tpr"),
    ("tpr-nan", lambda: O.metrics(_a, _b, tpr=NAN), ValueError, "tpr"),
    ("2d", lambda: O.metrics(_a[:, None].repeat(1, 2), _b), ValueError, "1-D array of scores"),
    ("column", lambda: O.metrics(_a[:, None], _b), ValueError, "s.ravel\\(\\)"),
    ("empty", lambda: O.metrics(_a[:0], _b), ValueError, "empty"),
    ("nan", lambda: O.metrics(_a * NAN, _b), ValueError, "NaN or inf score"),
    ("str", lambda: O.metrics("abc", _b), TypeError, "1-D torch tensor, numpy array or list"),
    ("bool", lambda: O.metrics(_a > 0, _b), TypeError, "booleans"),
    ("bool-numpy", lambda: O.metrics((_a > 0).numpy(), _b), TypeError, "booleans"),
    ("rates-threshold-nan", lambda: O.rates_at(_a, _b, NAN), ValueError, "threshold"),
    ("rates-threshold-str", lambda: O.rates_at(_a, _b, "x"), TypeError, "threshold"),
    ("roc-convention", lambda: O.roc_curve(_a, _b, convention="x"), ValueError, "convention"),
    ("table-empty", lambda: O.table({}), TypeError, "non-empty dict"),
    ("table-values", lambda: O.table({"a": 1}), TypeError, "OODMetrics"),
    ("compare-empty", lambda: O.compare(["KNN"], _clf, _zds, _zds, {}), ValueError, "ood is empty"),
    ("compare-name", lambda: O.compare(["knnn"], _clf, _zds, _zds, _zds), ValueError, "valid: MSP"),
    ("compare-int", lambda: O.compare(3, _clf, _zds, _zds, _zds), TypeError, "list of detectors"),
    ("benchmark-name", lambda: O.benchmark("cifar"), ValueError, "valid: digits, mnist1d"),
    ("benchmark-frac", lambda: O.benchmark("digits", frac=2), ValueError, "frac"),
    ("benchmark-classes", lambda: O.benchmark("digits", ood_classes=[1.5]), TypeError, "integer class labels"),
    ("benchmark-n", lambda: O.benchmark("digits", n=5000), ValueError, "n <= 1797"),
    ("benchmark-seed", lambda: O.benchmark("digits", seed="a"), TypeError, "seed"),
    ("shuffle-numpy", lambda: O.shuffle_pixels(_x), TypeError, "wb.data.Dataset"),
    ("shuffle-seed", lambda: O.shuffle_pixels(_ds, seed="a"), TypeError, "seed"),
]


@_cases(METRICS)
def test_ood_metrics_and_benchmarks_refuse(call, err, match):
    _check(call, err, match)


# --------------------------------------------------------------------------- representation, few-shot
_rz, _ry = torch.randn(60, 5, generator=_g), torch.arange(60) % 3
_fz, _fy = torch.randn(100, 4, generator=_g), torch.arange(100) % 5

REPRESENTATION = [
    ("align-alpha-0", lambda: A.alignment(_rz, _rz, alpha=0), ValueError, "alpha"),
    ("align-shapes", lambda: A.alignment(_rz, _rz[:3]), ValueError, "same shape"),
    ("align-list", lambda: A.alignment(_rz.tolist(), _rz), TypeError, "torch tensor or numpy array"),
    ("align-empty", lambda: A.alignment(_rz[:0], _rz[:0]), ValueError, "empty"),
    ("uniformity-t", lambda: A.uniformity(_rz, t=-1), ValueError, "t must be"),
    ("uniformity-pairs", lambda: A.uniformity(_rz, max_pairs=0), ValueError, "max_pairs"),
    ("uniformity-seed", lambda: A.uniformity(_rz, seed="a"), TypeError, "seed"),
    ("uniformity-one", lambda: A.uniformity(_rz[:1]), ValueError, "at least 2"),
    ("knn-k-large", lambda: A.knn_accuracy(_rz, _ry, _rz, _ry, k=100), ValueError, "pass k <= 60"),
    ("knn-k-bool", lambda: A.knn_accuracy(_rz, _ry, _rz, _ry, k=True), ValueError, "k must be"),
    ("knn-metric", lambda: A.knn_accuracy(_rz, _ry, _rz, _ry, metric="l1"), ValueError, "'cosine' or 'euclidean'"),
    ("knn-train-all-ood", lambda: A.knn_accuracy(_rz, torch.full((60,), -1), _rz, _ry), ValueError, "no labelled rows"),
    ("knn-test-all-ood", lambda: A.knn_accuracy(_rz, _ry, _rz, torch.full((60,), -1)), ValueError, "no labelled"),
    ("knn-y-float", lambda: A.knn_accuracy(_rz, _ry + 0.5, _rz, _ry), TypeError, "integer class labels"),
    ("knn-y-2d", lambda: A.knn_accuracy(_rz, _ry[:, None], _rz, _ry), ValueError, "1 axes"),
    ("knn-nan", lambda: A.knn_accuracy(_rz * NAN, _ry, _rz, _ry), ValueError, "NaN"),
    ("knn-batch", lambda: A.knn_predict(_rz, _ry, _rz, batch_size=0), ValueError, "batch_size"),
    ("probe-C", lambda: A.linear_probe_accuracy(_rz, _ry, _rz, _ry, C=0), ValueError, "C must be"),
    ("probe-iter", lambda: A.linear_probe_accuracy(_rz, _ry, _rz, _ry, max_iter=0), ValueError, "max_iter"),
    ("probe-test-ood", lambda: A.linear_probe_accuracy(_rz, _ry, _rz, torch.full((60,), -1)), ValueError, "no labelled"),
    ("probe-dims", lambda: A.linear_probe_accuracy(_rz, _ry, _rz[:, :3], _ry), ValueError, "-d"),
    ("nc-one-class", lambda: A.neural_collapse(_rz, torch.zeros(60, dtype=torch.long)), ValueError, "2 classes"),
    ("nc-weight", lambda: A.neural_collapse(_rz, _ry, weight=torch.randn(2, 5)), ValueError, "weight must be"),
    ("nc-bias", lambda: A.neural_collapse(_rz, _ry, weight=torch.randn(3, 5), bias=torch.randn(4)), ValueError,
     "bias must be \\(3,\\)"),
    ("silhouette-points", lambda: A.silhouette(_rz, _ry, max_points=1), ValueError, "max_points"),
    ("silhouette-one-class", lambda: A.silhouette(_rz, torch.zeros(60, dtype=torch.long)), ValueError, "2 classes"),
    ("metrics-unlabelled", lambda: A.representation_metrics(_clf, Dataset(_rz), _zds), ValueError, "labelled"),
    ("metrics-numpy", lambda: A.representation_metrics(_clf, _rz.numpy(), _zds), TypeError, "wb.data.Dataset"),
    ("metrics-classifier", lambda: A.representation_metrics(_clf, _zds, _zds, classifier="fc"), ValueError,
     "'model', a pair"),
    ("table", lambda: A.representation_table([1, 2]), TypeError, "dict"),
    ("fs-n-way", lambda: A.fewshot_from_embeddings(_fz, _fy, n_way=0), ValueError, "n_way"),
    ("fs-too-many-ways", lambda: A.fewshot_from_embeddings(_fz, _fy, n_way=6), ValueError, "Lower n_way"),
    ("fs-temperature", lambda: A.fewshot_from_embeddings(_fz, _fy, temperature=0), ValueError, "temperature"),
    ("fs-iters", lambda: A.fewshot_from_embeddings(_fz, _fy, iters=-1), ValueError, "iters"),
    ("fs-normalize", lambda: A.fewshot_from_embeddings(_fz, _fy, normalize="l1"), ValueError, "'l2' or None"),
    ("fs-center", lambda: A.fewshot_from_embeddings(_fz, _fy, center=torch.zeros(3)), ValueError, "center must be"),
    ("fs-classes-absent", lambda: A.fewshot_from_embeddings(_fz, _fy, classes=[7, 8, 9, 10, 11]), ValueError,
     "do not occur"),
    ("fs-classes-dup", lambda: A.fewshot_from_embeddings(_fz, _fy, classes=[0, 0, 1, 2, 3]), ValueError, "twice"),
    ("fs-classes-ood", lambda: A.fewshot_from_embeddings(_fz, torch.where(_fy == 0, -1, _fy),
                                                         classes=[-1, 1, 2, 3, 4]), ValueError, "do not occur"),
    ("fs-classes-int", lambda: A.fewshot_from_embeddings(_fz, _fy, classes=3), TypeError, "list of class labels"),
    ("fs-y-float", lambda: A.fewshot_from_embeddings(_fz, _fy + 0.5), TypeError, "non-integer"),
    ("fs-nan", lambda: A.fewshot_from_embeddings(_fz * NAN, _fy), ValueError, "NaN"),
    ("fs-str", lambda: A.fewshot_from_embeddings("abc", _fy), TypeError, "numpy array of embeddings"),
    ("fs-transductive", lambda: A.fewshot_from_embeddings(_fz, _fy, transductive="yes"), TypeError, "transductive"),
    ("fs-seed", lambda: A.fewshot_from_embeddings(_fz, _fy, seed="a"), TypeError, "seed"),
    ("episodes-2d", lambda: A.sample_episodes(torch.zeros(5, 2)), ValueError, "flat"),
    ("proto-temp", lambda: A.prototype_classify(torch.randn(2, 3, 1, 4), torch.randn(2, 5, 4), transductive=True,
                                                temperature=0), ValueError, "temperature"),
    ("proto-shapes", lambda: A.prototype_classify(torch.randn(2, 3, 4), torch.randn(2, 5, 4)), ValueError,
     "\\(E, W, K, d\\)"),
    ("fewshot-eval-numpy", lambda: A.fewshot_eval(_clf, _rz.numpy()), TypeError, "fewshot_from_embeddings"),
    ("fewshot-eval-unlabelled", lambda: A.fewshot_eval(_clf, Dataset(_rz)), ValueError, "labelled"),
    ("predict-model", lambda: A.predict(None, _zds), TypeError, "nn.Module"),
    ("predict-numpy", lambda: A.predict(_clf, _rz.numpy()), TypeError, "Dataset or a tensor"),
    ("confusion-small", lambda: A.predict(_clf, _zds).confusion(1), ValueError, "n_classes must be an int >= "),
    ("accuracy-all-ood", lambda: A.predict(_clf, Dataset(_rz, torch.full((60,), -1))).accuracy, ValueError,
     "every label is -1"),
]


@_cases(REPRESENTATION)
def test_representation_and_fewshot_refuse(call, err, match):
    _check(call, err, match)


# --------------------------------------------------------------------------- diffusion quality / Gaussian
_grid = wb.data.load("gaussian_grid", n=500)
_pts = _grid.x
_den2 = wb.models.TimeMLP(dim=2)
_ref = A.gaussian_score(_grid, _ddpm)
_zero = torch.zeros(10, dtype=torch.long)

DIFFUSION = [
    ("flags-no-modes", lambda: A.hallucination_flags(_pts), ValueError, "centres"),
    ("flags-in-support", lambda: A.hallucination_flags(_pts, _grid, in_support=-1), ValueError, "in_support"),
    ("flags-gap", lambda: A.hallucination_flags(_pts, _grid, gap=0), ValueError, "gap"),
    ("flags-radii", lambda: A.hallucination_flags(_pts, _grid, in_support=30), ValueError, "below the gap radius"),
    ("flags-std", lambda: A.hallucination_flags(_pts, centres=_grid.meta["centres"], std=-1.0), ValueError, "std"),
    ("flags-dims", lambda: A.hallucination_flags(torch.randn(5, 3), _grid), ValueError, "coordinates"),
    ("flags-numpy", lambda: A.hallucination_flags(_pts.numpy(), _grid), TypeError, "tensor, a Dataset or a Trajectory"),
    ("flags-nan", lambda: A.hallucination_flags(_pts * NAN, _grid), ValueError, "NaN"),
    ("flags-1d", lambda: A.hallucination_flags(_pts[:, 0], _grid), ValueError, "x\\[:, None\\]"),
    ("flags-centres", lambda: A.hallucination_flags(_pts, centres=torch.zeros(3), std=0.1), ValueError, "\\(K, D\\)"),
    ("filter-keep", lambda: A.hallucination_filter(torch.rand(10), _zero, keep=0), ValueError, "keep"),
    ("filter-flags-float", lambda: A.hallucination_filter(torch.rand(10), torch.rand(10)), ValueError,
     "0 \\(in-support\\), 1 \\(hallucination\\) or 2"),
    ("filter-flags-5", lambda: A.hallucination_filter(torch.rand(10), torch.full((10,), 5)), ValueError, "flags"),
    ("filter-nan", lambda: A.hallucination_filter(torch.full((10,), NAN), _zero), ValueError, "NaN"),
    ("filter-2d", lambda: A.hallucination_filter(torch.rand(10, 2), torch.zeros(10, 2, dtype=torch.long)), ValueError,
     "\\(N,\\)"),
    ("filter-no-in-support", lambda: A.hallucination_filter(torch.rand(10), torch.ones(10, dtype=torch.long)),
     ValueError, "no in-support"),
    ("variance-type", lambda: A.trajectory_variance(torch.randn(3), sigma_max=0.1), TypeError, "Trajectory"),
    ("energy-one", lambda: A.energy_distance(_pts[:1], _pts), ValueError, "at least 2"),
    ("energy-nan", lambda: A.energy_distance(_pts * NAN, _pts), ValueError, "NaN"),
    ("energy-dims", lambda: A.energy_distance(_pts, torch.randn(9, 3)), ValueError, "features"),
    ("energy-seed", lambda: A.energy_distance(_pts, _pts, seed="a"), TypeError, "seed"),
    ("mmd-bandwidth", lambda: A.mmd(_pts, _pts, bandwidth=-1), ValueError, "bandwidth"),
    ("pr-k-0", lambda: A.precision_recall(_pts, _pts, k=0), ValueError, "k must be"),
    ("pr-k-float", lambda: A.precision_recall(_pts, _pts, k=2.5), TypeError, "k must be an int"),
    ("pr-dims", lambda: A.precision_recall(_pts, torch.randn(100, 3)), ValueError, "features"),
    ("quality-ref", lambda: A.sample_quality(_pts, None), TypeError, "reference"),
    ("quality-k", lambda: A.sample_quality(_pts, _pts, k=0), ValueError, "k must be"),
    ("gs-ddpm", lambda: A.gaussian_score(_grid, None), TypeError, "DDPM"),
    ("gs-kind", lambda: A.gaussian_score(_grid, _ddpm, kind="gmm"), ValueError, "valid: gaussian, mixture"),
    ("gs-numpy", lambda: A.gaussian_score(_pts.numpy(), _ddpm), TypeError, "Dataset or a tensor"),
    ("gs-components", lambda: A.gaussian_score(_grid, _ddpm, kind="mixture", n_components=True), ValueError,
     "n_components"),
    ("gs-max-points", lambda: A.gaussian_score(_grid, _ddpm, kind="empirical", max_points=0), ValueError, "max_points"),
    ("gs-reg", lambda: A.gaussian_score(_grid, _ddpm, reg=-1), ValueError, "reg"),
    ("gs-nan", lambda: A.gaussian_score(_pts * NAN, _ddpm), ValueError, "NaN"),
    ("gs-one", lambda: A.gaussian_score(_pts[:1], _ddpm), ValueError, "at least 2 points"),
    ("gs-1d", lambda: A.gaussian_score(_pts[:, 0], _ddpm), ValueError, "x\\[:, None\\]"),
    ("gs-all-ood", lambda: A.gaussian_score(Dataset(_pts, torch.full((500,), -1)), _ddpm, kind="mixture"), ValueError,
     "every label is -1"),
    ("gs-singleton-class", lambda: A.gaussian_score(Dataset(_pts[:3], torch.tensor([0, 1, 1])), _ddpm,
                                                    kind="mixture"), ValueError, "fewer than 2 samples"),
    ("gs-seed", lambda: A.gaussian_score(_grid, _ddpm, kind="empirical", seed="a"), TypeError, "seed"),
    ("gsm-weights", lambda: A.GaussianScoreModel(torch.zeros(2, 2), None, torch.tensor([1.0, -1.0]), _ddpm),
     ValueError, "weights"),
    ("gsm-not-psd", lambda: A.GaussianScoreModel(torch.zeros(1, 2), -torch.eye(2)[None], torch.ones(1), _ddpm),
     ValueError, "positive semi-definite"),
    ("gsm-asymmetric", lambda: A.GaussianScoreModel(torch.zeros(1, 2), torch.tensor([[[1.0, 0.5], [0.0, 1.0]]]),
                                                    torch.ones(1), _ddpm), ValueError, "symmetric"),
    ("gsm-kind", lambda: A.GaussianScoreModel(torch.zeros(1, 2), None, torch.ones(1), _ddpm, kind="foo"), ValueError,
     "valid: gaussian"),
    ("gsm-nan", lambda: A.GaussianScoreModel(torch.full((1, 2), NAN), None, torch.ones(1), _ddpm), ValueError, "NaN"),
    ("score-error-n", lambda: A.score_error(_den2, _ref, _ddpm, _grid, n=0), ValueError, "n must be"),
    ("score-error-t", lambda: A.score_error(_den2, _ref, _ddpm, _grid, t=[20]), ValueError, "0..9"),
    ("score-error-t-float", lambda: A.score_error(_den2, _ref, _ddpm, _grid, t=[2.5]), TypeError, "integer timesteps"),
    ("score-error-ref", lambda: A.score_error(_den2, None, _ddpm, _grid), TypeError, "reference must be"),
    ("score-error-den", lambda: A.score_error(None, _ref, _ddpm, _grid), TypeError, "denoiser must be"),
    ("score-error-seed", lambda: A.score_error(_den2, _ref, _ddpm, _grid, seed=-1), ValueError, "seed"),
]


@_cases(DIFFUSION)
def test_diffusion_quality_refuses(call, err, match):
    _check(call, err, match)


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_refuses(tmp_path):
    model = wb.models.MLP(4, (4,), 2)
    save, load = wb.save_checkpoint, wb.load_checkpoint
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        save(tmp_path / "a.safetensors", "model")
    with pytest.raises(TypeError, match="method must be a wb.methods method"):
        save(tmp_path / "a.safetensors", model, "cross_entropy")
    with pytest.raises(TypeError, match="path must be a file path"):
        save(None, model)
    with pytest.raises(ValueError, match="is a folder; pass a file path such as .*model.safetensors"):
        save(tmp_path, model)
    with pytest.raises(TypeError, match="JSON values"):
        save(tmp_path / "b.safetensors", model, extra={"a": object()})
    with pytest.raises(TypeError, match="extra must be a dict"):
        save(tmp_path / "b.safetensors", model, extra=[1])
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path.parent / f"{tmp_path.name}.tmp").exists()
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="is a folder"):
        load(tmp_path)
    (tmp_path / "junk.safetensors").write_text("junk")
    with pytest.raises(ValueError, match="damaged or not a safetensors file"):
        load(tmp_path / "junk.safetensors")
    ok = save(tmp_path / "ok.safetensors", model)
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        load(ok, device="gpu0")
    from safetensors.torch import save_file

    for i, header in enumerate(["not json", json.dumps({"format": "x"}), json.dumps({"model": {"config": {}}})]):
        p = tmp_path / f"h{i}.safetensors"
        save_file({"model.x": torch.zeros(1)}, str(p), metadata={"workbench": header})
        with pytest.raises(ValueError, match="damaged workbench header"):
            load(p)
