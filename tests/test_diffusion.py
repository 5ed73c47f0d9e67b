"""DDPM/DDIM schedules and steps, trajectories, Gaussian scores, hallucination flags, quality, CD."""

import copy
import math

import pytest
import torch

import workbench as wb
from workbench.analyses import diffusion_gaussian as dg
from workbench.analyses import diffusion_quality as dq
from workbench.analyses.diffusion import Trajectory, sample_trajectory, score_field
from workbench.methods.consistency import ConsistencyDistillation
from workbench.methods.ddpm import DDPM, make_betas


def tiny_denoiser(dim=2, seed=0):
    return wb.models.TimeMLP(dim=dim, hidden=8, n_layers=1, time_dim=8, input_embedding=None, seed=seed)


# --------------------------------------------------------------------------- schedules
def test_linear_schedule_matches_ddpm_at_T1000_and_scales_for_short_chains():
    b = make_betas(1000, "linear")
    assert float(b[0]) == pytest.approx(1e-4) and float(b[-1]) == pytest.approx(0.02)
    short = DDPM(n_steps=100, schedule="linear")
    assert float(short.betas[0]) == pytest.approx(1e-3) and float(short.betas[-1]) == pytest.approx(0.2)
    assert float(short.alphas_cumprod[-1]) < 1e-4  # pure noise at the end
    custom = DDPM(1000, "linear", beta_start=1e-3, beta_end=0.2)
    assert float(custom.sigmas[0]) == pytest.approx(math.sqrt(1e-3), rel=1e-5)


def test_cosine_schedule_closed_form():
    T = 50
    d = DDPM(n_steps=T, schedule="cosine")
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 10, 25, 48):
        assert float(d.alphas_cumprod[t]) == pytest.approx(f((t + 1) / T) / f(0), rel=1e-5)
    assert float(d.betas[-1]) == pytest.approx(0.999)
    assert torch.allclose(d.alphas_cumprod, torch.cumprod(1 - d.betas.double(), 0).float(), rtol=1e-5)


def test_schedules_are_buffers():
    d = DDPM(20)
    assert {"betas", "alphas_cumprod"} <= set(d.state_dict())
    assert d.needs_labels is False
    assert "DDPM(n_steps=20" in repr(d)


def test_timestep_spacings():
    d = DDPM(10)
    assert d.timesteps(5, "trailing").tolist() == [9, 7, 5, 3, 1]
    assert d.timesteps(5, "leading").tolist() == [8, 6, 4, 2, 0]
    assert d.timesteps(4, "linspace").tolist() == [9, 6, 3, 0]
    assert d.timesteps().tolist() == list(range(9, -1, -1))
    with pytest.raises(ValueError, match="spacing"):
        d.timesteps(5, "middle")
    with pytest.raises(ValueError, match="steps must be"):
        d.timesteps(11)


# --------------------------------------------------------------------------- forward process
def test_add_noise_closed_form():
    d = DDPM(10, "linear", beta_start=0.01, beta_end=0.2)
    x0 = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    eps = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    t = torch.tensor([3, 7])
    abar = torch.cumprod(1 - torch.linspace(1e-2, 0.2, 10, dtype=torch.float64), 0)
    want = abar[t].sqrt()[:, None] * x0.double() + (1 - abar[t]).sqrt()[:, None] * eps.double()
    assert torch.allclose(d.add_noise(x0, eps, t).double(), want, atol=1e-6)
    # scalar t and images broadcast
    img = torch.ones(2, 1, 2, 2)
    out = d.add_noise(img, torch.zeros_like(img), 4)
    assert torch.allclose(out, torch.full_like(img, float(abar[4].sqrt())), atol=1e-6)
    with pytest.raises(ValueError, match="noise has shape"):
        d.add_noise(x0, eps[:1], 3)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_prediction_conversions_round_trip(prediction):
    d = DDPM(20, "cosine", prediction=prediction)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    t = torch.tensor([0, 3, 7, 11, 15, 18])
    x_t = d.add_noise(x0, eps, t)
    out = d.target(x0, eps, t)
    x0_hat, eps_hat = d.predict_x0_eps(out, x_t, t)
    assert torch.allclose(x0_hat, x0, atol=1e-4) and torch.allclose(eps_hat, eps, atol=1e-4)
    assert torch.allclose(d.output_from_eps(eps, x_t, t), out, atol=1e-4)


