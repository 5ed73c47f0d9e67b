"""DMD (with f-divergence weights), improved consistency training, the difficulty curriculum.

Golden values from /work/shared/references/diffusion_ii.md §13-4/5/6/10.
"""

from __future__ import annotations

import math

import pytest
import torch

import workbench as wb
from workbench.methods.consistency_training import (
    ict_curriculum,
    karras_sigmas,
    lognormal_pmf,
    pseudo_huber,
)
from workbench.methods.dmd import dmd_gradient, f_divergence_weight, ratio_from_logits


class Gaussian1D(torch.nn.Module):
    """Exact ε-predictor of the 1-D data N(m, s²) under a VP DDPM."""

    def __init__(self, ddpm, m, s):
        super().__init__()
        self.ddpm, self.m, self.s = ddpm, float(m), float(s)
        self.dim = 1

    def x0(self, x_t, t):
        a = self.ddpm.abar(torch.as_tensor(t).expand(len(x_t))).double()[:, None]
        sig2 = (1 - a) / a  # variance-exploding σ²
        x = x_t.double() / a.sqrt()
        return self.m + self.s**2 / (self.s**2 + sig2) * (x - self.m)

    def forward(self, x_t, t):
        a = self.ddpm.abar(torch.as_tensor(t).expand(len(x_t))).double()[:, None]
        return ((x_t.double() - a.sqrt() * self.x0(x_t, t)) / (1 - a).sqrt()).to(x_t.dtype)


class Affine(torch.nn.Module):
    """A generator x = a + b z that ignores t (read as x0)."""

    def __init__(self, a=0.0, b=0.8):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(torch.tensor(a)), torch.nn.Parameter(torch.tensor(b))
        self.dim = 1

    def forward(self, z, t):
        return self.a + self.b * z


# ----------------------------------------------------------------------------- DMD
def test_dmd_gradient_golden_ve_numbers():
    sigma, z, eps = 0.7, 0.3, -0.5
    x = torch.tensor([[0.0 + 0.8 * z]])
    x_t = x + sigma * eps
    mu = lambda m, s: m + s**2 / (s**2 + sigma**2) * (x_t - m)  # noqa: E731
    mu_real, mu_fake = mu(1.0, 0.5), mu(0.0, 0.8)
    assert float(x_t) == pytest.approx(-0.11) and float(mu_real) == pytest.approx(0.625)
    assert float(mu_fake) == pytest.approx(-0.0623009, abs=1e-7)
    assert float(dmd_gradient(x, mu_real, mu_fake)) == pytest.approx(-1.7851971, abs=1e-6)


def _dmd_setup(weighting="dmd"):
    # a DDPM whose t = 0 has VE σ = 0.7: ᾱ = 1/(1 + 0.49)
    abar = 1 / 1.49
    ddpm = wb.methods.DDPM(2, "linear", beta_start=1 - abar, beta_end=0.9)
    teacher, fake = Gaussian1D(ddpm, 1.0, 0.5), Gaussian1D(ddpm, 0.0, 0.8)
    return ddpm, wb.methods.DMD(teacher, ddpm, fake, regression=0.0, weighting=weighting)


def test_dmd_loss_gradient_equals_the_hand_computed_score_difference():
    ddpm, dmd = _dmd_setup()
    gen = Affine()
    z, t, eps = torch.tensor([[0.3]]), torch.tensor([0]), torch.tensor([[-0.5]])
    x = dmd.generate(gen, z)
    grad = dmd.dm_gradient(x, t, eps)
    assert float(grad) == pytest.approx(-1.7851971, abs=1e-5)  # the golden VE numbers, through the VP DDPM
    loss = 0.5 * torch.nn.functional.mse_loss(x, (x - grad).detach())
    ga, gb = torch.autograd.grad(loss, [gen.a, gen.b])
    assert float(ga) == pytest.approx(-1.7851971, abs=1e-5) and float(gb) == pytest.approx(-1.7851971 * 0.3, abs=1e-5)


