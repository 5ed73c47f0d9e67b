"""Class-conditional denoisers, classifier-free / classifier / minority guidance, guided distillation.

Golden values from /work/shared/references/diffusion_ii.md §13 (re-derived here in closed form
where the test can). Tiny models, few steps.
"""

from __future__ import annotations

import pytest
import torch
from diffusion_oracles import ExactPosterior, GaussianClasses, half_abar_ddpm

import workbench as wb
from workbench.methods.cfg import rescale_guided


@pytest.fixture
def oracle():
    ddpm = half_abar_ddpm()
    return ddpm, GaussianClasses(ddpm, [-2.0, 2.0], 0.5, [0.5, 0.5])


# ----------------------------------------------------------------------------- CFG
def test_cfg_combination_golden_and_exact_end_points():
    ec, eu = torch.tensor([0.2, -0.5]), torch.tensor([0.1, 0.3])
    torch.testing.assert_close(wb.methods.cfg_combine(eu, ec, 3.0), torch.tensor([0.4, -2.1]))  # w = 2, s = 3
    g = torch.Generator().manual_seed(0)
    u, c = torch.randn(1000, 2, generator=g) * 10, torch.randn(1000, 2, generator=g) * 10
    assert torch.equal(wb.methods.cfg_combine(u, c, 0.0), u)
    assert torch.equal(wb.methods.cfg_combine(u, c, 1.0), c)
    assert not torch.equal(u + 1.0 * (c - u), c)  # the naive formula is not exact: lerp is needed


def test_cfg_rescale_golden():
    ec, eu = torch.tensor([[0.5, -1.0, 0.25, 1.5]]), torch.tensor([[0.4, -0.6, 0.0, 1.0]])
    cfg = wb.methods.cfg_combine(eu, ec, 5.0)
    torch.testing.assert_close(cfg, torch.tensor([[0.9, -2.6, 1.25, 3.5]]))
    assert float(ec.std()) == pytest.approx(1.0282469, abs=1e-6) and float(cfg.std()) == pytest.approx(2.5203753, abs=1e-6)
    torch.testing.assert_close(rescale_guided(cfg, ec, 0.7),
                               torch.tensor([[0.527023, -1.522512, 0.731977, 2.049536]]), atol=1e-6, rtol=0)


def test_cfg_guide_at_scale_0_and_1_is_the_unconditional_and_conditional_prediction_exactly():
    den = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, n_classes=3, seed=0)
    ddpm = wb.methods.ConditionalDDPM(10, "linear")
    g = torch.Generator().manual_seed(1)
    x, t, y = torch.randn(64, 2, generator=g), torch.randint(0, 10, (64,), generator=g), torch.arange(64) % 3
    with torch.no_grad():
        u, c = den(x, t, torch.full((64,), 3)), den(x, t, y)
        assert torch.equal(wb.methods.CFG(0.0)(den, ddpm, x, t, y), u)
        assert torch.equal(wb.methods.CFG(1.0)(den, ddpm, x, t, y), c)
        assert torch.equal(den(x, t, None), u)  # y=None is the null label
        s3 = wb.methods.CFG(3.0)(den, ddpm, x, t, y)
    torch.testing.assert_close(s3, u + 3 * (c - u))
    # and inside the sampling loop: scale 0 / 1 trajectories are the unconditional / conditional ones
    for scale, ref in ((0.0, dict()), (1.0, dict(y=1))):
        a = wb.analyses.sample_trajectory(den, ddpm, n=16, y=1, guidance=scale, seed=3, steps=5)
        b = wb.analyses.sample_trajectory(den, ddpm, n=16, seed=3, steps=5, **ref)
        assert torch.equal(a.x, b.x), scale


