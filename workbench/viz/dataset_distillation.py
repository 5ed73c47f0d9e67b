"""Figures of distilled data sets (static builders; ``widgets.SyntheticSetView`` patches them).

* ``synthetic_map_figure(smap, frame)``: the real images as small faint points in a 2-D map of a
  model's features, coloured by class, and the synthetic images of distillation frame ``frame``
  as large outlined stars of their class colour, with their starting positions (frame 0) as
  grey rings.
* ``synthetic_grid(smap, frame)``: the synthetic images of frame ``frame`` as a mosaic, one row
  per class, one column per image (at most ``max_per_class``).

``SynMapTrace`` names the map's traces; ``synthetic_patch`` / ``grid_patch`` compute what showing
another frame writes into them.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, patch, to_numpy
from .diffusion import heatmap_z, mosaic

__all__ = ["SynMapTrace", "synthetic_map_figure", "synthetic_patch", "synthetic_grid", "grid_patch", "frame_title"]


class SynMapTrace(IntEnum):
    """Traces of ``synthetic_map_figure``; class legend swatches start at ``LEGEND``."""

    REAL = 0
    START = 1
    SYNTHETIC = 2
    LEGEND = 3


def _frame(smap, frame: int) -> int:
    n = len(smap)
    if not isinstance(frame, (int, np.integer)) or not -n <= frame < n:
        raise IndexError(f"frame must be an int in [-{n}, {n}), got {frame!r}")
    return int(frame) % n


def frame_title(smap, frame: int) -> str:
    f = _frame(smap, frame)
    return (f"{smap.method}: synthetic images at iteration {int(smap.steps[f])} "
            f"(distance to own class centre {float(smap.drift[f]):.2f})")


def _class_colours(labels) -> list[str]:
    return [colour(int(c)) for c in to_numpy(labels)]


def synthetic_patch(smap, frame: int) -> dict:
    """What showing frame ``frame`` writes into ``synthetic_map_figure``."""
    xy = to_numpy(smap.coords[_frame(smap, frame)]).astype(float)
    return {SynMapTrace.SYNTHETIC: dict(x=xy[:, 0], y=xy[:, 1])}


def synthetic_map_figure(smap, frame: int = -1, *, title: str | None = None, height: int = 460,
                         width: int | None = None, n_classes: int = 10):
    """Real and synthetic images in one map (see the module docstring). Traces: ``SynMapTrace``."""
    f = _frame(smap, frame)
    real = to_numpy(smap.real_coords).astype(float)
    rl = to_numpy(smap.real_labels).astype(int)
    start = to_numpy(smap.coords[0]).astype(float)
    lab = to_numpy(smap.labels).astype(int)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=real[:, 0], y=real[:, 1], mode="markers", name="real images", showlegend=False,
                               marker=dict(size=4, color=_class_colours(rl), opacity=0.25), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=start[:, 0], y=start[:, 1], mode="markers", name="start (iteration 0)",
                             marker=dict(size=9, color="rgba(0,0,0,0)", line=dict(width=1, color="#888888")),
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[], y=[], mode="markers", name="synthetic images",
                             marker=dict(size=13, symbol="star", color=_class_colours(lab),
                                         line=dict(width=1, color="#111111")),
                             customdata=np.stack([np.arange(len(lab)), lab], 1),
                             hovertemplate="synthetic image %{customdata[0]}<br>class %{customdata[1]}<extra></extra>"))
    for c in range(n_classes):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"class {c}", marker=dict(size=8, color=colour(c)),
                                 hoverinfo="skip", visible=bool((lab == c).any())))
    patch(fig, synthetic_patch(smap, f))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1)
    fig = base_layout(fig, title if title is not None else frame_title(smap, f), height=height, width=width)
    fig.update_layout(uirevision="keep")
    return fig


def _grid(smap, f: int, max_per_class: int) -> list:
    imgs = to_numpy(smap.images[f])
    lab = to_numpy(smap.labels).astype(int)
    k = min(max_per_class, int(np.bincount(lab).max()))
    rows = []
    for c in np.unique(lab):
        sel = imgs[lab == c][:k]
        if len(sel) < k:
            sel = np.concatenate([sel, np.full((k - len(sel), *sel.shape[1:]), np.nan)])
        rows.append(sel)
    return heatmap_z(mosaic(np.concatenate(rows), cols=k))


def grid_patch(smap, frame: int, max_per_class: int = 10) -> dict:
    """What showing frame ``frame`` writes into ``synthetic_grid`` (trace 0)."""
    return {0: dict(z=_grid(smap, _frame(smap, frame), max_per_class))}


def synthetic_grid(smap, frame: int = -1, *, max_per_class: int = 10, vrange=(0.0, 1.0), title: str | None = None,
                   height: int = 460, width: int | None = None):
    """The synthetic images of frame ``frame``: one row per class (class 0 on top). Trace 0: the mosaic."""
    f = _frame(smap, frame)
    fig = go.Figure(go.Heatmap(z=_grid(smap, f, max_per_class), colorscale="Greys", zmin=vrange[0], zmax=vrange[1],
                               showscale=False, hoverinfo="skip", name="synthetic images"))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1)
    return base_layout(fig, title if title is not None else f"{smap.method}: the images, one row per class",
                       height=height, width=width)
