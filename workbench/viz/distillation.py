"""Figures for teachers and students (static builders; ``widgets.DistillationView`` mirrors them
and updates their traces in place).

* ``teacher_student_maps(traj, frame)``: the teacher's and one student frame's features side by
  side, in 2-D maps aligned to each other (Procrustes), coloured by class; samples where the
  student's prediction differs from the teacher's are ringed.
* ``agreement_by_class(agreements)``: per-class agreement (or KL, or accuracies) as grouped bars,
  one group per named ``Agreement``.
* ``probe_curve(traj)``: the students' linear-probe and k-NN accuracies frame by frame (training
  steps for snapshots), the teacher's as dashed lines, CKA to the teacher on a second axis.
* ``generation_curve(result)``: accuracy and agreement over self-distillation generations.
* ``kernel_self_distillation(result)``: test error over distillation steps per ground-truth
  weight α, and the fitted functions at a few steps.

Every builder returns the same traces in the same order for a given input shape, whatever the
display options, so a widget can copy new data into an existing figure.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, to_numpy
from .embedding import color_spec

__all__ = [
    "teacher_student_maps", "agreement_by_class", "probe_curve", "generation_curve",
    "kernel_self_distillation", "AGREEMENT_METRICS", "MapsTrace", "ProbeTrace", "STUDENT_TITLE",
    "student_patch", "agreement_values", "point_opacity", "disagreement_xy",
]


class MapsTrace(IntEnum):
    """Traces of ``teacher_student_maps``; legend swatches start at ``LEGEND``."""

    TEACHER = 0
    STUDENT = 1
    DISAGREE = 2
    LEGEND = 3


#: the student panel's title is layout annotation 1 of ``teacher_student_maps``
STUDENT_TITLE = 1


class ProbeTrace(IntEnum):
    """Traces of ``probe_curve``."""

    STUDENT_PROBE = 0
    STUDENT_KNN = 1
    TEACHER_PROBE = 2
    TEACHER_KNN = 3
    CKA = 4
    CURRENT = 5

#: per-class quantities of an ``Agreement`` that ``agreement_by_class`` can draw
AGREEMENT_METRICS = {
    "agreement": ("per_class_agreement", "agreement with the teacher"),
    "kl": ("per_class_kl", "KL(teacher ‖ student)"),
    "student_accuracy": ("per_class_student_accuracy", "student accuracy"),
    "teacher_accuracy": ("per_class_teacher_accuracy", "teacher accuracy"),
}


def _subplots(**kw):
    from plotly.subplots import make_subplots

    return make_subplots(**kw)


def _frame_index(traj, frame: int) -> int:
    n = len(traj.names)
    if not isinstance(frame, (int, np.integer)) or not -n <= frame < n:
        raise IndexError(f"frame must be an int in [-{n}, {n}), got {frame!r}")
    return int(frame) % n


def point_opacity(labels, highlight=None, base: float = 0.8, dim: float = 0.08) -> np.ndarray | float:
    """Marker opacity: ``base`` everywhere, or ``dim`` outside the highlighted class."""
    if highlight is None:
        return base
    lab = to_numpy(labels).astype(int)
    return np.where(lab == int(highlight), base, dim)


def disagreement_xy(traj, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Student-panel coordinates of the samples where the frame disagrees with the teacher."""
    i = _frame_index(traj, frame)
    agr = traj.agreements[i] if i < len(traj.agreements) else None
    if agr is None:
        return np.array([]), np.array([])
    xy = to_numpy(traj.coords[i])[to_numpy(agr.disagree).astype(bool)]
    return xy[:, 0], xy[:, 1]


