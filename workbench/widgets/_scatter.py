"""The jupyter-scatter map backend (``EmbeddingView(backend="jscatter")``): a million points.

jupyter-scatter (PyPI ``jupyter-scatter``, ``import jscatter``; not the unrelated PyPI package
``jscatter``) draws points with WebGL (regl-scatterplot) from one (N, 4) array sent as binary, so
building a map is ~O(N) in Python and drawing, lasso and hover stay interactive at 10^6 points.
``ScatterMap`` speaks the map-backend interface of ``widgets._map``; what each part becomes:

* positions: ``Scatter.xy`` with the x/y scales fixed to the extent of all snapshots, so moving
  through snapshots moves points in place (same camera);
* colour: a column of the scatter's DataFrame named after the colouring; categories as a pandas
  ``Categorical`` named and coloured as the plotly map's legend (``viz.embedding.category_legend``),
  numbers with matplotlib's viridis (plotly's Viridis is the same map) between their finite min
  and max; jupyter-scatter draws the legend;
* selection: the widget's ``selection`` trait (lasso, or the toolbar's rectangle/brush lasso) is
  observed and handed on as sorted int64 indices; ``set_selection`` writes it back;
* hover: the widget's ``hovering`` trait (the view shows thumbnails and read-outs from it); the
  tooltip shows the colouring's value, the label and the index, and for image data a thumbnail (a PNG data
  URL computed for the hovered point only, answering jupyter-scatter's tooltip request, so no
  column of a million images is ever built);
* highlight: the outlined points are drawn 3x larger (jupyter-scatter has no second layer of
  points; the size channel is free while colour uses its own);
* ``add_trace``: plotly marker/line traces (prototype stars, assignment edges) are drawn as line
  annotations (``viz.embedding.trace_polylines``); the returned ``Overlay`` updates in place.

The figure the view registers is a ``ScatterFigure``: an ipywidgets box holding the scatter
widget (plus a title line), callable like a plotly FigureWidget: ``view.figure()`` returns a
static plotly figure of what the map shows (all points, current colours, selection and
overlays) for export.
"""

from __future__ import annotations

import base64
import html

import numpy as np

from .._optional import require
from ..viz._common import go
from ..viz.embedding import category_legend, color_spec, scatter_map, trace_polylines

widgets = require("ipywidgets", "interactive views")

__all__ = ["ScatterMap", "ScatterFigure", "Overlay", "require_jscatter", "has_jscatter", "SCALE_EXTRA"]

#: how to install the optional engines for large data (the ``scale`` extra)
SCALE_EXTRA = 'pip install -e ".[scale]"  (or: pip install jupyter-scatter)'


def has_jscatter() -> bool:
    """Whether jupyter-scatter can be imported (it is imported: only asked when a map needs it)."""
    try:
        require_jscatter()
    except ImportError:
        return False
    return True


