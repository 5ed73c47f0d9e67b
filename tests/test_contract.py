"""The public contract of DESIGN.md section 4, exercised as written (tiny sizes)."""

import numpy as np
import pytest
import torch

import workbench as wb


@pytest.fixture(scope="module")
def digits_model():
    digits = wb.data.load("digits")
    train, test = digits.split(0.8, seed=0)
    model = wb.models.MLP(in_dim=64, hidden=(32, 32), out_dim=10, seed=0)
    method = wb.methods.CrossEntropy()
    hist = wb.fit(model, method, train, steps=60, lr=1e-3, batch_size=256, optimizer="adam", seed=0,
                  callbacks=[], progress=False)
    return digits, train, test, model, method, hist


def test_data_contract():
    assert wb.pick_device().type in ("cpu", "cuda")
    ds = wb.data.load("moons", n=2000, seed=0)
    assert isinstance(ds, wb.data.Dataset) and ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
    train, test = ds.split(0.8, seed=0)
    assert len(train) == 1600 and len(test) == 400
    for name in ["moons", "circles", "gaussians8", "gaussian_grid", "swiss_roll", "spirals",
                 "checkerboard", "digits", "mnist1d"]:
        assert name in wb.data.NAMES
    id_train, id_test, ood_test = wb.data.ood_split(wb.data.load("digits"), ood_classes=[8, 9], seed=0)
    assert (ood_test.y == -1).all() and (id_train.y >= 0).all()
    user = wb.data.Dataset.from_arrays(np.zeros((4, 3)), np.array([0, 1, 0, 1]))
    assert len(user) == 4


def test_models_and_methods_contract():
    model = wb.models.MLP(in_dim=64, hidden=(128, 128), out_dim=10)
    x = torch.rand(3, 1, 8, 8)
    assert model.head(model.features(x)).shape == (3, 10)
    denoiser = wb.models.TimeMLP(dim=2)
    assert denoiser(torch.randn(5, 2), torch.tensor([0, 1, 2, 3, 4])).shape == (5, 2)
    wb.methods.CrossEntropy()
    wb.methods.SupCon(temperature=0.1)
    wb.methods.PALM(n_classes=10, n_prototypes=6)
    wb.methods.KnowledgeDistillation(model, temperature=4.0, alpha=0.9)
    wb.methods.DDPM(n_steps=100, schedule="cosine")


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "sam"])
def test_fit_optimizers(optimizer):
    train = wb.data.load("moons", n=256, seed=0)
    model = wb.models.MLP(in_dim=2, hidden=(8,), out_dim=2, seed=0)
    hist = wb.fit(model, wb.methods.CrossEntropy(), train, steps=5, lr=1e-2, batch_size=64,
                  optimizer=optimizer, seed=0, progress=False)
    assert isinstance(hist, wb.History) and hist.status == "completed" and len(hist) == 5


def test_analyses_contract(digits_model):
    _, _, test, model, method, _ = digits_model
    z = wb.analyses.embed(model, test)
    assert z.shape == (len(test), 32)
    for kind in ("pca", "tsne"):
        proj = wb.analyses.project(z, method=kind, seed=0)
        assert proj.coords.shape == (len(test), 2)
    land = wb.analyses.loss_slice_2d(model, method, test, span=1.0, steps=5, seed=0, directions=None,
                                     normalization="filter")
    assert land.loss.shape == (5, 5) and len(land.alphas) == 5 and len(land.betas) == 5
    d1 = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    d2 = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    own = wb.analyses.loss_slice_2d(model, method, test, steps=3, directions=(d1, d2), normalization=None)
    assert own.loss.shape == (3, 3)
    line = wb.analyses.loss_slice_1d(model, method, test, steps=5, seed=0)
    assert line.loss.shape == (5,)
    spec = wb.analyses.hessian_eigs(model, method, test, k=5)
    assert spec.eigenvalues.shape == (5,) and torch.all(spec.eigenvalues[:-1] >= spec.eigenvalues[1:])
    tr = wb.analyses.hessian_trace(model, method, test, seed=0)
    assert np.isfinite(float(tr.trace)) and float(tr.stderr) >= 0


def test_diffusion_contract():
    data = wb.data.load("moons", n=256, seed=0)
    denoiser = wb.models.TimeMLP(dim=2, hidden=32, seed=0)
    ddpm = wb.methods.DDPM(n_steps=20, schedule="linear")
    wb.fit(denoiser, ddpm, data, steps=5, progress=False)
    for sampler in ("ddpm", "ddim"):
        traj = wb.analyses.sample_trajectory(denoiser, ddpm, n=64, sampler=sampler, seed=0)
        assert traj.x.shape[1:] == (64, 2) and traj.x0_pred.shape[1:] == (64, 2)
        assert torch.equal(traj.samples, traj.x[-1])
    full = wb.analyses.sample_trajectory(denoiser, ddpm, n=8, sampler="ddpm", seed=0)
    assert full.x.shape == (21, 8, 2)  # (T+1, N, D)


def test_ood_contract(digits_model):
    digits, _, _, _, _, _ = digits_model
    id_train, id_test, ood_test = wb.data.ood_split(digits, ood_classes=[8, 9], seed=0)
    model = wb.models.MLP(in_dim=64, hidden=(32,), out_dim=8, seed=0)
    wb.fit(model, wb.methods.CrossEntropy(), id_train, steps=60, progress=False)
    det = wb.ood.Energy().fit(model, id_train)
    s_id, s_ood = det.predict(model, id_test), det.predict(model, ood_test)
    m = wb.ood.metrics(s_id, s_ood)
    assert 0.5 < m.auroc <= 1 and 0 <= m.fpr95 <= 1 and m.convention == "id-positive"


def test_runs_contract(digits_model, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS", str(tmp_path / "runs"))
    _, _, _, model, method, hist = digits_model
    run_id = wb.runs.save(model, method, hist, name="palm-digits")
    model2, method2, hist2 = wb.runs.load(run_id)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    assert hist2.records == hist.records
    listing = wb.runs.list()
    assert run_id in set(listing["id"])


def test_views_contract(digits_model):
    _, _, test, model, method, hist = digits_model
    proj = wb.analyses.project(wb.analyses.embed(model, test), seed=0)
    wb.widgets.EmbeddingView(proj, labels=test.y)
    palm = wb.methods.PALM(n_classes=10, n_prototypes=2, top_k=1, dim=8)
    palm.setup(model)
    wb.widgets.PrototypeView(palm, model, test)
    ddpm = wb.methods.DDPM(n_steps=10, schedule="linear")
    traj = wb.analyses.sample_trajectory(wb.models.TimeMLP(dim=2, hidden=16, seed=0), ddpm, n=16, seed=0)
    wb.widgets.TrajectoryView(traj)
    land = wb.analyses.loss_slice_2d(model, method, test, steps=5, seed=0)
    wb.widgets.LandscapeView(land)
    wb.widgets.LiveTraining()
    wb.widgets.CompareView([(model, method, hist)])