def student_patch(traj, frame: int) -> dict:
    """What showing student frame ``frame`` writes into ``teacher_student_maps``: its points, name
    and hover, and the ringed disagreements (the panel title is annotation ``STUDENT_TITLE``)."""
    i = _frame_index(traj, frame)
    xy = to_numpy(traj.coords[i]).astype(float)
    dx, dy = disagreement_xy(traj, i)
    name = f"student: {traj.names[i]}"
    return {MapsTrace.STUDENT: dict(x=xy[:, 0], y=xy[:, 1], name=name,
                                    hovertemplate=name + "<br>index %{customdata[0]}<br>label %{customdata[1]}<extra></extra>"),
            MapsTrace.DISAGREE: dict(x=dx, y=dy)}


def teacher_student_maps(traj, frame: int = -1, *, highlight=None, title: str | None = None,
                         marker_size: int = 5, height: int = 430, width: int | None = None,
                         max_legend: int = 20):
    """Teacher (left) and student frame ``frame`` (right) in aligned 2-D maps.

    Traces (``MapsTrace``): ``TEACHER`` and ``STUDENT`` points (one WebGL trace each, coloured
    by label), ``DISAGREE`` the ringed samples where the student disagrees with the teacher
    (empty when the frame has no ``Agreement``), then ``max_legend`` legend swatches from
    ``LEGEND`` (one per class). ``student_patch`` redraws another frame.
    ``highlight``: a class index to keep opaque while the others fade.
    """
    i = _frame_index(traj, frame)
    t_xy = to_numpy(traj.teacher_coords).astype(float)
    s_xy = to_numpy(traj.coords[i]).astype(float)
    n = len(t_xy)
    lab = np.zeros(n, dtype=int) if traj.labels is None else to_numpy(traj.labels).astype(int)
    marker, legend, _ = color_spec(lab, categorical=True, names=traj.class_names)
    op = point_opacity(lab, highlight)
    names = ("teacher", f"student: {traj.names[i]}")
    fig = _subplots(rows=1, cols=2, subplot_titles=names, horizontal_spacing=0.04)
    cd = np.stack([np.arange(n), lab], 1)
    for col, xy, nm in ((1, t_xy, names[0]), (2, s_xy, names[1])):
        fig.add_trace(go.Scattergl(
            x=xy[:, 0], y=xy[:, 1], mode="markers", name=nm, showlegend=False,
            marker=dict(size=marker_size, opacity=op, **marker), customdata=cd,
            hovertemplate=nm + "<br>index %{customdata[0]}<br>label %{customdata[1]}<extra></extra>",
        ), row=1, col=col)
    dx, dy = disagreement_xy(traj, i)
    fig.add_trace(go.Scattergl(
        x=dx, y=dy, mode="markers", name="disagrees with teacher", showlegend=True,
        hoverinfo="skip", marker=dict(size=marker_size + 6, color="rgba(0,0,0,0)",
                                      line=dict(width=1.5, color="#111111")),
    ), row=1, col=2)
    for k in range(max_legend):
        nm, c = legend[k] if k < len(legend) else ("", "#000000")
        fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=nm, visible=k < len(legend),
                                   hoverinfo="skip", marker=dict(size=8, color=c)), row=1, col=1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(scaleanchor="x", scaleratio=1, row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", scaleratio=1, row=1, col=2)
    title = title if title is not None else f"Teacher and student features ({traj.projection}, aligned)"
    fig = base_layout(fig, title, height=height, width=width)
    fig.update_layout(uirevision="keep")
    return fig


def agreement_values(agr, metric: str) -> np.ndarray:
    """(C,) per-class values of ``metric`` (a key of ``AGREEMENT_METRICS``) of an ``Agreement``."""
    if metric not in AGREEMENT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(AGREEMENT_METRICS)}")
    return to_numpy(getattr(agr, AGREEMENT_METRICS[metric][0])).astype(float)


