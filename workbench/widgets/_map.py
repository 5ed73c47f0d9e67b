"""Map backends of ``EmbeddingView``: the part that draws the points, and the rule that picks one.

``EmbeddingView`` keeps the state (maps over training, colourings, selection, thumbnails) and
talks to its map only through this small interface, so different drawing libraries sit behind
the same view API::

    class MapBackend(Protocol):
        name: str                               # "plotly", "jscatter"
        widget                                  # the ipywidget the view lays out
        figures: dict                           # name -> figure widget (callable: a static go.Figure)
        def set_xy(self, xy): ...               # (N, 2) positions of the points
        def set_color(self, values, *, categorical, names, name): ...  # colour by (N,) values
        def set_highlight(self, indices): ...   # outline these points (may be empty)
        def set_selection(self, indices): ...   # show a selection made from Python
        def set_preview(self, fn): ...          # fn(i) -> PNG bytes: image of point i on hover
        def on_select(self, fn): ...            # fn(indices) after a box/lasso selection ([] = cleared)
        def on_point(self, fn): ...             # fn(index) when a point is hovered or clicked
        def add_trace(self, trace): ...         # extra plotly markers/lines drawn over the points

Backends: ``PlotlyMap`` (one plotly ``Scattergl`` trace) and ``ScatterMap`` (jupyter-scatter,
``widgets._scatter``; optional: the ``scale`` extra). ``SampledMap`` wraps a backend that shows
only a sample of the points and translates indices both ways.

**The rule** (``choose_backend``; ``backend="auto"``): plotly up to ``PLOTLY_MAX_POINTS``;
above it jupyter-scatter when it is installed, otherwise plotly on a stratified sample of
``PLOTLY_MAX_POINTS`` points (``viz.embedding.stratified_sample``; the plot says how many it
shows) with a warning naming the extra to install. ``backend="plotly"`` / ``"jscatter"`` are
honoured at any size (``"jscatter"`` without the package is an ImportError naming the extra).

How the threshold was chosen (``benchmarks/bench_views.py --browser``: real JupyterLab in headless
Chromium, software WebGL, on this 2-core machine while it was shared, load average ~10; medians
of 2): after a mouse lasso, the selection reached Python in 0.4-0.9 s with plotly up to 50 000
points (1.8 s at 100 000), but the page drew again only 1.7 / 2.3 / 4.0 / 6.7 s after the mouse
went up at 10k / 20k / 50k / 100k points (plotly restyles every point), and a map took 4.8 / 6.0 /
8.7 / 12.7 s to appear; jupyter-scatter answered in 0.5-0.7 s and drew in 2.5-3.1 s at all these
sizes. Up to 20 000 points plotly stays within ~2 s (and keeps its richer figure: legend,
export, hover text); above, its cost grows with every point while jupyter-scatter's stays flat,
so ``PLOTLY_MAX_POINTS = 20_000``.
"""

from __future__ import annotations

import warnings
from typing import Protocol

import numpy as np

from ..viz.embedding import MapTrace, map_color_patch, scatter_map, stratified_sample
from ._figure import figure_widget
from ._scatter import SCALE_EXTRA, has_jscatter

__all__ = ["MapBackend", "PlotlyMap", "SampledMap", "BACKENDS", "PLOTLY_MAX_POINTS", "choose_backend",
           "make_map", "backend_class"]

#: ``backend="auto"`` draws with plotly up to this many points and with jupyter-scatter above
#: (chosen from benchmarks/bench_views.py's browser timings: see the module docstring)
PLOTLY_MAX_POINTS = 20_000


class MapBackend(Protocol):  # pragma: no cover - documentation of the interface
    name: str
    widget: object
    figures: dict

    def set_xy(self, xy: np.ndarray) -> None: ...
    def set_color(self, values: np.ndarray, *, categorical: bool, names, name: str) -> None: ...
    def set_highlight(self, indices: np.ndarray) -> None: ...
    def set_selection(self, indices: np.ndarray) -> None: ...
    def set_preview(self, fn) -> None: ...
    def on_select(self, fn) -> None: ...
    def on_point(self, fn) -> None: ...
    def add_trace(self, trace) -> None: ...


