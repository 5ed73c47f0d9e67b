"""``LinkedMaps``: aligned maps side by side, linked (methods, snapshots, teacher / student).

What it shows: one map per embedding of the SAME points (aligned beforehand, e.g.
``wb.analyses.align`` / an ``AlignedProjections``, so the maps share orientation), side by side
with one colour menu. Select points with the lasso in any map and the same points are selected
in every map (``linked.selected``, ``linked.on_select(fn)``), which shows at a glance whether a
cluster in one model's embedding stays together in another's.

Each map is an ``EmbeddingView`` (``linked.views``) with the same backend rule
(``backend="auto"``: plotly up to ``widgets._map.PLOTLY_MAX_POINTS`` points, jupyter-scatter
above). How they are linked:

* jupyter-scatter: ``jscatter.link`` (view, hover and selection synchronised: pan or zoom one map
  and the others follow, hovering a point marks it in every map);
* plotly: the selection only (``link_views``: each view's ``on_select`` selects the same points
  in the others); zoom and hover stay per map.

``link_views(views)`` links ``EmbeddingView``s you built yourself the same way.
"""

from __future__ import annotations

import html

import numpy as np

from .._optional import require
from ..viz._common import to_numpy
from ._view import View, panel, row
from .embedding import EmbeddingView

widgets = require("ipywidgets", "interactive views")

__all__ = ["LinkedMaps", "link_views"]


def _maps_from(maps, names):
    """(list of (N, 2) arrays, names, axis title) from an AlignedProjections, a (T, N, 2) array,
    a dict name -> map or a list of maps (Projections or (N, 2) arrays)."""
    method = getattr(maps, "method", "")
    if isinstance(maps, dict):
        names = list(maps) if names is None else names
        maps = list(maps.values())
    elif hasattr(maps, "coords") and np.ndim(to_numpy(maps.coords)) == 3:
        names = list(getattr(maps, "names", [])) if names is None else names
        maps = list(to_numpy(maps.coords))
    elif not isinstance(maps, (list, tuple)):
        arr = to_numpy(maps)
        if arr.ndim != 3:
            raise TypeError("maps must be an AlignedProjections, a (T, N, 2) array, a dict name -> (N, 2) map "
                            f"or a list of maps; got {type(maps).__name__} of shape {arr.shape}")
        maps = list(arr)
    frames = [to_numpy(getattr(m, "coords", m)).astype(float) for m in maps]
    if len(frames) < 2:
        raise ValueError(f"LinkedMaps needs at least two maps, got {len(frames)}")
    n = frames[0].shape[0]
    for i, f in enumerate(frames):
        if f.ndim != 2 or f.shape != (n, 2):
            raise ValueError(f"every map must be (N, 2) with the same N={n} (the same points); map {i} has shape {f.shape}")
    names = [str(k) for k in (names if names is not None else range(len(frames)))]
    if len(names) != len(frames):
        raise ValueError(f"got {len(names)} names for {len(frames)} maps")
    return frames, names, method or getattr(maps[0], "method", "")


def link_views(views) -> None:
    """Link the selection (and, when all draw with jupyter-scatter, the pan/zoom and hover) of
    ``EmbeddingView``s showing the same points."""
    views = list(views)
    n = {v.n_points for v in views}
    if len(n) != 1:
        raise ValueError(f"linked views must show the same points; got {sorted(n)} points")
    if all(v.backend.name == "jscatter" and hasattr(v.backend, "scatter") for v in views):
        import jscatter

        jscatter.link([v.backend.scatter for v in views], rows=1,
                      row_height=int(views[0].backend.scatter.widget.height or 380))
        return
    busy = []

    def follow(src):
        def _cb(idx):
            if busy:
                return
            busy.append(True)
            try:
                for v in views:
                    if v is not src and not np.array_equal(v.selected, idx):
                        v.select(idx)
            finally:
                busy.pop()
        return _cb

    for v in views:
        v.on_select(follow(v))


class LinkedMaps(View):
    """Aligned maps of the same points side by side, selection linked (see the module docstring).

    Parameters
    ----------
    maps: an ``AlignedProjections`` (``wb.analyses.align``), a (T, N, 2) array, a dict
        name -> map or a list of maps (``Projection`` or (N, 2) array), T >= 2.
    labels: (N,) class labels; ``class_names`` names them.
    names: one title per map (default: the AlignedProjections' names / dict keys).
    colors: dict name -> (N,) array of extra colourings (shared by all maps); ``color`` the first.
    backend: ``"auto"``, ``"plotly"`` or ``"jscatter"`` (as ``EmbeddingView``'s).
    """

    def __init__(self, maps, labels=None, *, names=None, colors=None, color=None, class_names=None,
                 title: str | None = None, height: int = 380, backend: str = "auto"):
        super().__init__()
        frames, self.names, axis = _maps_from(maps, names)
        self.views = [EmbeddingView(f, labels, colors=colors, color=color, class_names=class_names, title=nm,
                                    height=height, backend=backend) for f, nm in zip(frames, self.names)]
        self.n_points = self.views[0].n_points
        for nm, v in zip(self.names, self.views):
            self._add_figure(nm, v.figure)
        link_views(self.views)
        self._select_callbacks = []
        self.views[0].on_select(self._selected_changed)
        self.color_select = self._add_control("color", widgets.Dropdown(
            options=self.views[0].color_names, value=self.views[0].color_name, description="colour",
            layout=widgets.Layout(width="260px"), disabled=not self.views[0].color_names))
        self._syncing = False
        self.color_select.observe(lambda ch: None if self._syncing else self.set_color(ch["new"]), names="value")
        self.status = widgets.HTML(self._status_text())
        head = widgets.HTML(f"<b>{html.escape(title)}</b>") if title else None
        basis = "420px" if len(self.views) <= 2 else "300px"
        self._set_root(head, row(self.color_select, self.status),
                       row(*[panel(v.backend.widget, basis=basis) for v in self.views], align="flex-start"))

    @property
    def backend(self) -> str:
        """The drawing library of the maps ("plotly" or "jscatter")."""
        return self.views[0].backend.name

    def _status_text(self) -> str:
        sel = self.views[0].selected
        what = f"{len(sel):,} selected in every map" if len(sel) else "lasso points in any map to select them in all"
        linked = "pan/zoom, hover and selection linked" if self.backend == "jscatter" else "selection linked"
        return f"&nbsp;{len(self.views)} maps · {self.n_points:,} points · {linked} · {html.escape(what)}"

    def _selected_changed(self, idx):
        self.status.value = self._status_text()
        for cb in self._select_callbacks:
            cb(self.selected)

    # ------------------------------------------------------------------ public API
    @property
    def selected(self) -> np.ndarray:
        """Indices of the points selected (the same in every map), sorted."""
        return self.views[0].selected

    def on_select(self, callback):
        """Call ``callback(indices)`` after every selection change (made in any map)."""
        self._select_callbacks.append(callback)
        return self

    def select(self, indices):
        """Select points from Python, in every map."""
        self.views[0].select(indices)
        return self

    def set_color(self, values, *, name: str | None = None, categorical: bool | None = None):
        """Colour every map by a registered name or a new (N,) array (as ``EmbeddingView.set_color``)."""
        for v in self.views:
            v.set_color(values, name=name, categorical=categorical)
        v0 = self.views[0]
        self._syncing = True  # (new options reset the menu's value: not a choice of the user)
        try:
            if list(self.color_select.options) != v0.color_names:
                self.color_select.options = v0.color_names
            if self.color_select.value != v0.color_name:
                self.color_select.value = v0.color_name
        finally:
            self._syncing = False
        return self

    def __repr__(self) -> str:
        return (f"LinkedMaps({len(self.views)} maps {self.names}, {self.n_points} points, {self.backend}, "
                f"selected={len(self.selected)})")
