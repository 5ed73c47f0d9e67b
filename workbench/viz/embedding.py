"""Scatter plots of 2-D projections (static builders; ``widgets.EmbeddingView`` mirrors them).

``scatter_map`` is the figure behind ``EmbeddingView``; ``MapTrace`` names its traces, and
``map_hover`` / ``color_spec`` compute exactly what the view writes into them when it recolours.
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
