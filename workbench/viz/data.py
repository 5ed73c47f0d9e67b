"""A first look at a data set: images as a grid, signals as lines, 2-D points as a scatter."""

from __future__ import annotations

import numpy as np

from ._common import base_layout, colour, go, to_numpy


def samples(data, n: int = 24, *, seed: int = 0, cols: int = 8, title: str | None = None):
    """Show ``n`` random samples of ``data`` (labels in the titles / colours)."""
    from plotly.subplots import make_subplots

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(data), size=min(n, len(data)), replace=False))
    y = to_numpy(data.y)[idx] if data.y is not None else None
    name = lambda c: (data.classes[c] if data.classes and c >= 0 else str(c))  # noqa: E731
    if data.kind == "points":
        xy = to_numpy(data.x)
        labels = to_numpy(data.y) if data.y is not None else np.zeros(len(xy), dtype=int)
        fig = go.Figure()
        for c in np.unique(labels):
            m = labels == c
            fig.add_trace(go.Scattergl(x=xy[m, 0], y=xy[m, 1], mode="markers", name=name(int(c)),
                                       marker=dict(size=4, color=colour(int(c)))))
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
        return base_layout(fig, title or data.name, height=420)
    rows = int(np.ceil(len(idx) / cols))
    titles = [name(int(c)) for c in y] if y is not None else None
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.08 if data.kind == "image" else 0.12)
    x = to_numpy(data.x)[idx]
    for k in range(len(idx)):
        r, c = divmod(k, cols)
        if data.kind == "image":
            img = x[k].mean(0) if x[k].ndim == 3 else x[k]
            fig.add_trace(go.Heatmap(z=img, colorscale="Greys", showscale=False, hoverinfo="skip"),
                          row=r + 1, col=c + 1)
        else:
            sig = x[k].reshape(x[k].shape[0], -1)
            for ch in sig:
                fig.add_trace(go.Scatter(y=ch, mode="lines", line=dict(width=1, color=colour(int(y[k]) if y is not None else 0)),
                                         showlegend=False, hoverinfo="skip"), row=r + 1, col=c + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed" if data.kind == "image" else True)
    fig.update_annotations(font_size=11)
    return base_layout(fig, title or data.name, height=90 * rows + 60)
