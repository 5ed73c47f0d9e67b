"""EmbeddingView / PrototypeView and their static builders: figure data and widget state only
(no browser). Events from the front end are simulated through the FigureWidget's message slot."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.viz.embedding import png_bytes, scatter_map
from workbench.widgets import EmbeddingView, PrototypeView


def _send(fig, event: str, trace: int, inds):
    """What plotly.js sends for a click / hover / box selection on ``trace``."""
    inds = [int(i) for i in inds]
    fig._js2py_pointsCallback = {
        "event_type": event,
        "points": {"trace_indexes": [trace] * len(inds), "point_indexes": inds,
                   "xs": [0.0] * len(inds), "ys": [0.0] * len(inds)},
        "selector": {"type": "box", "selector_state": {"xrange": [0, 1], "yrange": [0, 1]}}
        if event == "plotly_selected" else None,
        "device_state": None,
    }


@pytest.fixture(scope="module")
def palm_fit():
    ds = wb.data.load("digits", n=300, seed=0)
    model = wb.models.MLP(64, (32,), 10, seed=0)
    m = wb.methods.PALM(n_classes=10, n_prototypes=3, top_k=2, dim=16, feature_dim=32, momentum=0.9)
    snaps = wb.training.Snapshots(every=5, embed=ds, embed_fn=m.embed)
    h = wb.fit(model, m, ds, steps=10, batch_size=100, progress=False, callbacks=[snaps])
    return ds, model, m, h


def test_embedding_view_handles_50k_points_in_one_webgl_trace():
    n = 50_000
    rng = np.random.default_rng(0)
    xy = rng.standard_normal((n, 2)).astype(np.float32)
    labels = rng.integers(0, 10, n)
    view = EmbeddingView(xy, labels, backend="plotly")  # ("auto" draws 50k with jupyter-scatter)
    pts = view.figure.data[0]
    assert pts.type == "scattergl" and len(pts.x) == n and len(pts.y) == n
    assert np.asarray(pts.customdata).shape == (n, 3)
    assert np.asarray(pts.marker.color).shape == (n,)  # numeric codes, not 50k colour strings
    assert sum(len(t.x) for t in view.figure.data if t.x is not None) < n + 100  # nothing duplicated
    fig = view.figure
    view.set_color(rng.random(n), name="OOD score")
    assert view.figure is fig and view.figure.data[0] is pts  # updated in place
    assert pts.marker.showscale is True and len(pts.marker.color) == n
    assert view.color_select.value == "OOD score" and "OOD score" in view.color_names
    view.set_color("label")
    assert pts.marker.showscale is False
    assert [t.visible for t in view.figure.data[2:12]] == [True] * 10


def test_selection_returns_indices_and_callbacks():
    xy = np.random.default_rng(1).standard_normal((200, 2))
    view = EmbeddingView(xy, np.arange(200) % 3)
    got = []
    view.on_select(got.append)
    _send(view.figure, "plotly_selected", 0, [5, 3, 9])
    assert view.selected.tolist() == [3, 5, 9] and got[-1].tolist() == [3, 5, 9]
    assert "3 selected" in view.status.value
    _send(view.figure, "plotly_deselect", 0, [])
    assert view.selected.tolist() == []
    view.select([7, 1])
    assert view.selected.tolist() == [1, 7] and list(view.figure.data[0].selectedpoints) == [1, 7]
    view.highlight([2, 4])
    assert np.allclose(view.figure.data[1].x, xy[[2, 4], 0])
    with pytest.raises(IndexError):
        view.select([500])
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


def test_snapshot_slider_moves_points_in_place():
    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(60, 4, generator=g) for _ in range(3)]
    al = wb.analyses.aligned_projections(zs, "pca")
    view = EmbeddingView(al, np.arange(60) % 2)
    assert view.n_snapshots == 3 and view.slider.max == 2 and view.slider.value == 2
    pts = view.figure.data[0]
    assert np.allclose(pts.x, al.coords[2][:, 0].numpy())
    view.slider.value = 0  # what dragging the slider does
    assert view.figure.data[0] is pts and np.allclose(pts.x, al.coords[0][:, 0].numpy())
    assert view.frame_label.value == "0"
    view.set_snapshot(-1)
    assert view.slider.value == 2
    with pytest.raises(IndexError):
        view.set_snapshot(3)
    # snapshots given separately from the projection
    v2 = EmbeddingView(wb.analyses.project(zs[0]), snapshots=list(al.coords), snapshot_names=["a", "b", "c"])
    assert v2.snapshot_names == ["a", "b", "c"]


def test_image_thumbnails_on_hover_and_click():
    ds = wb.data.load("digits", n=120, seed=0)
    proj = wb.analyses.project(ds.flat)
    view = EmbeddingView(proj, data=ds, predictions=ds.y.flip(0), colors={"brightness": ds.flat.mean(1)})
    assert view.thumbnail is not None and view.color_names == ["label", "prediction", "brightness"]
    _send(view.figure, "plotly_hover", 0, [17])
    assert view.thumbnail.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "index 17" in view.thumbnail_caption.value
    view.set_color("brightness")
    _send(view.figure, "plotly_click", 0, [3])
    assert "index 3" in view.thumbnail_caption.value and "brightness" in view.thumbnail_caption.value
    # non-image data: no panel
    pts = wb.data.load("moons", n=50)
    assert EmbeddingView(pts.x, data=pts).thumbnail is None


def test_embedding_view_errors():
    xy = np.zeros((10, 2))
    with pytest.raises(ValueError, match="one value per point"):
        EmbeddingView(xy, np.arange(9))
    view = EmbeddingView(xy, np.arange(10) % 2)
    with pytest.raises(ValueError, match="unknown colour"):
        view.set_color("ood")
    with pytest.raises(ValueError, match="one value per point"):
        view.set_color(np.arange(3))
    with pytest.raises(ValueError, match="same N"):
        EmbeddingView(snapshots=[np.zeros((10, 2)), np.zeros((9, 2))])
    with pytest.raises(ValueError, match="thumbnails"):
        view.thumbnail_png(0)


def test_png_encoder_round_trip():
    img = np.arange(12, dtype=float).reshape(3, 4)
    png = png_bytes(img, scale=2, invert=False)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (8, 6)
    idat_len = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41:41 + idat_len])
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(6, 1 + 8)[:, 1:]
    assert rows[0, 0] == 0 and rows[-1, -1] == 255 and rows[0, 1] == rows[0, 0]  # upscaled, scaled to 0..255


def test_scatter_map_structure():
    fig = scatter_map(np.zeros((5, 2)), labels=[0, 1, -1, 1, 0], class_names=["a", "b"])
    assert fig.data[0].type == "scattergl" and len(fig.data[0].x) == 5
    assert fig.data[1].name == "highlighted"
    names = [t.name for t in fig.data[2:] if t.visible]
    assert names == ["OOD / unknown", "a", "b"]


def test_prototype_view_over_snapshots(palm_fit):
    ds, model, m, h = palm_fit
    view = PrototypeView(m, model, ds, snapshots=h, top=4)
    kt = 30
    assert view.n_snapshots == 3 and view.slider.value == 2
    pts, edges, protos = view.map.data[:3]
    assert len(pts.x) == len(ds) and len(protos.x) == kt
    assert len(edges.x) <= 3 * kt * 4 and len(edges.x) % 3 == 0
    assert len(view.bars.data[0].y) == kt
    assert view.curves is not None and len(view.curves.data[0].x) == 3
    # prototypes are drawn where the aligned projection puts them
    a = view.evolution
    al = wb.analyses.aligned_projections(h.snapshots, "pca")
    assert np.allclose(protos.x, al.transform(2, a.prototypes[2])[:, 0].numpy(), atol=1e-4)
    before_x = np.array(pts.x)
    view.slider.value = 0
    assert view.map.data[0] is pts and not np.allclose(pts.x, before_x)
    assert view.curves.layout.shapes[0].x0 == 0
    assert "step 0" in view.status.value
    order = np.argsort(a.proto_class.numpy(), kind="stable")
    assert np.allclose(view.bars.data[0].y, a.counts[0].numpy()[order])  # bars show snapshot 0 now
    # gallery: one row per prototype of the class, PNG
    assert view.gallery.value[:8] == b"\x89PNG\r\n\x1a\n"
    j = 7  # prototype 7 belongs to class 7
    _send(view.map, "plotly_click", 2, [j])
    assert view.class_select.value == 7
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


def test_prototype_view_without_snapshots_and_errors(palm_fit):
    ds, model, m, h = palm_fit
    view = PrototypeView(m, model, ds)
    assert view.n_snapshots == 1 and view.curves is None
    assert len(view.map.data[2].x) == 30
    with pytest.raises(ValueError, match="model"):
        PrototypeView(m, None, ds)
    with pytest.raises(TypeError, match="prototype method"):
        PrototypeView(wb.methods.CrossEntropy(), model, ds)


def test_static_prototype_figures(palm_fit):
    ds, model, m, h = palm_fit
    a = wb.analyses.prototype_assignments(m, model, ds)
    proj = wb.analyses.project(wb.analyses.embed(model, ds, fn=m.embed))
    fig = wb.viz.prototype_map(a, proj.coords, proj.transform(m.prototypes), top=3)
    assert [t.name for t in fig.data[:3]] == ["samples", "top-3 assignments", "prototypes"]
    bars = wb.viz.occupancy_bars(a)
    assert len(bars.data[0].x) == 30 and bars.data[0].x[0].startswith("0:")
    heat = wb.viz.redundancy_heatmap(a)
    assert np.asarray(heat.data[0].z).shape == (30, 30)
    gal = wb.viz.prototype_gallery(a, ds.x, classes=[0, 1], n=4)
    assert np.asarray(gal.data[0].z).shape == (6 * 9 - 1, 4 * 9 - 1)  # 6 prototypes x 4 samples, 8x8 + 1 px gaps
    evo = wb.analyses.prototype_evolution(h.snapshots, m, ds)
    ev = wb.viz.prototype_evolution(evo)
    assert [t.name for t in ev.data] == ["dead", "duplicates", "mean purity"]
    al = wb.analyses.aligned_projections({"a": proj.fitted, "b": proj.fitted * 2})
    panels = wb.viz.aligned_maps(al, ds.y)
    assert len([t for t in panels.data if t.x is not None and len(t.x) == len(ds)]) == 2


def test_register_color_and_legend_names():
    view = EmbeddingView(np.zeros((6, 2)), np.array([0, 1, 0, 1, 0, 1]))
    view.register_color("set", np.array([0, 0, 1, 1, 2, 2]), legend_names={0: "ID", 1: "SVHN", 2: "noise"})
    assert view.color_name == "label" and "set" in view.color_select.options
    view.set_color("set")
    assert [t.name for t in view.figure.data[2:5]] == ["ID", "SVHN", "noise"]


def test_prototype_view_on_points_has_no_gallery():
    ds = wb.data.load("gaussians8", n=160, seed=0)
    model = wb.models.MLP(2, (16,), 8, seed=0)
    m = wb.methods.PALM(n_classes=8, n_prototypes=2, top_k=1, dim=8, feature_dim=16, momentum=0.9)
    wb.fit(model, m, ds, steps=5, batch_size=80, progress=False)
    view = PrototypeView(m, model, ds, top=2)
    assert view.gallery is None and len(view.map.data[2].x) == 16
    with pytest.raises(ValueError, match="image data"):
        view.gallery_png(0)


def test_prototype_maps_is_what_the_view_shows(palm_fit):
    ds, model, m, h = palm_fit
    maps = wb.analyses.prototype_maps(m, model, ds, snapshots=h)
    al = wb.analyses.aligned_projections(h.snapshots, "pca")
    evo = wb.analyses.prototype_evolution(h.snapshots, m, ds)
    assert maps.names == al.names and maps.coords.shape == (3, len(ds), 2) and maps.proto_coords.shape == (3, 30, 2)
    torch.testing.assert_close(maps.coords, al.coords.float())
    torch.testing.assert_close(maps.proto_coords[1], al.transform(1, evo.prototypes[1]).float())
    torch.testing.assert_close(maps.assignments[2].counts, evo.counts[2])
    assert "PrototypeMaps(3 map(s)" in repr(maps)
    view = PrototypeView(maps, data=ds)  # a result computed before: the view only draws it
    assert view.method is None and view.n_snapshots == 3
    np.testing.assert_allclose(view.map.data[0].x, maps.coords[2, :, 0].numpy())
    now = wb.analyses.prototype_maps(m, model, ds)
    a = wb.analyses.prototype_assignments(m, model, ds)
    assert now.names == ("now",) and now.evolution is None
    torch.testing.assert_close(now.assignments[0].weights, a.weights)
    proj = wb.analyses.project(wb.analyses.embed(model, ds, fn=m.embed))
    torch.testing.assert_close(now.proto_coords[0], proj.transform(m.prototypes).float())
    with pytest.raises(ValueError, match="data="):
        wb.analyses.prototype_maps(m, model)
    with pytest.raises(ValueError, match="backend"):
        EmbeddingView(np.zeros((4, 2)), backend="webgl2")


def test_view_patches_match_the_static_builders(palm_fit):
    """What a view writes into a figure on a change is what the builder draws for that state."""
    from workbench.viz import _common as vc
    from workbench.viz import prototypes as vp
    from workbench.viz.embedding import MapTrace

    ds, model, m, h = palm_fit
    maps = wb.analyses.prototype_maps(m, model, ds, snapshots=h)
    view = PrototypeView(maps, data=ds, top=3)
    view.set_snapshot(0)
    built = vp.prototype_map(maps.assignments[0], maps.coords[0], maps.proto_coords[0], top=3)
    for role in vp.ProtoMapTrace:
        if role == vp.ProtoMapTrace.LEGEND:
            continue
        got, want = view.map.data[role], built.data[role]
        assert len(got.x) == len(want.x)
        np.testing.assert_allclose(np.asarray(got.x, dtype=float), np.asarray(want.x, dtype=float))
    bars = vp.occupancy_bars(maps.assignments[0])
    np.testing.assert_array_equal(view.bars.data[0].y, bars.data[0].y)
    assert list(view.bars.data[0].marker.color) == list(bars.data[0].marker.color)
    # recolouring the embedding map = building it with that colour
    xy = np.random.default_rng(0).standard_normal((len(ds), 2))
    score = np.linspace(0, 1, len(ds))
    ev = EmbeddingView(xy, ds.y)
    ev.set_color(score, name="score")
    ref = scatter_map(xy, labels=ds.y, color=score, color_name="score")
    pts, want = ev.figure.data[MapTrace.POINTS], ref.data[MapTrace.POINTS]
    np.testing.assert_allclose(pts.marker.color, want.marker.color)
    np.testing.assert_allclose(np.asarray(pts.customdata), np.asarray(want.customdata))
    assert pts.hovertemplate == want.hovertemplate and pts.marker.showscale is True
    assert vc.log10([1e-20, 10.0]).tolist() == [-12.0, 1.0]
