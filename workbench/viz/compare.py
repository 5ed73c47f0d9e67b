"""Figures that put runs side by side (static builders; ``widgets.CompareView`` and
``widgets.LiveTraining`` mirror them and update their traces in place).

* ``training_panels(history, metric)``: loss and one metric of a single fit, train and val;
* ``compare_curves({label: histories})``: one panel per quantity, shared step axis, one colour
  per run or group (a group of seeds is drawn as its mean with a ±1 std band);
* ``compare_embeddings({label: coords})``: aligned 2-D maps side by side on shared axes;
* ``compare_landscapes({label: landscape})``: loss surfaces with one shared colour scale;
* ``metrics_table(frame)``: a DataFrame as a plotly table.

Every builder returns the same traces, in the same order, for the same inputs whatever the
display options (smoothing, log scale, showing seeds), so a widget can copy the new trace data
into its existing figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum

import numpy as np

from ._common import base_layout, colour, go, log10, smooth, to_numpy

__all__ = [
    "training_panels", "compare_curves", "compare_embeddings", "compare_landscapes",
    "metrics_table", "curve_keys", "curve_data", "landscape_range", "TrainingTrace", "METRIC_TITLE",
]


def _subplots(**kw):
    from plotly.subplots import make_subplots

    return make_subplots(**kw)


# ------------------------------------------------------------------------ one fit


def _train_series(history, key: str):
    if not history.records or not any(key in r for r in history.records):
        return np.array([], dtype=float), np.array([], dtype=float)
    return np.asarray(history.steps, dtype=float), history.series(key)


def _val_series(history, key: str):
    if not any(key in e for e in history.evals):
        return np.array([], dtype=float), np.array([], dtype=float)
    s, v = history.eval_series(key)
    return np.asarray(s, dtype=float), np.asarray(v, dtype=float)


class TrainingTrace(IntEnum):
    """Traces of ``training_panels``; the metric panel's title is annotation ``METRIC_TITLE``."""

    TRAIN_LOSS = 0
    VAL_LOSS = 1
    TRAIN_METRIC = 2
    VAL_METRIC = 3


#: ``training_panels``'s second panel title (the metric's name) is layout annotation 1
METRIC_TITLE = 1


def training_panels(history=None, metric: str = "acc", *, smooth_window: int = 1,
                    title: str | None = "Training", height: int = 320):
    """Two panels of one fit: loss (train line, val markers) and ``metric`` (train, val).

    Always 4 traces (``TrainingTrace``): train loss, val loss, train metric, val metric (empty
    when the history has no such values, or ``history=None`` for a figure to fill live).
    """
    fig = _subplots(rows=1, cols=2, subplot_titles=("loss", metric), horizontal_spacing=0.1)
    for col, key in ((1, "loss"), (2, metric)):
        xs, ys = _train_series(history, key) if history is not None else ([], [])
        vs, vv = _val_series(history, key) if history is not None else ([], [])
        fig.add_trace(go.Scatter(x=xs, y=smooth(ys, smooth_window), mode="lines", name=f"train {key}",
                                 line=dict(color=colour(0), width=1.5), legendgroup="train",
                                 showlegend=col == 1), row=1, col=col)
        fig.add_trace(go.Scatter(x=vs, y=vv, mode="lines+markers", name=f"val {key}",
                                 line=dict(color=colour(1), dash="dash"), marker=dict(size=6),
                                 legendgroup="val", showlegend=col == 1), row=1, col=col)
    fig.data[0].name, fig.data[1].name = "train", "val"
    fig.update_xaxes(title="step")
    return base_layout(fig, title, height=height)


# ------------------------------------------------------------------------ several runs


def _as_groups(histories) -> dict[str, list]:
    if not isinstance(histories, Mapping) or not histories:
        raise TypeError("pass a non-empty dict label -> History (or list of Histories, e.g. seeds)")
    out = {}
    for k, v in histories.items():
        hs = list(v) if isinstance(v, (list, tuple)) else [v]
        if not hs or not all(hasattr(h, "records") and hasattr(h, "evals") for h in hs):
            raise TypeError(f"{k!r}: expected a History or a list of Histories")
        out[str(k)] = hs
    return out


