"""The contract every interactive view passes (one shape: ``widgets._view.View``).

Each case builds one view on a tiny result and says what the constructor must have built: its
figures (trace types, names and data sizes), its controls, and the view-specific state. The
shared checks then hold for every view: a ``View`` with figure widgets and controls laid out in
``widget`` (rows that wrap, figures that take their container's width), ``figure()`` a plain
``go.Figure`` with the same traces as the figure widget, a working ``_repr_mimebundle_`` and a
readable ``repr``. A view added to ``wb.widgets`` without a case here fails
``test_every_view_has_a_contract_case``.

Views whose map can be drawn by jupyter-scatter (``backend="jscatter"``: EmbeddingView, OODLens,
PrototypeView, LinkedMaps) have a second case, ``Name[jscatter]``: there the map figure is a
``ScatterFigure`` (a box holding the jupyter-scatter widget, callable like a figure widget), whose
traces are checked on its static export ``fig()``.
"""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest
import torch

import workbench as wb

pytest.importorskip("plotly")
ipw = pytest.importorskip("ipywidgets")

import plotly.graph_objects as go  # noqa: E402

from workbench.widgets._figure import FigureWidget  # noqa: E402
from workbench.widgets._scatter import ScatterFigure, has_jscatter  # noqa: E402
from workbench.widgets._view import View  # noqa: E402

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


# ----------------------------------------------------------------------------- tiny results
@pytest.fixture(scope="module")
def blobs():
    return wb.data.load("gaussians8", n=96, seed=0)


@pytest.fixture(scope="module")
def ce_fit(blobs):
    model = wb.models.MLP(2, (8,), 8, seed=0)
    method = wb.methods.CrossEntropy()
    hist = wb.fit(model, method, blobs, steps=6, batch_size=48, val=blobs, eval_every=3, progress=False)
    return model, method, hist


@pytest.fixture(scope="module")
def palm_fit(blobs):
    model = wb.models.MLP(2, (8,), 8, seed=0)
    palm = wb.methods.PALM(n_classes=8, n_prototypes=2, top_k=1, dim=4, feature_dim=8, momentum=0.9)
    snaps = wb.training.Snapshots(every=3, embed=blobs, embed_fn=palm.embed)
    hist = wb.fit(model, palm, blobs, steps=6, batch_size=48, progress=False, callbacks=[snaps])
    return model, palm, hist


def _distillation_traj(frames=3, n=24):
    from workbench.analyses import distillation as D

    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 4
    t = torch.randn(n, 4, generator=g)
    agreements = tuple(D.agreement_from_logits(t, t + 0.5 * i * torch.randn(n, 4, generator=g), y)
                       for i in range(frames))
    return D.DistillationTrajectory(
        names=tuple(f"step {i}" for i in range(frames)), steps=torch.arange(frames),
        teacher_coords=torch.randn(n, 2, generator=g), coords=torch.randn(frames, n, 2, generator=g), labels=y,
        probe=torch.linspace(0.5, 0.7, frames), knn=torch.linspace(0.4, 0.6, frames),
        cka=torch.linspace(1.0, 0.8, frames), teacher_probe=0.6, teacher_knn=0.5, projection="pca",
        agreements=agreements, class_names=("a", "b", "c", "d"),
    )


# ----------------------------------------------------------------------------- one case per view
# Each case returns (view, expected): expected["traces"] lists (type, name or None, number of x
# values or None) for the main figure's traces, from the first; "figures" and "controls" name
# what must be registered.


def case_embedding(blobs, **_):
    xy = np.random.default_rng(0).standard_normal((len(blobs), 2))
    view = wb.widgets.EmbeddingView(xy, blobs.y, colors={"score": np.linspace(0, 1, len(blobs))})
    traces = [("scattergl", "points", len(blobs)), ("scattergl", "highlighted", 0)]
    traces += [("scattergl", None, 1)] * 20  # legend swatches
    assert [t.name for t in view.figure.data[2:10]] == [str(c) for c in range(8)]
    assert sum(t.visible is not False for t in view.figure.data[2:]) == 8  # 8 classes named, 12 spare
    assert view.backend.name == "plotly" and view.color_names == ["label", "score"]
    assert "snapshot" not in view.controls  # one map: no slider
    return view, dict(traces=traces, figures=["map"], controls=["color"])