def test_conditional_ddpm_label_dropout_and_training():
    ds = wb.data.load("gaussians8", n=256, seed=0)
    den = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, n_classes=8, seed=0)
    m = wb.methods.ConditionalDDPM(20, "linear", p_uncond=0.25)
    h = wb.fit(den, m, ds, steps=20, batch_size=128, progress=False)
    assert 0.1 < h.series("uncond_share").mean() < 0.4
    assert m.config["p_uncond"] == 0.25 and "p_uncond=0.25" in repr(m)
    with pytest.raises(ValueError, match="needs labels"):
        m.loss(den, (ds.x, None))
    with pytest.raises(TypeError, match="null label"):
        m.loss(wb.models.TimeMLP(dim=2, hidden=8, n_layers=1, time_dim=8), (ds.x[:8], ds.y[:8]))
    with pytest.raises(ValueError, match="p_uncond"):
        wb.methods.ConditionalDDPM(10, p_uncond=1.5)
    with pytest.raises(ValueError, match="labels y must be integers in 0..7"):
        den(ds.x[:4], 0, torch.tensor([0, 1, 9, 2]))
    with pytest.raises(TypeError, match="unconditional"):
        wb.models.TimeMLP(dim=2, hidden=8)(ds.x[:4], 0, ds.y[:4])
    with pytest.raises(TypeError, match="scale"):
        wb.analyses.sample_trajectory(den, m, n=4, y=0, guidance="strong")


# ----------------------------------------------------------------------------- classifier guidance
def test_classifier_guidance_equals_cfg_with_exact_scores_golden(oracle):
    ddpm, den = oracle
    assert float(ddpm.abar(0)) == 0.5
    clf = ExactPosterior(den)
    x, t, y = torch.tensor([[0.3]]), torch.tensor([0]), torch.tensor([1])
    post = torch.softmax(den.log_joint(x, t), -1)
    torch.testing.assert_close(post, torch.tensor([[0.204623, 0.795377]], dtype=torch.float64), atol=1e-6, rtol=0)
    eu, ec = den(x, t), den(x, t, y)
    assert float(eu) == pytest.approx(-0.6057941, abs=1e-6) and float(ec) == pytest.approx(-1.2605887, abs=1e-6)
    _, grad = wb.methods.classifier_guidance.classifier_log_prob_grad(clf, x, t, y)
    assert float(grad) == pytest.approx(0.9260194, abs=1e-6)
    # Bayes: scale-1 classifier guidance of the unconditional ε is the conditional ε
    torch.testing.assert_close(wb.methods.ClassifierGuidance(clf, 1.0)(den, ddpm, x, t, y), ec, atol=1e-6, rtol=0)
    cg = wb.methods.ClassifierGuidance(clf, 4.0)(den, ddpm, x, t, y)
    cf = wb.methods.CFG(4.0)(den, ddpm, x, t, y)
    assert float(cg) == pytest.approx(-3.2249726, abs=1e-6) and float(cf) == pytest.approx(-3.2249726, abs=1e-6)


def test_classifier_guidance_on_many_points_and_samplers(oracle):
    _, _ = oracle
    ddpm = wb.methods.DDPM(20, "linear")
    den = GaussianClasses(ddpm, [-1.0, 0.5, 2.0], 0.3, [0.5, 0.3, 0.2])
    clf = ExactPosterior(den)
    g = torch.Generator().manual_seed(0)
    x, t, y = torch.randn(200, 1, generator=g) * 2, torch.randint(0, 20, (200,), generator=g), torch.arange(200) % 3
    for s in (0.0, 0.5, 2.5):
        torch.testing.assert_close(wb.methods.ClassifierGuidance(clf, s)(den, ddpm, x, t, y),
                                   wb.methods.CFG(s)(den, ddpm, x, t, y), atol=1e-5, rtol=1e-5)
    # target= overrides the labels; x0-parametrised DDPM gets the same guided step
    ddx = wb.methods.DDPM(20, "linear", prediction="x0")
    eps_guided = wb.methods.ClassifierGuidance(clf, 2.0, target=2)(den, ddpm, x, t, None)
    out = wb.methods.ClassifierGuidance(clf, 2.0, target=2)(_AsX0(den, ddpm), ddx, x, t, None)
    torch.testing.assert_close(ddx.predict_x0_eps(out, x, t)[1], eps_guided, atol=1e-4, rtol=1e-4)


