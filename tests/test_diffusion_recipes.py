"""Recipes that train several diffusion models: the headline guard for the diffusion classifier on
gaussians8 at a CI-affordable size, and tiny runs of the curriculum, student and
guided-distillation comparisons."""

from __future__ import annotations

import torch

import workbench as wb


def test_diffusion_classifier_on_gaussians8_reaches_095_beside_a_matched_mlp():
    """The issue's claim (≥ 0.95 on gaussians8), at a size CI affords: 300 training steps of a
    17k-parameter conditional denoiser; adaptive schedule 8 classes × 5 timesteps, then 2 × 20."""
    torch.manual_seed(0)
    train = wb.data.load("gaussians8", n=2000, seed=0)
    test = wb.data.load("gaussians8", n=400, seed=1)
    den = wb.models.TimeMLP(dim=2, hidden=64, n_layers=2, input_dim=32, time_dim=32, n_classes=8, seed=0)
    res = wb.recipes.generative_vs_discriminative(train, test, denoiser=den, steps=300, n_samples=(5, 25),
                                                  to_keep=(2, 1), budgets=(1, 5))
    assert res.diffusion.accuracy >= 0.95
    assert res.diffusion.mean_evaluations == 8 * 5 + 2 * 20
    assert abs(res.params["discriminative"] - res.params["diffusion"]) / res.params["diffusion"] < 0.1
    assert 0.0 <= res.discriminative_accuracy <= 1.0 and set(res.table()) == {"diffusion classifier", "discriminative MLP"}
    assert res.curve.evaluations.tolist() == [8.0, 40.0] and res.curve.adaptive is res.diffusion


def test_matched_mlp_is_near_the_target_size():
    m = wb.recipes.matched_mlp(2, 8, 10_000)
    n = sum(p.numel() for p in m.parameters())
    assert n <= 10_000 and n > 9_000


def test_curriculum_comparison_tiny():
    train = wb.data.load("moons", n=256, seed=0)
    test = wb.data.load("moons", n=128, seed=1)
    ddpm = wb.methods.DDPM(20, "linear")

    def make(seed):
        return wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, seed=seed)

    cmp = wb.recipes.curriculum_comparison(
        make, ddpm, train, test, steps=30, n=64, n_bins=4, batch_size=64,
        schedules={"uniform": None, "easy→hard": dict(n_clusters=4, pacing="fixed", stage_steps=5)})
    assert cmp.names == ("uniform", "easy→hard") and cmp.loss_by_t["uniform"].shape == (1, 4)
    assert float(cmp.stage["easy→hard"][0]) == 4 and set(cmp.mean("energy")) == set(cmp.names)
    assert cmp.bin_edges.tolist() == [0, 5, 10, 15, 20] and "CurriculumComparison" in repr(cmp)
    fig = wb.viz.curriculum_losses(cmp)
    assert len(fig.data) == 2


def test_student_table_and_guided_distillation_tiny():
    train = wb.data.load("gaussians8", n=256, seed=0)
    test = wb.data.load("gaussians8", n=128, seed=1)
    ddpm = wb.methods.DDPM(20, "linear")
    teacher = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, seed=0)
    wb.fit(teacher, ddpm, train, steps=10, batch_size=64, progress=False)
    tab = wb.recipes.student_table(teacher, ddpm, train, test, students=("cd", "ct", "dmd-js"), steps=4,
                                   eval_steps=(1, 2), n=32, batch_size=32)
    assert list(tab.quality) == ["teacher DDIM-1", "teacher DDIM-2", "teacher DDPM-20", "cd 1-step", "cd 2-step",
                                 "ct 1-step", "ct 2-step", "dmd-js 1-step", "dmd-js 2-step"]
    assert set(tab.seconds) == {"cd", "ct", "dmd-js"} and len(tab.rows("precision")) == 9
    cddpm = wb.methods.ConditionalDDPM(20, "linear")
    cteacher = wb.models.TimeMLP(dim=2, hidden=16, n_layers=1, time_dim=8, n_classes=8, seed=0)
    wb.fit(cteacher, cddpm, train, steps=10, batch_size=64, progress=False)
    gd = wb.recipes.guided_distillation(cteacher, cddpm, train, test, scales=(0.0, 2.0), steps=5, n=32,
                                        sample_steps=3, batch_size=64)
    assert gd.teacher.evaluations.tolist() == [6, 6] and gd.student.evaluations.tolist() == [3, 3]
    assert gd.x0_error.shape == (2,) and gd.sample_gap.shape == (2,) and "GuidedDistillationResult" in repr(gd)