def case_embedding_jscatter(blobs, **_):
    xy = np.random.default_rng(0).standard_normal((len(blobs), 2))
    view = wb.widgets.EmbeddingView(xy, blobs.y, colors={"score": np.linspace(0, 1, len(blobs))}, backend="jscatter")
    w = view.backend.scatter.widget
    assert view.backend.name == "jscatter" and w.points.shape == (len(blobs), 4)
    assert w.color_title == "label" and view.color_names == ["label", "score"]
    traces = [("scattergl", "points", len(blobs)), ("scattergl", "highlighted", 0)] + [("scattergl", None, 1)] * 20
    return view, dict(traces=traces, figures=["map"], controls=["color"])


def case_linked(blobs, **_):
    maps = np.random.default_rng(0).standard_normal((2, len(blobs), 2))
    view = wb.widgets.LinkedMaps(maps, blobs.y, names=["teacher", "student"], backend="plotly")
    assert view.backend == "plotly" and [v.n_points for v in view.views] == [len(blobs)] * 2
    traces = [("scattergl", "points", len(blobs)), ("scattergl", "highlighted", 0)] + [("scattergl", None, 1)] * 20
    return view, dict(traces=traces, figures=["teacher", "student"], controls=["color"])


def case_linked_jscatter(blobs, **_):
    maps = np.random.default_rng(0).standard_normal((2, len(blobs), 2))
    view = wb.widgets.LinkedMaps(maps, blobs.y, names=["teacher", "student"], backend="jscatter")
    ws = [v.backend.scatter.widget for v in view.views]
    assert view.backend == "jscatter" and ws[0].view_sync and ws[0].view_sync == ws[1].view_sync  # jscatter.link
    traces = [("scattergl", "points", len(blobs)), ("scattergl", "highlighted", 0)] + [("scattergl", None, 1)] * 20
    return view, dict(traces=traces, figures=["teacher", "student"], controls=["color"])


def case_prototypes(blobs, palm_fit, **_):
    model, palm, hist = palm_fit
    view = wb.widgets.PrototypeView(palm, model, blobs, snapshots=hist, top=2)
    kt = palm.prototypes.shape[0]
    assert view.n_snapshots == len(hist.snapshots.steps) == 3
    assert len(view.bars.data[0].y) == kt and len(view.curves.data[0].x) == 3
    assert view.curves.layout.shapes[0].x0 == float(hist.snapshots.steps[-1])
    assert view.gallery is None  # 2-D points: no "this looks like that"
    n_edges = len(view.map.data[1].x)
    traces = [("scattergl", "samples", len(blobs)), ("scattergl", "top-2 assignments", n_edges),
              ("scatter", "prototypes", kt)] + [("scattergl", f"mode {c}", 1) for c in range(8)]
    assert n_edges % 3 == 0 and 0 < n_edges <= 3 * 2 * kt
    return view, dict(traces=traces, figures=["map", "bars", "curves"], controls=["snapshot", "play"])


def case_prototypes_jscatter(blobs, palm_fit, **_):
    model, palm, hist = palm_fit
    view = wb.widgets.PrototypeView(palm, model, blobs, snapshots=hist, top=2, backend="jscatter")
    kt = palm.prototypes.shape[0]
    assert view.map is view.figure and view.n_snapshots == 3
    w = view._scatter.scatter.widget
    n_edges = len(view._edges.trace.x)
    assert len(w.annotations) == kt + n_edges // 3  # one outline per prototype, one line per edge
    before = np.array(w.points[:, :2])
    view.set_snapshot(0)
    assert not np.allclose(before, w.points[:, :2])  # points moved in place
    traces = [("scattergl", "points", len(blobs)), ("scattergl", "highlighted", 0)] + [("scattergl", None, 1)] * 20
    traces += [("scatter", "top-2 assignments", None), ("scatter", "prototypes", kt)]
    return view, dict(traces=traces, figures=["map", "bars", "curves"], controls=["snapshot", "play"])


def _ood_map():
    b = wb.ood.benchmark("gaussians8", n=240, seed=0)
    model = wb.models.MLP(2, (8,), b.n_classes, seed=0)
    bank = wb.ood.FeatureBank(model)
    ood = {"held-out": b.ood[next(iter(b.ood))]}
    cmp = wb.ood.compare([wb.ood.Mahalanobis(), wb.ood.KNN(k=3)], bank, b.id_train, b.id_test, ood)
    return wb.ood.ood_map(cmp, bank, b.id_test, ood)


