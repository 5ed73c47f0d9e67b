"""Figures of what is read out of a diffusion model: classification accuracy vs network
evaluations, linear-probe accuracy over (timestep, layer), the Jacobian rank and subspace angle
against the noise level, and a curriculum comparison's per-timestep losses."""

from __future__ import annotations

import numpy as np

from ._common import PALETTE, base_layout, go, to_numpy


def classifier_curve(*curves, baseline: float | None = None, baseline_name: str = "discriminative MLP (1 evaluation)",
                     title: str | None = "Diffusion classifier: accuracy vs network evaluations"):
    """Accuracy against evaluations per sample (log axis) for ``ClassifierCurve`` results, the
    adaptive schedule as a star, and a discriminative ``baseline`` accuracy as a dashed line."""
    fig = go.Figure()
    for i, c in enumerate(curves):
        col = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=to_numpy(c.evaluations), y=to_numpy(c.accuracy), mode="lines+markers",
                                 name=f"{c.label}, all classes", line=dict(color=col),
                                 customdata=to_numpy(c.n_timesteps),
                                 hovertemplate="%{x:.0f} evaluations (%{customdata} timesteps): %{y:.3f}<extra></extra>"))
        if c.adaptive is not None:
            fig.add_trace(go.Scatter(x=[c.adaptive.mean_evaluations], y=[c.adaptive.accuracy], mode="markers",
                                     name="adaptive elimination", marker=dict(symbol="star", size=14, color=col)))
    if baseline is not None:
        fig.add_hline(y=float(baseline), line=dict(color="#222", dash="dash"), annotation_text=baseline_name,
                      annotation_position="bottom right")
    fig.update_xaxes(title="network evaluations per sample", type="log")
    fig.update_yaxes(title="test accuracy")
    return base_layout(fig, title, height=360)


def probe_heatmap(grid, *, title: str | None = "Linear-probe accuracy of diffusion features"):
    """A ``ProbeGrid`` as a heat map: timesteps (with their noise level) down, layers across, the
    accuracy written in each cell; the raw-input probe in the title."""
    acc = to_numpy(grid.accuracy)
    ylab = [f"t {int(t)} (σ {float(s):.2f})" for t, s in zip(to_numpy(grid.timesteps), to_numpy(grid.sigmas))]
    fig = go.Figure(go.Heatmap(z=acc, x=list(grid.layers), y=ylab, colorscale="Viridis", zmin=float(np.nanmin(acc)),
                               zmax=float(np.nanmax(acc)), text=np.round(acc, 3), texttemplate="%{text:.3f}",
                               colorbar=dict(title="accuracy")))
    fig.update_xaxes(title="layer")
    fig.update_yaxes(title="timestep of x_t", autorange="reversed")
    t = title and f"{title} (raw input: {grid.input_accuracy:.3f})"
    return base_layout(fig, t, height=80 + 40 * len(ylab))


def subspace_recovery(*recoveries, title: str | None = "What the denoiser's Jacobian sees"):
    """Two panels against the noise level: the numerical rank of ∂x̂0/∂x_t (median and 10–90 %
    band over points, the true subspace dimension dashed) and the largest principal angle to
    the true subspace, for one or more ``SubspaceRecovery`` results."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("numerical rank of the Jacobian", "angle to the true subspace (°)"))
    for i, r in enumerate(recoveries):
        col = PALETTE[i % len(PALETTE)]
        sig = to_numpy(r.sigmas)
        for c, vals in ((1, to_numpy(r.rank).astype(float)), (2, to_numpy(r.angle))):
            lo, med, hi = (np.nanquantile(vals, q, axis=1) for q in (0.1, 0.5, 0.9))
            fig.add_trace(go.Scatter(x=np.r_[sig, sig[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", mode="none",
                                     fillcolor="rgba(120,120,120,0.15)", showlegend=False, hoverinfo="skip"), row=1, col=c)
            fig.add_trace(go.Scatter(x=sig, y=med, mode="lines+markers", name=r.name, showlegend=c == 1,
                                     line=dict(color=col)), row=1, col=c)
    d = next((r.d for r in recoveries if r.d is not None), None)
    if d is not None:
        fig.add_hline(y=d, line=dict(color="#222", dash="dash"), annotation_text=f"true d = {d}", row=1, col=1)
    fig.update_xaxes(title="noise level σ_t", type="log")
    return base_layout(fig, title, height=360, width=900)


def curriculum_losses(cmp, *, title: str | None = "Held-out denoising loss by timestep"):
    """Mean held-out loss per timestep bin for each schedule of a ``CurriculumComparison`` (log y),
    with the mean energy distance of its samples in the legend."""
    edges = to_numpy(cmp.bin_edges)
    mid = (edges[:-1] + edges[1:]) / 2
    energy = cmp.mean("energy")
    fig = go.Figure()
    for i, name in enumerate(cmp.names):
        y = to_numpy(cmp.loss_by_t[name]).mean(0)
        fig.add_trace(go.Scatter(x=mid, y=y, mode="lines+markers", name=f"{name} (energy {energy[name]:.4f})",
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_xaxes(title="timestep t (low = little noise = hard)")
    fig.update_yaxes(title="held-out loss", type="log")
    return base_layout(fig, title, height=360)
