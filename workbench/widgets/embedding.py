"""``EmbeddingView``: an interactive WebGL map of an embedding.

What it shows: every point of a 2-D projection (plotly: ONE ``Scattergl`` trace; a million
points: jupyter-scatter, see below), coloured by label, prediction, prototype or any per-point array (an OOD score,
say); hover gives index, label and value, and for image data a thumbnail in the side panel
(updated on hover and click); a slider (with a play button) steps through training snapshots
whose maps were aligned beforehand, moving the points in place; box/lasso selection hands the
indices back to Python (``view.selected``, ``view.on_select(callback)``).

API for extending it (an OOD lens, linked figures):

* ``set_color(values_or_name, name=..., categorical=None)``: colour by a registered name
  (``view.color_names``) or a new (N,) array, which is registered under ``name``;
  ``register_color(name, values, legend_names=...)`` adds a colouring without switching to it;
  ``color_values(name)`` reads one back;
* ``selected`` (sorted int array), ``select(indices)`` (programmatic), ``on_select(fn)``
  (``fn(indices)`` after every selection change), ``highlight(indices)`` (outline points);
* ``set_snapshot(i)``, ``n_snapshots``; ``add_trace(trace)`` draws extra markers over the map;
* the ``View`` surface: ``figure`` (the map's FigureWidget; ``view.figure()`` a static copy),
  ``figures``, ``controls``, ``widget``; the view displays itself in a notebook.

The drawing is a map backend (``widgets._map``), ``view.backend``; the view only holds state and
talks to the backend through that small interface. ``backend="auto"`` (default) draws with plotly
(``wb.viz.scatter_map`` patched in place by its ``MapTrace`` roles) up to
``widgets._map.PLOTLY_MAX_POINTS`` points and with jupyter-scatter (``widgets._scatter``: WebGL,
a million points) above, when installed (the ``scale`` extra); without it, plotly on a
stratified sample, with a warning. ``backend="plotly"`` / ``"jscatter"`` force one. The API is
the same on both; on jupyter-scatter ``view.figure`` is the map's box (``view.figure()`` still
a static plotly figure), the tooltip shows image thumbnails too, and outlined points are drawn
larger instead of ringed.
"""

from __future__ import annotations

import html

import numpy as np

from .._optional import require
from ..data.embeddings import Embeddings
from ..viz._common import to_numpy
from ..viz.embedding import is_categorical, png_bytes
from ._map import make_map
from ._view import View, panel, row

widgets = require("ipywidgets", "interactive views")

__all__ = ["EmbeddingView"]


def _frames_from(projection, snapshots):
    """(list of (N, 2) arrays, names, axis title) from a projection and/or snapshots."""
    axis = getattr(projection, "method", "") if projection is not None else ""
    if snapshots is not None:
        src = snapshots
        names = list(getattr(src, "names", []))
        coords = getattr(src, "coords", src)
        if isinstance(coords, (list, tuple)):
            frames = [to_numpy(getattr(c, "coords", c)).astype(float) for c in coords]
        else:
            arr = to_numpy(coords).astype(float)
            if arr.ndim != 3:
                raise ValueError(f"snapshots must be a list of (N, 2) maps or a (T, N, 2) array, got shape {arr.shape}")
            frames = list(arr)
        axis = getattr(src, "method", axis)
    else:
        if projection is None:
            raise ValueError("pass a projection (wb.analyses.project(...)) or snapshots=")
        coords = getattr(projection, "coords", projection)
        arr = to_numpy(coords).astype(float)
        if arr.ndim == 3:  # AlignedProjections / (T, N, 2)
            frames = list(arr)
            names = list(getattr(projection, "names", []))
        else:
            frames = [arr]
            names = []
    if not frames:
        raise ValueError("no coordinates to show")
    n = frames[0].shape[0]
    for i, f in enumerate(frames):
        if f.ndim != 2 or f.shape[1] != 2 or f.shape[0] != n:
            raise ValueError(
                f"every map must be (N, 2) with the same N={n}; map {i} has shape {f.shape}"
            )
    if len(names) != len(frames):
        names = [str(i) for i in range(len(frames))]
    return frames, [str(s) for s in names], axis