def require_jscatter():
    """``import jscatter`` (jupyter-scatter), or an ImportError naming the extra to install."""
    try:
        import jscatter
    except ImportError as err:
        raise ImportError(f"the jupyter-scatter map backend needs the package jupyter-scatter "
                          f"(import jscatter), which is not installed; run: {SCALE_EXTRA}") from err
    if not hasattr(jscatter, "Scatter"):  # the unrelated PyPI package also named `jscatter`
        raise ImportError(f"`import jscatter` found a package without jscatter.Scatter (the PyPI package "
                          f"'jscatter' is an unrelated X-ray library); install jupyter-scatter: {SCALE_EXTRA}")
    return jscatter


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _extent(xy: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """((xmin, xmax), (ymin, ymax)) of finite coordinates, widened where flat."""
    out = []
    for k in range(2):
        v = xy[..., k]
        v = v[np.isfinite(v)]
        lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
        out.append((lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
    return out[0], out[1]


def _padded(lo: float, hi: float, pad: float = 0.05) -> tuple[float, float]:
    """The scale's domain: the data's range plus ``pad`` of it on each side (jupyter-scatter maps
    the domain onto the whole canvas; the margin keeps the outermost points off its edges)."""
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    d = pad * (hi - lo)
    return lo - d, hi + d


class Overlay:
    """A plotly trace drawn over a jupyter-scatter map as line annotations (``ScatterMap.add_trace``).

    ``overlay.update(props)`` (or keywords) changes the trace like plotly's ``trace.update`` and
    redraws it; ``overlay.trace`` is the plotly trace (also drawn in the static export)."""

    def __init__(self, owner: ScatterMap, trace):
        self._owner = owner
        self.trace = go.Scatter(trace.to_plotly_json() if hasattr(trace, "to_plotly_json") else trace)

    def update(self, props=None, **kw):
        self.trace.update(props or {}, **kw)
        self._owner._draw_overlays()
        return self


class ScatterFigure(widgets.VBox):
    """The box a jupyter-scatter map is laid out in; ``fig()`` is a static plotly copy of it."""

    def __init__(self, owner: ScatterMap, children):
        super().__init__(children, layout=widgets.Layout(width="100%", max_width="100%"))
        self._owner = owner

    def __call__(self) -> go.Figure:
        return self._owner.static_figure()


class ScatterMap:
    """All points in one jupyter-scatter widget (see the module docstring)."""

    name = "jscatter"

    def __init__(self, xy, *, labels, values, categorical, names, name: str, marker_size=None,
                 title=None, axis_title: str = "", height: int = 520, max_legend: int = 20,
                 extent=None, note: str | None = None):
        jscatter = require_jscatter()
        import pandas as pd

        self._pd = pd
        xy = np.asarray(xy, dtype=float)  # (N, 2)
        n = len(xy)
        self._xy = xy
        self._labels = np.full(n, -1) if labels is None else np.asarray(labels, dtype=int)  # (N,)
        self._title, self._axis_title, self._height, self._max_legend = title, axis_title, height, max_legend
        self._marker_size = marker_size
        xr, yr = extent if extent is not None else _extent(xy)
        self._xr, self._yr = _padded(*xr), _padded(*yr)
        self._label_names = names
        lab_codes, lab_names, _ = self._categorical(self._labels, names)
        df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "index": np.arange(n, dtype=np.int32),
                           "label": pd.Categorical.from_codes(lab_codes, categories=lab_names)})
        size = marker_size or (2 if n > 200_000 else 3 if n > 20_000 else 5)
        self._size = size
        self.scatter = jscatter.Scatter(
            data=df, x="x", y="y", x_scale=self._xr, y_scale=self._yr, height=height, size=size,
            legend=True, legend_position="top-right", tooltip=True, tooltip_properties=["color"],  # set_color adds label and index
            axes=False, background_color="white", mouse_mode="lasso", lasso_type="freeform",
            transition_points=True, transition_points_duration=300,  # snapshots glide (default 3 s)
        )
        self._value = (None, None, None, None)  # what the points are coloured by
        self._color_column = None
        self._highlight = np.zeros(0, dtype=np.int64)
        self._overlays: list[Overlay] = []
        self._select_fns, self._point_fns = [], []
        self._preview = None
        self._quiet = False
        self.set_color(values if values is not None else self._labels,
                       categorical=True if values is None else categorical, names=names, name=name or "label")
        w = self.scatter.widget
        w.observe(self._on_selection, names="selection")
        w.observe(self._on_hover, names="hovering")
        # answer jupyter-scatter's tooltip requests ourselves (the preview is made on demand):
        # JupyterScatter overrides ipywidgets' _handle_custom_msg (it never dispatches to on_msg
        # callbacks), so this widget instance gets its own handler
        w._handle_custom_msg = self._on_msg
        head = f"<b>{html.escape(title)}</b>" if title else ""
        if note:
            head += f"{' · ' if head else ''}<span style='color:#555'>{html.escape(note)}</span>"
        self.header = widgets.HTML(head, layout=widgets.Layout(margin="0 0 0 8px"))
        self.figure = ScatterFigure(self, [self.header, w] if head else [w])
        self.figures = {"map": self.figure}
        self.widget = self.figure

    # ------------------------------------------------------------------ interface
    @property
    def n_points(self) -> int:
        return len(self._xy)

    def set_xy(self, xy):
        self._xy = np.asarray(xy, dtype=float)
        self.scatter.xy(x=self._xy[:, 0], y=self._xy[:, 1], x_scale=self._xr, y_scale=self._yr)

    @staticmethod
    def _categorical(values, names):
        """(codes (N,), legend labels, colours) of integer ``values`` (N,)."""
        cats, labels, colours = category_legend(values, names)
        return np.searchsorted(cats, values).astype(np.int32), labels, colours

    def set_color(self, values, *, categorical, names, name):
        pd = self._pd
        values = np.asarray(values)
        is_labels = categorical and np.array_equal(values, self._labels) and names is self._label_names
        col = str(name)
        if col in ("x", "y") or (col == "label" and not is_labels):
            col = f"{name} (colour)"
        df = self._df()
        if categorical:
            codes, labels, colours = self._categorical(values.astype(int), names)
            if col != "label":  # the label column is already there
                df[col] = pd.Categorical.from_codes(codes, categories=labels)
            self.scatter.color(by=col, map=dict(zip(labels, colours)), norm=None, labeling={"variable": str(name)})
        else:
            vf = values.astype(float)
            marker, _, _ = color_spec(vf, categorical=False)
            df[col] = vf
            self.scatter.color(by=col, map="viridis", norm=(marker["cmin"], marker["cmax"]),
                               labeling={"variable": str(name)})
        if self._color_column not in (None, col, "label"):
            del df[self._color_column]  # keep one colour column (memory at 10^6 points)
        # hover read-out: the colouring's value, the label (unless that is the colouring) and the index
        props = ["color", "index"] if col == "label" else ["color", "label", "index"]
        if self.scatter.tooltip()["properties"] != props:
            self.scatter.tooltip(properties=props, histograms=["color", "label"])
        self._color_column = col
        self._value = (values, categorical, names, name)

    def set_highlight(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        self._highlight = idx
        if idx.size == 0:
            self.scatter.size(default=self._size, by=None)
            return
        flag = np.zeros(self.n_points, dtype=np.int8)
        flag[idx] = 1
        self.scatter.size(by=self._pd.Categorical.from_codes(flag, categories=["other", "outlined"]),
                          map={"other": self._size, "outlined": 3 * self._size}, labeling={"variable": "outlined"})

    def set_selection(self, indices):
        self._quiet = True
        try:
            self.scatter.selection(np.asarray(indices, dtype=np.int64) if len(indices) else None)
        finally:
            self._quiet = False

    def on_select(self, fn):
        self._select_fns.append(fn)

    def on_point(self, fn):
        self._point_fns.append(fn)

    def set_preview(self, fn):
        """Show ``fn(i)`` (a PNG's bytes) as the tooltip's image for point ``i``."""
        self._preview = fn
        self.scatter.tooltip(preview="thumbnail", preview_type="image", preview_image_height=96,
                             preview_image_size="contain")

    def add_trace(self, trace) -> Overlay:
        ov = Overlay(self, trace)
        self._overlays.append(ov)
        self._draw_overlays()
        return ov

    # ------------------------------------------------------------------ events
    def _on_selection(self, change):
        if self._quiet:
            return
        sel = change["new"]
        idx = np.zeros(0, dtype=np.int64) if sel is None else np.asarray(sel, dtype=np.int64)
        for fn in self._select_fns:
            fn(idx)

    def _on_hover(self, change):
        i = change["new"]
        if i is not None and 0 <= int(i) < self.n_points:
            for fn in self._point_fns:
                fn(int(i))

    def _on_msg(self, content, buffers=None):
        """jupyter-scatter's tooltip request: the preview and the non-visual properties of a point."""
        if not isinstance(content, dict) or content.get("type") != "tooltip":
            return
        i = int(content["index"])
        props = {}
        for p in content.get("properties") or []:
            df = self._df()
            if p in df:
                v = df[p].iloc[i]
                props[p] = v.item() if hasattr(v, "item") else (str(v) if v == v else "NA")
        preview = None
        if content.get("preview") is not None and self._preview is not None:
            preview = png_data_url(self._preview(i))
        self.scatter.widget.send({"type": "tooltip", "index": i, "preview": preview, "properties": props})

    # ------------------------------------------------------------------ drawing helpers
    def _df(self):
        """The DataFrame the scatter reads (colour columns are added to it in place). jupyter-scatter
        1.0.1's ``Scatter.data()`` getter returns the Scatter itself, so it is read from ``_data``."""
        return self.scatter._data

    def _draw_overlays(self):
        import jscatter

        span = max(self._xr[1] - self._xr[0], self._yr[1] - self._yr[0])
        lines = []
        for ov in self._overlays:
            if ov.trace.visible is False:
                continue
            for verts, col, width in trace_polylines(ov.trace, span=span):
                lines.append(jscatter.Line([(float(a), float(b)) for a, b in verts], line_color=col, line_width=int(round(width))))
        self.scatter.annotations(lines or None)

    def static_figure(self) -> go.Figure:
        """A plotly figure of what the map shows (``wb.viz.scatter_map``; all points)."""
        values, categorical, names, name = self._value
        fig = scatter_map(self._xy, labels=self._labels, color=values, color_name=name, categorical=categorical,
                          class_names=names, marker_size=self._marker_size, title=self._title,
                          axis_title=self._axis_title, height=self._height, max_legend=self._max_legend)
        sel = self.scatter.selection()
        if sel is not None and len(sel):
            fig.data[0].selectedpoints = [int(i) for i in sel]
        if len(self._highlight):
            fig.data[1].update(x=self._xy[self._highlight, 0], y=self._xy[self._highlight, 1])
        for ov in self._overlays:
            fig.add_trace(go.Scatter(ov.trace))
        return fig