class _AsX0(torch.nn.Module):
    def __init__(self, den, ddpm):
        super().__init__()
        self.den, self.ddpm = den, ddpm

    def forward(self, x, t):
        return self.ddpm.predict_x0_eps(self.den(x, t), x, t)[0]


def test_noisy_classifier_trains_and_guides_toward_the_class():
    ds = wb.data.load("gaussians8", n=512, seed=0)
    ddpm = wb.methods.DDPM(20, "linear")
    clf = wb.models.TimeClassifier(2, 8, hidden=32, n_layers=1, time_dim=16, seed=0)
    h = wb.fit(clf, wb.methods.NoisyClassification(ddpm), ds, steps=60, batch_size=128, lr=3e-3, progress=False)
    assert h.series("acc")[-10:].mean() > 0.25  # chance is 0.125; high-noise timesteps stay near it
    den = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, seed=0)
    before = [(n, p.clone()) for n, p in clf.named_parameters()]
    clf.train()
    tr = wb.analyses.sample_trajectory(den, ddpm, n=8, guidance=wb.methods.ClassifierGuidance(clf, 2.0), y=3, seed=0)
    assert torch.isfinite(tr.samples).all() and clf.training  # mode restored
    assert all(torch.equal(p, q) for (_, p), (_, q) in zip(before, clf.named_parameters()))
    with pytest.raises(ValueError, match="pass y="):
        wb.analyses.sample_trajectory(den, ddpm, n=4, guidance=wb.methods.ClassifierGuidance(clf, 1.0))


# ----------------------------------------------------------------------------- minority guidance
def test_minority_score_golden_mixture():
    ddpm = half_abar_ddpm()
    den = GaussianClasses(ddpm, [-2.0, 2.0], 0.3, [0.9, 0.1])  # used unconditionally: the mixture
    x0 = torch.tensor([[-2.0], [2.0], [0.0]]).repeat_interleave(4000, 0)
    ms = wb.analyses.minority_score(den, ddpm, x0, t=0, n_draws=20, n_bins=3, seed=0)
    means = ms.score.reshape(3, 4000).mean(1)
    torch.testing.assert_close(means, torch.tensor([0.071194, 0.911956, 2.422534]), rtol=0.03, atol=0.003)
    assert ms.n_bins == 3 and int(ms.labels[:4000].float().mean().round()) == 0  # typical samples: the lowest bin


def test_minority_labels_are_quantile_bins():
    score = torch.arange(10.0)
    labels, thr = wb.analyses.minority_labels(score, 5)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and len(thr) == 4
    with pytest.raises(ValueError, match="n_bins"):
        wb.analyses.minority_labels(score, 1)


def test_minority_guidance_pipeline_tiny():
    ds = wb.data.load("gaussians8", n=400, seed=0, weights=(1, 1, 1, 1, 1, 1, 0.1, 0.1))
    ddpm = wb.methods.DDPM(20, "linear")
    den = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, seed=0)
    wb.fit(den, ddpm, ds, steps=20, batch_size=128, progress=False)
    ms = wb.analyses.minority_score(den, ddpm, ds, n_bins=4, seed=0)
    assert ms.t == round(0.605 * 19) and len(ms.score) == 400 and "MinorityScores" in repr(ms)
    mds = ms.dataset(ds)
    assert mds.n_classes == 4 and mds.classes[-1] == "bin 3"
    clf = wb.models.TimeClassifier(2, 4, hidden=16, n_layers=1, time_dim=8, seed=0)
    wb.fit(clf, wb.methods.NoisyClassification(ddpm), mds, steps=10, batch_size=128, progress=False)
    guide = wb.methods.MinorityGuidance(clf, 3.5)
    assert guide.target == 3
    sweep = wb.analyses.guidance_sweep(den, ddpm, ds, scales=(0.0, 3.5), guide=lambda s: wb.methods.MinorityGuidance(clf, s),
                                       n=64, steps=5)
    assert sweep.samples.shape == (2, 64, 2) and sweep.labels is None and torch.isnan(sweep.class_accuracy).all()
    assert sweep.mode_shares.shape == (2, 8) and sweep.guide == "MinorityGuidance"