def case_ood_lens_jscatter(**_):
    omap = _ood_map()
    view = wb.widgets.OODLens(omap, backend="jscatter")
    n = len(omap.labels)
    assert view.view.backend.name == "jscatter" and view.view.backend.scatter.widget.points.shape == (n, 4)
    traces = [("scattergl", "points", n), ("scattergl", "highlighted", 0)] + [("scattergl", None, 1)] * 20
    controls = ["detector", "ood set", "convention", "threshold", "snap id-positive", "snap ood-positive", "outline"]
    return view, dict(traces=traces, figures=["map", "roc", "histograms"], controls=controls)


def case_ood_lens(blobs, **_):
    b = wb.ood.benchmark("gaussians8", n=240, seed=0)
    model = wb.models.MLP(2, (8,), b.n_classes, seed=0)
    bank = wb.ood.FeatureBank(model)
    ood = {"held-out": b.ood[next(iter(b.ood))]}
    cmp = wb.ood.compare([wb.ood.Mahalanobis(), wb.ood.KNN(k=3)], bank, b.id_train, b.id_test, ood)
    omap = wb.ood.ood_map(cmp, bank, b.id_test, ood)
    view = wb.widgets.OODLens(omap)
    assert view.detector == omap.best_detector()
    n = len(omap.labels)
    traces = [("scattergl", "points", n), ("scattergl", "highlighted", 0)] + [("scattergl", None, 1)] * 20
    assert [t.name for t in view.roc.data] [1:] == ["chance", "FPR@95% (id-positive)", "threshold"]
    assert len(view.hist.data) == 2 and view.landing is None  # no prototypes in this bank
    controls = ["detector", "ood set", "convention", "threshold", "snap id-positive", "snap ood-positive", "outline"]
    return view, dict(traces=traces, figures=["map", "roc", "histograms"], controls=controls)


def case_trajectory(blobs, **_):
    ddpm = wb.methods.DDPM(n_steps=4, schedule="linear")
    den = wb.models.TimeMLP(dim=2, hidden=8, n_layers=1, time_dim=8, seed=0)
    traj = wb.analyses.sample_trajectory(den, ddpm, n=12, seed=0)
    view = wb.widgets.TrajectoryView(traj, trails=2, data=blobs)
    traces = [("scattergl", "data", len(blobs)), ("scattergl", "samples", 12),
              ("scatter", "trails", 2 * (traj.n_frames + 1)), ("scatter", "score field", 0)]
    assert view.frame == traj.n_frames - 1 and view.slider.max == traj.n_frames - 1
    return view, dict(traces=traces, figures=["frames"], controls=["frame", "play", "show", "score field", "trails"])


def case_landscape(blobs, ce_fit, **_):
    model, method, _ = ce_fit
    land = wb.analyses.loss_slice_2d(model, method, blobs, steps=5, seed=0)
    view = wb.widgets.LandscapeView({"a": land, "b": land})
    per_panel = [("contour", "a", 5), ("scatter", "training path", 0), ("scatter", "trained weights", 1),
                 ("scatter", "selected", 0), ("scatter", "snapshot", 0)]
    traces = per_panel + [(t, "b" if n == "a" else n, k) for t, n, k in per_panel]
    assert np.asarray(view.figure.data[0].z).shape == (5, 5)
    assert view.surface_figure is not None and "surface" in view.figures  # built on first use, registered
    assert "snapshot" not in view.controls  # no training path: no slider
    return view, dict(traces=traces, figures=["contour", "surface"], controls=["mode", "log", "metric", "path"])


def case_distillation(**_):
    traj = _distillation_traj()
    view = wb.widgets.DistillationView(traj)
    traces = [("scattergl", "teacher", 24), ("scattergl", "student: step 2", 24),
              ("scattergl", "disagrees with teacher", int(traj.agreements[2].disagree.sum()))]
    traces += [("scattergl", None, 1)] * 20
    assert [t.name for t in view.curve.data][:2] == ["student: linear probe", "student: k-NN"]
    assert list(view.curve.data[5].x) == [2] and len(view.bars.data[0].y) == 4
    return view, dict(traces=traces, figures=["maps", "curve", "bars"], controls=["frame", "play", "highlight", "metric"])