def test_loss_runs_and_fits_without_labels():
    ds = wb.data.load("moons", n=256, seed=0)
    unl = wb.data.Dataset(ds.x)
    den, d = tiny_denoiser(), DDPM(20)
    loss, logs = d.loss(den, (unl.x, None))
    assert loss.ndim == 0 and torch.isfinite(loss) and logs == {}
    h = wb.fit(den, d, unl, steps=30, batch_size=64, progress=False)
    assert h.status == "completed" and math.isfinite(h.loss[-1])
    bad = wb.models.TimeMLP(dim=3, hidden=8, n_layers=1, time_dim=8)
    with pytest.raises(ValueError, match="TimeMLP was built for dim=3"):
        d.loss(bad, (ds.x, None))


# --------------------------------------------------------------------------- reverse steps
def _abar(T=10):
    return torch.cumprod(1 - torch.linspace(1e-2, 0.2, T, dtype=torch.float64), 0)


def test_ddpm_step_closed_form_fixed_small_and_large():
    ab = _abar()
    beta = 1 - ab / torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    x_t = torch.tensor([[0.3, -1.2]])
    eps = torch.tensor([[0.7, 0.1]])
    z = torch.tensor([[-0.4, 0.9]])
    t = 5
    x0 = (x_t.double() - (1 - ab[t]).sqrt() * eps.double()) / ab[t].sqrt()
    mean = ab[t - 1].sqrt() * beta[t] / (1 - ab[t]) * x0 + (1 - beta[t]).sqrt() * (1 - ab[t - 1]) / (1 - ab[t]) * x_t.double()
    for variance, var in [("fixed_small", beta[t] * (1 - ab[t - 1]) / (1 - ab[t])), ("fixed_large", beta[t])]:
        d = DDPM(10, "linear", beta_start=0.01, beta_end=0.2, variance=variance)
        out = d.step(eps, t, x_t, noise=z)
        assert torch.allclose(out.x0.double(), x0, atol=1e-5)
        assert torch.allclose(out.prev.double(), mean + var.sqrt() * z.double(), atol=1e-5)
    # the last step adds no noise
    d = DDPM(10, "linear", beta_start=0.01, beta_end=0.2)
    last = d.step(eps, 0, x_t, noise=z)
    assert torch.allclose(last.prev, d.step(eps, 0, x_t, noise=torch.zeros_like(z)).prev)


