"""Figures of guidance: the guided score field beside the unguided one, and what the scale does
to the samples (quality, class accuracy, mode shares).

``guided_fields`` draws a ``GuidedFields`` result (and optionally a ``GuidanceSweep``'s samples)
as two panels; its traces are named by ``GuidedTrace`` and ``guided_fields_patch`` computes what
``widgets.GuidanceView`` writes into them for another (timestep, class, scale).
``guidance_curves`` draws a sweep's measures against the scale with the current scale marked
(layout shape ``SCALE_SHAPE``; ``scale_marker`` gives its position).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import PALETTE, base_layout, go, to_numpy

DATA_COLOUR = "rgba(150,150,150,0.35)"
UNGUIDED_COLOUR = "rgba(60,60,60,0.6)"
GUIDED_COLOUR = "#E45756"
SCALE_SHAPE = 0
CURVE_KEYS = ("precision", "recall", "in_support", "class_accuracy")
CURVE_NAMES = {"precision": "precision", "recall": "recall", "in_support": "in-support share",
               "class_accuracy": "lands in the asked class", "hallucination": "hallucination share",
               "modes_covered": "modes covered"}


class GuidedTrace(IntEnum):
    """Trace indices of ``guided_fields``."""

    DATA_LEFT = 0
    UNGUIDED = 1
    DATA_RIGHT = 2
    GUIDED = 3
    OTHERS = 4   # samples of the other classes at this scale (faint)
    SAMPLES = 5  # samples of the shown class at this scale


def _arrows(points: np.ndarray, vectors: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    end = points + scale * vectors
    seg = np.stack([points, end, np.full_like(points, np.nan)], 1).reshape(-1, 2)
    return seg[:, 0], seg[:, 1]


def _arrow_scale(fields, vecs) -> float:
    gx = to_numpy(fields.grid_x)
    cell = float(gx[1] - gx[0]) if len(gx) > 1 else 1.0
    m = max(float(np.linalg.norm(v, axis=1).max()) for v in vecs)
    return 0.9 * cell / max(m, 1e-12)


def _nearest(values, v) -> int:
    return int(np.abs(to_numpy(values) - float(v)).argmin())


def guided_fields_patch(fields, k: int, s: int, c: int, sweep=None) -> dict:
    """Trace updates (``GuidedTrace`` -> x/y) and ``titles`` for timestep index ``k``, scale index
    ``s`` and class index ``c``. Each panel's arrows are normalised to its longest (guided scores
    grow with the scale and would dwarf the unguided ones); the guided title gives the ratio of
    the two fields' largest arrows."""
    pts = to_numpy(fields.points)
    u, g = to_numpy(fields.unguided[k]), to_numpy(fields.guided[s, c, k])
    su, sg = _arrow_scale(fields, [u]), _arrow_scale(fields, [g])
    out = {GuidedTrace.UNGUIDED: dict(zip("xy", _arrows(pts, u, su))),
           GuidedTrace.GUIDED: dict(zip("xy", _arrows(pts, g, sg)))}
    scale, cls = float(fields.scales[s]), fields.classes[c]
    if sweep is not None:
        j = _nearest(sweep.scales, scale)
        x = to_numpy(sweep.samples[j])[:, :2]
        lab = to_numpy(sweep.labels) if sweep.labels is not None else np.full(len(x), -1)
        mine = lab == cls
        out[GuidedTrace.SAMPLES] = dict(x=x[mine, 0], y=x[mine, 1])
        out[GuidedTrace.OTHERS] = dict(x=x[~mine, 0], y=x[~mine, 1])
    t, sig = int(fields.timesteps[k]), float(fields.sigmas[k])
    ratio = su / sg  # how much longer the guided field's largest arrow is
    out["titles"] = (f"unguided (scale 0): t {t}, σ {sig:.2f}",
                     f"guided: class {cls}, scale {scale:g} (largest arrow ×{ratio:.1f})")
    return out


