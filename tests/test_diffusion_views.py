"""Diffusion figures and TrajectoryView: asserted on figure data and widget state (no browser)."""

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.analyses import diffusion_quality as dq
from workbench.analyses.diffusion import sample_trajectory, score_field
from workbench.methods.ddpm import DDPM

pytest.importorskip("plotly")
pytest.importorskip("ipywidgets")

from workbench.viz import diffusion as vd  # noqa: E402
from workbench.widgets.trajectory import TrajectoryView  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    d = DDPM(10, "cosine")
    den = wb.models.TimeMLP(dim=2, hidden=8, n_layers=1, time_dim=8, input_embedding=None, seed=0)
    tr = sample_trajectory(den, d, n=40, seed=0)
    st = sample_trajectory(den, d, n=40, sampler="ddim", steps=2, seed=1)
    grid = wb.data.load("gaussian_grid", n=50, k=3, seed=0)
    flags = dq.hallucination_flags(tr.samples, grid, in_support=3.0, gap=0.25)
    field = score_field(den, d, tr, lim=2.0, resolution=5)
    return d, den, tr, st, flags, field, grid


def test_trajectory_figure_traces(setup):
    d, den, tr, st, flags, field, grid = setup
    fig = vd.trajectory(tr, 3, flags=flags, trails=[0, 1], field=field, data=grid)
    names = [t.name for t in fig.data]
    assert names[0] == "data" and names[-2:] == ["trails", "score field"]
    pts = np.concatenate([np.asarray(t.x) for t in fig.data[1:4]])
    assert len(pts) == tr.n
    # trails: 4 positions (frames 0..3) + a NaN separator per sample
    assert len(fig.data[-2].x) == 2 * 5 and np.isnan(fig.data[-2].x[4])
    assert np.allclose(np.asarray(fig.data[-2].x[:4], dtype=float), tr.x[:4, 0, 0].numpy())
    # field arrows: 3 entries (start, end, NaN) per grid point
    assert len(fig.data[-1].x) == 3 * 25
    # final frame has no field (t = -1), and without flags one samples trace
    last = vd.trajectory(tr, -1, field=field)
    assert len(last.data[-1].x) == 0 and last.data[0].name == "samples"
    with pytest.raises(ValueError, match="show"):
        vd.trajectory(tr, 0, show="eps")


def test_other_figures(setup):
    d, den, tr, st, flags, field, grid = setup
    pair = vd.trajectory_pair(tr, st, 2, 1, flags=flags)
    assert len(pair.layout.annotations) == 2 and "student" in pair.layout.annotations[1].text
    g = wb.analyses.gaussian_score(grid, d, "mixture")
    gf = score_field(g, d, [0, 5], resolution=5, name="mixture")
    assert len(vd.score_field(field, gf, t=5).data) == 2
    err = wb.analyses.score_error(den, g, d, grid, n=32)
    assert len(vd.score_error(err).data) == 1
    scores = dq.trajectory_variance(tr, sigma_max=0.5)
    rep = dq.hallucination_filter(scores, torch.cat([torch.zeros(30), torch.ones(10)]).long())
    fig = vd.hallucination_filter(rep)
    assert any(t.type == "histogram" for t in fig.data) and fig.data[-1].x[0] == pytest.approx(rep.kept)
    q = dq.sample_quality(tr.samples, grid.x)
    assert "energy" in vd.quality_table({"ddpm": q}).data[0].header.values
    sg = vd.samples_grid({"a": tr, "b": st.samples}, flags={"a": flags}, data=grid)
    assert len(sg.data) == 4
    m = vd.mosaic(torch.zeros(5, 1, 8, 8))
    assert m.shape == (2 * 9 - 1, 3 * 9 - 1) and np.isnan(m).any()


