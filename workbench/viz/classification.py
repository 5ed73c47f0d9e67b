"""Figures for classifiers."""

from __future__ import annotations

from ._common import base_layout, go, to_numpy


def confusion_matrix(predictions, *, class_names=None, normalize: bool = False, title: str | None = "Confusion matrix"):
    """Heatmap of a ``Predictions``' confusion matrix (rows = true class, columns = predicted)."""
    cm = to_numpy(predictions.confusion()).astype(float)
    if normalize:
        cm = cm / cm.sum(1, keepdims=True).clip(min=1)
    c = cm.shape[0]
    names = [str(n) for n in (class_names or range(c))]
    text = [[(f"{v:.2f}" if normalize else f"{int(v)}") for v in row] for row in cm]
    fig = go.Figure(go.Heatmap(
        z=cm, x=names, y=names, colorscale="Blues", text=text, texttemplate="%{text}",
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>",
    ))
    fig.update_xaxes(title="predicted", type="category")
    fig.update_yaxes(title="true", type="category", autorange="reversed")
    return base_layout(fig, title, height=420, width=480)
