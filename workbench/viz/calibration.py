"""Figures of calibration results (static builders; ``widgets.CalibrationView`` patches them).

* ``reliability_diagram``: per bin, accuracy (bars) against the bin's range, the gap to the mean
  confidence (stacked, red) and the diagonal; exactly the bins of the reported ECE (its binning
  and count are in the title), empty bins left blank;
* ``confidence_histogram``: how many samples fall in each bin;
* ``reliability_curves``: several results (e.g. before/after temperature scaling, or several
  losses) as accuracy-vs-confidence lines on one diagonal.

Inputs are ``wb.analyses.calibration.CalibrationError`` results.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, to_numpy

__all__ = ["ReliabilityTrace", "HistogramTrace", "reliability_diagram", "confidence_histogram",
           "reliability_curves", "bin_label"]

GAP_COLOUR = "rgba(228, 87, 86, 0.55)"
SELECTED_LINE = dict(color="#222222", width=3)


class ReliabilityTrace(IntEnum):
    """Traces of ``reliability_diagram``."""

    ACCURACY = 0
    GAP = 1
    DIAGONAL = 2
    SELECTED = 3


class HistogramTrace(IntEnum):
    """Traces of ``confidence_histogram``."""

    COUNTS = 0
    SELECTED = 1


def _bins(err):
    b = err.bins
    edges = to_numpy(b.edges).astype(float)
    return edges, (edges[:-1] + edges[1:]) / 2, np.diff(edges), to_numpy(b.counts).astype(int), b


def bin_label(err, m: int) -> str:
    """"bin m: (lo, hi], n samples"."""
    edges, _, _, counts, _ = _bins(err)
    return f"bin {m + 1}: ({edges[m]:.3f}, {edges[m + 1]:.3f}], n={counts[m]}"


def _nan_to_none(a) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]


def reliability_diagram(err, *, title: str | None = None, height: int = 380, selected: int | None = None):
    """Accuracy per confidence bin with the gap to the mean confidence and the diagonal."""
    edges, centre, width, counts, b = _bins(err)
    acc, conf = to_numpy(b.mean_outcome).astype(float), to_numpy(b.mean_value).astype(float)
    gap_base = np.minimum(acc, conf)
    fig = go.Figure()
    hover = [f"({edges[i]:.3f}, {edges[i + 1]:.3f}]<br>n={counts[i]}<br>accuracy {acc[i]:.3f}<br>"
             f"mean confidence {conf[i]:.3f}" if counts[i] else "empty" for i in range(len(counts))]
    fig.add_trace(go.Bar(x=centre, y=_nan_to_none(acc), width=width, name="accuracy",
                         marker=dict(color=colour(0), line=dict(color="white", width=1)),
                         hovertext=hover, hoverinfo="text"))
    fig.add_trace(go.Bar(x=centre, y=_nan_to_none(np.abs(conf - acc)), base=_nan_to_none(gap_base),
                         width=width, name="gap to confidence", marker=dict(color=GAP_COLOUR),
                         hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line=dict(color="#888888", dash="dash"), hoverinfo="skip"))
    fig.add_trace(go.Bar(x=[], y=[], width=[], name="selected bin", marker=dict(
        color="rgba(0,0,0,0)", line=SELECTED_LINE), hoverinfo="skip", showlegend=False))
    base_layout(fig, title or f"Reliability: ECE {err.ece:.4f} ({err.n_bins} {err.binning} bins)", height)
    fig.update_layout(barmode="overlay", bargap=0, xaxis=dict(title="confidence", range=[0, 1]),
                      yaxis=dict(title="accuracy", range=[0, 1]), legend=dict(orientation="h", y=-0.2))
    if selected is not None:
        fig.data[ReliabilityTrace.SELECTED].update(selected_bar(err, selected, "accuracy"))
    return fig


def selected_bar(err, m: int | None, what: str) -> dict:
    """Properties of the SELECTED trace outlining bin ``m`` (None: nothing) in the reliability
    diagram (``what="accuracy"``) or the histogram (``what="count"``)."""
    if m is None:
        return dict(x=[], y=[], width=[])
    _, centre, width, counts, b = _bins(err)
    y = float(counts[m]) if what == "count" else float(np.nan_to_num(to_numpy(b.mean_outcome)[m]))
    return dict(x=[float(centre[m])], y=[y], width=[float(width[m])])


def confidence_histogram(err, *, title: str | None = None, height: int = 260, selected: int | None = None):
    """Number of samples in each confidence bin (the bins of the reliability diagram)."""
    _, centre, width, counts, _ = _bins(err)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=centre, y=counts, width=width, name="samples",
                         marker=dict(color="#72B7B2", line=dict(color="white", width=1))))
    fig.add_trace(go.Bar(x=[], y=[], width=[], name="selected bin", marker=dict(
        color="rgba(0,0,0,0)", line=SELECTED_LINE), hoverinfo="skip", showlegend=False))
    base_layout(fig, title or f"Confidence histogram (accuracy {err.accuracy:.3f})", height)
    fig.update_layout(barmode="overlay", bargap=0, xaxis=dict(title="confidence", range=[0, 1]),
                      yaxis=dict(title="samples"), showlegend=False)
    if selected is not None:
        fig.data[HistogramTrace.SELECTED].update(selected_bar(err, selected, "count"))
    return fig


def reliability_curves(results: Mapping, *, title: str | None = None, height: int = 380):
    """Accuracy against mean confidence per non-empty bin, one line per named result."""
    if not isinstance(results, Mapping) or not results:
        raise ValueError("pass a non-empty dict name -> CalibrationError")
    fig = go.Figure()
    for i, (name, err) in enumerate(results.items()):
        keep = to_numpy(err.bins.counts) > 0
        fig.add_trace(go.Scatter(x=to_numpy(err.bins.mean_value)[keep], y=to_numpy(err.bins.mean_outcome)[keep],
                                 mode="lines+markers", name=f"{name} (ECE {err.ece:.3f})",
                                 line=dict(color=colour(i))))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line=dict(color="#888888", dash="dash"), hoverinfo="skip"))
    base_layout(fig, title or "Reliability curves", height)
    fig.update_layout(xaxis=dict(title="mean confidence", range=[0, 1]), yaxis=dict(title="accuracy", range=[0, 1]))
    return fig