class EmbeddingView(View):
    """Interactive map of an embedding (see the module docstring).

    Parameters
    ----------
    projection: a ``Projection`` (``wb.analyses.project``), an ``AlignedProjections`` (its maps
        become the snapshots), an (N, 2) array, or ``wb.data.Embeddings`` (mapped with PCA;
        their labels, class names and images are used).
    labels: (N,) class labels (default ``data.y``); ``class_names`` names them (default
        ``data.classes``).
    color: the initial colouring: a registered name or an (N,) array (registered as ``"color"``).
    colors: dict name -> (N,) array of extra colourings (e.g. ``{"OOD score": s}``).
    predictions: (N,) predicted classes, registered as ``"prediction"``.
    data: the Dataset (or (N, ...) tensor, or ``Embeddings`` with images) of the points, for
        labels and image thumbnails.
    snapshots: maps over training: an ``AlignedProjections``, a list of (N, 2) arrays or a
        (T, N, 2) array; a slider steps through them (starting at the last).
    backend: the map's drawing library: ``"auto"`` (default: plotly up to
        ``widgets._map.PLOTLY_MAX_POINTS`` points, jupyter-scatter above when installed, else a
        stratified sample on plotly), ``"plotly"`` or ``"jscatter"``.
    """

    def __init__(
        self,
        projection=None,
        labels=None,
        *,
        color=None,
        colors=None,
        predictions=None,
        data=None,
        snapshots=None,
        snapshot_names=None,
        class_names=None,
        title: str | None = None,
        marker_size: int | None = None,
        height: int = 520,
        thumbnail_scale: int = 12,
        backend: str = "auto",
    ):
        super().__init__()
        if isinstance(projection, Embeddings):  # precomputed embeddings: a PCA map of them
            from ..analyses.embedding import project

            data = projection if data is None else data
            projection = projection if projection.shape[1] == 2 else project(projection, "pca", seed=0)
        self.frames, names, axis = _frames_from(projection, snapshots)
        if snapshot_names is not None:
            if len(snapshot_names) != len(self.frames):
                raise ValueError(f"got {len(snapshot_names)} snapshot names for {len(self.frames)} maps")
            names = [str(s) for s in snapshot_names]
        self.snapshot_names = names
        self.n_points = self.frames[0].shape[0]
        if labels is None and data is not None and getattr(data, "y", None) is not None:
            labels = data.y
        self.labels = None if labels is None else self._check(labels, "labels").astype(int)
        if class_names is None and data is not None:
            class_names = getattr(data, "classes", None)
        self.class_names = class_names
        self._colors: dict[str, tuple[np.ndarray, bool]] = {}
        self._legend_names: dict[str, dict[int, str]] = {}
        self.color_name = self._register_initial(color, colors, predictions)
        self._images = self._image_source(data)
        self._thumb_scale = int(thumbnail_scale)
        self._selected = np.zeros(0, dtype=int)
        self._highlight = np.zeros(0, dtype=int)
        self._select_callbacks = []
        self.index = len(self.frames) - 1

        values, categorical = self._colors.get(self.color_name, (None, None))
        lo = np.nanmin([np.nanmin(f, axis=0) for f in self.frames], axis=0)  # extent of every snapshot
        hi = np.nanmax([np.nanmax(f, axis=0) for f in self.frames], axis=0)
        self.backend = make_map(
            backend, self.frames[self.index], labels=self.labels, values=values, categorical=categorical,
            names=class_names, name=self.color_name or "", marker_size=marker_size, title=title,
            axis_title=axis, height=height, extent=((lo[0], hi[0]), (lo[1], hi[1])),
        )
        for name, fig in self.backend.figures.items():
            self._add_figure(name, fig)
        self.backend.on_select(self._set_selected)
        self.backend.on_point(self.show_point)
        if self._images is not None:
            self.backend.set_preview(self.thumbnail_png)
        self._build_controls()

    # ------------------------------------------------------------------ input helpers
    def _check(self, values, what) -> np.ndarray:
        arr = to_numpy(values)
        if arr.shape != (self.n_points,):
            raise ValueError(f"{what} must have one value per point ({self.n_points}), got shape {arr.shape}")
        return arr

    def _register_initial(self, color, colors, predictions) -> str | None:
        """Register the colourings given to the constructor; return the one shown first."""
        if self.labels is not None:
            self._colors["label"] = (self.labels, True)
        if predictions is not None:
            self._colors["prediction"] = (self._check(predictions, "predictions").astype(int), True)
        for k, v in (colors or {}).items():
            arr = self._check(v, f"colors[{k!r}]")
            self._colors[str(k)] = (arr, is_categorical(arr))
        if color is not None and not isinstance(color, str):
            arr = self._check(color, "color")
            self._colors["color"] = (arr, is_categorical(arr))
            color = "color"
        if color is not None and color not in self._colors:
            raise ValueError(f"unknown colour {color!r}; registered: {list(self._colors)}")
        return color or ("label" if "label" in self._colors else None)

    def _image_source(self, data):
        if data is None:
            return None
        if isinstance(data, Embeddings):
            data = data.images
            if data is None:
                return None
        x = getattr(data, "x", data)
        kind = getattr(data, "kind", None)
        x = to_numpy(x)
        if x.shape[0] != self.n_points:
            raise ValueError(f"data has {x.shape[0]} samples but the map has {self.n_points} points")
        if kind == "image" or (kind is None and (x.ndim == 4 or (x.ndim == 3 and x.shape[1] == x.shape[2]))):
            return x
        return None  # thumbnails only for images

    # ------------------------------------------------------------------ controls
    def _build_controls(self):
        self.color_select = self._add_control("color", widgets.Dropdown(
            options=list(self._colors), value=self.color_name, description="colour",
            layout=widgets.Layout(width="260px"), disabled=not self._colors,
        ))
        self._syncing_select = False
        self.color_select.observe(lambda ch: None if self._syncing_select else self.set_color(ch["new"]), names="value")
        self.status = widgets.HTML(self._status_text())
        body = [panel(self.backend.widget, basis="520px")]
        self.thumbnail = self.thumbnail_caption = None
        if self._images is not None:
            self.thumbnail = widgets.Image(format="png", layout=widgets.Layout(width="128px", height="128px"))
            self.thumbnail_caption = widgets.HTML()
            body.append(widgets.VBox([self.thumbnail, self.thumbnail_caption,
                                      widgets.HTML("<i>hover or click a point</i>")],
                                     layout=widgets.Layout(min_width="150px")))
        t = len(self.frames)
        self.slider = widgets.IntSlider(
            value=self.index, min=0, max=max(t - 1, 0), description="snapshot",
            continuous_update=True, layout=widgets.Layout(width="420px", max_width="100%"),
        )
        self.play = widgets.Play(value=self.index, min=0, max=max(t - 1, 0), interval=400)
        if t > 1:  # a slider only when there are maps to step through
            self._add_control("snapshot", self.slider)
            self._add_control("play", self.play)
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.frame_label = widgets.Label(self.snapshot_names[self.index])
        self.slider.observe(lambda ch: self.set_snapshot(ch["new"]), names="value")
        self._set_root(row(self.color_select, self.status), row(*body, align="flex-start"),
                       row(self.play, self.slider, self.frame_label) if t > 1 else None)
        if self.thumbnail is not None:
            self.show_point(0)

    def _status_text(self) -> str:
        sel = f"{len(self._selected):,} selected" if len(self._selected) else "box/lasso to select"
        shown = getattr(self.backend, "keep", None)
        pts = f"{len(shown):,} of {self.n_points:,} points shown" if shown is not None else f"{self.n_points:,} points"
        return f"&nbsp;{pts} ({self.backend.name}) · {html.escape(sel)}"

    # ------------------------------------------------------------------ colour
    @property
    def color_names(self) -> list[str]:
        return list(self._colors)

    def color_values(self, name: str) -> np.ndarray:
        """The (N,) values of the registered colouring ``name``."""
        if name not in self._colors:
            raise ValueError(f"unknown colour {name!r}; registered: {list(self._colors)}")
        return self._colors[name][0]

    def set_color(self, values, *, name: str | None = None, categorical: bool | None = None):
        """Colour the points by a registered name or a new (N,) array (registered as ``name``)."""
        if isinstance(values, str):
            if values not in self._colors:
                raise ValueError(f"unknown colour {values!r}; registered: {list(self._colors)}")
            key = values
            arr, cat = self._colors[key]
            if categorical is not None:
                cat = categorical
        else:
            arr = self._check(values, "values")
            cat = is_categorical(arr) if categorical is None else categorical
            key = name or "color"
            self._colors[key] = (arr, cat)
        self.color_name = key
        self.backend.set_color(arr, categorical=cat, names=self._legend_names.get(key, self.class_names), name=key)
        self._sync_color_select()
        return self

    def register_color(self, name: str, values, *, categorical: bool | None = None, legend_names=None):
        """Register (or replace) the colouring ``name`` without switching to it (re-applied when it
        is the current one). ``legend_names``: dict category value -> legend entry."""
        arr = self._check(values, name)
        cat = is_categorical(arr) if categorical is None else categorical
        self._colors[str(name)] = (arr, cat)
        if legend_names is not None:
            self._legend_names[str(name)] = {int(k): str(v) for k, v in dict(legend_names).items()}
        if self.color_name == name:
            self.set_color(name)
        else:
            self._sync_color_select()
        return self

    def _sync_color_select(self):
        # (new options reset the menu's value to the first one; that is not a choice of the user)
        self._syncing_select = True
        try:
            if list(self.color_select.options) != list(self._colors):
                self.color_select.options = list(self._colors)
            if self.color_select.value != self.color_name:
                self.color_select.value = self.color_name
        finally:
            self._syncing_select = False

    # ------------------------------------------------------------------ snapshots
    @property
    def n_snapshots(self) -> int:
        return len(self.frames)

    def set_snapshot(self, i: int):
        """Show map ``i`` (points move in place; selection and colours are kept)."""
        if not -len(self.frames) <= i < len(self.frames):
            raise IndexError(f"snapshot {i} out of range (0..{len(self.frames) - 1})")
        i = i % len(self.frames)
        self.index = i
        self.backend.set_xy(self.frames[i])
        self.frame_label.value = self.snapshot_names[i]
        if self.slider.value != i:
            self.slider.value = i
        return self

    # ------------------------------------------------------------------ selection
    @property
    def selected(self) -> np.ndarray:
        """Indices of the points selected with the box/lasso tool (or ``select``), sorted."""
        return self._selected.copy()

    def on_select(self, callback):
        """Call ``callback(indices)`` after every selection change."""
        self._select_callbacks.append(callback)
        return self

    def _set_selected(self, idx):
        self._selected = np.unique(np.asarray(idx, dtype=int))
        self.status.value = self._status_text()
        for cb in self._select_callbacks:
            cb(self.selected)

    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=int).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_points):
            raise IndexError(f"indices must be in 0..{self.n_points - 1}")
        return idx

    def select(self, indices):
        """Select points from Python (shown as the map's selection)."""
        idx = np.unique(self._check_indices(indices))
        self.backend.set_selection(idx)
        self._set_selected(idx)
        return self

    def highlight(self, indices):
        """Outline the points ``indices`` (an overlay; e.g. the most OOD points)."""
        self._highlight = self._check_indices(indices)
        self.backend.set_highlight(self._highlight)
        return self

    def add_trace(self, trace):
        """Draw an extra plotly trace over the map (e.g. ``wb.viz.ood.prototype_stars``); returns it
        (on jupyter-scatter an ``Overlay`` drawn as line annotations, ``.update(...)`` as a trace)."""
        return self.backend.add_trace(trace)

    # ------------------------------------------------------------------ thumbnails
    def thumbnail_png(self, i: int) -> bytes:
        """The PNG shown for point ``i`` (image data only)."""
        if self._images is None:
            raise ValueError("no image data: pass data= (an image Dataset) to show thumbnails")
        return png_bytes(self._images[int(i)], scale=self._thumb_scale)

    def show_point(self, i: int):
        """Put point ``i``'s thumbnail and caption in the side panel."""
        if self.thumbnail is None:
            return self
        i = int(i)
        self.thumbnail.value = self.thumbnail_png(i)
        lab = "" if self.labels is None else self.labels[i]
        if self.class_names is not None and self.labels is not None and 0 <= lab < len(self.class_names):
            lab = self.class_names[lab]
        val = ""
        if self.color_name and self.color_name != "label":
            v = self._colors[self.color_name][0][i]
            shown = f"{v:.4g}" if np.issubdtype(type(v), np.floating) else f"{v}"
            val = f"<br>{html.escape(self.color_name)}: {shown}"
        self.thumbnail_caption.value = f"index {i}<br>label {html.escape(str(lab))}{val}"
        return self

    def __repr__(self) -> str:
        return (f"EmbeddingView({self.n_points} points, {len(self.frames)} snapshot(s), {self.backend.name}, "
                f"colour={self.color_name!r}, selected={len(self._selected)})")
