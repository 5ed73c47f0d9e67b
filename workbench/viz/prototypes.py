"""Figures of prototype assignments (static builders; ``widgets.PrototypeView`` mirrors them).

* ``prototype_map``: the points of a 2-D map, the prototypes placed in the same map, and edges
  from each prototype to its most strongly assigned points;
* ``occupancy_bars``: how many samples pick each prototype (grouped by class; dead ones marked);
* ``redundancy_heatmap``: cosines between prototypes, sorted by class (duplicates light up);
* ``prototype_evolution``: dead and duplicate prototypes, and mean purity, over a fit;
* ``prototype_gallery``: "this looks like that": each prototype's nearest real samples.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import OOD_COLOUR, base_layout, colour, go, patch, to_numpy
from .embedding import color_spec, image_array, image_grid

DEAD_COLOUR = "#9E9E9E"


class ProtoMapTrace(IntEnum):
    """Traces of ``prototype_map``: samples, assignment edges, prototypes, then legend swatches."""

    POINTS = 0
    EDGES = 1
    PROTOTYPES = 2
    LEGEND = 3


#: ``occupancy_bars`` has one Bar trace
OCCUPANCY_BARS = 0
#: ``prototype_evolution(..., current=step)`` draws the current step as layout shape 0
EVOLUTION_STEP_SHAPE = 0


def _class_order(proto_class) -> np.ndarray:
    """Prototype indices sorted by class, then index (stable)."""
    pc = to_numpy(proto_class)
    return np.argsort(pc, kind="stable")


def edge_segments(points_xy, proto_xy, weights, top: int = 5):
    """x, y arrays (with None breaks) of lines from each prototype to its ``top`` heaviest points."""
    w = to_numpy(weights)
    pts = to_numpy(points_xy).astype(float)
    pro = to_numpy(proto_xy).astype(float)
    kt = w.shape[1]
    top = min(top, w.shape[0])
    if top <= 0 or kt == 0:
        return np.array([]), np.array([])
    idx = np.argpartition(-w, top - 1, axis=0)[:top].T  # (Kt, top)
    valid = np.take_along_axis(w.T, idx, 1) > 0  # (Kt, top)
    j = np.repeat(np.arange(kt), top)[valid.ravel()]
    i = idx.ravel()[valid.ravel()]
    m = len(i)
    xs = np.empty(3 * m, dtype=object)
    ys = np.empty(3 * m, dtype=object)
    xs[0::3], ys[0::3] = pro[j, 0], pro[j, 1]
    xs[1::3], ys[1::3] = pts[i, 0], pts[i, 1]
    xs[2::3], ys[2::3] = None, None
    return xs, ys


def proto_marker(proto_class, counts, *, dead_size: int = 9):
    """Marker dict for prototypes: coloured by class, sized by count, grey crosses when dead."""
    pc = to_numpy(proto_class).astype(int)
    cnt = to_numpy(counts).astype(float)
    dead = cnt <= 0
    mx = max(float(cnt.max()), 1.0)
    size = np.where(dead, dead_size, 10 + 16 * np.sqrt(cnt / mx))
    return dict(
        color=[DEAD_COLOUR if d else colour(int(c)) for c, d in zip(pc, dead)],
        size=size, symbol=["x" if d else "star" for d in dead],
        line=dict(width=1, color="#111111"), opacity=1.0,
    )


def proto_hover(proto_class, counts, purity, redundancy, class_names):
    """Hover text per prototype: class, count, purity, largest cosine to its own class."""
    pc = to_numpy(proto_class).astype(int)
    rows = []
    for j, c in enumerate(pc):
        nm = class_names[c] if class_names is not None and c < len(class_names) else c
        pu = to_numpy(purity)[j]
        rd = to_numpy(redundancy)[j]
        rows.append(
            f"prototype {j} (class {nm})<br>count {int(to_numpy(counts)[j])}"
            f"<br>purity {'n/a' if np.isnan(pu) else f'{pu:.2f}'}"
            f"<br>max cos to own class {'n/a' if np.isnan(rd) else f'{rd:.3f}'}"
        )
    return rows


def prototype_map_patch(assignments, coords, proto_coords, *, top: int = 5, class_names=None) -> dict:
    """What one snapshot writes into ``prototype_map``'s traces: the points' and prototypes'
    positions, the edges, the prototypes' markers (class, count, dead) and hover text."""
    xy = to_numpy(coords).astype(float)
    pxy = to_numpy(proto_coords).astype(float)
    ex, ey = edge_segments(xy, pxy, assignments.weights, top)
    return {
        ProtoMapTrace.POINTS: dict(x=xy[:, 0], y=xy[:, 1]),
        ProtoMapTrace.EDGES: dict(x=ex, y=ey),
        ProtoMapTrace.PROTOTYPES: dict(
            x=pxy[:, 0], y=pxy[:, 1], marker=proto_marker(assignments.proto_class, assignments.counts),
            hovertext=proto_hover(assignments.proto_class, assignments.counts, assignments.purity,
                                  assignments.redundancy, class_names),
        ),
    }


