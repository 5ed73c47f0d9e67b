"""Figures and the interactive view for teachers and students (no browser needed)."""

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.analyses import distillation as D


def _traj(frames=3, n=40, with_agreement=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    names = tuple(f"step {10 * i}" for i in range(frames))
    agreements = ()
    if with_agreement:
        t = torch.randn(n, 4, generator=g)
        agreements = tuple(D.agreement_from_logits(t, t + 0.8 * i * torch.randn(n, 4, generator=g), y)
                           for i in range(frames))
    return D.DistillationTrajectory(
        names=names, steps=torch.arange(frames) * 10, teacher_coords=torch.randn(n, 2, generator=g),
        coords=torch.randn(frames, n, 2, generator=g), labels=y,
        probe=torch.linspace(0.5, 0.7, frames), knn=torch.linspace(0.4, 0.6, frames),
        cka=torch.linspace(1.0, 0.8, frames), teacher_probe=0.55, teacher_knn=0.45, projection="pca",
        agreements=agreements, class_names=("a", "b", "c", "d"),
    )


def test_teacher_student_maps_traces():
    traj = _traj()
    fig = wb.viz.teacher_student_maps(traj, frame=1, highlight=2)
    assert fig.data[0].name == "teacher" and fig.data[1].name == "student: step 10"
    assert np.allclose(fig.data[1].x, traj.coords[1, :, 0].numpy())
    n_dis = int(traj.agreements[1].disagree.sum())
    assert len(fig.data[2].x) == n_dis
    op = np.asarray(fig.data[0].marker.opacity)
    assert op[2] == 0.8 and op[0] < 0.2  # class 2 highlighted
    assert [t.name for t in fig.data[3:7]] == ["a", "b", "c", "d"]
    with pytest.raises(IndexError):
        wb.viz.teacher_student_maps(traj, frame=5)


def test_agreement_by_class_and_probe_curve():
    traj = _traj()
    fig = wb.viz.agreement_by_class({"x": traj.agreements[0], "y": traj.agreements[2]}, metric="kl")
    assert [t.name for t in fig.data] == ["x", "y"] and len(fig.data[0].y) == 4
    assert np.allclose(fig.data[0].y, traj.agreements[0].per_class_kl.numpy(), equal_nan=True)
    with pytest.raises(ValueError, match="unknown metric"):
        wb.viz.agreement_by_class(traj.agreements[0], metric="nope")
    pc = wb.viz.probe_curve(traj, current=2)
    assert len(pc.data) == 6 and list(pc.data[0].x) == [0, 10, 20]
    assert list(pc.data[2].y) == [0.55, 0.55] and list(pc.data[5].x) == [20]
    named = _traj(frames=2)
    named = D.DistillationTrajectory(**{**named.__dict__, "steps": torch.tensor([-1, -1]), "names": ("no KD", "KD")})
    assert list(wb.viz.probe_curve(named).layout.xaxis.ticktext) == ["no KD", "KD"]


def test_generation_and_kernel_figures():
    x = torch.linspace(0, 1, 15)
    krr = D.kernel_self_distillation(x, torch.sin(3 * x), torch.linspace(0, 1, 9), torch.sin(3 * torch.linspace(0, 1, 9)),
                                     alphas=(0.0, 0.5), steps=4)
    fig = wb.viz.kernel_self_distillation(krr, x_train=x, y_train=torch.sin(3 * x), show_steps=(0, 4))
    assert [t.name for t in fig.data] == ["α = 0", "α = 0.5", "truth", "training points", "step 0", "step 4"]
    res = wb.recipes.SelfDistillationResult((None, None), (None,), torch.tensor([0.8, 0.85]), torch.tensor([float("nan"), 0.9]),
                                   torch.tensor([1.0, 0.9]), torch.tensor([float("nan"), 0.1]), 4.0, 0.9)
    g = wb.viz.generation_curve(res)
    assert len(g.data) == 3 and list(g.data[0].y) == pytest.approx([0.8, 0.85])


def test_distillation_view_updates_in_place():
    traj = _traj()
    view = wb.widgets.DistillationView(traj, frame=0)
    maps, curve, bars = view.maps, view.curve, view.bars
    assert view.frame == 0 and bars is not None
    view.slider.value = 2
    assert view.maps is maps and view.curve is curve and view.bars is bars  # same figures
    assert np.allclose(maps.data[1].x, traj.coords[2, :, 0].numpy())
    assert maps.data[1].name == "student: step 20" and view.frame_label.value == "step 20"
    assert len(maps.data[2].x) == int(traj.agreements[2].disagree.sum())
    assert list(curve.data[5].x) == [20]
    assert np.allclose(bars.data[0].y, traj.agreements[2].per_class_agreement.numpy())
    view.metric.value = "student_accuracy"
    assert np.allclose(bars.data[0].y, traj.agreements[2].per_class_student_accuracy.numpy(), equal_nan=True)
    view.highlight.value = 1
    op = np.asarray(maps.data[1].marker.opacity)
    assert op[1] == 0.8 and op[0] < 0.2
    view.highlight.value = -1
    assert maps.data[0].marker.opacity == 0.8
    view.show_frame(-1)
    assert view.frame == 2


def test_distillation_view_without_agreements_and_bad_input():
    view = wb.widgets.DistillationView(_traj(with_agreement=False))
    assert view.bars is None and view.metric.disabled
    view.slider.value = 1
    assert len(view.maps.data[2].x) == 0
    with pytest.raises(TypeError, match="DistillationTrajectory"):
        wb.widgets.DistillationView(object())
    with pytest.raises(ValueError, match="unknown metric"):
        wb.widgets.DistillationView(_traj(), metric="bogus")
