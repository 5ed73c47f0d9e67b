"""Figures of OOD detection results (static builders; ``widgets.OODLens`` mirrors them).

* ``roc_figure``: ROC curves of one or more detectors in a named convention, with the FPR@95
  operating point and an optional marker at a score threshold;
* ``score_histograms``: the score distributions of the ID test set and each OOD set on shared
  bins, with an optional threshold line;
* ``detector_table``: one metric (AUROC, FPR@95 in either convention, AUPR) as a heatmap of
  detectors x OOD sets, for one comparison or several (e.g. CE vs PALM features);
* ``landing_bars``: for PALM, the class of the nearest prototype of the OOD points, caught vs
  missed at a threshold.

Inputs are results of ``workbench.ood``: ``ROCCurve``, ``Comparison`` and score tensors
(larger = more OOD).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np

from ..ood import Comparison, ROCCurve, rates_at, roc_curve
from ._common import PALETTE, base_layout, colour, go, patch, to_numpy

__all__ = [
    "roc_figure", "score_histograms", "detector_table", "landing_bars", "roc_point", "histogram_data",
    "prototype_stars", "RocTrace", "roc_index", "roc_curve_patch", "histogram_patch", "LandingTrace",
    "landing_patch", "ROC_AXES", "THRESHOLD_SHAPE", "THRESHOLD_ANNOTATION",
]

ID_COLOUR = "#4C78A8"
#: colours of OOD sets, in order (ID is blue)
OOD_COLOURS = ("#E45756", "#222222", "#F58518", "#B279A2", "#54A24B", "#9D755D")
#: (x, y) axis titles of a ROC curve in each convention
ROC_AXES = {
    "id-positive": ("FPR: OOD accepted as ID", "TPR: ID kept"),
    "ood-positive": ("FPR: ID flagged as OOD", "TPR: OOD flagged"),
}


class RocTrace(IntEnum):
    """Traces of ``roc_figure`` with ONE curve; with k curves, ``roc_index`` shifts the last three."""

    CURVE = 0
    CHANCE = 1
    OPERATING = 2
    THRESHOLD = 3


def roc_index(role: RocTrace, n_curves: int = 1) -> int:
    """Index of ``role`` in a ``roc_figure`` of ``n_curves`` curves (``CURVE``: the first)."""
    return int(role) if role == RocTrace.CURVE else int(role) + n_curves - 1


class LandingTrace(IntEnum):
    """Traces of ``landing_bars``."""

    CAUGHT = 0
    MISSED = 1


#: ``score_histograms(..., threshold=t)`` draws the threshold as layout shape 0 and annotation 0
THRESHOLD_SHAPE = 0
THRESHOLD_ANNOTATION = 0


def _set_colour(i: int) -> str:
    return ID_COLOUR if i == 0 else OOD_COLOURS[(i - 1) % len(OOD_COLOURS)]


def roc_point(scores_id, scores_ood, threshold: float, convention: str = "id-positive") -> tuple[float, float]:
    """(FPR, TPR) of the rule "OOD when score > threshold" in ``convention``."""
    r = rates_at(scores_id, scores_ood, threshold)
    if convention == "id-positive":
        return r["ood_accepted"], r["id_kept"]
    return r["id_flagged"], r["ood_flagged"]


def _curves_from(source, ood_set, convention, detectors) -> dict[str, ROCCurve]:
    if isinstance(source, ROCCurve):
        return {"": source}
    if isinstance(source, Comparison):
        sets = source.ood_sets
        if ood_set is None:
            ood_set = sets[0]
        if ood_set not in sets:
            raise ValueError(f"unknown OOD set {ood_set!r}; valid: {', '.join(sets)}")
        names = list(source.detectors) if detectors is None else list(detectors)
        for n in names:
            if n not in source.scores:
                raise ValueError(f"unknown detector {n!r}; valid: {', '.join(source.detectors)}")
        return {n: roc_curve(source.scores[n]["ID"], source.scores[n][ood_set], convention=convention)
                for n in names}
    if isinstance(source, Mapping) and all(isinstance(v, ROCCurve) for v in source.values()):
        return dict(source)
    raise TypeError("roc_figure takes a ROCCurve, a dict name -> ROCCurve or a wb.ood.Comparison")


def _roc_line(curve: ROCCurve, name: str, tpr: float = 0.95):
    """(the curve's trace properties, its FPR@``tpr`` operating point (x, y, text))."""
    fpr, tpr_ = to_numpy(curve.fpr), to_numpy(curve.tpr)
    label = f"{name} (AUROC {curve.auroc:.3f})" if name else f"AUROC {curve.auroc:.3f}"
    j = int(np.argmax(tpr_ >= tpr))
    return dict(x=fpr, y=tpr_, name=label), (fpr[j], tpr_[j], f"{name} FPR@{tpr:.0%}: {fpr[j]:.3f}".strip())


def roc_curve_patch(curve: ROCCurve, name: str, tpr: float = 0.95) -> dict:
    """What showing ``curve`` (one detector) writes into a one-curve ``roc_figure``: the curve
    and its FPR@``tpr`` operating point (axis titles for the convention: ``ROC_AXES``)."""
    line, (x, y, text) = _roc_line(curve, name, tpr)
    return {RocTrace.CURVE: line,
            RocTrace.OPERATING: dict(x=[x], y=[y], text=[text], name=f"FPR@{tpr:.0%} ({curve.convention})")}


def prototype_stars(prototypes_xy, proto_class=None, *, size: int = 15):
    """A trace of prototypes placed in a 2-D map: white stars outlined in their class colour."""
    pxy = to_numpy(prototypes_xy).astype(float)
    pc = to_numpy(proto_class).astype(int) if proto_class is not None else np.zeros(len(pxy), dtype=int)
    return go.Scattergl(
        x=pxy[:, 0], y=pxy[:, 1], mode="markers", name="prototypes", showlegend=False,
        marker=dict(symbol="star", size=size, color="white", line=dict(width=2.5, color=[colour(int(c)) for c in pc])),
        customdata=np.stack([np.arange(len(pc)), pc], 1),
        hovertemplate="prototype %{customdata[0]}<br>class %{customdata[1]}<extra></extra>",
    )


def roc_figure(source, *, ood_set: str | None = None, convention: str = "id-positive", detectors=None,
               point: tuple[float, float] | None = None, tpr: float = 0.95, title: str | None = None,
               height: int = 380, width: int | None = None):
    """ROC curves in ``convention`` (axes say which class is positive).

    ``source``: a ROCCurve, a dict name -> ROCCurve, or a Comparison (then ``ood_set`` picks the
    OOD set, default the first, and ``detectors`` a subset). Traces, in order: one line per
    curve, the chance diagonal, the FPR@``tpr`` operating points (one marker per curve), and a
    "threshold" marker at ``point`` = (FPR, TPR) (empty when None), which views move
    (``RocTrace`` / ``roc_index`` name them; ``roc_curve_patch`` redraws a one-curve figure).
    """
    curves = _curves_from(source, ood_set, convention, detectors)
    conv = next(iter(curves.values())).convention
    fig = go.Figure()
    ops = []
    for i, (name, c) in enumerate(curves.items()):
        line, op = _roc_line(c, name, tpr)
        fig.add_trace(go.Scatter(**line, mode="lines", line=dict(color=PALETTE[i % len(PALETTE)], width=2),
                                 line_shape="hv",
                                 hovertemplate="FPR %{x:.3f}<br>TPR %{y:.3f}<extra>" + (name or "ROC") + "</extra>"))
        ops.append(op)
    op_x, op_y, op_text = (list(v) for v in zip(*ops))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", showlegend=False,
                             line=dict(color="#BBBBBB", dash="dot", width=1), hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=op_x, y=op_y, mode="markers", name=f"FPR@{tpr:.0%} ({conv})", text=op_text,
        marker=dict(symbol="diamond", size=9, color="#111111"), hovertemplate="%{text}<extra></extra>",
    ))
    px, py = ([point[0]], [point[1]]) if point is not None else ([], [])
    fig.add_trace(go.Scatter(
        x=px, y=py, mode="markers", name="threshold", marker=dict(symbol="x", size=13, color="#E45756",
                                                                 line=dict(width=1, color="#E45756")),
        hovertemplate="threshold<br>FPR %{x:.3f}<br>TPR %{y:.3f}<extra></extra>",
    ))
    xt, yt = ROC_AXES[conv]
    fig.update_xaxes(title=xt, range=[-0.02, 1.02], constrain="domain")
    fig.update_yaxes(title=yt, range=[-0.02, 1.02], scaleanchor="x", scaleratio=1, constrain="domain")
    title = title if title is not None else f"ROC ({conv})"
    fig = base_layout(fig, title, height=height, width=width)
    fig.update_layout(legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom", bgcolor="rgba(255,255,255,0.7)"))
    return fig


def histogram_data(scores: Mapping, bins: int = 40, x_range="auto") -> dict:
    """Shared bins for the histograms of several score sets, robust to far-OOD outliers.

    ``x_range``: "auto" (from the smallest score to the 99.5th percentile of the ID set together
    with the hardest OOD set, the one with the lowest median score; scores beyond are drawn in
    the edge bins), "full" (every score) or (lo, hi). Returns ``xbins`` (plotly start/end/size),
    ``x`` (the clipped arrays, in order), ``lo``, ``hi`` and ``n_clipped`` (scores moved into
    the edge bins).
    """
    arrs = [to_numpy(v).astype(float).ravel() for v in scores.values()]
    allv = np.concatenate(arrs)
    if isinstance(x_range, str):
        if x_range == "full" or len(arrs) < 2:
            lo, hi = float(allv.min()), float(allv.max())
        elif x_range == "auto":
            hardest = min(arrs[1:], key=np.median)
            core = np.concatenate([arrs[0], hardest])
            lo, hi = float(allv.min()), float(np.quantile(core, 0.995))
            hi = max(hi, float(arrs[0].max()))
        else:
            raise ValueError(f"x_range must be 'auto', 'full' or (lo, hi), got {x_range!r}")
    else:
        lo, hi = (float(v) for v in x_range)
    if not hi > lo:
        hi = lo + 1.0
    size = (hi - lo) / bins
    clipped = [np.clip(a, lo, hi) for a in arrs]
    n_clipped = int(sum(((a < lo) | (a > hi)).sum() for a in arrs))
    return dict(xbins=dict(start=lo, end=hi + size * 1e-6, size=size), x=clipped, lo=lo, hi=hi,
                n_clipped=n_clipped)


def histogram_axis_title(score_name: str, data: dict) -> str:
    t = f"{score_name} (larger = more OOD)"
    if data["n_clipped"]:
        t += f"<br>{data['n_clipped']} scores beyond {data['hi']:.4g} are in the last bin"
    return t


def histogram_patch(scores: Mapping, *, bins: int = 40, x_range="auto", score_name: str = "OOD score"):
    """(trace updates, x-axis title) that redraw ``score_histograms`` for new ``scores`` (same sets)."""
    data = histogram_data(scores, bins, x_range)
    return {i: dict(x=x, xbins=data["xbins"]) for i, x in enumerate(data["x"])}, histogram_axis_title(score_name, data)


def score_histograms(scores: Mapping, *, threshold: float | None = None, bins: int = 40,
                     x_range="auto", score_name: str = "OOD score", title: str | None = None,
                     height: int = 320, width: int | None = None):
    """Overlaid histograms (fraction of each set per bin) of the scores of every set.

    ``scores``: {"ID": (N,), name: (M,), ...} (e.g. ``comparison.scores[detector]``); the first
    entry is drawn as ID. Traces: one ``Histogram`` per set on shared bins. ``x_range``: see
    ``histogram_data`` (by default far-OOD outliers are gathered in the last bin, so the ID and
    near-OOD scores keep their resolution). ``threshold`` draws a vertical line (layout shape
    ``THRESHOLD_SHAPE`` and annotation ``THRESHOLD_ANNOTATION``, which views move).
    """
    if not isinstance(scores, Mapping) or not scores:
        raise TypeError("scores must be a non-empty dict {set name: scores}, e.g. comparison.scores['Energy']")
    data = histogram_data(scores, bins, x_range)
    fig = go.Figure()
    for i, ((name, s), x) in enumerate(zip(scores.items(), data["x"])):
        fig.add_trace(go.Histogram(
            x=x, name=f"{name} (n={len(s)})", xbins=data["xbins"], histnorm="probability",
            marker=dict(color=_set_colour(i)), opacity=0.55,
            hovertemplate=f"{name}<br>score %{{x}}<br>fraction %{{y:.3f}}<extra></extra>",
        ))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title=histogram_axis_title(score_name, data))
    fig.update_yaxes(title="fraction of the set")
    if threshold is not None:
        fig.add_shape(type="line", x0=threshold, x1=threshold, y0=0, y1=1, yref="paper",
                      line=dict(color="#E45756", width=2, dash="dash"))
        fig.add_annotation(x=threshold, y=1, yref="paper", text="flag OOD →", showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(color="#E45756", size=11))
    fig = base_layout(fig, title, height=height, width=width)
    two_lines = data["n_clipped"] > 0
    fig.update_layout(legend=dict(orientation="h", y=-0.45 if two_lines else -0.3, x=0),
                      margin=dict(b=110 if two_lines else 80))
    return fig


