"""Scatter plots of 2-D projections (static builders; ``widgets.EmbeddingView`` mirrors them)."""

from __future__ import annotations

import numpy as np

from ._common import base_layout, colour, go, to_numpy


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
