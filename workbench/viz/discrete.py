"""Figures of a discrete (D3PM) reverse process: the tokens at a frame and when each was decided.

``discrete_frames`` draws a ``DiscreteTrajectory`` at one frame: the states of the first ``n``
samples (images as a mosaic, sequences as a samples × positions grid; the mask state in light
blue), beside the frame at which every token already decided by now took its final value
(blank: not decided yet), and below the share of masked (or not yet final) tokens along the
trajectory with the current frame marked. Trace roles: ``DiscreteTrace``;
``discrete_patch`` computes what ``widgets.DiscreteTrajectoryView`` writes for another frame.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ._common import PALETTE, base_layout, go, to_numpy
from .diffusion import heatmap_z, mosaic

MASK_COLOUR = "#9ecae1"


class DiscreteTrace(IntEnum):
    """Trace indices of ``discrete_frames``."""

    STATES = 0
    DECIDED = 1
    CURVE = 2
    MARKER = 3


def _is_image(traj) -> bool:
    return len(traj.shape) >= 2


def state_colours(traj) -> list[str]:
    """One colour per state: white/black for binary images, the palette for tokens; the mask last."""
    k = traj.n_states
    cols = ["#ffffff", "#222222"] if (_is_image(traj) and k == 2) else [PALETTE[i % len(PALETTE)] for i in range(k)]
    return cols + ([MASK_COLOUR] if traj.mask is not None else [])


def _stepped(colours: list[str]) -> list:
    n = len(colours)
    out = []
    for i, c in enumerate(colours):
        out += [[i / n, c], [(i + 1) / n, c]]
    return out


def _grid(traj, values: np.ndarray, n: int) -> list:
    """(n, L) values as heatmap z: an image mosaic, or the sequence grid itself."""
    v = values[:n].astype(float)
    if _is_image(traj):
        h, w = traj.shape[-2:]
        return heatmap_z(mosaic(v.reshape(len(v), h, w)))
    return heatmap_z(v)


def still_open(traj) -> np.ndarray:
    """(F,) share of the first frames' tokens not yet final: masked for absorbing, else not yet
    at their final value."""
    st = to_numpy(traj.states)
    return (st != st[-1:]).mean((1, 2))


def discrete_patch(traj, frame: int, n: int = 16) -> dict:
    """``DiscreteTrace`` -> trace updates at ``frame`` (and ``title``)."""
    frame = range(traj.n_frames)[frame]
    dec = to_numpy(traj.decided_at).astype(float)
    dec[dec > frame] = np.nan
    open_share = still_open(traj)
    t = int(traj.timesteps[frame])
    return {
        DiscreteTrace.STATES: dict(z=_grid(traj, to_numpy(traj.states[frame]), n)),
        DiscreteTrace.DECIDED: dict(z=_grid(traj, dec, n)),
        DiscreteTrace.MARKER: dict(x=[frame], y=[float(open_share[frame])]),
        "title": f"frame {frame}/{traj.n_frames - 1} · {'clean' if t < 0 else f't {t}'} · "
                 f"{open_share[frame]:.0%} of tokens not final",
    }


def discrete_frames(traj, frame: int = -1, *, n: int = 16, title: str | None = None):
    """The states and decision times of ``traj`` at ``frame`` (see the module docstring)."""
    from plotly.subplots import make_subplots

    frame = range(traj.n_frames)[frame]
    p = discrete_patch(traj, frame, n)
    fig = make_subplots(rows=2, cols=2, row_heights=[0.72, 0.28], vertical_spacing=0.12, horizontal_spacing=0.08,
                        specs=[[{}, {}], [{"colspan": 2}, None]],
                        subplot_titles=("tokens at this frame", "frame each token was decided", "tokens not final"))
    cols = state_colours(traj)
    k = len(cols)
    fig.add_trace(go.Heatmap(**p[DiscreteTrace.STATES], colorscale=_stepped(cols), zmin=-0.5, zmax=k - 0.5,
                             showscale=False, name="states", hovertemplate="state %{z}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(**p[DiscreteTrace.DECIDED], colorscale="Viridis", zmin=0, zmax=traj.n_frames - 1,
                             name="decided at", colorbar=dict(title="frame", len=0.7, y=0.64),
                             hovertemplate="decided at frame %{z}<extra></extra>"), row=1, col=2)
    share = still_open(traj)
    fig.add_trace(go.Scatter(x=np.arange(traj.n_frames), y=share, mode="lines", name="not final",
                             line=dict(color=PALETTE[0])), row=2, col=1)
    fig.add_trace(go.Scatter(**p[DiscreteTrace.MARKER], mode="markers", name="this frame",
                             marker=dict(size=10, color="#E45756")), row=2, col=1)
    for c in (1, 2):
        fig.update_xaxes(showticklabels=not _is_image(traj), showgrid=False, zeroline=False, row=1, col=c)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=c,
                         autorange="reversed" if not _is_image(traj) else None)
        if _is_image(traj):
            fig.update_yaxes(scaleanchor="x" if c == 1 else "x2", scaleratio=1, row=1, col=c)
    fig.update_xaxes(title="frame (reverse step)", row=2, col=1)
    fig.update_yaxes(range=[0, 1.02], row=2, col=1)
    base_layout(fig, title or p["title"], height=580, width=900)
    fig.update_layout(showlegend=False, margin=dict(t=90), title=dict(y=0.98, yanchor="top"))
    return fig
