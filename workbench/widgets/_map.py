"""Map backends of ``EmbeddingView``: the part that draws the points.

``EmbeddingView`` keeps the state (maps over training, colourings, selection, thumbnails) and
talks to its map only through this small interface, so another drawing library (jupyter-scatter
for very large maps) can sit behind the same view API::

    class MapBackend(Protocol):
        name: str                               # "plotly", ...
        widget                                  # the ipywidget the view lays out
        figures: dict                           # name -> plotly FigureWidget (may be empty)
        def set_xy(self, xy): ...               # (N, 2) positions of the points
        def set_color(self, values, *, categorical, names, name): ...  # colour by (N,) values
        def set_highlight(self, xy): ...        # (M, 2) points to outline (M may be 0)
        def set_selection(self, indices): ...   # show a selection made from Python
        def on_select(self, fn): ...            # fn(indices) after a box/lasso selection ([] = cleared)
        def on_point(self, fn): ...             # fn(index) when a point is hovered or clicked
        def add_trace(self, trace): ...         # extra plotly markers drawn over the points

``BACKENDS`` maps a backend's name to its class; ``EmbeddingView(backend=...)`` picks one.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..viz.embedding import MapTrace, map_color_patch, scatter_map
from ._figure import figure_widget

__all__ = ["MapBackend", "PlotlyMap", "BACKENDS", "pick_backend"]


class MapBackend(Protocol):  # pragma: no cover - documentation of the interface
    name: str
    widget: object
    figures: dict

    def set_xy(self, xy: np.ndarray) -> None: ...
    def set_color(self, values: np.ndarray, *, categorical: bool, names, name: str) -> None: ...
    def set_highlight(self, xy: np.ndarray) -> None: ...
    def set_selection(self, indices: np.ndarray) -> None: ...
    def on_select(self, fn) -> None: ...
    def on_point(self, fn) -> None: ...
    def add_trace(self, trace) -> None: ...


class PlotlyMap:
    """All points in one plotly ``Scattergl`` trace (``wb.viz.scatter_map``), patched in place.

    Comfortable up to ~50 000 points; box/lasso selection and hover come from plotly.
    """

    name = "plotly"

    def __init__(self, xy, *, labels, values, categorical, names, name: str, marker_size=None,
                 title=None, axis_title: str = "", height: int = 520, max_legend: int = 20):
        n = len(xy)
        self._labels = np.full(n, -1) if labels is None else np.asarray(labels, dtype=int)  # (N,)
        self._max_legend = max_legend
        fig = scatter_map(xy, labels=labels, color=values, color_name=name, categorical=categorical,
                          class_names=names, marker_size=marker_size, title=title, axis_title=axis_title,
                          height=height, max_legend=max_legend)
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
            fn(idx)

    def _pointed(self, trace, points, state):
        if points.point_inds:
            for fn in self._point_fns:
                fn(points.point_inds[0])

    def set_xy(self, xy):
        with self.figure.batch_update():
            self._points.x, self._points.y = xy[:, 0], xy[:, 1]

    def set_color(self, values, *, categorical, names, name):
        # (switching to categories hides the colour bar with showscale=False; resetting
        # marker.colorbar to None after the figure has rendered left a stale bar drawn and hid
        # the legend in JupyterLab, so the patch only ever merges into the marker)
        upd = map_color_patch(self._labels, values, categorical=categorical, names=names, name=name,
                              max_legend=self._max_legend)
        with self.figure.batch_update():
            for i, props in upd.items():
                self.figure.data[i].update(props)

    def set_highlight(self, xy):
        with self.figure.batch_update():
            self._overlay.x, self._overlay.y = xy[:, 0], xy[:, 1]

    def set_selection(self, indices):
        self._points.selectedpoints = [int(i) for i in indices] if len(indices) else None

    def on_select(self, fn):
        self._select_fns.append(fn)

    def on_point(self, fn):
        self._point_fns.append(fn)

    def add_trace(self, trace):
        self.figure.add_trace(trace)
        return self.figure.data[-1]


#: map backends by name (``EmbeddingView(backend=...)``)
BACKENDS = {"plotly": PlotlyMap}


def pick_backend(backend: str, n_points: int) -> type:
    """The backend class for ``backend`` (a name of ``BACKENDS``, or ``"auto"``: the best one for
    ``n_points``; plotly is the only one so far, so "auto" is plotly at every size)."""
    if backend == "auto":
        backend = "plotly"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: 'auto', {', '.join(map(repr, BACKENDS))}")
    return BACKENDS[backend]