def test_ddpm_strided_step_uses_respaced_beta():
    ab = _abar()
    d = DDPM(10, "linear", beta_start=0.01, beta_end=0.2)
    x_t, eps, z = torch.tensor([[0.3, -1.2]]), torch.tensor([[0.7, 0.1]]), torch.tensor([[-0.4, 0.9]])
    t, tp = 8, 4
    b = 1 - ab[t] / ab[tp]
    x0 = (x_t.double() - (1 - ab[t]).sqrt() * eps.double()) / ab[t].sqrt()
    mean = ab[tp].sqrt() * b / (1 - ab[t]) * x0 + (1 - b).sqrt() * (1 - ab[tp]) / (1 - ab[t]) * x_t.double()
    want = mean + (b * (1 - ab[tp]) / (1 - ab[t])).sqrt() * z.double()
    assert torch.allclose(d.step(eps, t, x_t, t_prev=tp, noise=z).prev.double(), want, atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_closed_form(eta):
    ab = _abar()
    d = DDPM(10, "linear", beta_start=0.01, beta_end=0.2)
    x_t, eps, z = torch.tensor([[0.3, -1.2]]), torch.tensor([[0.7, 0.1]]), torch.tensor([[-0.4, 0.9]])
    t, tp = 7, 3
    x0 = (x_t.double() - (1 - ab[t]).sqrt() * eps.double()) / ab[t].sqrt()
    s = eta * ((1 - ab[tp]) / (1 - ab[t])).sqrt() * (1 - ab[t] / ab[tp]).sqrt()
    want = ab[tp].sqrt() * x0 + (1 - ab[tp] - s**2).sqrt() * eps.double() + s * z.double()
    out = d.step(eps, t, x_t, t_prev=tp, sampler="ddim", eta=eta, noise=z)
    assert torch.allclose(out.prev.double(), want, atol=1e-5)
    # to the clean end: x0 exactly
    end = d.step(eps, t, x_t, t_prev=-1, sampler="ddim", eta=eta, noise=z)
    assert torch.allclose(end.prev, end.x0)


def test_ddim_eta1_full_chain_is_ddpm_step_by_step():
    d = DDPM(30, "cosine")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    for t in range(29, -1, -1):
        eps, z = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g)
        a = d.step(eps, t, x, sampler="ddpm", noise=z).prev
        b = d.step(eps, t, x, sampler="ddim", eta=1.0, noise=z).prev
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), t
        x = a


def test_ddim_eta1_matches_ddpm_in_distribution():
    """Same exact (closed-form) denoiser, different seeds: DDIM η=1 on all steps and DDPM give the
    same distribution, and both recover the Gaussian data's moments (up to the discretisation
    error of 200 steps, ~3 % on the variance)."""
    d = DDPM(200, "cosine")
    mu = torch.tensor([0.5, -0.3])
    cov = torch.tensor([[0.30, 0.12], [0.12, 0.10]])
    exact = dg.GaussianScoreModel(mu[None], cov[None], torch.ones(1), d)
    a = sample_trajectory(exact, d, n=4000, sampler="ddpm", seed=1, record_every=None).samples
    b = sample_trajectory(exact, d, n=4000, sampler="ddim", eta=1.0, seed=2, record_every=None).samples
    for s in (a, b):
        assert torch.allclose(s.mean(0), mu, atol=0.03)
        assert torch.allclose(torch.cov(s.T), cov, atol=0.03)
    assert dq.energy_distance(a, b) < 0.01
    # and the same noise gives the same samples
    a1 = sample_trajectory(exact, d, n=200, sampler="ddpm", seed=3, record_every=None).samples
    b1 = sample_trajectory(exact, d, n=200, sampler="ddim", eta=1.0, seed=3, record_every=None).samples
    assert torch.allclose(a1, b1, atol=1e-3)


def test_step_errors():
    d = DDPM(10)
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="sampler"):
        d.step(x, 5, x, sampler="euler")
    with pytest.raises(ValueError, match="t_prev < t"):
        d.step(x, 5, x, t_prev=6)
    with pytest.raises(ValueError, match="0 <= t < 10"):
        d.step(x, 10, x)
    for kw, msg in [(dict(schedule="quad"), "schedule"), (dict(prediction="noise"), "prediction"),
                    (dict(variance="learned"), "variance"), (dict(n_steps=1), "n_steps")]:
        with pytest.raises(ValueError, match=msg):
            DDPM(**kw)
    with pytest.raises(ValueError, match="beta_start"):
        DDPM(10, "cosine", beta_start=0.1)