def test_trajectory_view_updates_in_place(setup):
    d, den, tr, st, flags, field, grid = setup
    view = TrajectoryView(tr, flags=flags, field=field, data=grid, trails=2)
    fig = view.figure
    traces_before = list(fig.data)
    view.set_frame(0)
    assert view.slider.value == 0 and list(fig.data) == traces_before  # same trace objects
    pts = np.concatenate([np.asarray(t.x) for t in view._panels[0]["points"]])
    assert np.allclose(np.sort(pts), np.sort(tr.x[0, :, 0].numpy()))
    assert len(view._panels[0]["field"].x) == 75
    view.slider.value = 4  # the slider drives the view
    assert view.frame == 4 and "σ " in fig.layout.title.text
    view.set_show("x0")
    pts = np.concatenate([np.asarray(t.x) for t in view._panels[0]["points"]])
    assert np.allclose(np.sort(pts), np.sort(tr.x0_pred[4, :, 0].numpy()))
    view.toggle_trail(7)
    assert view.trails == [0, 1, 7] and view.trail_text.value == "0, 1, 7"
    view.trail_text.value = "3"
    assert view.trails == [3]
    view.set_field_visible(False)
    assert len(view._panels[0]["field"].x) == 0
    with pytest.raises(IndexError):
        view.set_frame(100)
    with pytest.raises(IndexError):
        view.set_trails([1000])
    assert "TrajectoryView(2-D points" in repr(view)


def test_trajectory_view_teacher_vs_student(setup):
    d, den, tr, st, flags, field, grid = setup
    view = TrajectoryView(tr, student=st, flags=flags, field=field, trails=[0])
    assert len(view._panels) == 2 and len(view._panels[1]["points"]) == 1
    view.set_frame(0)
    assert np.allclose(np.asarray(view._panels[1]["points"][0].x), st.x[0, :, 0].numpy())
    view.set_frame(5)  # sigma below the student's middle frame: the student has finished
    sf = int(wb.analyses.matching_frames(tr, st)[5])
    assert st.sigmas[sf] <= tr.sigmas[5]
    assert np.allclose(np.asarray(view._panels[1]["points"][0].x), st.x[sf, :, 0].numpy())
    assert "student step" in view.label.value


def test_trajectory_view_images():
    d = DDPM(6)
    den = wb.models.TimeMLP(dim=64, hidden=16, n_layers=1, time_dim=8, seed=0)
    tr = sample_trajectory(den, d, n=9, seed=0, shape=(1, 8, 8))
    st = sample_trajectory(den, d, n=9, seed=0, shape=(1, 8, 8), sampler="ddim", steps=2)
    view = TrajectoryView(tr, student=st, n_images=4, strip=4)
    assert view.images and len(view._mosaics) == 2
    view.set_frame(2)
    z = np.asarray(view._mosaics[0].z, dtype=float)
    assert np.allclose(z, vd.mosaic(tr.x[2, :4]), equal_nan=True)
    shape = view.figure.layout.shapes[0]
    col = int(np.abs(vd.strip_frames(tr, 4) - 2).argmin())
    assert shape.x0 == pytest.approx(col * 9 - 0.5)
    with pytest.raises(ValueError, match="2-D points or images"):
        TrajectoryView(sample_trajectory(wb.models.TimeMLP(dim=3, hidden=8, n_layers=1), d, n=4))
    with pytest.raises(TypeError, match="Trajectory"):
        TrajectoryView("traj")


def test_trajectory_view_frame_matches_the_static_figure(setup):
    """A frame reached by the slider is the figure the builder draws for that frame."""
    d, den, tr, st, flags, field, grid = setup
    view = TrajectoryView(tr, student=st, flags=flags, field=field, data=grid, trails=[0, 3])
    slots = vd.trajectory_slots(flags, None, grid, pair=True)
    assert slots[0]["data"] == 0 and slots[0]["points"] == [1, 2, 3] and slots[1]["data"] == 6
    view.set_frame(2)
    ref = vd.trajectory_pair(tr, st, 2, int(wb.analyses.matching_frames(tr, st)[2]), flags=flags, trails=[0, 3],
                             field=field, data=grid)
    assert len(view.figure.data) == len(ref.data)
    for got, want in zip(view.figure.data, ref.data):
        assert got.name == want.name
        np.testing.assert_allclose(np.asarray(got.x, dtype=float), np.asarray(want.x, dtype=float))
    assert [a.text for a in view.figure.layout.annotations] == [a.text for a in ref.layout.annotations]
    assert view.figure().data[slots[0]["trails"]].name == "teacher trails"