def curve_keys(histories) -> list[str]:
    """Quantities available in these histories: ``train_<k>`` for logged step values (not the
    learning rate) and ``val_<k>`` for evaluations, loss first."""
    train, val = {}, {}
    for hs in _as_groups(histories).values():
        for h in hs:
            for r in h.records[:1] + h.records[-1:]:
                train.update(dict.fromkeys(k for k in r if k != "lr"))
            for e in h.evals:
                val.update(dict.fromkeys(k for k in e if k != "step"))
    order = lambda ks: sorted(ks, key=lambda k: (k != "loss", k))  # noqa: E731
    return [f"train_{k}" for k in order(train)] + [f"val_{k}" for k in order(val)]


def curve_data(hs: Sequence, key: str, smooth_window: int = 1):
    """Steps, member curves (M, T) with NaN gaps, mean and std (over members) of ``key``
    (``train_<k>`` or ``val_<k>``) for one group of histories, members aligned on the step."""
    split, _, k = key.partition("_")
    if split not in ("train", "val") or not k:
        raise ValueError(f"curve keys look like 'train_loss' or 'val_acc', got {key!r}")
    series = [(_train_series(h, k) if split == "train" else _val_series(h, k)) for h in hs]
    steps = np.unique(np.concatenate([s for s, _ in series])) if series else np.array([])
    m = np.full((len(series), steps.size), np.nan)
    for i, (s, v) in enumerate(series):
        if s.size:
            m[i, np.searchsorted(steps, s)] = smooth(v, smooth_window) if split == "train" else v
    with np.errstate(invalid="ignore"), _quiet():
        mean = np.nanmean(m, 0) if m.size else np.array([])
        std = np.nanstd(m, 0) if m.size else np.array([])
    return steps, m, mean, std


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def compare_curves(
    histories,
    keys: Sequence[str] | None = None,
    *,
    smooth_window: int = 1,
    show_members: bool = False,
    band: bool = True,
    log_y: bool = False,
    title: str | None = "Training curves",
    cols: int = 3,
):
    """One panel per quantity (``train_loss``, ``val_acc``, ...: see ``curve_keys``), shared
    step axis, one colour per label.

    ``histories``: dict label -> History or list of Histories (seeds of one recipe): a group is
    drawn as the mean over its members with a shaded ±1 std band (``band``); ``show_members``
    also draws each member thinly. Traces per (label, key), in order: band, mean, members.
    """
    groups = _as_groups(histories)
    keys = list(keys) if keys is not None else curve_keys(groups)
    if not keys:
        raise ValueError("the histories hold no logged values to plot")
    ncols = min(cols, len(keys))
    nrows = -(-len(keys) // ncols)
    fig = _subplots(rows=nrows, cols=ncols, subplot_titles=[k.replace("_", " ", 1) for k in keys],
                    shared_xaxes="all", horizontal_spacing=0.08, vertical_spacing=0.12)
    for ki, key in enumerate(keys):
        r, c = divmod(ki, ncols)
        for gi, (label, hs) in enumerate(groups.items()):
            col = colour(gi)
            steps, members, mean, std = curve_data(hs, key, smooth_window)
            ok = np.isfinite(mean)
            s, mu, sd = steps[ok], mean[ok], std[ok]
            multi = len(hs) > 1
            bx = np.concatenate([s, s[::-1]]) if multi else []
            by = np.concatenate([mu + sd, (mu - sd)[::-1]]) if multi else []
            fig.add_trace(go.Scatter(x=bx, y=by, fill="toself", mode="lines", line=dict(width=0),
                                     fillcolor=col, opacity=0.2, hoverinfo="skip", showlegend=False,
                                     legendgroup=label, name=f"{label} ±1 std",
                                     visible=bool(band and multi)), row=r + 1, col=c + 1)
            mode = "lines+markers" if key.startswith("val_") else "lines"
            fig.add_trace(go.Scatter(x=s, y=mu, mode=mode, name=label + (f" (mean of {len(hs)})" if multi else ""),
                                     line=dict(color=col, width=2), marker=dict(size=5),
                                     legendgroup=label, showlegend=ki == 0,
                                     hovertemplate=f"{label}<br>step %{{x}}<br>{key} %{{y:.4g}}<extra></extra>"),
                          row=r + 1, col=c + 1)
            if multi:
                for mi in range(members.shape[0]):
                    okm = np.isfinite(members[mi])
                    fig.add_trace(go.Scatter(x=steps[okm], y=members[mi][okm], mode="lines",
                                             line=dict(color=col, width=0.7), opacity=0.5,
                                             name=f"{label} #{mi}", legendgroup=label, showlegend=False,
                                             visible=show_members, hoverinfo="skip"),
                                  row=r + 1, col=c + 1)
    fig.update_xaxes(title_text="step", row=nrows)
    fig.update_yaxes(type="log" if log_y else "linear")
    return base_layout(fig, title, height=300 * nrows + 40)


def compare_embeddings(
    coords: Mapping,
    labels=None,
    *,
    class_names=None,
    marker_size: int = 4,
    title: str | None = "Embeddings (aligned)",
    method: str = "",
    height: int = 380,
    webgl: bool | None = None,
):
    """Aligned 2-D maps side by side on shared (linked) axes.

    ``coords``: dict label -> (N, 2) coordinates of the same N points (e.g. the rows of
    ``AlignedProjections.coords``); ``labels``: (N,) classes colouring the points, one legend
    entry per class that toggles it in every panel. Traces: one per (panel, class), panel-major.
    ``webgl``: draw with WebGL (``Scattergl``); default only above 5000 points in all panels
    together (SVG is lighter for the browser below that, and uses no WebGL context).
    """
    if not isinstance(coords, Mapping) or not coords:
        raise TypeError("coords must be a non-empty dict label -> (N, 2) coordinates")
    arrs = {str(k): to_numpy(v).astype(float) for k, v in coords.items()}
    n = next(iter(arrs.values())).shape[0]
    for k, a in arrs.items():
        if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] != n:
            raise ValueError(f"{k!r}: coordinates must be (N, 2) with the same N={n} in every panel, got {a.shape}")
    lab = np.zeros(n, dtype=int) if labels is None else to_numpy(labels).astype(int)
    if lab.shape != (n,):
        raise ValueError(f"labels must have one entry per point ({n}), got shape {lab.shape}")
    classes = np.unique(lab)
    if webgl is None:
        webgl = n * len(arrs) > 5000
    Scatter = go.Scattergl if webgl else go.Scatter
    fig = _subplots(rows=1, cols=len(arrs), subplot_titles=list(arrs), horizontal_spacing=0.03)
    for pi, (label, xy) in enumerate(arrs.items()):
        for c in classes:
            m = lab == c
            name = "OOD" if c < 0 else (str(class_names[c]) if class_names is not None else str(c))
            fig.add_trace(Scatter(
                x=xy[m, 0], y=xy[m, 1], mode="markers", name=name, legendgroup=f"class {c}",
                showlegend=pi == 0, marker=dict(size=marker_size, color=colour(int(c)), opacity=0.75),
                customdata=np.nonzero(m)[0],
                hovertemplate=f"{label}<br>index %{{customdata}}<br>class {name}<extra></extra>",
            ), row=1, col=pi + 1)
    # linked axes: zoom one panel, all follow; equal aspect
    fig.update_xaxes(matches="x", showticklabels=False, showgrid=False, zeroline=False,
                     title_text=f"{method} 1" if method else None)
    fig.update_yaxes(matches="y", showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(scaleanchor="x", scaleratio=1, row=1, col=1)
    return base_layout(fig, title, height=height)


def _landscape_arrays(land):
    get = (lambda k: land[k]) if isinstance(land, Mapping) else (lambda k: getattr(land, k))
    for attr in ("alphas", "betas", "loss"):
        if not (attr in land if isinstance(land, Mapping) else hasattr(land, attr)):
            raise TypeError(
                f"a landscape needs .alphas, .betas and .loss (from wb.analyses.loss_slice_2d, or a "
                f"dict with those keys); got {type(land).__name__} without {attr!r}"
            )
    a, b, z = (to_numpy(get(k)).astype(float) for k in ("alphas", "betas", "loss"))
    if z.shape != (a.size, b.size):
        raise ValueError(f"landscape loss has shape {z.shape}, expected (len(alphas), len(betas)) = {(a.size, b.size)}")
    return a, b, z


def landscape_range(landscapes: Mapping, log: bool = False) -> tuple[float, float]:
    """The shared colour range (min, max) over all landscapes (of log10(loss) when ``log``)."""
    vals = []
    for land in landscapes.values():
        z = _landscape_arrays(land)[2]
        z = log10(z) if log else z
        vals.append(z[np.isfinite(z)])
    v = np.concatenate(vals) if vals else np.array([0.0, 1.0])
    return (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)


def compare_landscapes(
    landscapes: Mapping,
    *,
    log: bool = False,
    colorscale: str = "Viridis",
    title: str | None = "Loss landscapes (one colour scale; × = trained weights)",
    height: int = 380,
    zrange: tuple[float, float] | None = None,
):
    """2-D loss slices side by side with one colour scale (the same loss, the same colour).

    ``landscapes``: dict label -> result with ``.alphas`` (A,), ``.betas`` (B,) and ``.loss``
    (A, B) where ``loss[i, j]`` is at (alphas[i], betas[j]). ``log``: colour by log10(loss).
    ``zrange``: fix the colour range (default: min and max over all panels). Traces: one
    heatmap per panel, then one marker per panel at (0, 0) (the trained weights).
    """
    if not isinstance(landscapes, Mapping) or not landscapes:
        raise TypeError("landscapes must be a non-empty dict label -> landscape result")
    lo, hi = zrange if zrange is not None else landscape_range(landscapes, log)
    fig = _subplots(rows=1, cols=len(landscapes), subplot_titles=[str(k) for k in landscapes],
                    horizontal_spacing=0.04)
    for pi, (label, land) in enumerate(landscapes.items()):
        a, b, z = _landscape_arrays(land)
        zz = log10(z) if log else z
        fig.add_trace(go.Heatmap(
            x=a, y=b, z=zz.T, coloraxis="coloraxis", name=str(label),
            customdata=z.T, hovertemplate=f"{label}<br>α %{{x:.3g}}, β %{{y:.3g}}<br>loss %{{customdata:.4g}}<extra></extra>",
        ), row=1, col=pi + 1)
    for pi in range(len(landscapes)):
        fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="markers", name="trained weights",
                                 marker=dict(symbol="x", size=9, color="white", line=dict(width=1, color="black")),
                                 showlegend=False, hovertemplate="trained weights<extra></extra>"),
                      row=1, col=pi + 1)
    fig.update_layout(coloraxis=dict(colorscale=colorscale, cmin=lo, cmax=hi,
                                     colorbar=dict(title="log10 loss" if log else "loss")))
    fig.update_xaxes(title_text="α", showgrid=False)
    fig.update_yaxes(showgrid=False, matches="y")
    fig.update_yaxes(title_text="β", row=1, col=1)
    return base_layout(fig, title, height=height)


def metrics_table(frame, *, title: str | None = None, digits: int = 4):
    """A DataFrame (e.g. ``wb.runs.list()`` or ``wb.runs.summarize(..., fmt=True)``) as a
    plotly table; the index becomes the first column."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    df = frame.reset_index() if frame.index.name or not isinstance(frame.index, pd.RangeIndex) else frame
    cols = [" ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c) for c in df.columns]

    def fmt(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.{digits}g}"
        return str(v)

    cells = [[fmt(v) for v in df[c]] for c in df.columns]
    fig = go.Figure(go.Table(header=dict(values=cols, align="left", fill_color="#EEF2F7"),
                             cells=dict(values=cells, align="left")))
    return base_layout(fig, title, height=60 + 28 * (len(df) + 1))