# --------------------------------------------------------------------------- trajectories
def test_trajectory_shape_and_final_frame():
    d, den = DDPM(12), tiny_denoiser()
    tr = sample_trajectory(den, d, n=32, seed=0)
    assert isinstance(tr, Trajectory)
    assert tr.x.shape == (13, 32, 2) and tr.x0_pred.shape == (13, 32, 2)
    assert torch.equal(tr.samples, tr.x[-1]) and torch.equal(tr.x0_pred[-1], tr.samples)
    assert tr.timesteps.tolist() == list(range(11, -1, -1)) + [-1]
    assert float(tr.sigmas[-1]) == 0.0 and torch.all(tr.sigmas[:-1] > 0)
    assert "Trajectory(ddpm" in repr(tr)
    # recording does not change the samples; fewer frames with record_every
    tr3 = sample_trajectory(den, d, n=32, seed=0, record_every=5)
    tr0 = sample_trajectory(den, d, n=32, seed=0, record_every=None)
    assert tr3.step_index.tolist() == [0, 5, 10, 12] and tr0.n_frames == 2
    assert torch.equal(tr3.samples, tr.samples) and torch.equal(tr0.samples, tr.samples)
    assert torch.equal(tr3.x[1], tr.x[5]) and torch.equal(tr3.x0_pred[1], tr.x0_pred[5])
    # DDIM with fewer steps
    dd = sample_trajectory(den, d, n=32, sampler="ddim", steps=4, seed=0)
    assert dd.x.shape == (5, 32, 2) and dd.timesteps.tolist() == [11, 8, 5, 2, -1]
    # deterministic given the seed, different across seeds
    assert torch.equal(sample_trajectory(den, d, n=32, seed=0).samples, tr.samples)
    assert not torch.equal(sample_trajectory(den, d, n=32, seed=1).samples, tr.samples)


def test_trajectory_of_images_keeps_shape_and_leaves_model_alone():
    d = DDPM(6)
    den = wb.models.TimeMLP(dim=64, hidden=16, n_layers=1, time_dim=8)
    den.train()
    before = {k: v.clone() for k, v in den.state_dict().items()}
    tr = sample_trajectory(den, d, n=5, seed=0, shape=(1, 8, 8))
    assert tr.x.shape == (7, 5, 1, 8, 8) and tr.flat.shape == (7, 5, 64)
    assert den.training and all(torch.equal(before[k], v) for k, v in den.state_dict().items())
    with pytest.raises(ValueError, match="record_every"):
        sample_trajectory(den, d, n=5, record_every=0)
    with pytest.raises(ValueError, match="sampler"):
        sample_trajectory(den, d, n=5, sampler="consistency")
    with pytest.raises(TypeError, match="ddpm must be"):
        sample_trajectory(den, object(), n=5)

    class Bare(torch.nn.Module):
        def forward(self, x, t):
            return x

    with pytest.raises(ValueError, match="shape="):
        sample_trajectory(Bare(), d, n=5)


def test_score_field_matches_direct_evaluation():
    d, den = DDPM(10), tiny_denoiser()
    f = score_field(den, d, [9, 2], lim=1.5, resolution=5)
    assert f.score.shape == (2, 25, 2) and f.points.shape == (25, 2)
    assert f.at(3) == 1
    with torch.no_grad():
        eps = den(f.points, torch.full((25,), 2))
    assert torch.allclose(f.score[1], -eps / d.sigma(2), atol=1e-5)
    tr = sample_trajectory(den, d, n=4, seed=0, record_every=3)
    assert score_field(den, d, tr, resolution=3).timesteps.tolist() == [9, 6, 3, 0]
    with pytest.raises(ValueError, match="timesteps must lie"):
        score_field(den, d, 10)


# --------------------------------------------------------------------------- Gaussian score
def _mixture_logp(x, means, covs, w, abar):
    comps = torch.distributions.MultivariateNormal(
        abar.sqrt() * means, covariance_matrix=abar * covs + (1 - abar) * torch.eye(means.shape[1])
    )
    return torch.logsumexp(comps.log_prob(x[:, None, :]) + w.log(), dim=1)