def prototype_map(
    assignments,
    coords,
    proto_coords,
    *,
    labels=None,
    top: int = 5,
    class_names=None,
    title: str | None = "Prototypes in the embedding map",
    marker_size: int | None = None,
    height: int = 520,
):
    """Points (``coords`` (N, 2)), prototypes (``proto_coords`` (Kt, 2)) and assignment edges.

    ``assignments``: a ``PrototypeAssignments`` (weights, counts, purity...). Traces
    (``ProtoMapTrace``): ``POINTS`` (one WebGL trace, coloured by label), ``EDGES`` (lines from
    each prototype to its ``top`` most strongly assigned points), ``PROTOTYPES`` (stars coloured
    by class, size by count; dead prototypes are grey crosses), then legend swatches.
    ``prototype_map_patch`` gives the same data for another snapshot.
    """
    xy = to_numpy(coords).astype(float)
    pxy = to_numpy(proto_coords).astype(float)
    n = xy.shape[0]
    kt = assignments.weights.shape[1]
    if assignments.weights.shape[0] != n:
        raise ValueError(f"the assignments cover {assignments.weights.shape[0]} points but coords has {n}")
    if pxy.shape != (kt, 2):
        raise ValueError(f"proto_coords must be ({kt}, 2), got {pxy.shape}")
    lab = labels if labels is not None else assignments.labels
    lab = np.full(n, -1) if lab is None else to_numpy(lab).astype(int)
    marker, legend, _ = color_spec(lab, categorical=True, names=class_names)
    size = marker_size or (3 if n > 20_000 else 5)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        mode="markers", name="samples", showlegend=False,
        marker=dict(size=size, opacity=0.45, **marker),
        customdata=np.stack([np.arange(n), lab], 1),
        hovertemplate="index %{customdata[0]}<br>label %{customdata[1]}<extra></extra>",
    ))
    fig.add_trace(go.Scattergl(
        mode="lines", name=f"top-{top} assignments", hoverinfo="skip",
        line=dict(width=0.7, color="rgba(60,60,60,0.35)"),
    ))
    fig.add_trace(go.Scatter(mode="markers", name="prototypes", hoverinfo="text", customdata=np.arange(kt)))
    for nm, c in legend:
        fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=nm, marker=dict(size=8, color=c)))
    patch(fig, prototype_map_patch(assignments, xy, pxy, top=top, class_names=class_names))
    fig.update_xaxes(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(showgrid=False, zeroline=False, showticklabels=False, scaleanchor="x", scaleratio=1)
    fig = base_layout(fig, title, height=height)
    fig.update_layout(hovermode="closest", uirevision="keep")
    return fig


def occupancy_patch(assignments, *, soft: bool = False) -> dict:
    """What one snapshot writes into ``occupancy_bars``: bar heights and colours (dead = grey)."""
    order = _class_order(assignments.proto_class)
    pc = to_numpy(assignments.proto_class).astype(int)[order]
    vals = to_numpy(assignments.occupancy if soft else assignments.counts).astype(float)[order]
    counts = to_numpy(assignments.counts)[order]
    cols = [DEAD_COLOUR if k <= 0 else colour(int(c)) for c, k in zip(pc, counts)]
    return {OCCUPANCY_BARS: dict(y=vals, marker=dict(color=cols))}


def occupancy_bars(assignments, *, class_names=None, soft: bool = False,
                   title: str | None = "Occupancy per prototype", height: int = 320):
    """Bars: samples whose strongest assignment is each prototype (``soft``: the soft mass),
    prototypes grouped by class (x labels ``class:index``); dead prototypes are grey.
    One Bar trace (``OCCUPANCY_BARS``); ``occupancy_patch`` gives another snapshot's bars."""
    order = _class_order(assignments.proto_class)
    pc = to_numpy(assignments.proto_class).astype(int)[order]
    name = (lambda c: class_names[c]) if class_names is not None else (lambda c: c)  # noqa: E731
    xlab = [f"{name(c)}:{j}" for c, j in zip(pc, order)]
    fig = go.Figure(go.Bar(x=xlab, customdata=order, hovertemplate="prototype %{customdata}<br>%{y:.4g}<extra></extra>"))
    patch(fig, occupancy_patch(assignments, soft=soft))
    fig.update_xaxes(title="class:prototype", type="category", tickangle=-90, tickfont=dict(size=8))
    fig.update_yaxes(title="soft mass" if soft else "samples (strongest assignment)")
    return base_layout(fig, title, height=height)


def redundancy_heatmap(assignments, *, title: str | None = "Cosine between prototypes (sorted by class)",
                       height: int = 460):
    """Kt x Kt cosine similarities of the prototypes, rows/columns sorted by class."""
    order = _class_order(assignments.proto_class)
    cos = to_numpy(assignments.cosine)[np.ix_(order, order)]
    pc = to_numpy(assignments.proto_class).astype(int)[order]
    lab = [f"{c}:{j}" for c, j in zip(pc, order)]
    fig = go.Figure(go.Heatmap(
        z=cos, x=lab, y=lab, zmin=-1, zmax=1, colorscale="RdBu_r",
        hovertemplate="%{y} vs %{x}<br>cos %{z:.3f}<extra></extra>",
    ))
    fig.update_xaxes(type="category", showticklabels=False)
    fig.update_yaxes(type="category", showticklabels=False, autorange="reversed", scaleanchor="x")
    return base_layout(fig, title, height=height, width=height + 60)


def prototype_evolution(evolution, *, current: float | None = None, title: str | None = "Prototypes over training",
                        height: int = 320):
    """Dead and duplicate prototype counts (left axis) and mean purity (right axis) per snapshot.

    ``current``: a step to mark with a dashed vertical line (layout shape ``EVOLUTION_STEP_SHAPE``,
    which views move)."""
    steps = to_numpy(evolution.steps)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=to_numpy(evolution.n_dead), mode="lines+markers", name="dead",
                             line=dict(color=DEAD_COLOUR)))
    fig.add_trace(go.Scatter(x=steps, y=to_numpy(evolution.n_duplicates), mode="lines+markers",
                             name="duplicates", line=dict(color=colour(3))))
    pur = to_numpy(evolution.purity)
    with np.errstate(all="ignore"):
        mean_pur = np.nanmean(np.where(np.isnan(pur), np.nan, pur), 1) if pur.size else pur
    fig.add_trace(go.Scatter(x=steps, y=mean_pur, mode="lines+markers", name="mean purity", yaxis="y2",
                             line=dict(color=colour(0), dash="dot")))
    fig.update_layout(
        xaxis=dict(title="step"), yaxis=dict(title="prototypes", rangemode="tozero"),
        yaxis2=dict(title="purity", overlaying="y", side="right", range=[0, 1.05], showgrid=False,
                    tickmode="array", tickvals=[0, 0.25, 0.5, 0.75, 1.0]),
    )
    if current is not None:
        fig.add_vline(x=float(current), line=dict(color="#444", width=1, dash="dash"))
    fig = base_layout(fig, title, height=height)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      margin=dict(r=60, t=80 if title else 40))  # the legend sits between title and plot
    return fig


