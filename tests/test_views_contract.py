"""The contract every interactive view passes (one shape: ``widgets._view.View``).

Each case builds one view on a tiny result and says what the constructor must have built: its
figures (trace types, names and data sizes), its controls, and the view-specific state. The
shared checks then hold for every view: a ``View`` with figure widgets and controls laid out in
``widget`` (rows that wrap, figures that take their container's width), ``figure()`` a plain
``go.Figure`` with the same traces as the figure widget, a working ``_repr_mimebundle_`` and a
readable ``repr``. A view added to ``wb.widgets`` without a case here fails
``test_every_view_has_a_contract_case``.
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
    assert len(view.reliability.data[3].x) == 1 and len(view.histogram.data[1].x) == 1
    assert view.bin_select.value.startswith(f"bin {m + 1}:")
    assert sorted(view.map._highlight.tolist()) == view.bin_indices(m).tolist()
    view.color_by("set size")
    assert view.map.color_name == "set size"
    view.select_bin(None)
    assert len(view.map._highlight) == 0
    return view, dict(traces=traces, figures=["reliability", "histogram", "map"], controls=["bin"])


CASES = {
    "EmbeddingView": case_embedding, "PrototypeView": case_prototypes, "OODLens": case_ood_lens,
    "TrajectoryView": case_trajectory, "LandscapeView": case_landscape, "DistillationView": case_distillation,
    "LiveTraining": case_live, "CompareView": case_compare, "CalibrationView": case_calibration,
}


# ----------------------------------------------------------------------------- the shared contract
def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from _tree(child)


def _n(values):
    return None if values is None else len(values)


@pytest.mark.parametrize("name", list(CASES))
def test_view_contract(name, request):
    fixtures = {k: request.getfixturevalue(k) for k in ("blobs", "ce_fit", "palm_fit")
                if k in CASES[name].__code__.co_varnames}
    view, expected = CASES[name](**fixtures)

    # one shape
    assert isinstance(view, View) and isinstance(view, getattr(wb.widgets, name))
    assert isinstance(view.widget, ipw.Box)
    assert list(view.figures) == expected["figures"]
    assert all(isinstance(f, FigureWidget) for f in view.figures.values())
    assert set(expected["controls"]) <= set(view.controls)
    assert all(isinstance(c, ipw.DOMWidget) for c in view.controls.values())
    laid_out = {id(w) for w in _tree(view.widget)}
    for what, items in (("figure", view.figures), ("control", view.controls)):
        for key, w in items.items():
            assert id(w) in laid_out, f"{name}: {what} {key!r} is registered but not in the view's widget"

    # what the constructor built, trace by trace
    got = [(t.type, t.name, _n(t.x)) for t in view.figure.data]
    want = expected["traces"]
    assert len(got) == len(want), f"{name}: {len(got)} traces, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g[0] == w[0] and (w[1] is None or g[1] == w[1]) and (w[2] is None or g[2] == w[2]), \
            f"{name} trace {i}: got {g}, expected {w}"

    # a static copy for export: a plain go.Figure with the same traces and data
    static = view.figure()
    assert type(static) is go.Figure and not isinstance(static, FigureWidget)
    assert [(t.type, t.name, _n(t.x)) for t in static.data] == got
    for t, s in zip(view.figure.data, static.data):
        if t.x is not None and len(t.x) and t.type != "contour":
            np.testing.assert_array_equal(np.asarray(s.x, dtype=float), np.asarray(t.x, dtype=float))
    for key, f in view.figures.items():
        assert len(f().data) == len(f.data), key
    static.data[0].name = "changed"
    assert view.figure.data[0].name != "changed"  # a copy, not the widget's state

    # laid out to the width it is given: figures fill their container, rows wrap
    assert view.widget.layout.width == "100%"
    for key, f in view.figures.items():
        assert f.layout.width is None and f._config.get("responsive") is True, f"{name}: figure {key!r} has a fixed width"
    rows = [w for w in _tree(view.widget) if isinstance(w, ipw.HBox) and w.layout.flex_flow]
    assert rows and all("wrap" in w.layout.flex_flow for w in rows if w.layout.flex_flow != "row nowrap")

    # displays itself, with a readable repr
    bundle = view._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == view.widget.model_id
    assert repr(view).startswith(f"{name}(")


def test_every_view_has_a_contract_case():
    views = {n for n in wb.widgets.__all__ if n != "View"}
    assert views == set(CASES)
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