def test_gaussian_mixture_score_matches_autograd_of_log_density():
    d = DDPM(20, "cosine")
    means = torch.tensor([[0.0, 0.0], [1.0, 0.5], [-0.7, 0.9]], dtype=torch.float64)
    covs = torch.stack([torch.eye(2) * 0.05, torch.tensor([[0.1, 0.03], [0.03, 0.02]]), torch.eye(2) * 0.01]).double()
    w = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    m = dg.GaussianScoreModel(means, covs, w, d)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0)).double()
    for t in (0, 5, 19):
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_mixture_logp(xr, means, covs, w, d.alphas_cumprod[t].double()).sum(), xr)
        assert torch.allclose(m.score(x.float(), torch.full((16,), t)).double(), g, rtol=2e-3, atol=2e-3), t


def test_gaussian_score_kinds():
    d = DDPM(10)
    ds = wb.data.load("gaussian_grid", n=500, k=3, seed=0)
    g = dg.gaussian_score(ds, d, "gaussian")
    mix = dg.gaussian_score(ds, d, "mixture")
    emp = dg.gaussian_score(ds, d, "empirical", max_points=100)
    assert g.n_components == 1 and mix.n_components == 9 and emp.n_components == 100
    x = torch.randn(8, 2)
    for m in (g, mix, emp):
        assert m(x, 3).shape == (8, 2)
    # a single-point empirical model is a Gaussian with zero covariance
    one = dg.gaussian_score(ds.x[:1], d, "empirical")
    zero = dg.GaussianScoreModel(ds.x[:1], torch.zeros(1, 2, 2), torch.ones(1), d)
    assert torch.allclose(one(x, 4), zero(x, 4), atol=1e-5)
    # a mixture fitted by sklearn works on unlabelled data
    assert dg.gaussian_score(ds.x, d, "mixture", n_components=2).n_components == 2
    with pytest.raises(ValueError, match="n_components"):
        dg.gaussian_score(ds.x, d, "mixture")
    with pytest.raises(ValueError, match="kind"):
        dg.gaussian_score(ds, d, "delta")
    # the x0- and v-parametrisations of the same closed form agree
    dv = DDPM(10, prediction="v")
    mv = dg.gaussian_score(ds, dv, "gaussian")
    x0v, _ = dv.predict_x0_eps(mv(x, 5), x, 5)
    x0e, _ = d.predict_x0_eps(g(x, 5), x, 5)
    assert torch.allclose(x0v, x0e, atol=1e-4)


def test_score_error_zero_against_itself():
    d = DDPM(10)
    ds = wb.data.load("moons", n=300, seed=0)
    g = dg.gaussian_score(ds, d)
    err = dg.score_error(g, g, d, ds, n=64)
    assert torch.all(err.mse < 1e-10) and len(err.timesteps) >= 5
    err2 = dg.score_error(tiny_denoiser(), g, d, ds, t=[0, 9], n=64, name="gauss")
    assert err2.mse.shape == (2,) and err2.name == "gauss" and "ScoreError" in repr(err2)


# --------------------------------------------------------------------------- hallucinations, quality
def test_hallucination_flags_and_filter():
    ds = wb.data.load("gaussian_grid", n=100, k=3, seed=0)
    c, sp, sd = ds.meta["centres"], ds.meta["spacing"], ds.meta["std"]
    pts = torch.stack([c[0], c[4] + sd, c[0] + torch.tensor([sp / 2, 0.0]), c[8] + torch.tensor([0.2 * sp, 0.0])])
    f = dq.hallucination_flags(pts, ds)
    assert f.flag.tolist() == [0, 0, 1, 2] and f.nearest[:2].tolist() == [0, 4]
    assert "hallucination" in repr(f)
    with pytest.raises(ValueError, match="centres"):
        dq.hallucination_flags(pts)
    with pytest.raises(ValueError, match="in-support radius"):
        dq.hallucination_flags(pts, ds, in_support=100)
    # filter on synthetic scores: in-support 0..99, hallucinations 95..104
    scores = torch.cat([torch.arange(100.0), torch.arange(95.0, 105.0)])
    flags = torch.cat([torch.zeros(100), torch.ones(10)]).long()
    r = dq.hallucination_filter(scores, flags, keep=0.96)
    assert r.kept == pytest.approx(0.96, abs=0.011)
    assert r.removed == pytest.approx(float((torch.arange(95.0, 105.0) > r.threshold).float().mean()))
    from sklearn.metrics import roc_auc_score

    assert r.auroc == pytest.approx(roc_auc_score(flags.numpy(), scores.numpy()))
    assert r.curve_kept[-1] == 1.0 and r.curve_removed[-1] == 0.0