_HIGHER_BETTER = {"auroc": True, "aupr_in": True, "aupr_out": True, "fpr95": False,
                  "fpr95_id_positive": False, "fpr95_ood_positive": False}


def detector_table(source, metric: str = "auroc", *, convention: str | None = None,
                   title: str | None = None, height: int | None = None, width: int | None = None):
    """One metric as a heatmap: detectors (rows) x OOD sets and their mean (columns).

    ``source``: a Comparison, or a dict label -> Comparison (rows become "label · detector",
    e.g. {"CE": cmp_ce, "PALM": cmp_palm}). ``metric``: "auroc", "fpr95" (in ``convention``,
    default the comparison's), "fpr95_id_positive", "fpr95_ood_positive", "aupr_in", "aupr_out".
    Green is good: high AUROC/AUPR, low FPR.
    """
    if metric not in _HIGHER_BETTER:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(_HIGHER_BETTER)}")
    if isinstance(source, Comparison):
        source = {"": source}
    if not isinstance(source, Mapping) or not all(isinstance(v, Comparison) for v in source.values()):
        raise TypeError("detector_table takes a wb.ood.Comparison or a dict label -> Comparison")
    frames = []
    for label, cmp in source.items():
        df = cmp.wide(metric, convention=convention)
        if label:
            df.index = [f"{label} · {d}" for d in df.index]
        frames.append(df)
    cols = list(dict.fromkeys(c for f in frames for c in f.columns if c != "mean")) + ["mean"]
    rows = [r for f in frames for r in f.index]
    z = np.full((len(rows), len(cols)), np.nan)
    r0 = 0
    for f in frames:
        for j, c in enumerate(cols):
            if c in f.columns:
                z[r0 : r0 + len(f), j] = f[c].to_numpy()
        r0 += len(f)
    colname = frames[0].columns.name or metric
    higher = _HIGHER_BETTER[metric]
    scale = "RdYlGn" if higher else "RdYlGn_r"
    text = [["" if np.isnan(v) else f"{v:.3f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=cols, y=rows, colorscale=scale, zmin=0.5 if metric == "auroc" else 0.0, zmax=1.0,
        text=text, texttemplate="%{text}", hovertemplate="%{y}<br>%{x}<br>" + colname + " %{z:.4f}<extra></extra>",
        colorbar=dict(title=dict(text=colname), thickness=12),
    ))
    fig.update_xaxes(type="category", side="top")
    fig.update_yaxes(type="category", autorange="reversed")
    title = title if title is not None else f"{colname} by detector and OOD set"
    return base_layout(fig, title, height=height or max(260, 60 + 26 * len(rows)), width=width)


