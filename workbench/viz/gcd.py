"""Figures of category discovery: the mixture's components splitting and merging on a map, and
K over the passes (static builders; ``widgets.GCDView`` patches them).

``gmm_film_map(film, frame)``: points coloured by their component (or their class; labelled
samples drawn larger), the
component centroids as stars (anchored components, those holding labelled samples, as
diamonds) and the lines of this frame's splits (parent -> children) and merges (parents ->
merged). ``gmm_film_patch`` gives the same for another frame. ``k_curve(film)``: K per frame
and, when known, the v2 All accuracy, with the current frame marked.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, patch, to_numpy

__all__ = ["GMMFilmTrace", "KCurveTrace", "gmm_film_map", "gmm_film_patch", "k_curve", "k_curve_patch",
           "component_colours"]

COLOR_BY = ("component", "class")


class GMMFilmTrace(IntEnum):
    """Traces of ``gmm_film_map``: points, split/merge lines, centroids."""

    POINTS = 0
    EVENTS = 1
    CENTROIDS = 2


class KCurveTrace(IntEnum):
    """Traces of ``k_curve``: K per frame, accuracy per frame, the current frame."""

    K = 0
    ACCURACY = 1
    CURRENT = 2


def component_colours(ids, anchors) -> list[str]:
    """A colour per component: an anchored one takes its class's colour, a free one a colour
    from its persistent id (offset past the classes)."""
    ids, anchors = to_numpy(ids).astype(int), to_numpy(anchors).astype(int)
    return [colour(int(a)) if a >= 0 else colour(int(i) + 5) for i, a in zip(ids, anchors)]


def gmm_film_patch(film, frame: int, *, color_by: str = "component") -> dict:
    """What frame ``frame`` writes into ``gmm_film_map``'s traces."""
    if color_by not in COLOR_BY:
        raise ValueError(f"unknown color_by {color_by!r}; valid: {', '.join(COLOR_BY)}")
    xy = to_numpy(film.points(frame)).astype(float)
    assign = to_numpy(film.assignments[frame]).astype(int)
    comp_col = np.array(component_colours(film.ids[frame], film.anchors[frame]), dtype=object)
    if color_by == "component":
        pcol = comp_col[assign]
    else:
        pcol = np.array([colour(int(c)) for c in to_numpy(film.labels)], dtype=object)
    cxy = to_numpy(film.centroid_coords[frame]).astype(float)
    seg = to_numpy(film.segments[frame]).astype(float).reshape(-1, 4)
    ex = np.empty(3 * len(seg), dtype=object)
    ey = np.empty(3 * len(seg), dtype=object)
    ex[0::3], ex[1::3], ex[2::3] = seg[:, 0], seg[:, 2], None
    ey[0::3], ey[1::3], ey[2::3] = seg[:, 1], seg[:, 3], None
    anchors = to_numpy(film.anchors[frame]).astype(int)
    ids = to_numpy(film.ids[frame]).astype(int)
    sizes = np.bincount(assign, minlength=len(ids))
    hover = [f"component {i} ({'class ' + str(a) if a >= 0 else 'free'})<br>{n} points"
             for i, a, n in zip(ids, anchors, sizes)]
    return {
        GMMFilmTrace.POINTS: dict(x=xy[:, 0], y=xy[:, 1], marker=dict(color=list(pcol))),
        GMMFilmTrace.EVENTS: dict(x=ex, y=ey),
        GMMFilmTrace.CENTROIDS: dict(
            x=cxy[:, 0], y=cxy[:, 1], hovertext=hover,
            marker=dict(color=list(comp_col), symbol=["diamond" if a >= 0 else "star" for a in anchors],
                        size=16, line=dict(width=1.5, color="#111111")),
        ),
    }


def gmm_film_map(film, frame: int = -1, *, color_by: str = "component",
                 title: str | None = "Mixture components on the embedding map", height: int = 500):
    """The map of frame ``frame`` (module docstring); traces named by ``GMMFilmTrace``."""
    frame = range(film.n_frames)[frame]
    labels = to_numpy(film.labels).astype(int)
    lab = to_numpy(film.labelled).astype(bool)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        mode="markers", name="samples", showlegend=False,
        marker=dict(size=np.where(lab, 7, 4).tolist(), opacity=0.7),
        customdata=np.stack([np.arange(len(labels)), labels], 1),
        hovertemplate="index %{customdata[0]}<br>class %{customdata[1]}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(mode="lines", name="split / merge", line=dict(color="#111111", width=2.5),
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(mode="markers", name="components", hoverinfo="text"))
    patch(fig, gmm_film_patch(film, frame, color_by=color_by))
    fig.update_xaxes(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(showgrid=False, zeroline=False, showticklabels=False, scaleanchor="x", scaleratio=1)
    fig = base_layout(fig, title, height=height)
    fig.update_layout(uirevision="keep", legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig


def k_curve_patch(film, frame: int) -> dict:
    return {KCurveTrace.CURRENT: dict(x=[frame], y=[int(film.k[frame])])}


def k_curve(film, frame: int = -1, *, true_k: int | None = None, title: str | None = "K over the passes",
            height: int = 300):
    """K per frame (left axis) and the v2 All accuracy per frame (right axis, when known); the
    current frame as a marker (``KCurveTrace.CURRENT``), the true K as a dashed line."""
    frame = range(film.n_frames)[frame]
    x = np.arange(film.n_frames)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=to_numpy(film.k), mode="lines+markers", name="K", line=dict(color=colour(0)),
                             customdata=list(film.names), hovertemplate="%{customdata}<br>K = %{y}<extra></extra>"))
    acc = to_numpy(film.accuracy).astype(float)
    acc_json = [float(a) if np.isfinite(a) else None for a in acc]  # NaN cannot travel to a widget
    fig.add_trace(go.Scatter(x=x, y=acc_json, mode="lines+markers", name="All acc (v2)", yaxis="y2",
                             line=dict(color=colour(1), dash="dot"), visible=bool(np.isfinite(acc).any())))
    fig.add_trace(go.Scatter(mode="markers", name="shown", marker=dict(size=14, color="rgba(0,0,0,0)",
                                                                       line=dict(width=2, color="#111111"))))
    patch(fig, k_curve_patch(film, frame))
    if true_k is not None:
        fig.add_hline(y=true_k, line=dict(dash="dash", color="#888888"), annotation_text=f"true K = {true_k}")
    fig.update_layout(xaxis=dict(title="frame (two per pass: k-means, split/merge)"),
                      yaxis=dict(title="K", rangemode="tozero"),
                      yaxis2=dict(title="accuracy", overlaying="y", side="right", range=[0, 1.02], showgrid=False))
    fig = base_layout(fig, title, height=height)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      margin=dict(r=60, t=80 if title else 40))  # the legend sits between title and plot
    return fig
