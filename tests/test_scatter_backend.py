"""The jupyter-scatter map backend and the auto switch (no browser).

Events from the page are simulated the way the browser delivers them: jupyter-scatter syncs its
``selection`` and ``hovering`` traits from JavaScript, so a test sets the trait on the widget (as
the comm message would) and checks what Python sees; the tooltip request is the custom message
the page sends.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import workbench as wb
from workbench.viz._common import colour
from workbench.viz.embedding import rgba, stratified_sample, trace_polylines
from workbench.widgets import EmbeddingView, LinkedMaps, OODLens, PrototypeView, _map
from workbench.widgets._scatter import ScatterFigure

jscatter = pytest.importorskip("jscatter", reason="jupyter-scatter (the scale extra) is not installed")


def _blobs(n, k=5, seed=0):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, k, n)
    xy = rng.standard_normal((n, 2)) + 4 * np.stack([np.cos(lab), np.sin(lab)], 1)
    return xy.astype(np.float32), lab


def _widget(view):
    return view.backend.scatter.widget


# ----------------------------------------------------------------------------- selection
def test_selection_from_the_page_reaches_view_selected():
    xy, lab = _blobs(500)
    view = EmbeddingView(xy, lab, backend="jscatter")
    got = []
    view.on_select(got.append)
    w = _widget(view)
    w.selection = np.array([42, 7, 300], dtype=np.uint32)  # what a lasso in the page syncs
    assert view.selected.tolist() == [7, 42, 300] and view.selected.dtype == np.int64
    assert got[-1].tolist() == [7, 42, 300] and "3 selected" in view.status.value
    w.selection = np.array([], dtype=np.uint32)  # a click on empty space clears it
    assert view.selected.tolist() == [] and got[-1].tolist() == []
    w.selection = None
    assert view.selected.tolist() == []
    n_calls = len(got)
    view.select([9, 2, 2])  # from Python: shown in the page, callbacks once
    assert w.selection.tolist() == [2, 9] and view.selected.tolist() == [2, 9] and len(got) == n_calls + 1
    with pytest.raises(IndexError):
        view.select([500])


def test_hover_shows_thumbnail_and_tooltip_preview_for_images(monkeypatch):
    ds = wb.data.load("digits", n=120, seed=0)
    xy = np.random.default_rng(0).standard_normal((120, 2))
    view = EmbeddingView(xy, data=ds, backend="jscatter")
    w = _widget(view)
    assert w.tooltip_enable and w.tooltip_preview == "thumbnail" and w.tooltip_preview_type == "image"
    w.hovering = 17  # the page reports the hovered point
    assert view.thumbnail.value == view.thumbnail_png(17) and "index 17" in view.thumbnail_caption.value
    sent = []
    monkeypatch.setattr(w, "send", lambda msg, buffers=None: sent.append(msg))
    # the tooltip's request for the hovered point (as jupyter-scatter's JavaScript sends it)
    w._handle_custom_msg({"type": "tooltip", "index": 17, "preview": "thumbnail", "properties": ["label"]}, [])
    msg = sent[-1]
    assert msg["type"] == "tooltip" and msg["index"] == 17
    assert msg["preview"].startswith("data:image/png;base64,")
    import base64

    assert base64.b64decode(msg["preview"].split(",", 1)[1]) == view.thumbnail_png(17)
    assert msg["properties"] == {"label": str(ds.classes[int(ds.y[17])]) if ds.classes else str(int(ds.y[17]))}


# ----------------------------------------------------------------------------- colour
def test_colour_updates_the_points_in_place():
    xy, lab = _blobs(400)
    score = np.linspace(-1.0, 3.0, 400)
    view = EmbeddingView(xy, lab, colors={"OOD score": score}, backend="jscatter")
    w = _widget(view)
    assert w.color_title == "label" and w.color_by in ("valueA", "valueB")
    comp = 2 if w.color_by == "valueA" else 3
    cats = w.points[:, comp].copy()
    np.testing.assert_array_equal(cats, np.searchsorted(np.unique(lab), lab))  # category codes
    assert [v[0] for v in w.legend_encoding["color"]["values"]] == [str(c) for c in range(5)]
    legend_colours = [tuple(v[1]) for v in w.legend_encoding["color"]["values"]]
    assert legend_colours[0] == pytest.approx(rgba(colour(0)))  # plotly's palette

    view.set_color("OOD score")
    assert w.color_title == "OOD score" and view.color_select.value == "OOD score"
    np.testing.assert_allclose(w.points[:, comp], (score + 1) / 4)  # normalised to [cmin, cmax]
    new = np.arange(400) % 3
    view.set_color(new, name="cluster")
    assert w.color_title == "cluster" and "cluster" in view.color_names
    np.testing.assert_array_equal(w.points[:, comp], new)
    view.register_color("cluster", (np.arange(400) + 1) % 3, legend_names={0: "a", 1: "b", 2: "c"})
    np.testing.assert_array_equal(w.points[:, comp], (np.arange(400) + 1) % 3)  # current: re-applied
    assert [v[0] for v in w.legend_encoding["color"]["values"]] == ["a", "b", "c"]
    view.set_color("label")
    np.testing.assert_array_equal(w.points[:, comp], cats)
    df = view.backend._df()
    assert set(df.columns) <= {"x", "y", "index", "label", "cluster"}  # one colour column kept, not one per colouring


@pytest.mark.parametrize("backend", ["plotly", "jscatter"])
def test_a_new_colouring_stays_chosen(backend):
    """Registering a new colouring adds it to the menu, whose new options reset its value: that
    reset must not switch the map back to the first colouring."""
    xy, lab = _blobs(100)
    view = EmbeddingView(xy, lab, colors={"score": np.linspace(0, 1, 100)}, backend=backend)
    view.set_color("score")
    view.set_color(np.arange(100) % 3, name="cluster")
    assert view.color_name == view.color_select.value == "cluster"
    view.color_select.value = "label"  # the user picks from the menu
    assert view.color_name == "label"


def test_snapshots_move_points_in_place_in_one_frame():
    xy, lab = _blobs(300)
    frames = np.stack([xy, 2 * xy + 5])  # (T, N, 2): the second map is larger and shifted
    view = EmbeddingView(snapshots=frames, labels=lab, backend="jscatter")
    w = _widget(view)
    assert view.index == 1 and "snapshot" in view.controls
    scale = list(w.x_scale_domain)
    p1 = w.points[:, :2].copy()
    view.slider.value = 0  # the slider in the page
    assert view.index == 0 and _widget(view) is w  # same widget, new positions
    assert list(w.x_scale_domain) == scale  # one frame for every snapshot: the camera keeps its meaning
    p0 = w.points[:, :2]
    assert not np.allclose(p0, p1)
    lo, hi = scale
    np.testing.assert_allclose(p0[:, 0], 2 * (xy[:, 0] - lo) / (hi - lo) - 1, atol=1e-5)  # NDC of the data


def test_highlight_and_overlays():
    xy, lab = _blobs(300)
    view = EmbeddingView(xy, lab, backend="jscatter")
    w = _widget(view)
    view.highlight([3, 4])
    comp = 2 if w.size_by == "valueA" else 3
    assert w.size_by is not None and w.points[[3, 4], comp].tolist() == [1.0, 1.0] and w.points[:, comp].sum() == 2
    view.highlight([])
    assert w.size_by is None
    stars = wb.viz.ood.prototype_stars(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0, 1]))
    ov = view.add_trace(stars)
    assert len(w.annotations) == 2 and len(w.annotations[0].vertices) == 11  # a star outline each
    ov.update(x=[0.5], y=[0.5])
    assert len(w.annotations) == 1
    fig = view.figure()
    assert fig.data[-1].type == "scatter" and list(fig.data[-1].x) == [0.5]  # the export draws it too


# ----------------------------------------------------------------------------- the auto switch
def test_auto_switch_threshold(monkeypatch):
    xy, lab = _blobs(300)
    monkeypatch.setattr(_map, "PLOTLY_MAX_POINTS", 300)
    assert EmbeddingView(xy, lab).backend.name == "plotly"  # at the threshold: plotly
    monkeypatch.setattr(_map, "PLOTLY_MAX_POINTS", 299)
    view = EmbeddingView(xy, lab)
    assert view.backend.name == "jscatter" and isinstance(view.figure, ScatterFigure)
    assert EmbeddingView(xy, lab, backend="plotly").backend.name == "plotly"  # explicit choice honoured
    assert _map.choose_backend("auto", 50_001) == ("jscatter", False)
    assert _map.choose_backend("auto", _map.PLOTLY_MAX_POINTS) == ("plotly", False)
    with pytest.raises(ValueError, match="unknown backend 'bokeh'.*'plotly'.*'jscatter'"):
        EmbeddingView(xy, lab, backend="bokeh")


def test_auto_without_jscatter_subsamples_with_a_warning(monkeypatch):
    xy, lab = _blobs(1000, k=4)
    lab[:10] = 7  # a rare class keeps its share (and at least one point)
    monkeypatch.setattr(_map, "PLOTLY_MAX_POINTS", 200)
    monkeypatch.setattr(_map, "has_jscatter", lambda: False)
    with pytest.warns(UserWarning, match=r'1,000 points.*sample of 200.*pip install -e "\.\[scale\]"'):
        view = EmbeddingView(xy, lab)
    keep = view.backend.keep
    assert view.backend.name == "plotly" and len(keep) == 200 and len(view.figure.data[0].x) == 200
    assert "showing 200 of 1,000 points" in view.figure.layout.annotations[0].text  # shown on the plot
    assert "200 of 1,000 points shown" in view.status.value
    for c in np.unique(lab):
        assert abs(np.sum(lab[keep] == c) - 200 * np.mean(lab == c)) <= 1
    # indices are the full ones in both directions
    got = []
    view.on_select(got.append)
    view.backend.inner._selected([0, 5])  # plotly reports sample positions
    assert view.selected.tolist() == sorted(keep[[0, 5]].tolist()) and got[-1].tolist() == view.selected.tolist()
    view.select([int(keep[3]), int(np.setdiff1d(np.arange(1000), keep)[0])])
    assert list(view.figure.data[0].selectedpoints) == [3]  # the unseen point is selected but not drawn
    view.set_color(np.arange(1000, dtype=float), name="i")
    np.testing.assert_array_equal(view.figure.data[0].customdata[:, 2], keep)


def test_explicit_jscatter_without_the_package_names_the_extra(monkeypatch):
    xy, lab = _blobs(50)
    monkeypatch.setitem(sys.modules, "jscatter", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r'pip install -e "\.\[scale\]"'):
        EmbeddingView(xy, lab, backend="jscatter")


def test_ood_lens_and_prototype_view_use_the_same_switch(monkeypatch):
    b = wb.ood.benchmark("gaussians8", n=160, seed=0)
    model = wb.models.MLP(2, (8,), b.n_classes, seed=0)
    bank = wb.ood.FeatureBank(model)
    ood = {"held-out": b.ood[next(iter(b.ood))]}
    cmp = wb.ood.compare([wb.ood.KNN(k=3)], bank, b.id_train, b.id_test, ood)
    omap = wb.ood.ood_map(cmp, bank, b.id_test, ood)
    monkeypatch.setattr(_map, "PLOTLY_MAX_POINTS", 20)
    lens = OODLens(omap)
    assert lens.view.backend.name == "jscatter"
    lens.outline.value = True  # missed OOD points are drawn larger
    w = lens.view.backend.scatter.widget
    assert (w.size_by is not None) == bool(np.any(omap.outcome(lens.detector, lens.threshold).numpy() == 3))
    w.selection = np.array([0, 1, 2], dtype=np.uint32)
    assert lens.selected.tolist() == [0, 1, 2] and "3 selected" in lens.selection_info.value

    ds = wb.data.load("gaussians8", n=120, seed=0)
    net = wb.models.MLP(2, (8,), 8, seed=0)
    palm = wb.methods.PALM(n_classes=8, n_prototypes=2, top_k=1, dim=4, feature_dim=8, momentum=0.9)
    wb.fit(net, palm, ds, steps=3, batch_size=60, progress=False)
    maps = wb.analyses.prototype_maps(palm, net, ds)
    pv = PrototypeView(maps, data=ds)
    assert pv._scatter is not None and len(pv._scatter.scatter.widget.annotations) >= 16
    monkeypatch.setattr(_map, "has_jscatter", lambda: False)
    with pytest.warns(UserWarning, match=r"sample of 20.*\[scale\]"):
        pv = PrototypeView(maps, data=ds)
    assert len(pv.keep) == 20 and len(pv.map.data[0].x) == 20 and len(pv.map.data[2].x) == 16  # all prototypes
    assert "showing 20 of 120 samples" in pv.map.layout.annotations[0].text


# ----------------------------------------------------------------------------- linked views
@pytest.mark.parametrize("backend", ["jscatter", "plotly"])
def test_linked_maps_share_the_selection(backend):
    xy, lab = _blobs(200)
    maps = {"teacher": xy, "student": xy[::-1].copy()}
    linked = LinkedMaps(maps, lab, backend=backend, colors={"s": np.linspace(0, 1, 200)})
    got = []
    linked.on_select(got.append)
    a, b = linked.views
    if backend == "jscatter":
        b.backend.scatter.widget.selection = np.array([5, 1], dtype=np.uint32)  # a lasso in the student map
        assert a.backend.scatter.widget.view_sync == b.backend.scatter.widget.view_sync  # pan/zoom linked
        b.backend.scatter.widget.hovering = 3
        assert a.backend.scatter.widget.hovering == 3  # hover linked
    else:
        b.backend._selected([5, 1])
    assert a.selected.tolist() == b.selected.tolist() == linked.selected.tolist() == [1, 5]
    assert got and got[-1].tolist() == [1, 5] and "2 selected in every map" in linked.status.value
    linked.select([7])
    assert a.selected.tolist() == b.selected.tolist() == [7]
    linked.set_color("s")
    assert a.color_name == b.color_name == "s" == linked.color_select.value
    with pytest.raises(ValueError, match="same N"):
        LinkedMaps([xy, xy[:10]], backend=backend)


# ----------------------------------------------------------------------------- scale and helpers
def test_a_million_points_is_one_binary_array():
    """The headline size: 10^6 points travel as one (N, 4) float array, no per-point Python objects
    (the timing is measured by benchmarks/bench_views.py)."""
    n = 1_000_000
    xy, lab = _blobs(n, k=10)
    view = EmbeddingView(xy, lab)
    w = _widget(view)
    assert view.backend.name == "jscatter" and w.points.shape == (n, 4) and w.points.dtype.kind == "f"
    df = view.backend._df()
    assert not any(df[c].dtype == object for c in df.columns)  # numbers and categories only
    w.selection = np.arange(0, n, 10, dtype=np.uint32)
    assert len(view.selected) == 100_000


def test_stratified_sample():
    lab = np.repeat([0, 1, 2], [900, 90, 10])
    keep = stratified_sample(lab, 100, seed=0)
    assert len(keep) == 100 and np.all(np.diff(keep) > 0)
    assert np.bincount(lab[keep]).tolist() == [90, 9, 1]
    assert np.array_equal(keep, stratified_sample(lab, 100, seed=0))
    assert not np.array_equal(keep, stratified_sample(lab, 100, seed=1))
    assert np.bincount(lab[stratified_sample(lab, 3)]).tolist() == [1, 1, 1]  # every label at least once
    assert len(stratified_sample(lab, 5000)) == 1000
    with pytest.raises(ValueError, match="positive"):
        stratified_sample(lab, 0)


def test_trace_polylines():
    import plotly.graph_objects as go

    lines = trace_polylines(go.Scatter(x=[0, 1, None, 2, 3, 4], y=[0, 1, None, 2, 3, 4], mode="lines",
                                       line=dict(color="rgba(255,0,0,0.5)", width=2)), span=10)
    assert [len(v) for v, _, _ in lines] == [2, 3] and lines[0][1] == (1.0, 0.0, 0.0, 0.5) and lines[0][2] == 2
    marks = trace_polylines(go.Scatter(x=[0, 5], y=[0, 5], mode="markers",
                                       marker=dict(symbol=["star", "x"], size=20, color=["#00ff00", "#0000ff"])),
                            span=100, plot_px=500)
    star, cross = marks
    assert len(star[0]) == 11 and np.max(np.abs(star[0])) == pytest.approx(2.0)  # 20 px of 500 = 4 units across
    assert star[1] == (0.0, 1.0, 0.0, 1.0) and np.allclose(cross[0].mean(0), [5, 5], atol=1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="cannot read the colour"):
            trace_polylines(go.Scatter(x=[0], y=[0], mode="markers", marker=dict(color="chartreuse")), span=1)