def agreement_by_class(agreements, *, metric: str = "agreement", class_names=None,
                       title: str | None = None, height: int = 340, width: int | None = None):
    """Per-class bars of ``metric`` for one ``Agreement`` or a dict name → ``Agreement``.

    One bar trace per named agreement, in the dict's order, x = classes. ``metric``:
    "agreement", "kl", "student_accuracy" or "teacher_accuracy".
    """
    if not isinstance(agreements, dict):
        agreements = {"student": agreements}
    if not agreements:
        raise ValueError("no agreements to draw; pass an Agreement or a dict name -> Agreement")
    first = next(iter(agreements.values()))
    c = first.n_classes
    names = class_names or first.class_names or [str(k) for k in range(c)]
    fig = go.Figure()
    for j, (name, agr) in enumerate(agreements.items()):
        v = agreement_values(agr, metric)
        if v.shape != (c,):
            raise ValueError(f"agreement {name!r} has {v.shape[0]} classes, the first has {c}")
        fig.add_trace(go.Bar(
            x=list(names), y=v, name=str(name), marker_color=colour(j),
            hovertemplate=f"{name}<br>class %{{x}}<br>{metric} %{{y:.4f}}<extra></extra>",
        ))
    label = AGREEMENT_METRICS[metric][1]
    fig.update_xaxes(title="class" + (" (true label)" if first.grouped_by == "label" else " (teacher's prediction)"),
                     type="category")
    fig.update_yaxes(title=label, range=[0, 1.02] if metric != "kl" else None)
    fig = base_layout(fig, title if title is not None else f"{label.capitalize()} by class", height=height,
                      width=width)
    fig.update_layout(barmode="group", uirevision="keep")
    return fig


def _frame_x(traj) -> tuple[np.ndarray, str, list[str] | None]:
    steps = to_numpy(traj.steps).astype(float)
    if len(steps) and (steps >= 0).all():
        return steps, "training step", None
    return np.arange(len(traj.names), dtype=float), "student", list(traj.names)


def probe_curve(traj, *, current: int | None = None, title: str | None = None, height: int = 340,
                width: int | None = None):
    """Linear-probe and k-NN accuracy of every frame, with the teacher's as dashed lines.

    Traces (``ProbeTrace``): student probe, student k-NN, teacher probe, teacher k-NN, CKA to the
    teacher (right axis), and ``CURRENT``, the shown frame's marker (empty if ``current`` is None).
    """
    x, xtitle, ticks = _frame_x(traj)
    probe, knn, cka = (to_numpy(v).astype(float) for v in (traj.probe, traj.knn, traj.cka))
    span = [x.min(), x.max()] if len(x) > 1 else [x[0] - 0.5, x[0] + 0.5]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=probe, mode="lines+markers", name="student: linear probe",
                             line=dict(color=colour(0))))
    fig.add_trace(go.Scatter(x=x, y=knn, mode="lines+markers", name="student: k-NN",
                             line=dict(color=colour(1))))
    fig.add_trace(go.Scatter(x=span, y=[traj.teacher_probe] * 2, mode="lines", name="teacher: linear probe",
                             line=dict(color=colour(0), dash="dash")))
    fig.add_trace(go.Scatter(x=span, y=[traj.teacher_knn] * 2, mode="lines", name="teacher: k-NN",
                             line=dict(color=colour(1), dash="dash")))
    fig.add_trace(go.Scatter(x=x, y=cka, mode="lines", name="CKA to teacher (right axis)", yaxis="y2",
                             line=dict(color="#888888", dash="dot")))
    cx, cy = ([], [])
    if current is not None:
        i = _frame_index(traj, current)
        cx, cy = [x[i]], [probe[i]]
    fig.add_trace(go.Scatter(x=cx, y=cy, mode="markers", name="shown", showlegend=False,
                             marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(width=2, color="#111111"))))
    fig.update_xaxes(title=xtitle)
    if ticks is not None:
        fig.update_xaxes(tickmode="array", tickvals=x, ticktext=ticks)
    fig.update_yaxes(title="accuracy (held-out half)")
    fig = base_layout(fig, title if title is not None else "Probing the student's features", height=height,
                      width=width)
    fig.update_layout(yaxis2=dict(title="CKA", overlaying="y", side="right", range=[0, 1.02], showgrid=False,
                                  tickmode="linear", tick0=0, dtick=0.2),
                      legend=dict(orientation="h", y=-0.25), uirevision="keep")
    return fig