def test_dmd_snr_weighting_is_the_kl_gradient_in_expectation():
    """E[ᾱ/(1−ᾱ)(μ_fake − μ_real)] = ∂KL(q_σ‖p_σ)/∂a and E[... z] = ∂KL/∂b (Gaussians, §13-4)."""
    ddpm, dmd = _dmd_setup("snr")
    gen = Affine()
    g = torch.Generator().manual_seed(0)
    n = 2_000_000
    z, eps = torch.randn(n, 1, generator=g, dtype=torch.float64), torch.randn(n, 1, generator=g, dtype=torch.float64)
    x = (0.0 + 0.8 * z)
    grad = dmd.dm_gradient(x, torch.zeros(n, dtype=torch.long), eps)
    assert float(grad.mean()) == pytest.approx(-1.351351, abs=4e-3)
    assert float((grad * z).mean()) == pytest.approx(0.373116, abs=4e-3)
    del gen


def test_f_divergence_weights_golden():
    r = torch.tensor([0.5, 1.0, 2.0, 4.0])
    table = {"kl": [0.5, 1, 2, 4], "js": [0.333333, 0.5, 0.666667, 0.8], "sf": [0.666667, 0.5, 0.333333, 0.2],
             "sh": [0.707107, 1, 1.414214, 2], "jf": [1.5, 2, 3, 5], "neyman": [2, 1, 0.5, 0.25], "rkl": [1, 1, 1, 1]}
    for name, want in table.items():
        torch.testing.assert_close(f_divergence_weight(r, name), torch.tensor(want, dtype=torch.float32), atol=1e-6, rtol=0)
    h = f_divergence_weight(r, "js")
    torch.testing.assert_close(h / h.mean(), torch.tensor([0.579710, 0.869565, 1.159420, 1.391304]), atol=1e-6, rtol=0)
    torch.testing.assert_close(ratio_from_logits(torch.tensor([-12.0, 0.0, 3.5])), torch.tensor([0.1, 1.0, 20.0]))
    with pytest.raises(ValueError, match="valid"):
        f_divergence_weight(r, "tv")


def test_dmd_trains_a_one_and_few_step_generator_and_samples():
    ds = wb.data.load("gaussians8", n=256, seed=0)
    ddpm = wb.methods.DDPM(20, "linear")
    teacher = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, seed=0)
    wb.fit(teacher, ddpm, ds, steps=20, batch_size=128, progress=False)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    for kw in (dict(), dict(student_steps=2, divergence="js", regression=0.0)):
        gen = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, seed=1)
        dmd = wb.methods.DMD(teacher, ddpm, n_pairs=64, ode_steps=5, **kw)
        h = wb.fit(gen, dmd, ds, steps=6, batch_size=64, progress=False)
        assert {"dm", "fake_dsm"} <= set(h.records[-1])
        assert ("regression" in h.records[-1]) == ("regression" not in kw)
        assert ("discriminator" in h.records[-1]) == ("divergence" in kw)
        for k in (1, 2):
            tr = wb.analyses.sample_trajectory(gen, dmd, n=16, steps=k, seed=0)
            assert tr.steps == k and tr.sampler == "few-step" and torch.isfinite(tr.samples).all()
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert isinstance(dmd.discriminator, wb.models.TimeClassifier) and dmd.config["discriminator"] is dmd.discriminator
    with pytest.raises(ValueError, match="divergence"):
        wb.methods.DMD(teacher, ddpm, divergence="tv")


# ----------------------------------------------------------------------------- iCT
def test_ict_golden_schedule_grid_pmf_weights_and_distance():
    assert [ict_curriculum(k, 400_000) for k in range(0, 400_000, 50_000)] == [11, 21, 41, 81, 161, 321, 641, 1281]
    sig = karras_sigmas(11)
    want = [0.002, 0.016721, 0.085087, 0.318283, 0.965417, 2.515219, 5.838948, 12.381576, 24.408342, 45.313734, 80]
    torch.testing.assert_close(sig, torch.tensor(want, dtype=torch.float64), rtol=2e-6, atol=1e-6)
    pmf = [0.062633, 0.181737, 0.245501, 0.213494, 0.142446, 0.080605, 0.041080, 0.019580, 0.008944, 0.003980]
    torch.testing.assert_close(lognormal_pmf(sig), torch.tensor(pmf, dtype=torch.float64), atol=2e-6, rtol=0)
    lam = [67.931307, 14.627058, 4.288237, 1.545276, 0.645244, 0.300867, 0.152844, 0.083148, 0.047835, 0.028830]
    torch.testing.assert_close(1 / (sig[1:] - sig[:-1]), torch.tensor(lam, dtype=torch.float64), rtol=0, atol=1e-6)
    c = 0.00054 * math.sqrt(2)
    d = pseudo_huber(torch.tensor([[0.01, -0.02]]), torch.zeros(1, 2), c)
    assert float(d) == pytest.approx(0.0216100, abs=1e-6)