def case_live(blobs, **_):
    view = wb.widgets.LiveTraining(min_interval=0)
    model = wb.models.MLP(2, (8,), 8, seed=0)
    hist = wb.fit(model, wb.methods.CrossEntropy(), blobs, steps=5, batch_size=48, val=blobs, eval_every=5,
                  callbacks=[view], progress=False)
    traces = [("scatter", "train", 5), ("scatter", "val", 1), ("scatter", "train acc", 5), ("scatter", "val acc", 1)]
    assert view.fig is view.figure and view.history is hist
    return view, dict(traces=traces, figures=["curves"], controls=["stop", "metric"])


def case_compare(blobs, ce_fit, **_):
    model, method, hist = ce_fit
    model2 = wb.models.MLP(2, (8,), 8, seed=1)
    hist2 = wb.fit(model2, method, blobs, steps=6, batch_size=48, val=blobs, eval_every=3, progress=False)
    view = wb.widgets.CompareView({"a": (model, method, hist), "b": (model2, method, hist2)}, data=blobs,
                                  keys=["train_loss"])
    traces = [("scatter", "a ±1 std", 0), ("scatter", "a", 6), ("scatter", "b ±1 std", 0), ("scatter", "b", 6)]
    assert list(view.table.index) == ["a", "b"] and list(view.table["runs"]) == [1, 1]
    assert len(view.embeddings.data) == 2 * 8 and view.landscapes is None
    assert sum(len(t.x) for t in view.embeddings.data) == 2 * len(blobs)
    return view, dict(traces=traces, figures=["curves", "embeddings"],
                      controls=["smoothing", "members", "log y", "projection"])


def case_calibration(blobs, ce_fit, **_):
    model, _, _ = ce_fit
    probs = wb.analyses.predict(model, blobs).probs
    err = wb.analyses.calibration.ece(probs, blobs.y, n_bins=10)
    proj = wb.analyses.project(wb.analyses.embed(model, blobs), method="pca")
    view = wb.widgets.CalibrationView(err, proj, labels=blobs.y, set_sizes=torch.ones(len(blobs)))
    traces = [("bar", "accuracy", 10), ("bar", "gap to confidence", 10), ("scatter", "perfect calibration", 2),
              ("bar", "selected bin", 0)]
    m = int(err.bins.index[0])
    view.select_bin(m)
    assert wb.widgets.CalibrationView(err, selected_bin=m).selected_bin == m
    assert len(view.reliability.data[3].x) == 1 and len(view.histogram.data[1].x) == 1
    assert view.bin_select.value.startswith(f"bin {m + 1}:")
    assert sorted(view.map._highlight.tolist()) == view.bin_indices(m).tolist()
    view.color_by("set size")
    assert view.map.color_name == "set size"
    view.select_bin(None)
    assert len(view.map._highlight) == 0
    return view, dict(traces=traces, figures=["reliability", "histogram", "map"], controls=["bin"])


def case_protopnet(**_):
    ds = wb.data.resize(wb.data.load("digits", n=60, seed=0), 16)
    model = wb.models.ProtoPNet(n_classes=10, prototypes_per_class=1, prototype_dim=4, width=4, seed=0)
    proj = wb.analyses.project_prototypes(model, ds)
    ex = wb.analyses.explain_predictions(model, ds, range(3), projection=proj)
    view = wb.widgets.ProtoPNetView(ex, top=3)
    assert np.asarray(view.figure.data[0].z).shape == (3 * 17 - 1, 4 * 17 - 1)  # 3 rows x 4 tiles of 16 px
    assert len(view.figure.layout.yaxis.ticktext) == 3
    wf = view.waterfall.data[0]
    assert list(wf.measure) == ["relative"] * 4 + ["total"]
    assert np.isclose(wf.y[-1], float(ex.outputs[0, int(ex.pred[0])]), atol=1e-4)
    assert np.isclose(sum(wf.y[:-1]), wf.y[-1], atol=1e-4)  # the contributions sum to the logit
    view.set_image(2).set_class(4)
    assert view.class_select.value == 4 and np.isclose(view.waterfall.data[0].y[-1], float(ex.outputs[2, 4]), atol=1e-4)
    view.set_image(0).set_class(None)
    traces = [("heatmap", None, None), ("scatter", "matched patch", 2 * 3 * 6)]
    return view, dict(traces=traces, figures=["explanation", "contributions"], controls=["image", "class"])


