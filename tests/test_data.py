import numpy as np
import pytest
import torch

import workbench as wb
from workbench.data import Dataset

TOYS = ["moons", "circles", "gaussians8", "gaussian_grid", "swiss_roll", "spirals", "checkerboard"]


@pytest.mark.parametrize("name", TOYS)
def test_toy_shapes_dtypes_and_determinism(name):
    ds = wb.data.load(name, n=300, seed=1)
    assert ds.x.shape == (300, 2) and ds.x.dtype == torch.float32
    assert ds.y.shape == (300,) and ds.y.dtype == torch.int64
    assert ds.kind == "points" and ds.n_classes >= 2
    assert torch.isfinite(ds.x).all()
    # unit scale (centred, one global scale)
    assert 0.5 < float(ds.x.std()) < 1.5
    again = wb.data.load(name, n=300, seed=1)
    assert torch.equal(ds.x, again.x) and torch.equal(ds.y, again.y)
    other = wb.data.load(name, n=300, seed=2)
    assert not torch.equal(ds.x, other.x)


def test_digits():
    ds = wb.data.load("digits")
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == torch.float32
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    assert ds.y.dtype == torch.int64 and ds.n_classes == 10 and ds.kind == "image"
    assert ds.flat.shape == (1797, 64)
    small = wb.data.load("digits", n=500, seed=0)
    assert 480 <= len(small) <= 520 and small.name == "digits"


def test_mnist1d():
    ds = wb.data.load("mnist1d", n=1000, seed=0)
    assert ds.x.shape == (1000, 1, 40) and ds.x.dtype == torch.float32
    assert ds.kind == "signal" and ds.n_classes == 10
    assert torch.bincount(ds.y).tolist() == [100] * 10
    assert torch.equal(ds.x, wb.data.load("mnist1d", n=1000, seed=0).x)
    # classes are distinguishable: class means differ by more than the noise
    means = torch.stack([ds.x[ds.y == c, 0].mean(0) for c in range(10)])
    assert torch.cdist(means, means).add(torch.eye(10) * 99).min() > 0.3


def test_gaussian_grid_matches_paper_recipe():
    ds = wb.data.load("gaussian_grid", n=2500, seed=0)
    assert ds.meta["centres"].shape == (25, 2)
    assert ds.meta["spacing"] == pytest.approx(2 / np.sqrt(0.05**2 + 8), rel=1e-6)  # 0.707
    assert ds.meta["std"] == pytest.approx(0.05 / np.sqrt(0.05**2 + 8), rel=1e-6)
    d = (ds.x - ds.meta["centres"][ds.y]).norm(dim=1)
    assert float(d.max()) < 6 * ds.meta["std"] * 1.5


def test_split_is_stratified_and_seeded():
    ds = wb.data.load("digits")
    a, b = ds.split(0.8, seed=0)
    assert len(a) + len(b) == len(ds)
    ca, cb = torch.bincount(a.y, minlength=10), torch.bincount(b.y, minlength=10)
    assert torch.all((ca.float() / (ca + cb) - 0.8).abs() < 0.02)
    a2, _ = ds.split(0.8, seed=0)
    assert torch.equal(a.x, a2.x)
    with pytest.raises(ValueError, match="frac"):
        ds.split(1.5)


def test_ood_split():
    ds = wb.data.load("digits")
    tr, te, ood = wb.data.ood_split(ds, ood_classes=[8, 9], seed=0)
    assert set(tr.y.tolist()) == set(range(8)) and set(te.y.tolist()) == set(range(8))
    assert (ood.y == -1).all() and set(ood.meta["original_labels"].tolist()) == {8, 9}
    assert len(tr) + len(te) + len(ood) == len(ds)
    tr2, _, _ = wb.data.ood_split(ds, ood_classes=[0, 3], seed=0)
    assert tr2.meta["label_map"] == [1, 2, 4, 5, 6, 7, 8, 9] and int(tr2.y.max()) == 7
    with pytest.raises(ValueError, match="do not occur"):
        wb.data.ood_split(ds, ood_classes=[12])


def test_loader_batches_cover_data_once():
    ds = wb.data.load("moons", n=103)
    seen = torch.cat([x for x, _ in ds.loader(10, shuffle=True, seed=3)])
    assert seen.shape == (103, 2)
    assert torch.equal(seen.sort(0).values, ds.x.sort(0).values)


def test_from_arrays_numpy_and_torch():
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 4
    ds = Dataset.from_arrays(x, y)
    assert ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64 and ds.n_classes == 4
    ds2 = Dataset.from_arrays(torch.zeros(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1]))
    assert ds2.kind == "image"
    assert Dataset.from_arrays(x).y is None
    assert Dataset.from_arrays(x, y.astype(float)).y.dtype == torch.int64  # whole-number floats are labels


@pytest.mark.parametrize(
    "x, y, err, match",
    [
        (np.zeros((0, 3)), None, ValueError, "empty"),
        (np.array([[1.0, np.nan]]), None, ValueError, "NaN"),
        (np.zeros(5), None, ValueError, "one axis"),
        (np.zeros((4, 2)), np.array([0.5, 1, 2, 3]), TypeError, "integer"),
        (np.zeros((4, 2)), np.array([0, 1, 2]), ValueError, "4 samples but y has 3"),
        (np.zeros((4, 2)), np.zeros((4, 1)), ValueError, "flat"),
        (np.array([["a", "b"]], dtype=object), None, TypeError, "numeric"),
        ("not an array", None, TypeError, "numpy array or a torch tensor"),
        (np.zeros((4, 2), dtype=bool), None, TypeError, "booleans"),
        (np.zeros((3, 2)), np.array([0, -2, 1]), ValueError, "below -1"),
    ],
)
def test_from_arrays_errors(x, y, err, match):
    with pytest.raises(err, match=match):
        Dataset.from_arrays(x, y)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="valid names: moons, circles"):
        wb.data.load("mnist")
    with pytest.raises(ValueError, match="valid options"):
        wb.data.load("moons", bogus=1)
    with pytest.raises(ValueError, match="positive int"):
        wb.data.load("moons", n=0)


def test_dataset_direct_construction_checks_dtypes():
    with pytest.raises(TypeError, match="floating point"):
        Dataset(torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="int64"):
        Dataset(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="kind"):
        Dataset(torch.zeros(3, 2), kind="graph")
