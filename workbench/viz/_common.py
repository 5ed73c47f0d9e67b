"""Shared figure helpers: one look for every view.

Trace roles: a builder whose traces a view patches names their indices with a small ``IntEnum``
(e.g. ``viz.embedding.MapTrace.POINTS``), documented beside the builder; ``fig.data[role]``
works because an ``IntEnum`` is an int. ``patch(fig, {role: props})`` applies such updates.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .._optional import require

go = require("plotly.graph_objects", "figures")

#: qualitative colours for up to 10 classes, then cycled
PALETTE = (
    "#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2",
    "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC", "#EECA3B",
)
OOD_COLOUR = "#222222"
TEMPLATE = "plotly_white"


def to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def colour(i: int) -> str:
    return OOD_COLOUR if i < 0 else PALETTE[i % len(PALETTE)]


def base_layout(fig, title: str | None = None, height: int = 420, width: int | None = None):
    fig.update_layout(
        template=TEMPLATE, title=title, height=height, width=width,
        margin=dict(l=40, r=20, t=50 if title else 20, b=40),
        legend=dict(itemsizing="constant"),
    )
    return fig


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (NaN-aware) over ``window`` points; 1 = unchanged."""
    y = np.asarray(y, dtype=float)
    if window <= 1 or y.size == 0:
        return y
    ok = np.isfinite(y)
    v = np.where(ok, y, 0.0)
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.cumsum(np.insert(ok.astype(float), 0, 0.0))
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(idx - window, 0)
    cnt = n[idx] - n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (c[idx] - c[lo]) / cnt
    out[cnt == 0] = np.nan
    return out


def log10(z, floor: float = 1e-12) -> np.ndarray:
    """``log10`` of values clipped below at ``floor`` (losses shown on a log scale)."""
    return np.log10(np.clip(np.asarray(z, dtype=float), floor, None))


def patch(fig, updates: Mapping) -> None:
    """Apply ``{trace index or role: {property: value}}`` to ``fig``'s traces in place (one
    ``batch_update`` when ``fig`` is a FigureWidget). Nested dicts (``marker``) are merged."""
    batch = getattr(fig, "batch_update", None)
    if batch is None:
        for i, props in updates.items():
            fig.data[int(i)].update(props)
        return
    with batch():
        for i, props in updates.items():
            fig.data[int(i)].update(props)
