"""Figures of loss landscapes and Hessian spectra (static builders; ``LandscapeView`` mirrors them).

Conventions: a ``LossSurface``'s ``loss[i, j]`` is at ``(alphas[i], betas[j])``, so plotly gets
``z = loss.T`` (rows = β). ``log=True`` colours by ``log10`` of the value. Several landscapes
side by side share one colour axis (``coloraxis``), so the same loss has the same colour.

Trace order of ``landscape_panels`` (the view relies on it), per panel p: the roles of
``PanelTrace`` (``SURFACE`` a Contour or 3-D Surface, ``PATH`` the training path, ``ORIGIN`` the
trained weights, ``SELECTED`` the clicked point, ``SNAPSHOT`` the marked path step), at index
``panel_trace(p, role)``. What the view writes into them on a change of metric or log scale
comes from the same helpers the builder uses (``surface_values``, ``path_heights``,
``value_label``), so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, log10, to_numpy

__all__ = [
    "landscape_panels", "landscape_contour", "landscape_surface", "loss_lines", "interpolation_curve",
    "hessian_spectrum", "curvature_by_class", "landscape_zrange", "TRACES_PER_PANEL", "PanelTrace",
    "panel_trace", "named_items", "surface_values", "path_heights", "value_label",
]


class PanelTrace(IntEnum):
    """Roles of the traces of one panel of ``landscape_panels``."""

    SURFACE = 0
    PATH = 1
    ORIGIN = 2
    SELECTED = 3
    SNAPSHOT = 4


TRACES_PER_PANEL = len(PanelTrace)


def panel_trace(panel: int, role: PanelTrace) -> int:
    """Index of ``role``'s trace in panel ``panel`` of ``landscape_panels``."""
    return panel * TRACES_PER_PANEL + int(role)


def named_items(lands, names=None) -> list[tuple[str, object]]:
    """(name, landscape) pairs from a result, a list (with ``names``) or a dict name -> result."""
    if isinstance(lands, Mapping):
        items = [(str(k), v) for k, v in lands.items()]
    elif isinstance(lands, Sequence) and not hasattr(lands, "loss"):
        lands = list(lands)
        if names is None:
            names = [f"{i + 1}" for i in range(len(lands))] if len(lands) > 1 else [""]
        if len(names) != len(lands):
            raise ValueError(f"got {len(lands)} landscapes but {len(names)} names")
        items = [(str(n), v) for n, v in zip(names, lands)]
    else:
        items = [(str(names[0]) if names else "", lands)]
    if not items:
        raise ValueError("no landscape given")
    for name, land in items:
        for attr in ("alphas", "betas", "loss"):
            if not hasattr(land, attr):
                raise TypeError(
                    f"landscape {name!r} has no .{attr}; pass results of wb.analyses.loss_slice_2d"
                )
    return items


def surface_values(land, metric: str = "loss", log: bool = False) -> np.ndarray:
    """The (A, B) array shown for ``metric`` (``"loss"`` or a key of ``land.metrics``)."""
    if metric == "loss":
        z = to_numpy(land.loss).astype(float)
    else:
        mets = getattr(land, "metrics", {}) or {}
        if metric not in mets:
            raise ValueError(f"unknown metric {metric!r}; this landscape has: {['loss', *mets]}")
        z = to_numpy(mets[metric]).astype(float)
    return log10(z) if log else z


def path_heights(land, metric: str = "loss", log: bool = False) -> np.ndarray | None:
    """Heights of the training path drawn on the 3-D surface: the surface's loss below each path
    point (log10 when ``log``); NaN for another metric (the path only knows losses); None when
    the landscape has no path."""
    path = getattr(land, "path", None)
    if path is None:
        return None
    pl = to_numpy(path.plane_loss).astype(float)
    if metric != "loss":
        return np.full(len(pl), np.nan)
    return log10(pl) if log else pl