def case_gcd(**_):
    g = np.random.default_rng(0)
    x = np.concatenate([c + 0.3 * g.standard_normal((40, 2)) for c in ([0, 0], [4, 0], [0, 4], [4, 4])])
    cls = np.repeat(np.arange(4), 40)
    y = np.where((cls < 2) & (g.random(160) < 0.5), cls, -1)
    fit = wb.analyses.fit_ss_gmm(torch.tensor(x), torch.tensor(y), k_init=6)
    film = wb.analyses.gmm_film(fit.frames, torch.tensor(x).float(), cls, labelled=y >= 0)
    view = wb.widgets.GCDView(film, true_k=4, frame=0)
    assert view.frame == 0 and len(view.curve.data[0].x) == film.n_frames
    view.set_frame(1)
    assert len(view.figure.data[2].x) == int(film.k[1]) and view.slider.value == 1
    view.set_color("class").set_color("component").set_frame(0)
    traces = [("scattergl", "samples", 160), ("scatter", "split / merge", 0), ("scatter", "components", 6)]
    return view, dict(traces=traces, figures=["map", "k"], controls=["frame", "play", "color"])


def case_continual(**_):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 4
    embs = [torch.randn(60, 5, generator=g) + y[:, None].float() * (1 + s) for s in range(3)]
    tasks = [[0, 1], [2], [3]]
    preds = torch.stack([torch.where(torch.rand(60, generator=g) < 0.7, y, 0) for _ in range(3)])
    mats = wb.analyses.accuracy_matrices(preds, y, tasks)
    drift = wb.analyses.prototype_drift(embs, y, seen=[[0, 1], [0, 1, 2], [0, 1, 2, 3]])
    view = wb.widgets.ContinualView(drift, mats, metrics=mats.metrics(), session=0)
    assert len(view.figure.data[2].x) == 2 and len(view.figure.data[1].x) == 0  # two prototypes, no paths yet
    view.set_session(2)
    assert len(view.figure.data[2].x) == 4 and list(view.heat.data[1].y)[:2] == [1.5, 1.5]
    traces = [("scattergl", "test samples", 60), ("scatter", "prototype path", None), ("scatter", "prototypes", 4)]
    return view, dict(traces=traces, figures=["drift", "matrix"], controls=["session", "play"])


def case_guidance(blobs, **_):
    den = wb.models.TimeMLP(dim=2, hidden=8, n_layers=1, time_dim=8, n_classes=3, seed=0)
    ddpm = wb.methods.ConditionalDDPM(n_steps=4, schedule="linear")
    fields = wb.analyses.guided_fields(den, ddpm, [1, 3], scales=(0.0, 1.0, 2.0), resolution=5)
    sweep = wb.analyses.guidance_sweep(den, ddpm, blobs, scales=(0.0, 1.0, 2.0), n=24, steps=2)
    view = wb.widgets.GuidanceView(fields, sweep, data=blobs)
    assert (view.t, view.cls, view.scale) == (3, 0, 2.0)
    traces = [("scattergl", "data", len(blobs)), ("scatter", "unguided score", 75), ("scattergl", "data", len(blobs)),
              ("scatter", "guided score", 75), ("scattergl", "samples, other classes", 16),
              ("scattergl", "samples of this class", 8)]
    assert len(view.curves.data) == 4 and view.curves.layout.shapes[0].x0 == 2.0
    return view, dict(traces=traces, figures=["fields", "curves"], controls=["t", "play", "class", "scale"])


def case_discrete(**_):
    d3pm = wb.methods.D3PM(2, 4, "absorbing")
    model = wb.models.TokenDenoiser(16, d3pm.n_total, hidden=8, n_layers=1, time_dim=8, seed=0)
    traj = wb.analyses.sample_discrete(model, d3pm, n=6, shape=(1, 4, 4), seed=0)
    view = wb.widgets.DiscreteTrajectoryView(traj, n=4)
    traces = [("heatmap", "states", None), ("heatmap", "decided at", None), ("scatter", "not final", 5),
              ("scatter", "this frame", 1)]
    assert view.frame == 4 and view.slider.max == 4
    return view, dict(traces=traces, figures=["frames"], controls=["frame", "play"])