def guided_fields(fields, *, k: int = 0, s: int | None = None, c: int = 0, sweep=None, data=None, lim=None,
                  title: str | None = None):
    """The unguided score field (left) beside the CFG-guided one for class index ``c`` at scale index
    ``s`` (default the largest) and timestep index ``k``; with a ``sweep``, its final samples at
    that scale on the right (the shown class bright, the others faint). Traces: ``GuidedTrace``."""
    from plotly.subplots import make_subplots

    s = len(fields.scales) - 1 if s is None else s
    p = guided_fields_patch(fields, k, s, c, sweep)
    fig = make_subplots(rows=1, cols=2, subplot_titles=p["titles"], horizontal_spacing=0.06)
    d = np.empty((0, 2)) if data is None else to_numpy(getattr(data, "x", data)).reshape(-1, 2)
    empty = dict(x=np.array([]), y=np.array([]))
    for col, (arrow_role, colour, name) in enumerate(((GuidedTrace.UNGUIDED, UNGUIDED_COLOUR, "unguided score"),
                                                      (GuidedTrace.GUIDED, GUIDED_COLOUR, "guided score")), 1):
        fig.add_trace(go.Scattergl(x=d[:, 0], y=d[:, 1], mode="markers", name="data", showlegend=col == 1,
                                   marker=dict(size=3, color=DATA_COLOUR), hoverinfo="skip"), row=1, col=col)
        fig.add_trace(go.Scatter(**p[arrow_role], mode="lines", name=name, line=dict(color=colour, width=1.2),
                                 hoverinfo="skip"), row=1, col=col)
    fig.add_trace(go.Scattergl(**p.get(GuidedTrace.OTHERS, empty), mode="markers", name="samples, other classes",
                               marker=dict(size=3, color="rgba(76,120,168,0.25)"), hoverinfo="skip"), row=1, col=2)
    fig.add_trace(go.Scattergl(**p.get(GuidedTrace.SAMPLES, empty), mode="markers", name="samples of this class",
                               marker=dict(size=5, color=PALETTE[0])), row=1, col=2)
    if lim is None:  # the grid, with a margin for samples just outside it
        gx, gy = to_numpy(fields.grid_x), to_numpy(fields.grid_y)
        lo, hi = min(gx.min(), gy.min()), max(gx.max(), gy.max())
        pad = 0.12 * (hi - lo)
        lim = (lo - pad, hi + pad)
    for col in (1, 2):
        fig.update_xaxes(range=list(lim), showgrid=False, zeroline=False, row=1, col=col)
        fig.update_yaxes(range=list(lim), showgrid=False, zeroline=False, row=1, col=col,
                         scaleanchor="x" if col == 1 else "x2", scaleratio=1)
    base_layout(fig, title, height=480, width=960)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.06, x=0))
    return fig


def scale_marker(scale: float) -> dict:
    """The vertical line at the current scale (layout shape ``SCALE_SHAPE`` of ``guidance_curves``)."""
    return dict(type="line", xref="x", yref="paper", x0=float(scale), x1=float(scale), y0=0, y1=1,
                line=dict(color="#222", dash="dash", width=1))


def guidance_curves(sweep, *, keys=CURVE_KEYS, scale: float | None = None, title: str | None = "What the scale does"):
    """``sweep``'s measures (share-valued ``SampleQuality`` fields and the class accuracy) against
    the guidance scale; one trace per key (named by ``CURVE_NAMES``), the ``scale`` marked."""
    x = to_numpy(sweep.scales)
    fig = go.Figure()
    for i, key in enumerate(keys):
        y = to_numpy(sweep.series(key))
        if np.all(np.isnan(y)):
            continue
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=CURVE_NAMES.get(key, key),
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.add_shape(**scale_marker(x[-1] if scale is None else scale))
    fig.update_xaxes(title="guidance scale (0 unconditional, 1 conditional)")
    fig.update_yaxes(title="share", range=[0, 1.02])
    return base_layout(fig, title, height=340)


def mode_shares(sweep, *, names=None, title: str | None = "Where the samples go"):
    """Share of in-support samples per mode (bars) at each guidance scale of ``sweep``."""
    if sweep.mode_shares is None:
        raise ValueError("this sweep has no mode shares (its reference data had no mode centres)")
    sh = to_numpy(sweep.mode_shares)
    modes = names or [f"mode {i}" for i in range(sh.shape[1])]
    fig = go.Figure([go.Bar(x=modes, y=sh[i], name=f"scale {float(s):g}", marker_color=PALETTE[i % len(PALETTE)])
                     for i, s in enumerate(to_numpy(sweep.scales))])
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="share of in-support samples")
    return base_layout(fig, title, height=340)
