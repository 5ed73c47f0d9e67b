"""Figures of a fit's history."""

from __future__ import annotations

from ._common import base_layout, colour, go
from ._common import smooth as moving_average


def loss_curves(history, keys=("loss",), *, smooth: int = 1, title: str | None = "Training", log_y: bool = False):
    """Per-step curves of ``keys`` and, where present, their ``val_`` evaluations as markers."""
    fig = go.Figure()
    for i, key in enumerate(keys):
        y = history.series(key)
        fig.add_trace(go.Scatter(x=history.steps, y=moving_average(y, smooth), mode="lines", name=f"train {key}",
                                 line=dict(color=colour(i))))
        if any(key in e for e in history.evals):
            s, v = history.eval_series(key)
            fig.add_trace(go.Scatter(x=s, y=v, mode="lines+markers", name=f"val {key}",
                                     line=dict(color=colour(i), dash="dash")))
    fig.update_xaxes(title="step")
    fig.update_yaxes(type="log" if log_y else "linear")
    return base_layout(fig, title, height=320)