def _pseudo_trace(frames=3, n=30):
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(frames, n, generator=g)
    labels = torch.randint(0, 4, (frames, n), generator=g)
    truth = torch.randint(-1, 4, (n,), generator=g)
    coords = torch.randn(frames, n, 2, generator=g)
    return wb.analyses.pseudo_label_trace(torch.arange(frames) * 10, conf, labels, truth=truth, coords=coords,
                                          threshold=0.5)


def case_pseudo_labels(**_):
    trace = _pseudo_trace()
    view = wb.widgets.PseudoLabelView(trace)
    keep = trace.confidence[-1] >= 0.5
    wrong = int((keep & (trace.labels[-1] != trace.truth)).sum())
    traces = [("scattergl", "unlabelled", 30), ("scattergl", "kept, wrong pseudo-label", wrong)]
    assert [t.name for t in view.curve.data] == ["quantity: fraction kept", "quality: accuracy of the kept", "threshold"]
    assert list(view.curve.data[2].x) == [0.5, 0.5] and len(view.curve.data[0].x) == len(trace.thresholds)
    view.set_threshold(0.9)
    assert list(view.curve.data[2].x) == [0.9, 0.9] and view.tau.value == pytest.approx(0.9)
    assert len(view.map.data[1].x) == int(((trace.confidence[-1] >= 0.9) & (trace.labels[-1] != trace.truth)).sum())
    view.set_frame(0)
    np.testing.assert_allclose(np.asarray(view.map.data[0].x, dtype=float), trace.coords[0, :, 0].numpy(), rtol=1e-6)
    assert "step 0" in view.map.layout.title.text and view.slider.value == 0
    view.set_threshold(0.5)
    view.set_frame(-1)
    return view, dict(traces=traces, figures=["map", "tradeoff"], controls=["snapshot", "play", "threshold"])


def case_synthetic_set(**_):
    from workbench.recipes._synthetic import random_real_subset

    digits = wb.data.load("digits", n=60, seed=0)
    syn = random_real_subset(digits, 2, seed=0)
    frames = torch.stack([syn.images, syn.images * 0.5, syn.images * 0.25])
    smap = wb.analyses.synthetic_map(wb.models.DistillConvNet(width=4, seed=0), digits, frames, labels=syn.labels,
                                     steps=[0, 5, 10], method="toy")
    view = wb.widgets.SyntheticSetView(smap)
    traces = [("scattergl", "real images", 60), ("scatter", "start (iteration 0)", 20),
              ("scatter", "synthetic images", 20)] + [("scatter", None, 1)] * 10
    z_last = np.asarray(view.images.data[0].z, dtype=float)
    view.set_frame(0)
    np.testing.assert_allclose(np.asarray(view.map.data[2].x, dtype=float), smap.coords[0, :, 0].numpy(), rtol=1e-6)
    assert not np.allclose(np.asarray(view.images.data[0].z, dtype=float), z_last, equal_nan=True)
    assert "iteration 0" in view.map.layout.title.text
    view.set_frame(2)
    return view, dict(traces=traces, figures=["map", "images"], controls=["iteration", "play"])


CASES = {
    "EmbeddingView": case_embedding, "PrototypeView": case_prototypes, "OODLens": case_ood_lens,
    "TrajectoryView": case_trajectory, "LandscapeView": case_landscape, "DistillationView": case_distillation,
    "LiveTraining": case_live, "CompareView": case_compare, "LinkedMaps": case_linked,
    "ProtoPNetView": case_protopnet, "GCDView": case_gcd, "ContinualView": case_continual,
    "GuidanceView": case_guidance, "DiscreteTrajectoryView": case_discrete,
    "PseudoLabelView": case_pseudo_labels, "SyntheticSetView": case_synthetic_set,
    "CalibrationView": case_calibration,
    # the same views with their map drawn by jupyter-scatter
    "EmbeddingView[jscatter]": case_embedding_jscatter, "PrototypeView[jscatter]": case_prototypes_jscatter,
    "OODLens[jscatter]": case_ood_lens_jscatter, "LinkedMaps[jscatter]": case_linked_jscatter,
}


# ----------------------------------------------------------------------------- the shared contract
def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from _tree(child)


def _n(values):
    return None if values is None else len(values)


def _live_traces(fig):
    """The traces a figure widget holds; for a jupyter-scatter map, those of its static export."""
    return fig.data if isinstance(fig, FigureWidget) else fig().data