def landing_patch(landing: Mapping) -> dict:
    """What ``OODMap.landing(...)`` at a new threshold writes into ``landing_bars``."""
    cos = to_numpy(landing.get("mean_cosine", np.zeros(len(to_numpy(landing["caught"])))))
    return {LandingTrace.CAUGHT: dict(y=to_numpy(landing["caught"]), customdata=cos),
            LandingTrace.MISSED: dict(y=to_numpy(landing["missed"]), customdata=cos)}


def landing_bars(landing: Mapping, *, class_names=None, title: str | None = "Where OOD points land: class of the nearest prototype",
                 height: int = 300, width: int | None = None):
    """Stacked bars from ``OODMap.landing(...)``: per ID class, the OOD points whose nearest
    prototype belongs to it, split into caught (grey) and missed (red) at the threshold.
    Traces: 0 = caught, 1 = missed (views update their ``y``)."""
    n = len(to_numpy(landing["caught"]))
    names = [str(class_names[i]) if class_names is not None and i < len(class_names) else str(i) for i in range(n)]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, name="OOD caught", marker=dict(color="#9E9E9E"),
                         hovertemplate="class %{x}: %{y} caught<br>mean cosine %{customdata:.3f}<extra></extra>"))
    fig.add_trace(go.Bar(x=names, name="OOD missed", marker=dict(color="#E45756"),
                         hovertemplate="class %{x}: %{y} missed<br>mean cosine %{customdata:.3f}<extra></extra>"))
    patch(fig, landing_patch(landing))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title="class of the nearest prototype", type="category")
    fig.update_yaxes(title="OOD points")
    return base_layout(fig, title, height=height, width=width)