# ----------------------------------------------------------------------------- guided distillation
def test_guided_distillation_target_and_scale_embedding_golden():
    c, u = torch.tensor([[0.8, -0.2]]), torch.tensor([[0.5, 0.1]])
    torch.testing.assert_close(wb.methods.cfg_combine(u, c, 3.5), torch.tensor([[1.55, -0.95]]))  # w = 2.5
    emb = wb.models.guidance_embedding(torch.tensor([0.5]), 4)
    torch.testing.assert_close(emb, torch.tensor([[-0.467772, 0.049979, -0.883849, 0.998750]]), atol=1e-6, rtol=0)


def test_guided_student_starts_as_teacher_and_learns_the_guided_target():
    ds = wb.data.load("gaussians8", n=256, seed=0)
    ddpm = wb.methods.ConditionalDDPM(20, "linear")
    teacher = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, n_classes=8, seed=0)
    wb.fit(teacher, ddpm, ds, steps=20, batch_size=128, progress=False)
    student = wb.methods.guided_student(teacher, seed=1)
    x, t, y = ds.x[:32], torch.randint(0, 20, (32,)), ds.y[:32]
    with torch.no_grad():
        assert torch.equal(student(x, t, y, scale=2.0), teacher(x, t, y))  # zero-initialised scale input
    gd = wb.methods.GuidedDistillation(teacher, ddpm, scale_range=(0.0, 4.0))
    with torch.no_grad():
        tgt = gd.target(x, t, y, torch.full((32,), 2.0))
        u = ddpm.predict_x0_eps(teacher(x, t, None), x, t)[0]
        c = ddpm.predict_x0_eps(teacher(x, t, y), x, t)[0]
    torch.testing.assert_close(tgt, u + 2.0 * (c - u))
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    h = wb.fit(student, gd, ds, steps=30, batch_size=128, lr=3e-3, progress=False)
    assert h.loss[-5:].mean() < h.loss[:5].mean()
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
    tr = wb.analyses.sample_trajectory(student, ddpm, n=16, y=2, guidance=wb.methods.StudentScale(2.0), steps=5)
    assert torch.isfinite(tr.samples).all()
    with pytest.raises(ValueError, match="scale"):
        student(x, t, y)


# ----------------------------------------------------------------------------- fields and sweeps
def test_guided_fields_scale_0_is_unguided_and_scale_1_conditional():
    den = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, n_classes=3, seed=0)
    ddpm = wb.methods.ConditionalDDPM(10, "linear")
    f = wb.analyses.guided_fields(den, ddpm, [2, 7], scales=(0.0, 1.0, 3.0), resolution=5, lim=1.5)
    assert f.guided.shape == (3, 3, 2, 25, 2) and f.unguided.shape == (2, 25, 2)
    assert torch.equal(f.guided[0, 1], f.unguided)
    with torch.no_grad():
        x = f.points
        eps = den(x, torch.full((25,), 7), torch.full((25,), 2))
    torch.testing.assert_close(f.guided[1, 2, 1], -eps / ddpm.sigma(7))
    assert f.index(t=6, scale=2.9, cls=2) == {"k": 1, "s": 2, "c": 2}
    with pytest.raises(ValueError, match="not computed"):
        f.index(cls=5)


def test_guidance_sweep_cfg_tiny():
    ds = wb.data.load("gaussians8", n=256, seed=0)
    den = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, n_classes=8, seed=0)
    ddpm = wb.methods.ConditionalDDPM(10, "linear")
    sw = wb.analyses.guidance_sweep(den, ddpm, ds, scales=(0.0, 1.0, 2.0), n=64, steps=4)
    assert sw.samples.shape == (3, 64, 2) and sw.labels.tolist()[:9] == [0, 1, 2, 3, 4, 5, 6, 7, 0]
    assert sw.evaluations.tolist() == [8, 8, 8] and len(sw.quality) == 3
    assert sw.series("precision").shape == (3,) and "GuidanceSweep(CFG" in repr(sw)
    with pytest.raises(ValueError, match="unknown key"):
        sw.series("nope")
