"""A view as a static HTML page fragment, for a course site that has no kernel.

``static_html(widget)`` walks a view's ipywidgets tree (``view.widget``) as it is NOW (after every
later cell changed it) and writes what a reader can use without Python:

* every plotly figure as an interactive plotly.js plot (zoom, hover, legend clicks) through
  ``plotly.io.to_html`` without plotly.js itself (the page loads it once);
* a map box that is not a plotly figure (jupyter-scatter's ``ScatterFigure``, callable like a
  figure widget) through its static plotly copy; above ``max_points`` points as a PNG image
  (kaleido, Debian's Chromium) instead, since a million points do not belong in a web page;
* HTML / Label / Image widgets as they are; rows and panels keep their flex layout (they wrap on
  a narrow page, as in JupyterLab);
* controls (sliders, dropdowns, buttons...) as a one-line caption of their current value: they
  need a kernel, so the caption says where to move them (JupyterLab or the Voila app).

``static_outputs(model_ids)`` does this for the displayed widgets of a kernel, by model id (the
course builder, ``workbench.course``, calls it in the notebook's kernel after the last cell).
"""

from __future__ import annotations

import base64
import html

from .._optional import require

widgets = require("ipywidgets", "interactive views")
go = require("plotly.graph_objects", "interactive views")

__all__ = ["static_html", "static_outputs"]

#: maps with more points than this become PNG images
MAX_POINTS = 20_000
KERNEL_NOTE = ("<div class='wb-static-note' style='font:12px sans-serif;color:#666;margin:4px 0'>"
               "Static copy: the controls need a kernel (open the notebook in JupyterLab, or the "
               "Voil&agrave; app) &mdash; the plots still zoom and hover.</div>")


def _n_points(fig) -> int:
    xs = [getattr(t, "x", None) for t in fig.data]
    return sum(len(x) for x in xs if x is not None)


def _figure_html(fig: go.Figure, max_points: int) -> str:
    if _n_points(fig) > max_points:
        try:
            png = fig.to_image(format="png", width=fig.layout.width or 900, height=fig.layout.height or 520)
            return (f"<img alt='map of {_n_points(fig)} points' style='max-width:100%' "
                    f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
        except Exception as e:  # no kaleido / no browser: the interactive figure, heavy but correct
            note = f"<div class='wb-static-note'>(PNG export failed: {html.escape(str(e)[:120])})</div>"
            return note + _figure_html(fig, max_points=10**12)
    fig = go.Figure(fig)
    fig.update_layout(width=None, autosize=True)
    return fig.to_html(include_plotlyjs=False, full_html=False, default_width="100%",
                       config={"responsive": True, "displaylogo": False})


def _box_style(w) -> str:
    lay = w.layout
    horizontal = isinstance(w, widgets.HBox) or (lay.flex_flow or "").startswith("row")
    flow = lay.flex_flow or ("row wrap" if horizontal else "column")
    parts = ["display:flex", f"flex-flow:{flow}", "max-width:100%", "box-sizing:border-box"]
    for css, value in (("flex", lay.flex), ("align-items", lay.align_items), ("width", lay.width),
                       ("min-width", lay.min_width), ("margin", lay.margin)):
        if value:
            parts.append(f"{css}:{value}")
    return ";".join(parts)


def _control_caption(w) -> str:
    desc = getattr(w, "description", "") or type(w).__name__
    value = getattr(w, "value", None)
    if isinstance(w, widgets.Button):
        return ""
    shown = "" if value is None else f": <b>{html.escape(str(value))}</b>"
    return (f"<span class='wb-static-control' style='font:12px sans-serif;color:#555;margin:2px 10px 2px 0'>"
            f"{html.escape(str(desc))}{shown}</span>")


def static_html(widget, *, max_points: int = MAX_POINTS) -> str:
    """HTML of ``widget`` (a view's root, or any ipywidget) as it is now (module docstring)."""
    if isinstance(widget, go.FigureWidget) or (isinstance(widget, widgets.DOMWidget) and callable(widget)):
        fig = go.Figure(widget) if isinstance(widget, go.FigureWidget) else widget()
        return _figure_html(fig, max_points)
    if isinstance(widget, widgets.Box):
        inner = "".join(static_html(c, max_points=max_points) for c in widget.children)
        return f"<div class='wb-static-box' style='{_box_style(widget)}'>{inner}</div>"
    if isinstance(widget, (widgets.HTML, widgets.HTMLMath)):
        return f"<div>{widget.value}</div>"
    if isinstance(widget, widgets.Label):
        return f"<span style='font:13px sans-serif;margin:2px 8px'>{html.escape(widget.value)}</span>"
    if isinstance(widget, widgets.Image):
        if not widget.value:
            return ""
        style = ";".join(f"{k}:{v}" for k, v in (("width", widget.layout.width), ("height", widget.layout.height)) if v)
        src = base64.b64encode(bytes(widget.value)).decode()
        return f"<img style='image-rendering:pixelated;{style}' src='data:image/{widget.format};base64,{src}'>"
    if isinstance(widget, (widgets.ValueWidget, widgets.Button)):
        return _control_caption(widget)
    return ""  # anything else (a Play button's timer, an Output widget) has no static form


def static_outputs(model_ids, *, max_points: int = MAX_POINTS) -> dict[str, str]:
    """``{model_id: html}`` for the displayed widgets ``model_ids`` of this kernel (unknown ids are
    left out); each gets the note that its controls need a kernel when it has any."""
    from ipywidgets.widgets.widget import _instances

    out = {}
    for mid in model_ids:
        w = _instances.get(mid)
        if w is None:
            continue
        body = static_html(w, max_points=max_points)
        out[mid] = (KERNEL_NOTE if "wb-static-control" in body else "") + body
    return out