class PlotlyMap:
    """All points in one plotly ``Scattergl`` trace (``wb.viz.scatter_map``), patched in place.

    Comfortable up to ~20 000 points (see ``PLOTLY_MAX_POINTS``); box/lasso selection and hover
    come from plotly.
    ``note`` is written in the plot's top-left corner (e.g. how many points a sample shows).
    """

    name = "plotly"

    def __init__(self, xy, *, labels, values, categorical, names, name: str, marker_size=None,
                 title=None, axis_title: str = "", height: int = 520, max_legend: int = 20,
                 extent=None, note: str | None = None):
        n = len(xy)
        self._xy = np.asarray(xy, dtype=float)  # (N, 2)
        self._labels = np.full(n, -1) if labels is None else np.asarray(labels, dtype=int)  # (N,)
        self._max_legend = max_legend
        self._highlight = np.zeros(0, dtype=np.int64)
        fig = scatter_map(xy, labels=labels, color=values, color_name=name, categorical=categorical,
                          class_names=names, marker_size=marker_size, title=title, axis_title=axis_title,
                          height=height, max_legend=max_legend)
        if note:
            fig.add_annotation(text=note, xref="paper", yref="paper", x=0, y=1, xanchor="left", yanchor="bottom",
                               showarrow=False, font=dict(size=11, color="#555555"))
        self.figure = figure_widget(fig, responsive=True)
        self.figures = {"map": self.figure}
        self.widget = self.figure
        self._points = self.figure.data[MapTrace.POINTS]
        self._overlay = self.figure.data[MapTrace.HIGHLIGHT]
        self._select_fns, self._point_fns = [], []
        self._points.on_selection(lambda trace, points, selector: self._selected(points.point_inds))
        self._points.on_deselect(lambda trace, points: self._selected([]))
        self._points.on_hover(self._pointed)
        self._points.on_click(self._pointed)

    def _selected(self, idx):
        for fn in self._select_fns:
            fn(np.asarray(idx, dtype=np.int64))

    def _pointed(self, trace, points, state):
        if points.point_inds:
            for fn in self._point_fns:
                fn(points.point_inds[0])

    def set_xy(self, xy):
        self._xy = np.asarray(xy, dtype=float)
        with self.figure.batch_update():
            self._points.x, self._points.y = self._xy[:, 0], self._xy[:, 1]
            if len(self._highlight):
                self._overlay.x, self._overlay.y = self._xy[self._highlight, 0], self._xy[self._highlight, 1]

    def set_color(self, values, *, categorical, names, name):
        # (switching to categories hides the colour bar with showscale=False; resetting
        # marker.colorbar to None after the figure has rendered left a stale bar drawn and hid
        # the legend in JupyterLab, so the patch only ever merges into the marker)
        upd = map_color_patch(self._labels, values, categorical=categorical, names=names, name=name,
                              max_legend=self._max_legend)
        with self.figure.batch_update():
            for i, props in upd.items():
                self.figure.data[i].update(props)

    def set_highlight(self, indices):
        self._highlight = np.asarray(indices, dtype=np.int64)
        with self.figure.batch_update():
            self._overlay.x, self._overlay.y = self._xy[self._highlight, 0], self._xy[self._highlight, 1]

    def set_selection(self, indices):
        self._points.selectedpoints = [int(i) for i in indices] if len(indices) else None

    def set_preview(self, fn):
        """plotly's hover label cannot show images: the view's side panel shows them instead."""

    def on_select(self, fn):
        self._select_fns.append(fn)

    def on_point(self, fn):
        self._point_fns.append(fn)

    def add_trace(self, trace):
        self.figure.add_trace(trace)
        return self.figure.data[-1]


