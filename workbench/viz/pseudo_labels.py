"""Figures of pseudo-labels (static builders; ``widgets.PseudoLabelView`` patches them in place).

* ``pseudo_label_map(trace, frame, threshold)``: the unlabelled samples in the snapshot's 2-D
  feature map, coloured by the pseudo-labeller's confidence; samples below the threshold fade,
  and kept samples whose pseudo-label is **wrong** are marked with a red cross.
* ``threshold_curve(trace_or_curve, frame, threshold)``: the quantity (fraction kept) and the
  quality (accuracy of the kept pseudo-labels) against the threshold, with the current
  threshold as a vertical line.

``PseudoMapTrace`` and ``CurveTrace`` name the traces; ``pseudo_label_patch`` / ``curve_patch``
compute what showing another snapshot or threshold writes into them.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, patch, to_numpy

__all__ = ["PseudoMapTrace", "CurveTrace", "pseudo_label_map", "pseudo_label_patch", "map_title",
           "threshold_curve", "curve_patch"]


class PseudoMapTrace(IntEnum):
    """Traces of ``pseudo_label_map``."""

    POINTS = 0
    WRONG = 1


class CurveTrace(IntEnum):
    """Traces of ``threshold_curve``."""

    QUANTITY = 0
    QUALITY = 1
    CURRENT = 2


def _frame(trace, frame: int) -> int:
    n = len(trace)
    if not isinstance(frame, (int, np.integer)) or not -n <= frame < n:
        raise IndexError(f"frame must be an int in [-{n}, {n}), got {frame!r}")
    return int(frame) % n


def _threshold(trace, threshold) -> float:
    return float(trace.threshold if threshold is None else threshold)


def map_title(trace, frame: int, threshold=None) -> str:
    """``step s: k of N kept (τ = ...), a% of them right``."""
    f, t = _frame(trace, frame), _threshold(trace, threshold)
    conf, ok = to_numpy(trace.confidence[f]), to_numpy(trace.correct[f])
    keep = conf >= t
    acc = f"{100 * ok[keep].mean():.1f}% of them right" if keep.any() else "none kept"
    return (f"step {int(trace.steps[f])}: {int(keep.sum())} of {len(keep)} pseudo-labels kept "
            f"(τ = {t:.2f}), {acc}")


def pseudo_label_patch(trace, frame: int, threshold=None) -> dict:
    """What showing snapshot ``frame`` at ``threshold`` writes into ``pseudo_label_map``."""
    f, t = _frame(trace, frame), _threshold(trace, threshold)
    xy = to_numpy(trace.coords[f]).astype(float)
    conf = to_numpy(trace.confidence[f]).astype(float)
    lab, tru = to_numpy(trace.labels[f]).astype(int), to_numpy(trace.truth).astype(int)
    keep = conf >= t
    wrong = keep & (lab != tru)
    cd = np.stack([np.arange(len(conf)), lab, tru, conf], 1)
    return {
        PseudoMapTrace.POINTS: dict(x=xy[:, 0], y=xy[:, 1], customdata=cd,
                                    marker=dict(color=conf, opacity=np.where(keep, 0.9, 0.2))),
        PseudoMapTrace.WRONG: dict(x=xy[wrong, 0], y=xy[wrong, 1]),
    }


def pseudo_label_map(trace, frame: int = -1, *, threshold=None, title: str | None = None, marker_size: int = 6,
                     height: int = 460, width: int | None = None):
    """The unlabelled samples of snapshot ``frame`` (see the module docstring). Traces:
    ``PseudoMapTrace`` (POINTS coloured by confidence, WRONG = kept but wrong)."""
    f = _frame(trace, frame)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=[], y=[], mode="markers", name="unlabelled", showlegend=False,
        marker=dict(size=marker_size, colorscale="Viridis", cmin=0, cmax=1, showscale=True,
                    colorbar=dict(title=dict(text="confidence"), thickness=12)),
        hovertemplate="index %{customdata[0]}<br>pseudo-label %{customdata[1]}<br>true label %{customdata[2]}"
                      "<br>confidence %{customdata[3]:.3f}<extra></extra>",
    ))
    fig.add_trace(go.Scattergl(x=[], y=[], mode="markers", name="kept, wrong pseudo-label", hoverinfo="skip",
                               marker=dict(size=marker_size + 4, symbol="x-thin", color="#E45756",
                                           line=dict(width=2, color="#E45756"))))
    patch(fig, pseudo_label_patch(trace, f, threshold))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1)
    fig = base_layout(fig, title if title is not None else map_title(trace, f, threshold), height=height, width=width)
    fig.update_layout(legend=dict(orientation="h", y=-0.05), uirevision="keep")
    return fig


def _curve_arrays(src, frame):
    if hasattr(src, "quantity") and getattr(src.quantity, "ndim", 1) == 2:  # a PseudoLabelTrace
        f = _frame(src, frame)
        return to_numpy(src.thresholds), to_numpy(src.quantity[f]), to_numpy(src.quality[f])
    return to_numpy(src.thresholds), to_numpy(src.quantity), to_numpy(src.quality)


def curve_patch(src, frame: int = -1, threshold=None) -> dict:
    """What showing snapshot ``frame`` (of a trace) and ``threshold`` writes into ``threshold_curve``."""
    th, qn, ql = _curve_arrays(src, frame)
    t = float(getattr(src, "threshold", 0.95) if threshold is None else threshold)
    return {CurveTrace.QUANTITY: dict(x=th, y=qn), CurveTrace.QUALITY: dict(x=th, y=np.where(np.isnan(ql), None, ql)),
            CurveTrace.CURRENT: dict(x=[t, t], y=[0, 1.02])}


def threshold_curve(src, frame: int = -1, *, threshold=None, title: str | None = None, height: int = 340,
                    width: int | None = None):
    """Quantity and quality of pseudo-labels against the threshold, for a ``ThresholdCurve`` or one
    snapshot of a ``PseudoLabelTrace``. Traces: ``CurveTrace``."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[], y=[], mode="lines", name="quantity: fraction kept", line=dict(color=colour(0), width=3)))
    fig.add_trace(go.Scatter(x=[], y=[], mode="lines", name="quality: accuracy of the kept", line=dict(color=colour(2), width=3)))
    fig.add_trace(go.Scatter(x=[], y=[], mode="lines", name="threshold", line=dict(color="#111111", dash="dash")))
    patch(fig, curve_patch(src, frame, threshold))
    fig.update_xaxes(title="confidence threshold τ", range=[0, 1])
    fig.update_yaxes(title="fraction", range=[0, 1.02])
    fig = base_layout(fig, title if title is not None else "The threshold's trade-off: how many, how right",
                      height=height, width=width)
    fig.update_layout(legend=dict(orientation="h", y=-0.25), uirevision="keep")
    return fig