def test_trajectory_variance_window_by_noise_level():
    d, den = DDPM(20, "linear"), tiny_denoiser()
    tr = sample_trajectory(den, d, n=16, seed=0)
    v = dq.trajectory_variance(tr, sigma_max=0.3)
    want_frames = [i for i in range(tr.n_frames - 1) if tr.sigmas[i] <= 0.3]
    assert v.frames.tolist() == want_frames
    x0 = tr.x0_pred[want_frames].double()
    assert torch.allclose(v.score.double(), x0.var(0, unbiased=False).mean(-1), atol=1e-6)
    k = dq.trajectory_variance(tr, k_last=4)
    assert k.timesteps.tolist() == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="exactly one"):
        dq.trajectory_variance(tr)
    with pytest.raises(ValueError, match="window holds"):
        dq.trajectory_variance(tr, sigma_max=1e-6)


def test_sample_quality_measures():
    ref = wb.data.load("gaussian_grid", n=1000, k=3, seed=0)
    same = wb.data.load("gaussian_grid", n=1000, k=3, seed=1)
    q = dq.sample_quality(same.x, ref)
    assert q.modes_covered == 9 and q.in_support > 0.95 and q.hallucination < 0.01
    assert abs(q.energy) < 0.01 and abs(q.mmd) < 0.01 and q.precision > 0.8 and q.recall > 0.8
    shifted = dq.sample_quality(same.x + 0.3, ref)
    assert shifted.energy > 10 * max(q.energy, 1e-3) and shifted.mmd > q.mmd
    # one collapsed mode
    one = dq.sample_quality(ref.meta["centres"][:1].repeat(500, 1), ref)
    assert one.modes_covered == 1 and one.mode_kl == pytest.approx(math.log(9), rel=1e-4)
    # no modes known: only distances
    moons = wb.data.load("moons", n=300, seed=0)
    assert dq.sample_quality(moons.x, moons).n_modes is None
    # energy distance by hand
    a, b = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [3.0]])
    want = 2 * (0 + 3 + 1 + 2) / 4 - (1 + 1) / 2 - (3 + 3) / 2
    assert dq.energy_distance(a, b) == pytest.approx(want)
    with pytest.raises(ValueError, match="NaN"):
        dq.sample_quality(torch.full((10, 2), float("nan")), ref)


# --------------------------------------------------------------------------- consistency student
def test_consistency_distillation_loss_and_sampling():
    d = DDPM(20, "cosine")
    teacher = tiny_denoiser(seed=0)
    student = copy.deepcopy(teacher)
    cd = ConsistencyDistillation(teacher, d, n_intervals=5, student_prediction="v")
    assert cd.grid.tolist() == [19, 15, 11, 7, 3, -1]
    ds = wb.data.load("moons", n=256, seed=0)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    h = wb.fit(student, cd, ds, steps=20, batch_size=64, progress=False)
    assert h.status == "completed" and "mse_to_teacher_x0" in h.records[-1]
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # teacher frozen
    for k in (1, 2):
        tr = sample_trajectory(student, cd, n=10, steps=k, seed=0)
        assert tr.sampler == "consistency" and tr.x.shape == (k + 1, 10, 2)
        assert torch.equal(tr.samples, tr.x0_pred[-2])  # the last jump lands on f(x, t)
    cd.train()
    teacher.eval()  # the modes of every submodule survive sampling
    sample_trajectory(student, cd, n=4, steps=1, seed=0)
    assert cd.training and not teacher.training and student.training
    with pytest.raises(ValueError, match="sampler"):
        sample_trajectory(student, cd, n=4, sampler="ddpm")
    with pytest.raises(TypeError, match="teacher"):
        ConsistencyDistillation("teacher", d)
    with pytest.raises(ValueError, match="n_intervals"):
        ConsistencyDistillation(teacher, d, n_intervals=100)