class SampledMap:
    """A backend showing only the points ``keep`` (M,) of N; indices are translated both ways
    (the view speaks full indices, the inner backend sample positions)."""

    def __init__(self, inner_cls, keep, xy, *, labels, values, **kw):
        self.keep = np.asarray(keep, dtype=np.int64)  # (M,) sorted
        self._n = len(xy)
        sub = lambda a: None if a is None else np.asarray(a)[self.keep]  # noqa: E731
        self.inner = inner_cls(np.asarray(xy)[self.keep], labels=sub(labels), values=sub(values), **kw)
        self.name, self.figures, self.widget = self.inner.name, self.inner.figures, self.inner.widget

    def _local(self, indices) -> np.ndarray:
        """Sample positions of the full indices that the sample shows."""
        idx = np.asarray(indices, dtype=np.int64)
        pos = np.searchsorted(self.keep, idx)
        ok = (pos < len(self.keep)) & (self.keep[np.minimum(pos, len(self.keep) - 1)] == idx)
        return pos[ok]

    def set_xy(self, xy):
        self.inner.set_xy(np.asarray(xy)[self.keep])

    def set_color(self, values, **kw):
        self.inner.set_color(np.asarray(values)[self.keep], **kw)

    def set_highlight(self, indices):
        self.inner.set_highlight(self._local(indices))

    def set_selection(self, indices):
        self.inner.set_selection(self._local(indices))

    def set_preview(self, fn):
        self.inner.set_preview(lambda i: fn(int(self.keep[i])))

    def on_select(self, fn):
        self.inner.on_select(lambda idx: fn(self.keep[np.asarray(idx, dtype=np.int64)]))

    def on_point(self, fn):
        self.inner.on_point(lambda i: fn(int(self.keep[int(i)])))

    def add_trace(self, trace):
        return self.inner.add_trace(trace)


def _scatter_map_class():
    from ._scatter import ScatterMap  # imports jupyter-scatter (or says how to install it)

    return ScatterMap


#: map backends by name (``EmbeddingView(backend=...)``): name -> function returning the class
BACKENDS = {"plotly": lambda: PlotlyMap, "jscatter": _scatter_map_class}


def backend_class(name: str) -> type:
    """The backend class called ``name`` (importing its library)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid: 'auto', {', '.join(map(repr, BACKENDS))}")
    return BACKENDS[name]()


def choose_backend(backend: str, n_points: int, *, max_points: int | None = None) -> tuple[str, bool]:
    """``(name, subsample)``: the backend to draw ``n_points`` with, and whether it shows only a
    sample (see the module docstring for the rule). ``max_points`` overrides ``PLOTLY_MAX_POINTS``."""
    limit = PLOTLY_MAX_POINTS if max_points is None else int(max_points)
    if backend == "auto":
        if n_points <= limit:
            return "plotly", False
        if has_jscatter():
            return "jscatter", False
        return "plotly", True
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: 'auto', {', '.join(map(repr, BACKENDS))}")
    return backend, False


def make_map(backend: str, xy, *, labels, values, sample_seed: int = 0, max_points: int | None = None, **kw):
    """Build the map backend for ``xy`` (N, 2) by the rule of ``choose_backend``; when it has to
    subsample, a stratified sample of ``max_points`` points (by ``labels``) with a warning."""
    n = len(xy)
    name, subsample = choose_backend(backend, n, max_points=max_points)
    cls = backend_class(name)
    if not subsample:
        return cls(xy, labels=labels, values=values, **kw)
    m = PLOTLY_MAX_POINTS if max_points is None else int(max_points)
    keep = stratified_sample(np.zeros(n, dtype=int) if labels is None else labels, m, seed=sample_seed)
    warnings.warn(f"{n:,} points are more than plotly draws smoothly ({m:,}); showing a sample of "
                  f"{len(keep):,} stratified by label. To draw all of them, install jupyter-scatter: "
                  f"{SCALE_EXTRA}", UserWarning, stacklevel=3)
    note = f"showing {len(keep):,} of {n:,} points (sample stratified by label)"
    return SampledMap(cls, keep, xy, labels=labels, values=values, note=note, **kw)