def generation_curve(result, *, title: str | None = None, height: int = 340):
    """Accuracy by self-distillation generation (0 = the teacher) and agreement with the
    previous and the first generation. Traces: accuracy, agreement with previous, with first."""
    g = np.arange(len(to_numpy(result.accuracy)))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=g, y=to_numpy(result.accuracy), mode="lines+markers", name="val accuracy",
                             line=dict(color=colour(0), width=3)))
    fig.add_trace(go.Scatter(x=g, y=to_numpy(result.agreement_previous), mode="lines+markers",
                             name="agreement with previous generation", line=dict(color=colour(1))))
    fig.add_trace(go.Scatter(x=g, y=to_numpy(result.agreement_first), mode="lines+markers",
                             name="agreement with generation 0", line=dict(color=colour(2), dash="dash")))
    fig.update_xaxes(title="generation (0 = teacher)", tickmode="array", tickvals=g)
    fig.update_yaxes(title="fraction")
    return base_layout(fig, title if title is not None else "Self-distillation over generations", height=height)


def kernel_self_distillation(result, *, alpha_index: int = 0, show_steps=None, x_train=None, y_train=None,
                             title: str | None = None, height: int = 380):
    """Left: test MSE against distillation step, one line per α. Right: the fits of
    ``alphas[alpha_index]`` at ``show_steps`` (default: 0, 1, a middle and the last step) over a
    1-D ``x_test``, with the test targets and (optionally) the noisy training points."""
    alphas = to_numpy(result.alphas).astype(float)
    steps = to_numpy(result.steps).astype(int)
    if not 0 <= alpha_index < len(alphas):
        raise IndexError(f"alpha_index must be in [0, {len(alphas)}), got {alpha_index}")
    if show_steps is None:
        last = int(steps[-1])
        show_steps = sorted({0, min(1, last), last // 4, last})
    fig = _subplots(rows=1, cols=2, subplot_titles=("test error by step", f"fits, α = {alphas[alpha_index]:g}"),
                    horizontal_spacing=0.1)
    mode = "lines+markers" if len(steps) <= 30 else "lines"
    for j, a in enumerate(alphas):
        fig.add_trace(go.Scatter(x=steps, y=to_numpy(result.test_mse[j]), mode=mode,
                                 name=f"α = {a:g}", line=dict(color=colour(j))), row=1, col=1)
    xq = to_numpy(result.x_test)[:, 0]
    order = np.argsort(xq)
    if result.y_test is not None:
        fig.add_trace(go.Scatter(x=xq[order], y=to_numpy(result.y_test)[order], mode="lines", name="truth",
                                 line=dict(color="#222222", width=1, dash="dot")), row=1, col=2)
    if x_train is not None and y_train is not None:
        fig.add_trace(go.Scatter(x=to_numpy(x_train).reshape(-1), y=to_numpy(y_train).reshape(-1), mode="markers",
                                 name="training points", marker=dict(size=5, color="#999999")), row=1, col=2)
    shades = np.linspace(0.35, 1.0, len(show_steps))
    for k, s in enumerate(show_steps):
        fig.add_trace(go.Scatter(
            x=xq[order], y=to_numpy(result.test_pred[alpha_index, int(s)])[order], mode="lines",
            name=f"step {int(s)}", line=dict(color=colour(alpha_index), width=1 + 2 * shades[k]),
            opacity=float(shades[k]),
        ), row=1, col=2)
    fig.update_xaxes(title="distillation step τ", row=1, col=1)
    fig.update_yaxes(title="test MSE", type="log", row=1, col=1)
    fig.update_xaxes(title="x", row=1, col=2)
    fig = base_layout(fig, title if title is not None else
                      f"Self-distillation in kernel ridge regression (λ = {result.lam:g})", height=height)
    fig.update_layout(margin=dict(t=80))
    return fig