def test_ict_boundary_sampling_and_curriculum_progress():
    ct = wb.methods.ConsistencyTraining(total_steps=80, sigma_max=20.0, sigma_data=1.0)
    den = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, seed=0)
    x = torch.randn(8, 2)
    out = den(x, torch.zeros(8, dtype=torch.long))
    torch.testing.assert_close(ct.f(out, x, torch.full((8,), 0.002)), x)  # f(x, σ_min) = x
    assert ct.n_steps == 1281 and ct.timesteps(2).tolist() == [1280, 640]
    assert float(ct.sigma(torch.tensor(1280))) == pytest.approx(20 / math.sqrt(401))
    ds = wb.data.load("moons", n=256, seed=0)
    h = wb.fit(den, ct, ds, steps=80, batch_size=64, progress=False)
    n_int = h.series("n_intervals")
    assert n_int[0] == 10 and n_int[-1] == 1280 and (torch.diff(torch.tensor(n_int)) >= 0).all()
    assert int(ct.step_count) == 80
    ct.eval()
    ct.loss(den, (ds.x[:8], None))
    assert int(ct.step_count) == 80  # evaluation does not advance the curriculum
    for k in (1, 2, 4):
        tr = wb.analyses.sample_trajectory(den, ct, n=16, steps=k, seed=0)
        assert torch.isfinite(tr.samples).all() and tr.steps == k
    with pytest.raises(ValueError, match="power of two"):
        wb.methods.ConsistencyTraining(10, s0=10, s1=300)


# ----------------------------------------------------------------------------- curriculum
def test_curriculum_stages_golden_and_pacing():
    cur = wb.methods.DifficultyCurriculum(wb.methods.DDPM(1000, "linear"), n_clusters=20)
    assert [cur.t_range(n) for n in (1, 2, 20)] == [(950, 1000), (900, 1000), (0, 1000)]
    anti = wb.methods.DifficultyCurriculum(wb.methods.DDPM(1000, "linear"), n_clusters=20, direction="hard_to_easy")
    assert anti.t_range(1) == (0, 50)
    fixed = wb.methods.DifficultyCurriculum(wb.methods.DDPM(100, "linear"), n_clusters=4, pacing="fixed", stage_steps=5)
    den = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, seed=0)
    ds = wb.data.load("moons", n=128, seed=0)
    h = wb.fit(den, fixed, ds, steps=22, batch_size=32, progress=False)
    assert h.series("stage").tolist() == [1.0] * 5 + [2.0] * 5 + [3.0] * 5 + [4.0] * 7
    assert h.series("t_low").tolist()[0] == 75 and h.series("t_low").tolist()[-1] == 0
    # adaptive: a loss that stops improving advances after `patience` steps
    ad = wb.methods.DifficultyCurriculum(wb.methods.DDPM(100, "linear"), n_clusters=4, patience=3, smoothing=0.0)
    ad.train()
    for v in [1.0, 0.9, 0.95, 0.95, 0.95]:
        ad._pace(torch.tensor(v))
    assert int(ad.stage) == 2 and int(ad.since_best) == 0
    ad.eval()
    ad.loss(den, (ds.x[:8], None))
    assert int(ad.stage) == 2
    with pytest.raises(ValueError, match="direction"):
        wb.methods.DifficultyCurriculum(wb.methods.DDPM(10), n_clusters=5, direction="up")


def test_new_methods_round_trip_through_checkpoints(tmp_path):
    pairs = [(wb.models.TimeMLP(dim=2, hidden=8, n_layers=1, n_classes=3, seed=0), wb.methods.ConditionalDDPM(10, p_uncond=0.3)),
             (wb.models.TokenDenoiser(16, 3, hidden=8, n_layers=1, seed=0), wb.methods.D3PM(2, 5, "absorbing")),
             (wb.models.TimeMLP(dim=2, hidden=8, n_layers=1, seed=0), wb.methods.ConsistencyTraining(100, sigma_max=20.0))]
    for model, method in pairs:
        wb.save_checkpoint(tmp_path / "ck", model, method)
        m2, me2 = wb.load_checkpoint(tmp_path / "ck")[:2]
        assert type(me2) is type(method) and me2.config == method.config
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), m2.state_dict().values()))