def test_consistency_target_at_the_clean_end_is_the_teacher_x0():
    """With one interval the only pair is (T-1 -> clean): the target is the teacher's x̂0."""
    d = DDPM(8, "cosine", prediction="x0")
    teacher, student = tiny_denoiser(seed=0), tiny_denoiser(seed=1)
    cd = ConsistencyDistillation(teacher, d, n_intervals=1)
    x0 = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    loss, _ = cd.loss(student, (x0, None))
    torch.manual_seed(0)
    t = torch.randint(0, 1, (32,))  # consumes the same draws as the loss
    noise = torch.randn_like(x0)
    x_hi = d.add_noise(x0, noise, 7)
    with torch.no_grad():
        want = ((student(x_hi, torch.full((32,), 7)) - teacher(x_hi, torch.full((32,), 7))) ** 2).mean()
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-5)
    assert t.shape == (32,)


# --------------------------------------------------------------------------- diffusers agreement
def test_steps_agree_with_diffusers_schedulers():
    diffusers = pytest.importorskip("diffusers")
    T = 1000
    ours = DDPM(T, "linear")
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False)
    assert torch.allclose(ours.alphas_cumprod, ref.alphas_cumprod, rtol=1e-5)
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(64, 2, generator=g), torch.randn(64, 2, generator=g)
    for t in (999, 500, 100, 10):
        out_ref = ref.step(eps, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
        assert torch.allclose(ours.step(eps, t, x, noise=z).prev, out_ref, atol=1e-4), t
    ddim = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                                   timestep_spacing="trailing", set_alpha_to_one=True)
    ddim.set_timesteps(50)
    ts = ours.timesteps(50, "trailing")
    assert ts.tolist() == ddim.timesteps.tolist()
    for i in (0, 25, 49):
        t, tp = int(ts[i]), (int(ts[i + 1]) if i + 1 < 50 else -1)
        want = ddim.step(eps, t, x, eta=0.0).prev_sample
        assert torch.allclose(ours.step(eps, t, x, t_prev=tp, sampler="ddim").prev, want, atol=1e-5), t


def test_consistency_ode_target_bank_is_the_teachers_ddim_path():
    d = DDPM(12, "cosine")
    teacher = tiny_denoiser(seed=0)
    cd = ConsistencyDistillation(teacher, d, n_intervals=3, target="ode", bank_size=16, ode_steps=12, seed=5)
    cd.build_bank((2,), torch.device("cpu"))
    tr = sample_trajectory(teacher, d, n=16, sampler="ddim", seed=5)
    assert torch.allclose(cd.bank_end, tr.samples, atol=1e-6)
    grid_frames = [int((tr.timesteps == t).nonzero()) for t in cd.grid[:-1].tolist()]
    assert torch.allclose(cd.bank_states, tr.x[grid_frames], atol=1e-6)
    student = tiny_denoiser(seed=1)
    loss, _ = cd.loss(student, (torch.zeros(8, 2), None))
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert "bank_end" not in cd.state_dict()  # rebuilt, not saved
    with pytest.raises(ValueError, match="target"):
        ConsistencyDistillation(teacher, d, n_intervals=3, target="regression")