def gallery_array(assignments, images, *, classes=None, n: int = 6, by: str = "similarity",
                  pad: int = 1) -> tuple[np.ndarray, list[int]]:
    """(mosaic, prototype ids): one row per prototype of ``classes`` (all when None), its ``n``
    nearest real samples (``by="similarity"``) or strongest-assigned ones (``"weight"``)."""
    order = _class_order(assignments.proto_class)
    pc = to_numpy(assignments.proto_class).astype(int)
    if classes is not None:
        keep = set(int(c) for c in np.atleast_1d(classes))
        order = np.array([j for j in order if pc[j] in keep], dtype=int)
    if len(order) == 0:
        raise ValueError(f"no prototype belongs to classes {classes!r}")
    imgs = to_numpy(images)
    tiles = []
    blank = np.full_like(image_array(imgs[0]), np.nan)
    for j in order:
        idx = to_numpy(assignments.top_points(int(j), n, by=by)).astype(int)
        row = [image_array(imgs[i]) for i in idx] + [blank] * (n - len(idx))
        tiles += row
    mosaic = image_grid(tiles, cols=n, pad=pad, fill=np.nan)
    return mosaic, [int(j) for j in order]


def prototype_gallery(assignments, images, *, classes=None, n: int = 6, by: str = "similarity",
                      class_names=None, title: str | None = "This looks like that: nearest samples per prototype",
                      row_height: int = 34):
    """"This looks like that": a mosaic, one row per prototype, of its ``n`` nearest real samples.

    ``images``: the (N, C, H, W) or (N, H, W) inputs the assignments were computed on.
    One ``Heatmap`` trace (grey, ink dark), rows labelled ``class:prototype``.
    """
    mosaic, ids = gallery_array(assignments, images, classes=classes, n=n, by=by)
    pc = to_numpy(assignments.proto_class).astype(int)
    h = image_array(to_numpy(images)[0]).shape[0]
    rows = len(ids)
    name = (lambda c: class_names[c]) if class_names is not None else (lambda c: c)  # noqa: E731
    fig = go.Figure(go.Heatmap(z=mosaic, colorscale="Greys", showscale=False, hoverinfo="skip"))
    fig.update_yaxes(
        autorange="reversed", scaleanchor="x", showgrid=False, zeroline=False,
        tickvals=[r * (h + 1) + h / 2 - 0.5 for r in range(rows)],
        ticktext=[f"{name(pc[j])}:{j}" for j in ids], tickfont=dict(size=9),
    )
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    return base_layout(fig, title, height=max(200, 60 + rows * row_height), width=80 + n * row_height + 40)


__all__ = [
    "prototype_map", "occupancy_bars", "redundancy_heatmap", "prototype_evolution",
    "prototype_gallery", "gallery_array", "edge_segments", "OOD_COLOUR",
    "ProtoMapTrace", "OCCUPANCY_BARS", "EVOLUTION_STEP_SHAPE", "prototype_map_patch", "occupancy_patch",
    "proto_hover", "proto_marker",
]
