"""Scatter plots of 2-D projections (static builders; ``widgets.EmbeddingView`` mirrors them).

``scatter_map`` is the figure behind ``EmbeddingView``; ``MapTrace`` names its traces, and
``map_hover`` / ``color_spec`` compute exactly what the view writes into them when it recolours.

For maps too large to draw whole with plotly: ``stratified_sample`` (which points a subsampled
map shows), ``category_legend`` (the categories of a colouring, named and coloured as the plotly
map's legend, for another drawing library) and ``trace_polylines`` (a plotly marker/line trace
as plain polylines in data coordinates, for libraries that draw lines but not plotly traces).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, patch, to_numpy


def embedding(projection, labels=None, *, class_names=None, title: str | None = None, marker_size: int = 5):
    """A WebGL scatter of ``projection.coords`` (or an (N, 2) array), one trace per label."""
    xy = to_numpy(getattr(projection, "coords", projection))
    n = len(xy)
    labels = np.zeros(n, dtype=int) if labels is None else to_numpy(labels).astype(int)
    fig = go.Figure()
    for c in np.unique(labels):
        m = labels == c
        name = "OOD" if c < 0 else (str(class_names[c]) if class_names is not None else str(c))
        fig.add_trace(go.Scattergl(
            x=xy[m, 0], y=xy[m, 1], mode="markers", name=name,
            marker=dict(size=marker_size, color=colour(int(c)), opacity=0.8),
            customdata=np.nonzero(m)[0], hovertemplate="index %{customdata}<br>label " + name + "<extra></extra>",
        ))
    method = getattr(projection, "method", "")
    fig.update_xaxes(title=f"{method} 1", showgrid=False, zeroline=False)
    fig.update_yaxes(title=f"{method} 2", showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1)
    return base_layout(fig, title, height=460)


# --------------------------------------------------------------------------- colours for one trace
#: at most this many distinct integer values are drawn as categories; more as a colour scale
MAX_CATEGORIES = 50


def is_categorical(values) -> bool:
    """Integer (or bool) values with at most ``MAX_CATEGORIES`` distinct entries."""
    v = to_numpy(values)
    return v.dtype.kind in "iub" and len(np.unique(v)) <= MAX_CATEGORIES


def color_spec(values, *, categorical: bool | None = None, names=None, colorscale: str = "Viridis",
               title: str = ""):
    """Marker settings colouring one trace by ``values`` (N,), and its legend entries.

    Categorical values (labels, predictions, prototype ids; -1 = OOD, dark) become numeric codes
    with a stepwise colour scale, so even 50 000 points travel as one numeric array. ``names``
    names the categories: a sequence indexed by value (class names) or a dict value -> name
    (e.g. ``{0: "ID", 1: "SVHN"}``); unnamed values show as numbers. Returns
    ``(marker: dict, legend: list[(name, colour)], codes: (N,) float array)``; ``legend`` is
    empty for a continuous scale (which shows a colour bar instead).
    """
    v = to_numpy(values)
    if categorical is None:
        categorical = is_categorical(v)
    if not categorical:
        vf = v.astype(float)
        finite = vf[np.isfinite(vf)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        marker = dict(color=vf, colorscale=colorscale, cmin=lo, cmax=hi if hi > lo else lo + 1,
                      showscale=True, colorbar=dict(title=dict(text=title), thickness=12))
        return marker, [], vf
    cats = np.unique(v.astype(int))
    codes = np.searchsorted(cats, v.astype(int)).astype(float) + 0.5
    m = len(cats)
    scale = []
    legend = []
    for k, c in enumerate(cats):
        col = colour(int(c))
        scale += [[k / m, col], [(k + 1) / m, col]]
        legend.append((_category_name(int(c), names), col))
    marker = dict(color=codes, colorscale=scale, cmin=0, cmax=m, showscale=False)
    return marker, legend, codes


def category_legend(values, names=None) -> tuple[np.ndarray, list[str], list[str]]:
    """The categories of integer ``values`` (N,) as the map's legend shows them:
    ``(cats, labels, colours)`` with ``cats`` the sorted distinct values, ``labels`` their unique
    legend entries (``names`` as in ``color_spec``; a repeated name gets its value appended) and
    ``colours`` the palette colour of each."""
    cats = np.unique(to_numpy(values).astype(int))
    labels, seen = [], set()
    for c in cats:
        nm = _category_name(int(c), names)
        if nm in seen:
            nm = f"{nm} ({c})"
        seen.add(nm)
        labels.append(nm)
    return cats, labels, [colour(int(c)) for c in cats]


def _category_name(c: int, names) -> str:
    if isinstance(names, Mapping) and c in names:
        return str(names[c])
    if c < 0:
        return "OOD / unknown"
    if names is not None and not isinstance(names, Mapping) and c < len(names):
        return str(names[c])
    return str(c)


class MapTrace(IntEnum):
    """Traces of ``scatter_map``: the points, the highlight overlay, then ``max_legend`` legend
    swatches starting at ``LEGEND``."""

    POINTS = 0
    HIGHLIGHT = 1
    LEGEND = 2


def map_hover(labels, values, value_name: str):
    """customdata (N, 3) = index, label, value and a hover template showing them (the value
    only when ``value_name`` is given)."""
    n = len(labels)
    cd = np.empty((n, 3), dtype=float)
    cd[:, 0] = np.arange(n)
    cd[:, 1] = labels
    cd[:, 2] = values
    return cd, map_hover_template(value_name)


def map_hover_template(value_name: str) -> str:
    """The points' hover: index, label and (with ``value_name``) the colouring's value."""
    tmpl = "index %{customdata[0]}<br>label %{customdata[1]}"
    if value_name:
        tmpl += f"<br>{html.escape(value_name)} %{{customdata[2]:.4g}}"
    return tmpl + "<extra></extra>"


def map_color_patch(labels, values, *, categorical: bool | None = None, names=None, name: str = "",
                    max_legend: int = 20) -> dict:
    """What colouring ``scatter_map``'s points by ``values`` (N,) writes into its traces:
    ``{MapTrace.POINTS: marker, customdata, hovertemplate; MapTrace.LEGEND + k: swatch k}``
    (``names`` and ``categorical`` as in ``color_spec``; ``name`` titles the colour bar and the
    hover value)."""
    values = to_numpy(values)
    marker, legend, _ = color_spec(values, categorical=categorical, names=names, title=name)
    cd, tmpl = map_hover(to_numpy(labels), values.astype(float), name)
    out = {MapTrace.POINTS: dict(marker=marker, customdata=cd, hovertemplate=tmpl)}
    for k in range(max_legend):
        if k < len(legend):
            out[MapTrace.LEGEND + k] = dict(name=legend[k][0], marker=dict(color=legend[k][1]), visible=True)
        else:
            out[MapTrace.LEGEND + k] = dict(visible=False)
    return out


def scatter_map(
    coords,
    *,
    labels=None,
    color=None,
    color_name: str = "label",
    categorical: bool | None = None,
    class_names=None,
    marker_size: int | None = None,
    opacity: float = 0.8,
    title: str | None = None,
    axis_title: str = "",
    height: int = 500,
    width: int | None = None,
    max_legend: int = 20,
):
    """The figure behind ``EmbeddingView``: all points in ONE WebGL trace (fast for 50k points).

    Traces (``MapTrace``): ``POINTS`` (``Scattergl``, coloured by ``color``, default the
    labels); ``HIGHLIGHT`` (the outlined points, empty at first); from ``LEGEND`` on,
    ``max_legend`` legend swatches (invisible points naming the colours; unused ones hidden).
    Hover shows index, label and value; ``width=None`` fills the container.
    """
    xy = to_numpy(getattr(coords, "coords", coords)).astype(float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be (N, 2), got shape {xy.shape}")
    n = len(xy)
    lab = np.full(n, -1) if labels is None else to_numpy(labels).astype(int)
    if lab.shape != (n,):
        raise ValueError(f"labels must have one entry per point ({n}), got shape {lab.shape}")
    col = lab if color is None else to_numpy(color)
    if col.shape != (n,):
        raise ValueError(f"color must have one value per point ({n}), got shape {col.shape}")
    size = marker_size or (3 if n > 20_000 else 4 if n > 3000 else 6)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers", name="points", showlegend=False,
        marker=dict(size=size, opacity=opacity),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=0.25)),
    ))
    fig.add_trace(go.Scattergl(
        x=[], y=[], mode="markers", name="highlighted", showlegend=False, hoverinfo="skip",
        marker=dict(size=size + 6, color="rgba(0,0,0,0)", line=dict(width=1.5, color="#111111")),
    ))
    for _ in range(max_legend):
        fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name="", visible=False,
                                   hoverinfo="skip", marker=dict(size=8), showlegend=True))
    patch(fig, map_color_patch(lab, col, categorical=categorical, names=class_names,
                               name="" if color is None else color_name, max_legend=max_legend))
    fig.update_xaxes(title=f"{axis_title} 1" if axis_title else None, showgrid=False, zeroline=False)
    fig.update_yaxes(title=f"{axis_title} 2" if axis_title else None, showgrid=False, zeroline=False,
                     scaleanchor="x", scaleratio=1)
    fig = base_layout(fig, title, height=height, width=width)
    fig.update_layout(dragmode="lasso", hovermode="closest", uirevision="keep")
    return fig


def aligned_maps(aligned, labels=None, *, class_names=None, names=None, title: str | None = None,
                 marker_size: int = 4, height: int = 380):
    """Side-by-side panels of an ``AlignedProjections`` (one WebGL trace per panel, linked axes).

    Use it to compare models (or a few training snapshots) on the same points.
    """
    from plotly.subplots import make_subplots

    coords = to_numpy(aligned.coords if hasattr(aligned, "coords") else aligned).astype(float)
    if coords.ndim != 3 or coords.shape[2] != 2:
        raise ValueError(f"aligned coordinates must be (T, N, 2), got {coords.shape}")
    t, n, _ = coords.shape
    titles = list(names or getattr(aligned, "names", [str(i) for i in range(t)]))
    lab = np.zeros(n, dtype=int) if labels is None else to_numpy(labels).astype(int)
    marker, legend, _ = color_spec(lab, categorical=True, names=class_names)
    fig = make_subplots(rows=1, cols=t, subplot_titles=titles, horizontal_spacing=0.03)
    cd = np.stack([np.arange(n), lab], 1)
    for i in range(t):
        fig.add_trace(go.Scattergl(
            x=coords[i, :, 0], y=coords[i, :, 1], mode="markers", name=titles[i], showlegend=False,
            marker=dict(size=marker_size, opacity=0.8, **marker), customdata=cd,
            hovertemplate=titles[i] + "<br>index %{customdata[0]}<br>label %{customdata[1]}<extra></extra>",
        ), row=1, col=i + 1)
    for nm, c in legend:
        fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=nm, marker=dict(size=8, color=c)),
                      row=1, col=1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    for i in range(t):
        fig.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", scaleratio=1, row=1, col=i + 1)
    method = getattr(aligned, "method", "")
    return base_layout(fig, title or (f"{method} maps, aligned" if method else None), height=height)


# --------------------------------------------------------------------------- small images as PNG
def image_array(x) -> np.ndarray:
    """One image sample -> a 2-D (H, W) grey or (H, W, 3) colour float array."""
    a = to_numpy(x).astype(float)
    if a.ndim == 3:
        if a.shape[0] == 1:
            a = a[0]
        elif a.shape[0] == 3:
            a = np.moveaxis(a, 0, -1)
        else:
            a = a.mean(0)
    if a.ndim not in (2, 3):
        raise ValueError(f"an image must be (H, W), (1, H, W) or (3, H, W), got shape {a.shape}")
    return a


def png_bytes(image, *, scale: int = 8, vmin: float | None = None, vmax: float | None = None,
              invert: bool = True) -> bytes:
    """Encode one small image as PNG bytes (nearest-neighbour upscaled by ``scale``).

    Grey images are drawn dark-on-light when ``invert`` (ink = high values), as digits are.
    Pure numpy + zlib: no imaging library needed.
    """
    import struct
    import zlib

    a = image_array(image)
    lo = float(np.nanmin(a)) if vmin is None else vmin
    hi = float(np.nanmax(a)) if vmax is None else vmax
    a = np.nan_to_num(a, nan=lo)  # gaps (NaN) are drawn as background
    a = np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    if a.ndim == 2 and invert:
        a = 1.0 - a
    a = (a * 255).round().astype(np.uint8)
    a = np.repeat(np.repeat(a, scale, 0), scale, 1)
    h, w = a.shape[:2]
    colour_type = 0 if a.ndim == 2 else 2
    raw = b"".join(b"\x00" + a[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def image_grid(images, *, cols: int, pad: int = 1, fill: float | None = None) -> np.ndarray:
    """Tile (M, H, W) images row-major into one (rows·(H+pad), cols·(W+pad)) array."""
    imgs = [image_array(im) for im in images]
    if not imgs:
        raise ValueError("no images to tile")
    h, w = imgs[0].shape[:2]
    rows = int(np.ceil(len(imgs) / cols))
    lo = min(float(np.nanmin(i)) if np.isfinite(i).any() else 0.0 for i in imgs)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad) + imgs[0].shape[2:],
                  lo if fill is None else fill, dtype=float)
    for k, im in enumerate(imgs):
        r, c = divmod(k, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = im
    return out


# --------------------------------------------------------------------------- very large maps
def stratified_sample(labels, m: int, *, seed: int = 0) -> np.ndarray:
    """Sorted indices (M,) of ``m`` of the ``len(labels)`` points, stratified by label: every
    label keeps its share of the points (largest-remainder rounding, at least one point per label
    while ``m`` allows), drawn without replacement with ``seed``. ``m >= N`` keeps every point."""
    lab = to_numpy(labels).astype(int)
    n = len(lab)
    if m >= n:
        return np.arange(n)
    if m <= 0:
        raise ValueError(f"the sample size must be positive, got {m}")
    cats, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
    quota = counts * (m / n)
    take = np.floor(quota).astype(int)
    if m >= len(cats):
        take = np.maximum(take, 1)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")  # largest remainders first
    k = 0
    while take.sum() < m:  # hand out what rounding left, one per label
        j = order[k % len(order)]
        if take[j] < counts[j]:
            take[j] += 1
        k += 1
    while take.sum() > m:  # the one-per-label minimum overshot: trim the largest labels
        take[np.argmax(take)] -= 1
    rng = np.random.default_rng(seed)
    by_label = np.argsort(inv, kind="stable")  # indices grouped by label
    starts = np.concatenate([[0], np.cumsum(counts)])
    keep = [rng.choice(by_label[starts[j]:starts[j + 1]], size=take[j], replace=False) for j in range(len(cats))]
    return np.sort(np.concatenate(keep))


_NAMED = {"white": "#FFFFFF", "black": "#000000", "grey": "#808080", "gray": "#808080", "red": "#FF0000",
          "green": "#008000", "blue": "#0000FF", "transparent": "rgba(0,0,0,0)"}


def rgba(color, alpha: float | None = None) -> tuple[float, float, float, float]:
    """A CSS colour ("#RRGGBB", "#RGB", "rgb(r, g, b)", "rgba(r, g, b, a)", a few names such as
    "white") as floats in [0, 1]."""
    c = _NAMED.get(str(color).strip().lower(), str(color).strip())
    if c.startswith("#"):
        h = c[1:]
        if len(h) == 3:
            h = "".join(ch * 2 for ch in h)
        if len(h) not in (6, 8):
            raise ValueError(f"cannot read the colour {color!r}")
        vals = [int(h[i:i + 2], 16) / 255 for i in range(0, len(h), 2)]
        out = (*vals[:3], vals[3] if len(vals) == 4 else 1.0)
    elif c.startswith(("rgb(", "rgba(")):
        parts = [float(p) for p in c[c.index("(") + 1:c.rindex(")")].split(",")]
        out = (parts[0] / 255, parts[1] / 255, parts[2] / 255, parts[3] if len(parts) == 4 else 1.0)
    else:
        raise ValueError(f"cannot read the colour {color!r}; pass '#RRGGBB' or 'rgb(a)(...)'")
    return out if alpha is None else (*out[:3], alpha)


def _glyph(symbol: str, r: float) -> np.ndarray:
    """Outline of a marker ``symbol`` of radius ``r`` around (0, 0): (V, 2) vertices; "x" and
    "cross" are two strokes joined through the centre."""
    if symbol in ("x", "cross"):
        a = np.pi / 4 if symbol == "x" else 0.0
        ends = r * np.array([[np.cos(a + k * np.pi / 2), np.sin(a + k * np.pi / 2)] for k in range(4)])
        return np.stack([ends[0], ends[2], [0, 0], ends[1], ends[3]])
    if symbol == "star":
        ang = np.pi / 2 + np.arange(11) * np.pi / 5
        rad = np.where(np.arange(11) % 2 == 0, r, 0.42 * r)
        return np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
    ang = np.linspace(0, 2 * np.pi, 13)  # "circle" and anything else: a 12-gon
    return np.stack([r * np.cos(ang), r * np.sin(ang)], 1)


def trace_polylines(trace, *, span: float, plot_px: float = 500.0) -> list[tuple[np.ndarray, tuple, float]]:
    """A plotly ``Scatter``/``Scattergl`` trace (object or dict) as polylines in data coordinates:
    a list of ``(vertices (V, 2), rgba colour, width in px)``.

    Lines (``mode`` with "lines") become one polyline per run between ``None`` breaks, in
    ``line.color``; markers (``mode`` with "markers") become outlines of their symbol ("star",
    "x", "cross"; others a circle) in each point's ``marker.color`` (``marker.line.color`` where
    the fill is white or clear), ``marker.size`` pixels across
    on a plot ``plot_px`` pixels wide showing ``span`` data units (so they scale when zooming).
    For drawing libraries that draw lines but not plotly traces (jupyter-scatter's annotations).
    """
    t = trace.to_plotly_json() if hasattr(trace, "to_plotly_json") else dict(trace)
    mode = t.get("mode") or "markers"
    x = np.asarray(t.get("x") if t.get("x") is not None else [], dtype=object)
    y = np.asarray(t.get("y") if t.get("y") is not None else [], dtype=object)
    out = []
    if "lines" in mode:
        line = t.get("line") or {}
        col, width = rgba(line.get("color") or "#444444"), float(line.get("width") or 1.0)
        run = []
        for xi, yi in zip(list(x) + [None], list(y) + [None]):
            if xi is None or yi is None:
                if len(run) > 1:
                    out.append((np.asarray(run, dtype=float), col, width))
                run = []
            else:
                run.append((float(xi), float(yi)))
    if "markers" in mode:
        mk = t.get("marker") or {}
        ok = np.array([xi is not None and yi is not None for xi, yi in zip(x, y)], dtype=bool)
        n = len(x)
        per = lambda v, d: list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v if v is not None else d] * n  # noqa: E731
        edge = mk.get("line") or {}
        fills, edges = per(mk.get("color"), "#444444"), per(edge.get("color"), None)
        sizes, symbols = per(mk.get("size"), 8), per(mk.get("symbol"), "circle")
        width = float(edge.get("width") or 1.5)
        for i in np.flatnonzero(ok):
            r = 0.5 * float(sizes[i]) * span / plot_px
            centre = np.array([float(x[i]), float(y[i])])
            # an outline is drawn: in the fill colour, unless the fill is white/clear (then the edge's)
            col = rgba(fills[i])
            if edges[i] is not None and (min(col[:3]) > 0.95 or col[3] == 0):
                col = rgba(edges[i])
            out.append((_glyph(str(symbols[i]), r) + centre, col, max(width, 1.5)))
    return out