def landscape_zrange(lands, metric: str = "loss", log: bool = False) -> tuple[float, float]:
    vals = [surface_values(land, metric, log) for _, land in named_items(lands)]
    v = np.concatenate([z[np.isfinite(z)].ravel() for z in vals])
    return (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)


def value_label(metric: str, log: bool) -> str:
    """Colour-bar / z-axis title: "loss", "accuracy" or the metric, with "log10 " when ``log``."""
    name = {"loss": "loss", "acc": "accuracy"}.get(metric, metric)
    return f"log10 {name}" if log else name


def _axis_title(land, which: str) -> str:
    kind = getattr(land, "direction_kind", "random")
    norm = getattr(land, "normalization", None)
    sym = "α" if which == "a" else "β"
    if kind == "pca":
        return f"{sym} (PC{1 if which == 'a' else 2}, parameter units)"
    if norm == "filter":
        return f"{sym} (filter-normalised units)"
    if norm == "layer":
        return f"{sym} (layer-normalised units)"
    return sym


def _path_arrays(land):
    p = getattr(land, "path", None)
    if p is None:
        return None
    c = to_numpy(p.coords).astype(float)
    return dict(
        a=c[:, 0], b=c[:, 1], steps=np.asarray(p.steps), loss=to_numpy(p.loss).astype(float),
        plane=to_numpy(p.plane_loss).astype(float), rel=to_numpy(p.relative_residual).astype(float),
        acc=to_numpy(p.acc).astype(float),
    )


def _path_hover(pa, i_panel_name=""):
    text = [
        f"{i_panel_name}step {s}<br>true loss {lo:.4g} (acc {ac:.3f})<br>surface below {pl:.4g}"
        f"<br>off-plane residual {100 * r:.0f} %"
        for s, lo, ac, pl, r in zip(pa["steps"], pa["loss"], pa["acc"], pa["plane"], pa["rel"])
    ]
    return text


def _grid_hover(nm, land, metric):
    """(customdata (B, A, 2) = loss and accuracy, hover template) of a panel's grid."""
    raw = surface_values(land, metric, False)
    acc = surface_values(land, "acc", False) if "acc" in (getattr(land, "metrics", {}) or {}) else np.full_like(raw, np.nan)
    hov = (f"{nm + '<br>' if nm else ''}α %{{x:.3g}}, β %{{y:.3g}}<br>loss %{{customdata[0]:.4g}}"
           "<br>acc %{customdata[1]:.3f}<extra></extra>")
    return np.stack([raw.T, acc.T], -1), hov


