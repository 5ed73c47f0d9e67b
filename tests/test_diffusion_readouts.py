"""Reading a diffusion model: as a zero-shot classifier, as a feature extractor, and its Jacobian
on data from a union of subspaces. Golden values: diffusion_ii.md §13-7, §13-9."""

from __future__ import annotations

import pytest
import torch
from diffusion_oracles import GaussianClasses, half_abar_ddpm

import workbench as wb
from workbench.analyses.diffusion_classifier import _pair_errors


# ----------------------------------------------------------------------------- diffusion classifier
def test_classifier_timesteps_golden():
    s1, s2 = wb.analyses.classifier_timesteps(1000, [50, 500])
    assert s1.tolist() == list(range(11, 1000, 20)) and len(s2) == 450
    assert sorted(s1.tolist() + s2.tolist()) == list(range(1, 1000, 2))
    (only,) = wb.analyses.classifier_timesteps(50, [5])
    assert only.tolist() == [5, 15, 25, 35, 45]


def test_expected_class_errors_match_the_closed_form():
    ddpm = half_abar_ddpm()
    den = GaussianClasses(ddpm, [-1.0, 1.0], 0.5, [0.5, 0.5])
    n = 200_000
    g = torch.Generator().manual_seed(0)
    x = torch.full((1, 1), 0.2, dtype=torch.float64)
    noise = torch.randn(n, 1, generator=g, dtype=torch.float64)
    errs = [float(_pair_errors(den, ddpm, x, torch.tensor([[0, c]]).expand(n, 2), 0, noise, "l2", n).mean())
            for c in (0, 1)]
    assert errs == pytest.approx([0.9616, 0.4496], abs=6e-3)  # ᾱ = 0.5: class +1 explains 0.2 better


def test_diffusion_classifier_adaptive_elimination_and_cost():
    ddpm = wb.methods.DDPM(50, "linear")
    den = GaussianClasses(ddpm, [-1.0, 0.0, 1.0], 0.25, [1 / 3] * 3)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = (den.means[y] + 0.25 * torch.randn(300, generator=g, dtype=torch.float64))[:, None].float()
    data = wb.data.Dataset.from_arrays(x, y)
    res = wb.analyses.diffusion_classify(den, ddpm, data, n_samples=(5, 25), to_keep=(2, 1), seed=0)
    bayes = (torch.stack([(x[:, 0].double() - m).abs() for m in (-1.0, 0.0, 1.0)], 1).argmin(1) == y).float().mean()
    assert res.accuracy >= float(bayes) - 0.05
    # cost: 3 classes × 5 timesteps, then 2 classes × 20 new timesteps
    assert res.evaluations.unique().tolist() == [3 * 5 + 2 * 20] and res.mean_evaluations == 55
    assert torch.isinf(res.errors).sum(1).eq(1).all()  # one class eliminated after stage 1
    assert "accuracy" in repr(res)
    curve = wb.analyses.classifier_curve(den, ddpm, data, budgets=(1, 5), adaptive=dict(n_samples=(5, 25), to_keep=(2, 1)))
    assert curve.evaluations.tolist() == [3.0, 15.0] and curve.adaptive.mean_evaluations == 55
    unpaired = wb.analyses.diffusion_classify(den, ddpm, data, n_samples=(5,), to_keep=(1,), shared_noise=False)
    elbo = wb.analyses.diffusion_classify(den, ddpm, data, n_samples=(5,), to_keep=(1,), weighting="elbo")
    assert 0 < unpaired.accuracy <= 1 and 0 < elbo.accuracy <= 1
    with pytest.raises(ValueError, match="one entry per stage"):
        wb.analyses.diffusion_classify(den, ddpm, data, n_samples=(5, 10), to_keep=(1,))
    with pytest.raises(ValueError, match="n_classes"):
        wb.analyses.diffusion_classify(wb.models.TimeMLP(dim=1, hidden=8), ddpm, data)