@pytest.mark.parametrize("name", list(CASES))
def test_view_contract(name, request):
    if name.endswith("[jscatter]") and not has_jscatter():
        pytest.skip("jupyter-scatter is not installed (the scale extra)")
    fixtures = {k: request.getfixturevalue(k) for k in ("blobs", "ce_fit", "palm_fit")
                if k in CASES[name].__code__.co_varnames}
    view, expected = CASES[name](**fixtures)

    # one shape
    assert isinstance(view, View) and isinstance(view, getattr(wb.widgets, name.split("[")[0]))
    assert isinstance(view.widget, ipw.Box)
    assert list(view.figures) == expected["figures"]
    assert all(isinstance(f, (FigureWidget, ScatterFigure)) for f in view.figures.values())
    assert name.endswith("[jscatter]") == isinstance(view.figure, ScatterFigure)
    assert set(expected["controls"]) <= set(view.controls)
    assert all(isinstance(c, ipw.DOMWidget) for c in view.controls.values())
    laid_out = {id(w) for w in _tree(view.widget)}
    for what, items in (("figure", view.figures), ("control", view.controls)):
        for key, w in items.items():
            assert id(w) in laid_out, f"{name}: {what} {key!r} is registered but not in the view's widget"

    # what the constructor built, trace by trace
    got = [(t.type, t.name, _n(t.x)) for t in _live_traces(view.figure)]
    want = expected["traces"]
    assert len(got) == len(want), f"{name}: {len(got)} traces, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g[0] == w[0] and (w[1] is None or g[1] == w[1]) and (w[2] is None or g[2] == w[2]), \
            f"{name} trace {i}: got {g}, expected {w}"

    # a static copy for export: a plain go.Figure with the same traces and data
    static = view.figure()
    assert type(static) is go.Figure and not isinstance(static, FigureWidget)
    assert [(t.type, t.name, _n(t.x)) for t in static.data] == got
    for t, s in zip(_live_traces(view.figure), static.data):
        if t.x is not None and len(t.x) and t.type != "contour":
            np.testing.assert_array_equal(np.asarray(s.x, dtype=float), np.asarray(t.x, dtype=float))
    for key, f in view.figures.items():
        assert len(f().data) == len(_live_traces(f)), key
    static.data[0].name = "changed"
    assert _live_traces(view.figure)[0].name != "changed"  # a copy, not the widget's state
    if isinstance(view.figure, ScatterFigure):  # the export shows the points where the widget has them
        xy = view.figure._owner._xy
        np.testing.assert_allclose(np.asarray(static.data[0].x, dtype=float), xy[:, 0])

    # laid out to the width it is given: figures fill their container, rows wrap
    assert view.widget.layout.width == "100%"
    for key, f in view.figures.items():
        if isinstance(f, ScatterFigure):  # the box fills its panel, jupyter-scatter takes the box's width
            assert f.layout.width == "100%" and f._owner.scatter.widget.width == "auto", f"{name}: map {key!r}"
            continue
        assert f.layout.width is None and f._config.get("responsive") is True, f"{name}: figure {key!r} has a fixed width"
    rows = [w for w in _tree(view.widget) if isinstance(w, ipw.HBox) and w.layout.flex_flow]
    assert rows and all("wrap" in w.layout.flex_flow for w in rows if w.layout.flex_flow != "row nowrap")

    # displays itself, with a readable repr
    bundle = view._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == view.widget.model_id
    assert repr(view).startswith(f"{name.split('[')[0]}(")


def test_every_view_has_a_contract_case():
    views = {n for n in wb.widgets.__all__ if n != "View"}
    assert views == {k.split("[")[0] for k in CASES}
    assert all(issubclass(getattr(wb.widgets, n), View) for n in views)


def test_views_import_nothing_private_from_analyses():
    """Views receive results from analyses (or call one public analysis function): no private
    names or private modules of ``workbench.analyses`` in ``workbench/widgets``, and no torch."""
    root = pathlib.Path(wb.__file__).parent / "widgets"
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "torch" for a in node.names), path.name
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                assert parts[0] != "torch", f"{path.name} imports torch: views do no tensor math"
                if "analyses" in parts:
                    assert not any(p.startswith("_") for p in parts), f"{path.name}: from {node.module}"
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    assert not private, f"{path.name} imports private {private} from {node.module}"