def _contour_traces(p, nm, land, metric, log, path, ncontours):
    """One contour panel's traces, in ``PanelTrace`` order."""
    a, b = (to_numpy(v).astype(float) for v in (land.alphas, land.betas))
    z = surface_values(land, metric, log)
    custom, hov = _grid_hover(nm, land, metric)
    pa = _path_arrays(land) if path else None
    centre = float(land.loss[len(a) // 2, len(b) // 2])
    return [
        go.Contour(x=a, y=b, z=z.T, coloraxis="coloraxis", ncontours=ncontours, name=nm or "landscape",
                   customdata=custom, hovertemplate=hov, line=dict(width=0.5),
                   contours=dict(coloring="heatmap", showlines=True)),
        go.Scatter(x=pa["a"] if pa else [], y=pa["b"] if pa else [], mode="lines+markers", name="training path",
                   line=dict(color="white", width=2),
                   marker=dict(size=6, color=pa["steps"] if pa else [], colorscale="Reds", showscale=False,
                               line=dict(width=1, color="black")),
                   text=_path_hover(pa) if pa else [], hovertemplate="%{text}<extra>path</extra>",
                   showlegend=p == 0 and pa is not None, legendgroup="path", visible=pa is not None),
        go.Scatter(x=[0.0], y=[0.0], mode="markers", name="trained weights",
                   marker=dict(symbol="x", size=10, color="white", line=dict(width=1.5, color="black")),
                   showlegend=p == 0, legendgroup="origin",
                   hovertemplate=f"trained weights<br>loss {centre:.4g}<extra></extra>"),
        go.Scatter(x=[], y=[], mode="markers", name="selected", showlegend=False, hoverinfo="skip",
                   marker=dict(symbol="circle-open", size=14, color="red", line=dict(width=3))),
        go.Scatter(x=[], y=[], mode="markers", name="snapshot", showlegend=False, hoverinfo="skip",
                   marker=dict(symbol="diamond", size=12, color="orange", line=dict(width=1, color="black"))),
    ]


def _surface_traces(p, nm, land, metric, log, path, ncontours):
    """One 3-D panel's traces, in ``PanelTrace`` order (the path drawn on the surface)."""
    a, b = (to_numpy(v).astype(float) for v in (land.alphas, land.betas))
    z = surface_values(land, metric, log)
    custom, hov = _grid_hover(nm, land, metric)
    pa = _path_arrays(land) if path else None
    return [
        go.Surface(x=a, y=b, z=z.T, coloraxis="coloraxis", name=nm or "landscape", customdata=custom,
                   hovertemplate=hov, contours=dict(z=dict(show=True, usecolormap=True, project_z=True, width=1))),
        go.Scatter3d(x=pa["a"] if pa else [], y=pa["b"] if pa else [], z=path_heights(land, metric, log) if pa else [],
                     mode="lines+markers", name="training path", line=dict(color="white", width=5),
                     marker=dict(size=3, color="red"), text=_path_hover(pa) if pa else [],
                     hovertemplate="%{text}<extra>path</extra>", showlegend=p == 0 and pa is not None,
                     legendgroup="path", visible=pa is not None),
        go.Scatter3d(x=[0.0], y=[0.0], z=[float(z[len(a) // 2, len(b) // 2])], mode="markers", name="trained weights",
                     marker=dict(symbol="x", size=5, color="white"), showlegend=p == 0, legendgroup="origin"),
        go.Scatter3d(x=[], y=[], z=[], mode="markers", name="selected", showlegend=False,
                     marker=dict(size=6, color="red")),
        go.Scatter3d(x=[], y=[], z=[], mode="markers", name="snapshot", showlegend=False,
                     marker=dict(size=6, color="orange", symbol="diamond")),
    ]


def landscape_panels(
    lands,
    *,
    names: Sequence[str] | None = None,
    mode: str = "contour",
    metric: str = "loss",
    log: bool = False,
    path: bool = True,
    zrange: tuple[float, float] | None = None,
    colorscale: str = "Viridis",
    ncontours: int = 30,
    title: str | None = None,
    height: int = 440,
):
    """One panel per landscape (a result, a list, or a dict name -> result), one colour scale.

    ``mode``: ``"contour"`` (filled contours + training path) or ``"surface"`` (3-D surface +
    path on it). ``metric``: ``"loss"`` or e.g. ``"acc"``; ``log``: colour/height by log10.
    ``zrange``: fix the colour range (default: min/max over all panels). Traces: ``PanelTrace``
    roles per panel (``panel_trace(p, role)``).
    """
    from plotly.subplots import make_subplots

    if mode not in ("contour", "surface"):
        raise ValueError(f"mode must be 'contour' or 'surface', got {mode!r}")
    items = named_items(lands, names)
    n = len(items)
    lo, hi = zrange if zrange is not None else landscape_zrange(dict(items), metric, log)
    spec = {"type": "xy"} if mode == "contour" else {"type": "scene"}
    fig = make_subplots(rows=1, cols=n, specs=[[spec] * n], subplot_titles=[nm for nm, _ in items] if n > 1 else None,
                        horizontal_spacing=0.06 if mode == "contour" else 0.02)
    label = value_label(metric, log)
    for p, (nm, land) in enumerate(items):
        traces = _contour_traces if mode == "contour" else _surface_traces
        for tr in traces(p, nm, land, metric, log, path, ncontours):  # in PanelTrace order
            fig.add_trace(tr, row=1, col=p + 1)
        if mode == "contour":
            fig.update_xaxes(title_text=_axis_title(land, "a"), row=1, col=p + 1, showgrid=False)
            fig.update_yaxes(title_text=_axis_title(land, "b") if p == 0 else None, row=1, col=p + 1, showgrid=False)
        else:
            fig.layout["scene" if p == 0 else f"scene{p + 1}"].update(
                xaxis_title=_axis_title(land, "a"), yaxis_title=_axis_title(land, "b"), zaxis_title=label,
                zaxis=dict(range=[lo, hi]), aspectmode="cube",
            )
    fig.update_layout(coloraxis=dict(colorscale=colorscale, cmin=lo, cmax=hi, colorbar=dict(title=label)),
                      legend=dict(orientation="h", y=-0.18))
    return base_layout(fig, title, height=height)


def landscape_contour(land, **kw):
    """A filled-contour plot of one 2-D slice, with its training path if it has one."""
    return landscape_panels(land, mode="contour", **kw)


def landscape_surface(land, **kw):
    """A 3-D surface of one 2-D slice, with its training path drawn on it."""
    return landscape_panels(land, mode="surface", **kw)


def loss_lines(lines, *, names: Sequence[str] | None = None, metric: str = "loss", log: bool = False,
               title: str | None = "1-D slices"):
    """One curve per ``LossLine`` (a result, list, or dict name -> result); or the rows of
    ``Interpolation`` results (x = t)."""
    if isinstance(lines, Mapping):
        items = [(str(k), v) for k, v in lines.items()]
    elif isinstance(lines, Sequence):
        lines = list(lines)
        names = names or [str(i + 1) for i in range(len(lines))]
        items = list(zip(names, lines))
    else:
        items = [((names or [""])[0], lines)]
    fig = go.Figure()
    for i, (nm, ln) in enumerate(items):
        x = to_numpy(getattr(ln, "alphas", getattr(ln, "ts", None))).astype(float)
        y = to_numpy(ln.loss if metric == "loss" else ln.metrics[metric]).astype(float)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=nm or metric, line=dict(color=colour(i), width=2),
                                 hovertemplate=f"{nm} α %{{x:.3g}}<br>{metric} %{{y:.4g}}<extra></extra>"))
    first = items[0][1]
    xt = "t" if hasattr(first, "ts") else _axis_title(first, "a").replace("β", "α")
    fig.update_xaxes(title=xt)
    fig.update_yaxes(title=value_label(metric, False), type="log" if log else "linear")
    return base_layout(fig, title, height=340)


def interpolation_curve(interp, *, names: Sequence[str] | None = None, title: str | None = "Linear interpolation"):
    """Loss (left axis) and accuracy (right axis, dashed) along t; the barrier marked."""
    items = list(interp.items()) if isinstance(interp, Mapping) else (
        list(zip(names or [str(i + 1) for i in range(len(interp))], interp)) if isinstance(interp, Sequence)
        else [((names or [""])[0], interp)])
    fig = go.Figure()
    for i, (nm, it) in enumerate(items):
        t = to_numpy(it.ts).astype(float)
        lo = to_numpy(it.loss).astype(float)
        fig.add_trace(go.Scatter(x=t, y=lo, mode="lines+markers", name=f"{nm} loss".strip(),
                                 line=dict(color=colour(i), width=2)))
        if "acc" in it.metrics:
            fig.add_trace(go.Scatter(x=t, y=to_numpy(it.metrics["acc"]).astype(float), mode="lines",
                                     name=f"{nm} accuracy".strip(), yaxis="y2",
                                     line=dict(color=colour(i), dash="dash")))
        j = int(np.argmin(np.abs(t - it.barrier_t)))
        fig.add_trace(go.Scatter(x=[it.barrier_t, it.barrier_t], y=[lo[j] - it.barrier, lo[j]], mode="lines+markers",
                                 name=f"{nm} barrier {it.barrier:.3g}".strip(), line=dict(color=colour(i), dash="dot")))
    fig.update_layout(yaxis=dict(title="loss"),
                      yaxis2=dict(title="accuracy", overlaying="y", side="right", range=[0, 1.02], tickformat=".1f"),
                      xaxis=dict(title="t (0 = model A, 1 = model B)"), legend=dict(orientation="h", y=-0.25))
    return base_layout(fig, title, height=340)


def hessian_spectrum(density, *, eigs=None, names: Sequence[str] | None = None, sigma: float | None = None,
                     log: bool = True, title: str | None = "Hessian eigenvalue density"):
    """The smoothed SLQ density (log y by default, as in Ghorbani et al., shown down to 1e-6 of
    its peak), with the top eigenvalues from ``hessian_eigs`` as markers. ``density`` may be a
    list/dict; ``sigma``: the Gaussian smoothing width (default 2 % of the spectrum's range)."""
    items = list(density.items()) if isinstance(density, Mapping) else (
        list(zip(names or [str(i + 1) for i in range(len(density))], density)) if isinstance(density, Sequence)
        else [((names or [""])[0], density)])
    eig_items = None
    if eigs is not None:
        eig_items = list(eigs.values()) if isinstance(eigs, Mapping) else (list(eigs) if isinstance(eigs, Sequence) else [eigs])
    curves = [(nm, *(to_numpy(t) for t in d.density(sigma=sigma))) for nm, d in items]
    peak = max(float(np.max(c[2])) for c in curves)
    floor = peak * 1e-6 if log else 0.0  # a readable range: six decades below the peak
    fig = go.Figure()
    for i, (nm, grid, dens) in enumerate(curves):
        fig.add_trace(go.Scatter(x=grid, y=np.clip(dens, floor, None) if log else dens, mode="lines",
                                 name=nm or "density", line=dict(color=colour(i))))
        if eig_items is not None and i < len(eig_items):
            ev = to_numpy(eig_items[i].eigenvalues).astype(float)
            fig.add_trace(go.Scatter(x=ev, y=np.full_like(ev, floor * 10 if log else 0.0), mode="markers",
                                     name=f"{nm} top eigenvalues".strip(),
                                     marker=dict(symbol="triangle-up", size=10, color=colour(i))))
    if log:
        fig.update_yaxes(range=[np.log10(floor), np.log10(peak * 3)])
    fig.update_xaxes(title="eigenvalue")
    fig.update_yaxes(title="density", type="log" if log else "linear")
    return base_layout(fig, title, height=340)


def curvature_by_class(per_class, *, field: str = "top", title: str | None = None, class_names=None):
    """Bars of one scalar per class from a ``PerClass`` result (``field``: ``"top"`` eigenvalue,
    ``"trace"``, ``"sharpness"``...), with the whole-data value as a dashed line."""
    vals = []
    for r in per_class.results:
        v = getattr(r, field)
        vals.append(float(v[0]) if hasattr(v, "shape") and getattr(v, "ndim", 0) else float(v))
    ov = getattr(per_class.overall, field)
    ov = float(ov[0]) if hasattr(ov, "shape") and getattr(ov, "ndim", 0) else float(ov)
    names = [str(class_names[c]) if class_names is not None else str(c) for c in per_class.classes]
    fig = go.Figure(go.Bar(x=names, y=vals, marker_color=[colour(c) for c in per_class.classes], name=field))
    fig.add_hline(y=ov, line_dash="dash", annotation_text=f"all data {ov:.4g}")
    fig.update_xaxes(title="class", type="category")
    fig.update_yaxes(title=field)
    return base_layout(fig, title or f"{field} per class", height=320)
