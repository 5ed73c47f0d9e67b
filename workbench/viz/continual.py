"""Figures of continual learning: prototypes drifting over sessions on one aligned map, the
session x class accuracy matrix, and per-session accuracy curves (static builders;
``widgets.ContinualView`` patches the first two).

``drift_map(drift, session)``: the probe samples at that session (faint, by class), each seen
class's prototype as a star, and its trail through the earlier sessions. ``accuracy_heatmap``:
rows = sessions, columns = classes (blank = not seen yet), the current session outlined.
``session_curves``: accuracy per session for several variants (e.g. plain vs calibrated
prototypes in FSCIL).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, patch, to_numpy

__all__ = ["DriftTrace", "HeatTrace", "drift_map", "drift_patch", "accuracy_heatmap", "heatmap_patch",
           "session_curves"]


class DriftTrace(IntEnum):
    """Traces of ``drift_map``: samples, prototype trails, prototypes."""

    POINTS = 0
    TRAILS = 1
    PROTOTYPES = 2


class HeatTrace(IntEnum):
    """Traces of ``accuracy_heatmap``: the matrix, the current session's outline."""

    MATRIX = 0
    CURRENT = 1


def drift_patch(drift, session: int) -> dict:
    """What session ``session`` writes into ``drift_map``'s traces."""
    s = session
    xy = to_numpy(drift.coords[s]).astype(float)
    protos = to_numpy(drift.prototypes).astype(float)  # (S, C, 2)
    seen = to_numpy(drift.seen).astype(bool)
    classes = to_numpy(drift.classes).astype(int)
    tx, ty = [], []
    for k in range(len(classes)):
        path = [protos[t, k] for t in range(s + 1) if seen[t, k] and np.isfinite(protos[t, k]).all()]
        if len(path) > 1:
            tx += [p[0] for p in path] + [None]
            ty += [p[1] for p in path] + [None]
    cur = [k for k in range(len(classes)) if seen[s, k] and np.isfinite(protos[s, k]).all()]
    return {
        DriftTrace.POINTS: dict(x=xy[:, 0], y=xy[:, 1]),
        DriftTrace.TRAILS: dict(x=tx, y=ty),
        DriftTrace.PROTOTYPES: dict(
            x=protos[s, cur, 0], y=protos[s, cur, 1], text=[str(classes[k]) for k in cur],
            marker=dict(color=[colour(int(classes[k])) for k in cur], size=18, symbol="star",
                        line=dict(width=1.5, color="#111111")),
        ),
    }


def drift_map(drift, session: int = -1, *, title: str | None = "Class prototypes over sessions (aligned map)",
              height: int = 480):
    """The aligned map of session ``session`` (module docstring); traces named by ``DriftTrace``."""
    session = range(drift.n_sessions)[session]
    lab = to_numpy(drift.labels).astype(int)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(mode="markers", name="test samples", showlegend=False,
                               marker=dict(size=4, opacity=0.25, color=[colour(int(c)) for c in lab]),
                               hoverinfo="skip"))
    fig.add_trace(go.Scatter(mode="lines", name="prototype path", line=dict(color="#555555", width=1.5),
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(mode="markers+text", name="prototypes", textposition="top center",
                             hovertemplate="class %{text}<extra></extra>"))
    patch(fig, drift_patch(drift, session))
    fig.update_xaxes(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(showgrid=False, zeroline=False, showticklabels=False, scaleanchor="x", scaleratio=1)
    fig = base_layout(fig, title, height=height)
    fig.update_layout(uirevision="keep", legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig


def heatmap_patch(matrix, session: int) -> dict:
    c = matrix.per_class.shape[1]
    x = [-0.5, c - 0.5, c - 0.5, -0.5, -0.5]
    y = [session - 0.5, session - 0.5, session + 0.5, session + 0.5, session - 0.5]
    return {HeatTrace.CURRENT: dict(x=x, y=y)}


def accuracy_heatmap(matrix, session: int = -1, *, title: str | None = "Accuracy per session and class",
                     height: int = 380):
    """Session x class accuracies of an ``AccuracyMatrices`` (unseen classes blank)."""
    s_total = matrix.per_class.shape[0]
    session = range(s_total)[session]
    z = to_numpy(matrix.per_class).astype(float).copy()
    z[~to_numpy(matrix.seen).astype(bool)] = np.nan
    classes = [str(int(c)) for c in to_numpy(matrix.classes)]
    text = np.where(np.isfinite(z), np.vectorize(lambda v: f"{v:.2f}")(np.nan_to_num(z)), "")
    z_json = [[None if not np.isfinite(v) else float(v) for v in r] for r in z]  # NaN cannot travel to a widget
    fig = go.Figure(go.Heatmap(z=z_json, x=list(range(len(classes))), y=list(range(s_total)), zmin=0, zmax=1,
                               colorscale="Viridis", text=text, texttemplate="%{text}", textfont=dict(size=10),
                               hovertemplate="session %{y}, class %{customdata}<br>accuracy %{z:.3f}<extra></extra>",
                               customdata=np.tile(np.array(classes, dtype=object), (s_total, 1)),
                               colorbar=dict(title="acc", thickness=12)))
    fig.add_trace(go.Scatter(mode="lines", name="current session", line=dict(color="#E45756", width=3),
                             hoverinfo="skip", showlegend=False))
    patch(fig, heatmap_patch(matrix, session))
    fig.update_xaxes(title="class", tickvals=list(range(len(classes))), ticktext=classes, showgrid=False)
    fig.update_yaxes(title="after session", autorange="reversed", tickvals=list(range(s_total)), showgrid=False)
    return base_layout(fig, title, height=height)


def session_curves(curves: dict, *, title: str | None = "Accuracy per session", ylabel: str = "accuracy",
                   height: int = 340):
    """One line per variant: ``curves`` maps a name to its per-session values."""
    fig = go.Figure()
    for i, (name, vals) in enumerate(curves.items()):
        v = to_numpy(vals).astype(float)
        fig.add_trace(go.Scatter(x=list(range(len(v))), y=v, mode="lines+markers", name=str(name),
                                 line=dict(color=colour(i))))
    fig.update_xaxes(title="session", dtick=1)
    fig.update_yaxes(title=ylabel, range=[0, 1.02])
    fig = base_layout(fig, title, height=height)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig
