"""Figures of diffusion trajectories, score fields, hallucination filters and sample quality.

Pure builders: result -> plotly Figure. ``widgets.TrajectoryView`` mirrors ``trajectory`` /
``trajectory_pair`` / ``image_frames`` and updates their traces in place; the ``*_xy`` helpers
below compute exactly the arrays it writes, so a static figure and a widget frame agree.

Trace order of ``trajectory`` (one panel): [data (if given)], one scatter per flag class
(or one "samples" trace), "trails", "field". ``trajectory_pair`` repeats that per panel.
``trajectory_slots`` names those indices for given inputs and ``panel_patch`` gives what a new
frame writes into them; ``image_frames``'s are named by ``image_slots`` and ``STRIP_SHAPE``.
"""

from __future__ import annotations

import numpy as np

from ._common import PALETTE, base_layout, go, to_numpy

SVG_MAX_POINTS = 30_000  # samples_grid draws SVG up to this many points in all, WebGL above

FLAG_COLOURS = ("#4C78A8", "#E45756", "#EECA3B")  # in-support, hallucination, between
FLAG_NAMES = ("in-support", "hallucination", "between")
TRAIL_COLOUR = "#222222"
FIELD_COLOUR = "rgba(60,60,60,0.55)"


# --------------------------------------------------------------------------- array helpers
def frame_points(traj, frame: int, show: str = "x") -> np.ndarray:
    """(N, 2) positions of frame ``frame``: x_t (``show="x"``) or the predicted x̂0 (``"x0"``)."""
    if show not in ("x", "x0"):
        raise ValueError(f"show must be 'x' (noisy states) or 'x0' (predicted clean samples), got {show!r}")
    src = traj.x if show == "x" else traj.x0_pred
    return to_numpy(src[frame]).reshape(src.shape[1], -1)[:, :2]


def trail_xy(traj, index, frame: int, show: str = "x") -> tuple[np.ndarray, np.ndarray]:
    """Paths of samples ``index`` from frame 0 to ``frame``, joined with NaN separators (for one trace)."""
    idx = np.asarray(list(index), dtype=int)
    if len(idx) == 0:
        return np.array([]), np.array([])
    src = traj.x if show == "x" else traj.x0_pred
    p = to_numpy(src[: frame + 1, idx]).reshape(frame + 1, len(idx), -1)[..., :2]  # (f, k, 2)
    p = np.concatenate([p, np.full((1, len(idx), 2), np.nan)], 0)  # separator after each path
    p = p.transpose(1, 0, 2).reshape(-1, 2)
    return p[:, 0], p[:, 1]


def arrows_xy(field, k: int, *, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Quiver segments of field ``k`` (its score), joined with NaN separators.

    Arrows are normalised within the frame so the longest is 0.9 grid cells (``scale`` overrides).
    """
    pts = to_numpy(field.points)
    v = to_numpy(field.score[k])
    gx = to_numpy(field.grid_x)
    cell = float(gx[1] - gx[0]) if len(gx) > 1 else 1.0
    norm = np.linalg.norm(v, axis=1)
    s = scale if scale is not None else 0.9 * cell / max(float(norm.max()), 1e-12)
    end = pts + s * v
    seg = np.stack([pts, end, np.full_like(pts, np.nan)], 1).reshape(-1, 2)
    return seg[:, 0], seg[:, 1]


def axis_box(*arrays, quantile: float = 0.995, pad: float = 0.1, scale: float = 1.0) -> tuple[float, float]:
    """A symmetric range covering the given (…, 2) arrays up to ``quantile`` of |coordinates|,
    times ``scale``, plus ``pad``."""
    vals = np.concatenate([np.abs(to_numpy(a)).reshape(-1) for a in arrays if a is not None])
    vals = vals[np.isfinite(vals)]
    m = scale * float(np.quantile(vals, quantile)) if len(vals) else 1.0
    return -(m + pad), m + pad


def _view_box(*trajs, data=None):
    """Default range for scrubbing: 1.6x the data's extent if given, else 1.5x the samples' (98th
    percentile, so a few far outliers do not shrink the picture); early, noisy frames and outliers
    spill over: zoom out to see them."""
    if data is not None:
        return axis_box(to_numpy(getattr(data, "x", data)), scale=1.6)
    return axis_box(*[t.x[-1] for t in trajs], quantile=0.98, scale=1.5)


def flag_codes(flags, n):
    """(N,) int flags (0 in-support, 1 hallucination, 2 between) from ``HallucinationFlags`` or an
    array, checked against ``n`` samples; None stays None."""
    if flags is None:
        return None
    f = to_numpy(getattr(flags, "flag", flags)).astype(int)
    if len(f) != n:
        raise ValueError(f"flags describe {len(f)} samples but the trajectory has {n}")
    return f


# --------------------------------------------------------------------------- trajectories (2-D)
def _data_xy(data):
    """(M, 2) background points, or None when ``data`` is missing or not 2-D."""
    if data is None:
        return None
    d = to_numpy(getattr(data, "x", data))
    return d.reshape(-1, 2) if d.shape[-1] == 2 else None


def panel_slots(flags=None, data=None, start: int = 0) -> dict:
    """Trace indices of one panel built by ``trajectory`` from index ``start``: ``data`` (or
    None), ``points`` (one per flag class, or one), ``trails``, ``field``, and ``end`` (the next
    panel's start)."""
    i = start
    slots = {"data": None}
    if _data_xy(data) is not None:
        slots["data"], i = i, i + 1
    k = 1 if flags is None else len(FLAG_NAMES)
    slots["points"] = list(range(i, i + k))
    slots["trails"], slots["field"], slots["end"] = i + k, i + k + 1, i + k + 2
    return slots


def trajectory_slots(flags=None, right_flags=None, data=None, *, pair: bool = False) -> list[dict]:
    """``panel_slots`` of every panel of ``trajectory`` (one) or ``trajectory_pair`` (two)."""
    left = panel_slots(flags, data)
    return [left, panel_slots(right_flags, data, left["end"])] if pair else [left]


def panel_arrays(traj, frame: int, show: str = "x", flags=None, trails=None, field=None) -> dict:
    """What one panel shows at ``frame``: ``points`` [(x, y) per flag class], ``trails`` (x, y)
    and the score ``field`` arrows (x, y), empty when no field or the frame is clean."""
    pts = frame_points(traj, frame, show)
    f = flag_codes(flags, traj.n)
    groups = [np.arange(traj.n)] if f is None else [np.nonzero(f == c)[0] for c in range(len(FLAG_NAMES))]
    t = int(traj.timesteps[frame])
    arrows = arrows_xy(field, field.at(t)) if field is not None and t >= 0 else (np.array([]), np.array([]))
    return dict(points=[(pts[g, 0], pts[g, 1]) for g in groups],
                trails=trail_xy(traj, trails if trails is not None else [], frame, show), field=arrows)


def panel_patch(slots: dict, arrays: dict) -> dict:
    """``panel_arrays`` as trace updates for the panel at ``slots``."""
    out = {i: dict(x=x, y=y) for i, (x, y) in zip(slots["points"], arrays["points"])}
    out[slots["trails"]] = dict(x=arrays["trails"][0], y=arrays["trails"][1])
    out[slots["field"]] = dict(x=arrays["field"][0], y=arrays["field"][1])
    return out


def _panel_traces(traj, frame, show, flags, trails, field, data, name_prefix="", showlegend=True, marker_size=4):
    traces = []
    d = _data_xy(data)
    if d is not None:
        traces.append(go.Scattergl(
            x=d[:, 0], y=d[:, 1], mode="markers", name="data", showlegend=showlegend,
            marker=dict(size=3, color="rgba(150,150,150,0.35)"), hoverinfo="skip",
        ))
    arrays = panel_arrays(traj, frame, show, flags, trails, field)
    f = flag_codes(flags, traj.n)
    if f is None:
        (x, y), = arrays["points"]
        traces.append(go.Scattergl(
            x=x, y=y, mode="markers", name=f"{name_prefix}samples", showlegend=showlegend,
            marker=dict(size=marker_size, color=PALETTE[0], opacity=0.7),
            customdata=np.arange(traj.n), hovertemplate="sample %{customdata}<extra></extra>",
        ))
    else:
        for c, (nm, col, (x, y)) in enumerate(zip(FLAG_NAMES, FLAG_COLOURS, arrays["points"])):
            m = f == c
            traces.append(go.Scattergl(
                x=x, y=y, mode="markers", name=f"{name_prefix}{nm} ({int(m.sum())})",
                showlegend=showlegend, marker=dict(size=marker_size + (1 if c == 1 else 0), color=col, opacity=0.75),
                customdata=np.nonzero(m)[0], hovertemplate="sample %{customdata}<extra>" + nm + "</extra>",
            ))
    traces.append(go.Scatter(
        x=arrays["trails"][0], y=arrays["trails"][1], mode="lines", name=f"{name_prefix}trails",
        showlegend=showlegend, line=dict(color=TRAIL_COLOUR, width=1.2), hoverinfo="skip",
    ))
    traces.append(go.Scatter(
        x=arrays["field"][0], y=arrays["field"][1], mode="lines", name=f"{name_prefix}score field",
        showlegend=showlegend, line=dict(color=FIELD_COLOUR, width=1), hoverinfo="skip",
    ))
    return traces


def frame_title(traj, frame, label=""):
    """Panel title of ``frame``: sampler step, timestep (or "clean") and noise level σ."""
    t = int(traj.timesteps[frame])
    tt = "clean" if t < 0 else f"t {t}"
    return f"{label}step {int(traj.step_index[frame])}/{traj.steps} · {tt} · σ {float(traj.sigmas[frame]):.3f}"


def trajectory(traj, frame: int = -1, *, show: str = "x", flags=None, trails=None, field=None, data=None,
               lim=None, title: str | None = None, marker_size: int = 4):
    """One frame of a 2-D reverse process: samples (coloured by ``flags``), ``trails`` of chosen
    samples up to this frame, the score ``field`` at this frame's t, and the ``data`` behind."""
    if traj.flat.shape[-1] != 2:
        raise ValueError(
            f"trajectory draws 2-D points; these samples have shape {traj.sample_shape} (use image_frames for images)"
        )
    frame = range(traj.n_frames)[frame]
    fig = go.Figure(_panel_traces(traj, frame, show, flags, trails, field, data, marker_size=marker_size))
    lo, hi = lim if lim is not None else _view_box(traj, data=data)
    fig.update_xaxes(range=[lo, hi], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[lo, hi], showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1)
    return base_layout(fig, title or frame_title(traj, frame), height=480, width=520)


def trajectory_pair(left, right, frame: int = -1, right_frame: int | None = None, *, show: str = "x",
                    flags=None, right_flags=None, trails=None, field=None, right_field=None, data=None,
                    names=("teacher", "student"), lim=None):
    """Two trajectories side by side (e.g. teacher and student); each panel as in ``trajectory``."""
    from plotly.subplots import make_subplots

    frame = range(left.n_frames)[frame]
    right_frame = right.n_frames - 1 if right_frame is None else range(right.n_frames)[right_frame]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        frame_title(left, frame, f"{names[0]}: "), frame_title(right, right_frame, f"{names[1]}: ")),
        horizontal_spacing=0.06)
    for tr in _panel_traces(left, frame, show, flags, trails, field, data, f"{names[0]} "):
        fig.add_trace(tr, row=1, col=1)
    for tr in _panel_traces(right, right_frame, show, right_flags, trails, right_field, data, f"{names[1]} "):
        if tr.name == "data":
            tr.showlegend = False
        fig.add_trace(tr, row=1, col=2)
    lo, hi = lim if lim is not None else _view_box(left, right, data=data)
    for c in (1, 2):
        fig.update_xaxes(range=[lo, hi], showgrid=False, zeroline=False, row=1, col=c)
        fig.update_yaxes(range=[lo, hi], showgrid=False, zeroline=False, row=1, col=c,
                         scaleanchor="x" if c == 1 else "x2", scaleratio=1)
    base_layout(fig, None, height=540, width=960)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.08, x=0))
    return fig


def samples_grid(trajs: dict, *, flags: dict | None = None, data=None, lim=None, cols: int | None = None,
                 marker_size: int = 3, title: str | None = None):
    """Final samples of several trajectories (name -> Trajectory or (N, 2) tensor) in a row of panels."""
    from plotly.subplots import make_subplots

    names = list(trajs)
    cols = cols or len(names)
    rows = int(np.ceil(len(names) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.03, vertical_spacing=0.08)
    n_data = 0 if data is None else len(to_numpy(getattr(data, "x", data)).reshape(-1, 2))
    n_total = sum(len(to_numpy(getattr(trajs[nm], "samples", trajs[nm])).reshape(-1, 2)) + n_data for nm in names)
    # SVG up to SVG_MAX_POINTS: a page holds only a few WebGL contexts (Chromium drops the oldest
    # beyond its limit, and that plot goes blank), and a notebook shows many of these grids
    scatter = go.Scatter if n_total <= SVG_MAX_POINTS else go.Scattergl
    allpts = []
    for i, nm in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        s = trajs[nm]
        pts = to_numpy(getattr(s, "samples", s)).reshape(-1, 2)
        allpts.append(pts)
        if data is not None:
            d = to_numpy(getattr(data, "x", data)).reshape(-1, 2)
            fig.add_trace(scatter(x=d[:, 0], y=d[:, 1], mode="markers", showlegend=False, hoverinfo="skip",
                                  marker=dict(size=2, color="rgba(150,150,150,0.35)")), row=r, col=c)
        f = None if flags is None or flags.get(nm) is None else flag_codes(flags[nm], len(pts))
        col = PALETTE[0] if f is None else np.array(FLAG_COLOURS)[f]
        fig.add_trace(scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", showlegend=False, name=nm,
                              marker=dict(size=marker_size, color=col, opacity=0.7)), row=r, col=c)
    if lim is not None:
        lo, hi = lim
    elif data is not None:
        lo, hi = axis_box(to_numpy(getattr(data, "x", data)), scale=1.6)
    else:
        lo, hi = axis_box(*allpts, quantile=0.98, scale=1.5)
    fig.update_xaxes(range=[lo, hi], showgrid=False, zeroline=False, showticklabels=False)
    fig.update_yaxes(range=[lo, hi], showgrid=False, zeroline=False, showticklabels=False)
    return base_layout(fig, title, height=260 * rows + 40)  # no fixed width: it takes the page's (issue 19)


# --------------------------------------------------------------------------- score fields
def score_field(*fields, k: int | None = None, t: int | None = None, data=None, title: str | None = None):
    """Quiver plots of one or more ``ScoreField`` results side by side at field index ``k`` (or timestep ``t``)."""
    from plotly.subplots import make_subplots

    if not fields:
        raise ValueError("pass at least one ScoreField")
    ks = [f.at(t) if t is not None else (k if k is not None else 0) for f in fields]
    titles = [f"{f.name}: t = {int(f.timesteps[kk])}, σ = {float(f.sigmas[kk]):.3f}" for f, kk in zip(fields, ks)]
    fig = make_subplots(rows=1, cols=len(fields), subplot_titles=titles, horizontal_spacing=0.05)
    for i, (f, kk) in enumerate(zip(fields, ks)):
        if data is not None:
            d = to_numpy(getattr(data, "x", data)).reshape(-1, 2)
            fig.add_trace(go.Scattergl(x=d[:, 0], y=d[:, 1], mode="markers", showlegend=False, hoverinfo="skip",
                                       marker=dict(size=2, color="rgba(150,150,150,0.35)")), row=1, col=i + 1)
        ax, ay = arrows_xy(f, kk)
        fig.add_trace(go.Scatter(x=ax, y=ay, mode="lines", name=f.name, showlegend=False,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=1.2), hoverinfo="skip"),
                      row=1, col=i + 1)
        fig.update_yaxes(scaleanchor=f"x{'' if i == 0 else i + 1}", scaleratio=1, row=1, col=i + 1)
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(showgrid=False, zeroline=False)
    return base_layout(fig, title, height=420)  # no fixed width: it takes the page's (issue 19)


def score_error(*errors, relative: bool = True, title: str | None = "Learned vs closed-form score"):
    """Error between a learned ε̂ and closed-form ones (``ScoreError`` results) against the noise level σ."""
    fig = go.Figure()
    for i, e in enumerate(errors):
        y = to_numpy(e.relative if relative else e.mse)
        fig.add_trace(go.Scatter(x=to_numpy(e.sigmas), y=y, mode="lines+markers", name=e.name,
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_xaxes(title="noise level σ_t = √(1 − ᾱ_t)", type="log")
    fig.update_yaxes(title="relative error ‖ε̂ − ε̂_ref‖² / ‖ε̂‖²" if relative else "mean squared ε error", type="log")
    return base_layout(fig, title, height=360)


# --------------------------------------------------------------------------- hallucinations
def hallucination_filter(report, *, title: str | None = "Trajectory-variance filter"):
    """Two panels: variance histograms by flag with the threshold, and hallucinations removed
    against in-support samples kept for every threshold (the operating point marked)."""
    from plotly.subplots import make_subplots

    s = np.log10(np.maximum(to_numpy(report.scores), 1e-12))
    f = to_numpy(report.flag)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "log10 trajectory variance", f"removed {report.removed:.1%} @ kept {report.kept:.1%} (AUROC {report.auroc:.3f})"))
    for c in (0, 1, 2):
        m = f == c
        if m.any():
            fig.add_trace(go.Histogram(x=s[m], name=f"{FLAG_NAMES[c]} ({int(m.sum())})", marker_color=FLAG_COLOURS[c],
                                       opacity=0.65, histnorm="probability density", nbinsx=60), row=1, col=1)
    thr = np.log10(max(report.threshold, 1e-12))
    fig.add_vline(x=thr, line=dict(color="#222", dash="dash"), row=1, col=1)
    fig.add_trace(go.Scatter(x=to_numpy(report.curve_kept), y=to_numpy(report.curve_removed), mode="lines",
                             name="all thresholds", line=dict(color=PALETTE[0])), row=1, col=2)
    fig.add_trace(go.Scatter(x=[report.kept], y=[report.removed], mode="markers", name="keep = %.0f%%" % (100 * report.keep),
                             marker=dict(size=10, color=FLAG_COLOURS[1])), row=1, col=2)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="in-support kept", range=[0, 1.02], row=1, col=2)
    fig.update_yaxes(title="hallucinations removed", range=[0, 1.02], row=1, col=2)
    return base_layout(fig, title, height=380)  # no fixed width: it takes the page's (issue 19)


# --------------------------------------------------------------------------- images
def mosaic(images, cols: int | None = None, gap: float = np.nan) -> np.ndarray:
    """Tile (N, C, H, W) or (N, H, W) images (first channel) into one 2-D array, NaN gaps between."""
    a = to_numpy(images)
    if a.ndim == 4:
        a = a[:, 0]
    if a.ndim != 3:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W), got shape {a.shape}")
    n, h, w = a.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), gap, dtype=float)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = a[i]
    return out[::-1]  # plotly heatmaps draw row 0 at the bottom


def strip_frames(traj, n: int = 10) -> np.ndarray:
    """``n`` frame indices evenly spread along the trajectory (first and last included)."""
    return np.unique(np.round(np.linspace(0, traj.n_frames - 1, min(n, traj.n_frames))).astype(int))


def heatmap_z(z: np.ndarray) -> list:
    """A mosaic as nested lists with None for the NaN gaps (JSON-safe for FigureWidget updates)."""
    return np.where(np.isnan(z), None, z).tolist()


def _image_heatmap(z, zmin=-1, zmax=1, name=""):
    # z: heatmap_z lists. Greys runs white (low) to black (high): background -1 is white, ink +1 black
    return go.Heatmap(z=z, colorscale="Greys", zmin=zmin, zmax=zmax, showscale=False,
                      hoverinfo="skip", name=name)


#: ``image_frames`` outlines the strip column nearest the shown frame with layout shape 0
STRIP_SHAPE = 0


def image_slots(pair: bool = False) -> dict:
    """Trace indices of ``image_frames``: the ``mosaics`` (one per trajectory) and the ``strip``."""
    return {"mosaics": [0, 1] if pair else [0], "strip": 2 if pair else 1}


def image_mosaic(traj, frame: int, show: str = "x", n: int = 16) -> list:
    """Heatmap z of the first ``n`` samples at ``frame`` (x_t or x̂0), as ``image_frames`` draws it."""
    src = traj.x if show == "x" else traj.x0_pred
    return heatmap_z(mosaic(src[frame, :n]))


def strip_marker(traj, frame: int, strip: int = 10, *, pair: bool = False) -> dict:
    """The layout shape outlining the strip column nearest ``frame`` (``STRIP_SHAPE``)."""
    col = int(np.abs(strip_frames(traj, strip) - frame).argmin())
    h, w = traj.sample_shape[-2:]
    axis = "3" if pair else "2"
    return dict(type="rect", xref=f"x{axis}", yref=f"y{axis}", x0=col * (w + 1) - 0.5, x1=col * (w + 1) + w - 0.5,
                y0=-0.5, y1=2 * (h + 1) - 1 - 0.5, line=dict(color="#E45756", width=2))


def image_frames(traj, frame: int = -1, *, n: int = 16, show: str = "x", index: int = 0, strip: int = 10,
                 right=None, right_frame: int | None = None, names=("teacher", "student"), vrange=(-1, 1)):
    """Image trajectories: a mosaic of ``n`` samples at ``frame`` (beside ``right``'s, e.g. a student),
    and below it a strip of sample ``index`` along t (``strip`` frames; x_t on top, x̂0 below) with
    the column nearest ``frame`` outlined. Traces: ``image_slots``; the outline: ``STRIP_SHAPE``."""
    from plotly.subplots import make_subplots

    if len(traj.sample_shape) < 2:
        raise ValueError(f"image_frames needs image samples (C, H, W); these have shape {traj.sample_shape}")
    frame = range(traj.n_frames)[frame]
    cols = 2 if right is not None else 1
    rf = None if right is None else (right.n_frames - 1 if right_frame is None else range(right.n_frames)[right_frame])
    fig = make_subplots(rows=2, cols=cols, row_heights=[0.68, 0.32], vertical_spacing=0.08,
                        specs=[[{}] * cols, [{"colspan": cols}] + [None] * (cols - 1)],
                        subplot_titles=[frame_title(traj, frame, f"{names[0]}: ")]
                        + ([frame_title(right, rf, f"{names[1]}: ")] if right is not None else [])
                        + [f"sample {index} along t (top x_t, bottom x̂0)"])
    fig.add_trace(_image_heatmap(image_mosaic(traj, frame, show, n), *vrange, names[0]), row=1, col=1)
    if right is not None:
        fig.add_trace(_image_heatmap(image_mosaic(right, rf, show, n), *vrange, names[1]), row=1, col=2)
    fr = strip_frames(traj, strip)
    stack = np.concatenate([to_numpy(traj.x[fr, index]), to_numpy(traj.x0_pred[fr, index])], 0)
    fig.add_trace(_image_heatmap(heatmap_z(mosaic(stack, cols=len(fr))), *vrange, "strip"), row=2, col=1)
    fig.add_shape(**strip_marker(traj, frame, strip, pair=right is not None))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    for c in range(1, cols + 1):
        fig.update_yaxes(scaleanchor=f"x{'' if c == 1 else c}", scaleratio=1, row=1, col=c)
    return base_layout(fig, None, height=560, width=460 * cols + 40)


# --------------------------------------------------------------------------- tables
def quality_table(rows: dict, *, title: str | None = "Sample quality"):
    """A table of ``SampleQuality`` results (name -> result); lower energy/MMD and higher precision,
    recall, in-support and modes are better."""
    names = list(rows)
    keys = ["energy", "mmd", "precision", "recall", "in_support", "hallucination", "modes_covered", "mode_kl"]
    keys = [k for k in keys if any(getattr(rows[n], k, None) is not None for n in names)]

    def fmt(k, v):
        if v is None:
            return "–"
        if k in ("in_support", "hallucination", "precision", "recall"):
            return f"{v:.1%}"
        if k == "modes_covered":
            return f"{v}"
        return f"{v:.4f}"

    cells = [names] + [[fmt(k, getattr(rows[n], k, None)) for n in names] for k in keys]
    fig = go.Figure(go.Table(header=dict(values=["sampler"] + [k.replace("_", " ") for k in keys], align="left"),
                             cells=dict(values=cells, align="left")))
    return base_layout(fig, title, height=80 + 30 * len(names))