# ----------------------------------------------------------------------------- diffusion features
def test_diffusion_features_hooks_pool_and_leave_the_model_alone():
    digits = wb.data.load("digits", n=120, seed=0)
    ddpm = wb.methods.DDPM(20)
    den = wb.models.TimeMLP(dim=64, hidden=32, n_layers=2, time_dim=8, n_classes=10, seed=0)
    den.train()
    before = {k: v.clone() for k, v in den.state_dict().items()}
    f = wb.analyses.diffusion_features(den, ddpm, digits, 5, seed=0)
    assert list(f.features) == ["inp", "blocks.0", "blocks.1"] and f["blocks.1"].shape == (120, 32)
    assert den.training and all(torch.equal(v, den.state_dict()[k]) for k, v in before.items())
    assert not den.inp._forward_hooks
    # deterministic given the seed; features = the hidden state of the null-label forward pass
    f2 = wb.analyses.diffusion_features(den, ddpm, digits, 5, layers="inp", seed=0)
    assert torch.equal(f2["inp"], f["inp"])
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(digits.x.shape, generator=gen)
    x_t = ddpm.add_noise(digits.x, noise, 5)
    with torch.no_grad():
        h = den.inp(den.embed(x_t, torch.full((120,), 5), None, "TimeMLP"))
    torch.testing.assert_close(f["inp"], h)
    with pytest.raises(ValueError, match="no modules named"):
        wb.analyses.diffusion_features(den, ddpm, digits, 5, layers=["nope"])

    class Conv(torch.nn.Module):  # a user's 4-D feature maps are pooled
        def __init__(self):
            super().__init__()
            self.c = torch.nn.Conv2d(1, 3, 3, padding=1)

        def forward(self, x, t):
            return self.c(x).mean(1, keepdim=True)

    fc = wb.analyses.diffusion_features(Conv(), ddpm, digits, 5, layers=["c"], pool=2)
    assert fc["c"].shape == (120, 12)


def test_probe_grid_shapes_and_best():
    digits = wb.data.load("digits", n=200, seed=0)
    tr, te = digits.split(0.7, seed=0)
    ddpm = wb.methods.DDPM(20)
    den = wb.models.TimeMLP(dim=64, hidden=16, n_layers=1, time_dim=8, seed=0)
    pg = wb.analyses.probe_grid(den, ddpm, tr, te, [0, 10, 19], max_iter=100)
    assert pg.accuracy.shape == (3, 2) and pg.layers == ("inp", "blocks.0")
    assert 0 <= pg.accuracy.min() and pg.accuracy.max() <= 1 and 0.5 < pg.input_accuracy <= 1
    t, layer, acc = pg.best()
    assert acc == pg.accuracy.max() and "ProbeGrid" in repr(pg)
    # heavy noise destroys the information a linear probe can read
    assert pg.accuracy[0].max() > pg.accuracy[2].max()


# ----------------------------------------------------------------------------- subspaces
def test_molrg_denoiser_golden_and_jacobian_rank():
    ddpm = half_abar_ddpm()
    # VE σ = 1 at ᾱ = 0.5: U1 = e1, U2 = e2 in R³, x = [1, 0.5, 0.2]
    den = wb.analyses.MoLRGDenoiser(torch.eye(3)[:, :2].T.reshape(2, 3, 1), ddpm, scale=1.0)
    x_ve = torch.tensor([[1.0, 0.5, 0.2]])
    x0 = den.x0(x_ve * 0.5**0.5, torch.tensor([0]))
    torch.testing.assert_close(x0, torch.tensor([[0.273369, 0.113315, 0.0]]), atol=1e-6, rtol=0)
    # learned-denoiser view on a subspaces set: the optimal denoiser's Jacobian has rank d at low noise
    ds = wb.data.load("subspaces", n=300, seed=0, dim=8, k=2, d=2)
    assert ds.meta["bases"].shape == (2, 8, 2)
    B = ds.meta["bases"]
    torch.testing.assert_close(B[0].T @ B[1], torch.zeros(2, 2), atol=1e-6, rtol=0)  # orthogonal subspaces
    resid = ds.x - torch.einsum("nij,nkj,nk->ni", B[ds.y], B[ds.y], ds.x)
    assert resid.abs().max() < 1e-5  # every point lies in its subspace
    d2 = wb.methods.DDPM(100, "linear")
    opt = wb.analyses.molrg_denoiser(ds, d2)
    rec = wb.analyses.jacobian_subspaces(opt, d2, ds, [2, 60], n_points=16, name="optimal")
    assert rec.singular_values.shape == (2, 16, 8) and rec.d == 2
    assert (rec.rank[0] == 2).all() and rec.angle[0].max() < 1.0  # low noise: rank d, the true subspace
    assert rec.summary()["rank"][1] >= 2 and "SubspaceRecovery" in repr(rec)
    assert wb.analyses.numerical_rank(torch.tensor([3.0, 4.0, 0.0, 0.0])).item() == 2
    # a trained net: the machinery runs on it and leaves it as it was
    net = wb.models.TimeMLP(dim=8, hidden=16, n_layers=1, time_dim=8, seed=0)
    r2 = wb.analyses.jacobian_subspaces(net, d2, ds, [5], n_points=4)
    assert r2.rank.shape == (1, 4) and torch.isfinite(r2.angle).all()
    with pytest.raises(ValueError, match="subspaces"):
        wb.analyses.molrg_denoiser(wb.data.load("moons", n=10), d2)
