"""Figures and views of guidance, discrete trajectories and diffusion read-outs: the widget's state
after a change equals the static figure built at that state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb

pytest.importorskip("plotly")
pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def guided():
    blobs = wb.data.load("gaussians8", n=96, seed=0)
    den = wb.models.TimeMLP(dim=2, hidden=8, n_layers=1, time_dim=8, n_classes=3, seed=0)
    ddpm = wb.methods.ConditionalDDPM(6, "linear")
    fields = wb.analyses.guided_fields(den, ddpm, [1, 3, 5], scales=(0.0, 1.0, 3.0), resolution=6)
    sweep = wb.analyses.guidance_sweep(den, ddpm, blobs, scales=(0.0, 1.0, 3.0), n=30, steps=3)
    return blobs, fields, sweep


def _xy(fig):
    return [(np.asarray(t.x, dtype=float) if t.x is not None else None) for t in fig.data]


def _same(a, b):
    assert len(a.data) == len(b.data)
    for x, y in zip(_xy(a), _xy(b)):
        if x is None:
            assert y is None
        else:
            np.testing.assert_array_equal(x, y)


def test_guidance_view_patches_equal_the_static_figure(guided):
    blobs, fields, sweep = guided
    view = wb.widgets.GuidanceView(fields, sweep, data=blobs, t=1, cls=0, scale=0.0)
    view.set_t(5).set_class(2).set_scale(3.0)
    assert (view.t, view.cls, view.scale) == (5, 2, 3.0)
    assert view.t_slider.value == 2 and view.class_box.value == 2 and view.scale_slider.value == 2
    static = wb.viz.guided_fields(fields, k=2, s=2, c=2, sweep=sweep, data=blobs)
    _same(view.figure, static)
    assert [a.text for a in view.figure.layout.annotations] == [a.text for a in static.layout.annotations]
    assert view.curves.layout.shapes[0].x0 == 3.0
    # at scale 0 the two panels show the same field
    view.set_scale(0.0)
    d = view.figure.data
    np.testing.assert_array_equal(np.asarray(d[wb.viz.GuidedTrace.UNGUIDED].x, dtype=float),
                                  np.asarray(d[wb.viz.GuidedTrace.GUIDED].x, dtype=float))
    # the slider drives the view
    view.t_slider.value = 0
    assert view.t == 1 and "t 1" in view.figure.layout.annotations[0].text
    with pytest.raises(IndexError):
        view.set(k=9)
    with pytest.raises(TypeError, match="GuidedFields"):
        wb.widgets.GuidanceView(sweep)
    assert repr(view).startswith("GuidanceView(t=1, class=2")


def test_guidance_figures(guided):
    blobs, fields, sweep = guided
    fig = wb.viz.guided_fields(fields)  # no sweep: empty sample traces, largest scale
    assert len(fig.data) == 6 and len(fig.data[wb.viz.GuidedTrace.SAMPLES].x) == 0
    assert "scale 3" in fig.layout.annotations[1].text
    curves = wb.viz.guidance_curves(sweep)
    assert [t.name for t in curves.data] == ["precision", "recall", "in-support share", "lands in the asked class"]
    bars = wb.viz.mode_shares(sweep)
    assert len(bars.data) == 3 and len(bars.data[0].x) == 8


def test_discrete_view_frames_and_figure():
    d3pm = wb.methods.D3PM(2, 6, "absorbing")
    model = wb.models.TokenDenoiser(16, d3pm.n_total, hidden=8, n_layers=1, time_dim=8, seed=0)
    traj = wb.analyses.sample_discrete(model, d3pm, n=5, shape=(1, 4, 4), seed=0)
    view = wb.widgets.DiscreteTrajectoryView(traj, n=4, frame=0)
    view.set_frame(3)
    static = wb.viz.discrete_frames(traj, 3, n=4)
    for i in range(4):
        a, b = view.figure.data[i], static.data[i]
        if a.type == "heatmap":
            assert np.array_equal(np.array(a.z, dtype=float), np.array(b.z, dtype=float), equal_nan=True)
        else:
            np.testing.assert_array_equal(np.asarray(a.y, dtype=float), np.asarray(b.y, dtype=float))
    assert view.figure.layout.title.text == static.layout.title.text
    # at the first frame everything is masked and nothing decided; at the end everything is
    z0 = np.array(wb.viz.discrete_frames(traj, 0, n=4).data[1].z, dtype=float)
    assert np.isnan(z0).all()
    zl = np.array(wb.viz.discrete_frames(traj, -1, n=4).data[1].z, dtype=float)
    assert np.isfinite(zl).sum() == 4 * 16
    # sequences draw as a grid
    seq_model = wb.models.TokenDenoiser(10, 5, hidden=8, n_layers=1, time_dim=8, seed=0)
    seq = wb.analyses.sample_discrete(seq_model, wb.methods.D3PM(5, 4, "uniform"), n=3, seed=0)
    fig = wb.viz.discrete_frames(seq, 1)
    assert np.array(fig.data[0].z).shape == (3, 10)
    with pytest.raises(IndexError):
        view.set_frame(99)


def test_readout_figures():
    acc = torch.tensor([[0.5, 0.6], [0.7, 0.65], [0.3, 0.2]])
    grid = wb.analyses.ProbeGrid(acc, torch.tensor([0, 10, 40]), torch.tensor([0.01, 0.3, 0.9]), ("inp", "blocks.0"), 0.55)
    fig = wb.viz.probe_heatmap(grid)
    assert np.asarray(fig.data[0].z).shape == (3, 2) and "raw input: 0.550" in fig.layout.title.text
    curve = wb.analyses.ClassifierCurve(torch.tensor([1, 5]), torch.tensor([8.0, 40.0]), torch.tensor([0.7, 0.95]))
    cf = wb.viz.classifier_curve(curve, baseline=0.97)
    assert len(cf.data) == 1 and cf.layout.xaxis.type == "log"
    rec = wb.analyses.SubspaceRecovery(torch.rand(2, 4, 6), torch.tensor([[2, 2, 2, 3], [4, 5, 5, 6]]),
                                       torch.rand(2, 4) * 10, torch.tensor([1, 20]), torch.tensor([0.05, 0.6]), 2, 0.99)
    sf = wb.viz.subspace_recovery(rec)
    assert len(sf.data) == 4
